import CTBusSchema
import SwiftProtobuf
import ZeroMQ

/// A bare DEALER client for adversarial tests: speaks frames directly, with whatever keys (or
/// none) it is given, and reads what comes back. Lives on the thread that made it.
public final class RawClient {
    private let context: ZMQContext
    private let socket: ZMQSocket

    /// Connects with CURVE using `keyPair` and the broker's key; with `keyPair` nil, without CURVE.
    public init(endpoint: String, brokerPublicKey: String, keyPair: CurveKeyPair?) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        if let keyPair { try socket.makeCurveClient(serverPublicKey: brokerPublicKey, keyPair: keyPair) }
        try socket.connect(endpoint)
    }

    deinit {
        socket.close()
        context.shutdown()
    }

    /// Sends raw ZeroMQ frames.
    public func send(raw frames: [[UInt8]]) throws {
        try socket.send(frames, dontWait: true)
    }

    public func send(_ kind: Frame.OneOf_Kind) throws {
        var frame = Frame()
        frame.kind = kind
        try send(raw: [try frame.serializedBytes()])
    }

    public func hello() throws {
        var hello = Hello()
        hello.protocolVersion = 1
        try send(.hello(hello))
    }

    /// The next frame from the broker, or nil when none came within `seconds`.
    public func receive(seconds: Double = 5) throws -> Frame? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try ZMQSocket.poll([socket], timeoutMilliseconds: 20)[0], let message = try socket.receive(dontWait: true) {
                guard message.frames.count == 1 else { continue }
                return try Frame(serializedBytes: message.frames[0])
            }
        }
        return nil
    }

    /// The next frame that is not a heartbeat, or nil.
    public func receiveCommand(seconds: Double = 5) throws -> Frame.OneOf_Kind? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            guard let frame = try receive(seconds: 0.2) else { continue }
            if case .heartbeat = frame.kind { continue }
            return frame.kind
        }
        return nil
    }

    /// The next answer to something this client sent (PublishAck, RevokeAck, Welcome or an
    /// error), skipping the deliveries and heartbeats that a session receives meanwhile.
    public func receiveReply(seconds: Double = 5) throws -> Frame.OneOf_Kind? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            guard let kind = try receiveCommand(seconds: 0.2) else { continue }
            if case .deliver = kind { continue }
            return kind
        }
        return nil
    }
}
