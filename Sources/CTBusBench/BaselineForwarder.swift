import CTBusSchema
import CTBusLocal
import Foundation
import Synchronization
import ZeroMQ

/// The benchmark's baseline: the ceiling libzmq sets on this machine for the same fan-out. A
/// plain ROUTER forwarder written with the project's ZeroMQ wrapper, CURVE on, and nothing
/// else: no validation, no policy, no storage, no acknowledgements. Every frame a publisher
/// sends goes to every receiver.
public enum BaselineForwarder {
    /// Result of one run: seconds from the first send until every receiver had every message,
    /// receiver 0's one-way latencies in seconds, and the CPU seconds of the forwarder thread
    /// (the counterpart of the broker thread).
    public struct Run: Sendable {
        public let seconds: Double
        public let latencies: [Double]
        public let forwarderCPUSeconds: Double
    }

    /// Sends `messages` frames of `bodyBytes` to `recipients` receivers through the forwarder,
    /// at most `rate` per second (nil: as fast as possible).
    public static func run(messages: Int, bodyBytes: Int, recipients: Int, rate: Double? = nil) throws -> Run {
        let context = try ZMQContext()
        defer { context.shutdown() }
        let serverKeys = try CurveKeyPair.generate()
        let forwarder = try Forwarder(context: context, serverKeys: serverKeys)
        defer { forwarder.thread.stop() }
        let receivers = try Receivers(context: context, serverKeys: serverKeys, address: forwarder.address, messages: messages, count: recipients)
        guard Wait.blocking(seconds: 30, { forwarder.registered.withLock { $0.count } == recipients }) else {
            throw ConfigurationError("baseline receivers did not register")
        }
        let publisher = try ZMQSocket(context: context, type: .dealer)
        // Closed once every receiver has everything: closing drops what it has not sent yet.
        defer { publisher.close() }
        let start = try publish(messages: messages, bodyBytes: bodyBytes, rate: rate, through: publisher, serverKeys: serverKeys,
                                address: forwarder.address)
        for _ in 0..<recipients { receivers.done.wait() }
        let finish = receivers.finishTimes.withLock { $0.max() ?? start }
        guard receivers.finishTimes.withLock({ !$0.contains(0) }) else { throw ConfigurationError("a baseline receiver failed") }
        forwarder.thread.stop()
        return Run(seconds: Double(finish - start) / 1e9, latencies: receivers.latencies.withLock { $0 },
                   forwarderCPUSeconds: forwarder.cpuSeconds.withLock { $0 })
    }

    /// The ROUTER that sends every frame it reads to every receiver that said hello, on a thread
    /// of its own, with that thread's CPU time once it stops.
    private final class Forwarder: Sendable {
        let thread = LoopThread()
        let registered = Mutex<[[UInt8]]>([])
        let cpuSeconds = Mutex(0.0)
        private let endpoint = Mutex("")
        var address: String { endpoint.withLock { $0 } }

        init(context: ZMQContext, serverKeys: CurveKeyPair) throws {
            try thread.start(name: "baseline-fwd") { [self] thread in
                let router: ZMQSocket
                do {
                    router = try ZMQSocket(context: context, type: .router)
                    try router.makeCurveServer(secretKey: serverKeys.secretKey)
                    try router.setHighWaterMarks(send: 0, receive: 0)
                    try router.bind("tcp://127.0.0.1:*")
                    self.endpoint.withLock { $0 = router.lastEndpoint }
                } catch {
                    thread.ready(.failure(error))
                    return
                }
                thread.ready(.success(()))
                var receivers: [[UInt8]] = []
                while !thread.isStopping {
                    guard (try? ZMQSocket.poll([router], timeoutMilliseconds: 20)[0]) == true else { continue }
                    while let message = try? router.receive(dontWait: true), message.frames.count == 2 {
                        if message.frames[1] == Array("hello".utf8) {
                            receivers.append(message.frames[0])
                            self.registered.withLock { $0 = receivers }
                            continue
                        }
                        for receiver in receivers { try? router.send([receiver, message.frames[1]]) }
                    }
                }
                router.close()
                let seconds = ThreadCPU.thisThread()
                self.cpuSeconds.withLock { $0 = seconds }
            }
        }
    }

    /// The receivers, each on a thread of its own until it has every message; the first one
    /// measures latency from the send time each frame carries.
    private final class Receivers: Sendable {
        let done = DispatchSemaphore(value: 0)
        let finishTimes = Mutex<[UInt64]>([])
        let latencies = Mutex<[Double]>([])

        init(context: ZMQContext, serverKeys: CurveKeyPair, address: String, messages: Int, count: Int) throws {
            for index in 0..<count {
                let keys = try CurveKeyPair.generate()
                OwnThread.start { [self] in
                    do {
                        let socket = try ZMQSocket(context: context, type: .dealer)
                        try socket.makeCurveClient(serverPublicKey: serverKeys.publicKey, keyPair: keys)
                        try socket.setHighWaterMarks(send: 0, receive: 0)
                        try socket.connect(address)
                        try socket.send([Array("hello".utf8)])
                        var received = 0
                        var local: [Double] = []
                        while received < messages {
                            guard try ZMQSocket.poll([socket], timeoutMilliseconds: 5_000)[0] else { break }
                            while received < messages, let message = try socket.receive(dontWait: true) {
                                received += 1
                                if index == 0, message.frames[0].count >= 8 {
                                    let sent = message.frames[0].prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                                    local.append(Double(DispatchTime.now().uptimeNanoseconds &- sent) / 1e9)
                                }
                            }
                        }
                        let finished = received == messages ? DispatchTime.now().uptimeNanoseconds : 0
                        self.finishTimes.withLock { $0.append(finished) }
                        if index == 0 { self.latencies.withLock { $0 = local } }
                        socket.close()
                    } catch {
                        self.finishTimes.withLock { $0.append(0) }
                    }
                    self.done.signal()
                }
            }
        }
    }

    /// Publishes the frames, each carrying in its first 8 bytes its send time (at a `rate`, when
    /// it fell due); returns when it began.
    private static func publish(messages: Int, bodyBytes: Int, rate: Double?, through publisher: ZMQSocket, serverKeys: CurveKeyPair,
                                address: String) throws -> UInt64 {
        try publisher.makeCurveClient(serverPublicKey: serverKeys.publicKey, keyPair: try CurveKeyPair.generate())
        try publisher.setHighWaterMarks(send: 0, receive: 0)
        try publisher.connect(address)
        var body = [UInt8](repeating: 0x61, count: max(bodyBytes, 8))
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<messages {
            var stamp = DispatchTime.now().uptimeNanoseconds
            if let rate {
                // Open loop: the latency runs from when the frame fell due, as the bus's does.
                stamp = start + UInt64(Double(index) / rate * 1e9)
                while DispatchTime.now().uptimeNanoseconds < stamp { usleep(50) }
            }
            for byte in 0..<8 { body[byte] = UInt8(truncatingIfNeeded: stamp >> (56 - 8 * UInt64(byte))) }
            try publisher.send([body])
        }
        return start
    }
}
