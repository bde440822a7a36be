import CTBusPolicy
import CTBusSchema
import CTBusLocal
import Foundation
import SwiftProtobuf
import ZeroMQ

/// A compromised broker, for tests of what an honest node does with what it is sent (PROTOCOL.md
/// 7.4). Built from the project's pieces: a ROUTER socket with the bus's broker CURVE keys on
/// the bus's endpoint (so the node connects to it as to its broker) and the wire's frames. It
/// welcomes the node, answers its heartbeats, and delivers whatever a test hands it, tampered or
/// not. Used by one task at a time.
public final class HostileBroker {
    private let context: ZMQContext
    private let socket: ZMQSocket
    private var node: [UInt8]?
    private var sequence: UInt64 = 0
    /// The highest sequence the node acknowledged.
    public private(set) var acknowledged: UInt64 = 0

    /// Binds the bus's endpoint with the bus's broker keys (no real broker may run on it).
    public init(bus: LocalBus) throws {
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .router)
        try socket.makeCurveServer(secretKey: bus.brokerKeys.secretKey)
        try socket.bind(bus.endpoint)
    }

    deinit {
        socket.close()
        context.shutdown()
    }

    /// Waits (bounded) for the node's Hello and welcomes it; false when none came.
    public func welcome(as nodeId: String, seconds: Double = 15) async throws -> Bool {
        try await serve(seconds: seconds, as: nodeId) { self.node != nil }
    }

    /// Sends `signed` to the node as the next delivery, with `redactedPaths` as the broker's word
    /// on what it withheld; returns its sequence.
    @discardableResult
    public func deliver(_ signed: SignedPublication, redactedPaths: [String] = []) throws -> UInt64 {
        var deliver = Deliver()
        deliver.signedEnvelope = signed.signedEnvelope
        deliver.payload = signed.payload
        deliver.proof = signed.proof
        deliver.redactedPaths = redactedPaths
        return try send(deliver)
    }

    /// Sends a Deliver as built by the test (its sequence is set here); returns the sequence.
    @discardableResult
    public func send(_ deliver: Deliver) throws -> UInt64 {
        guard let node else { throw ConfigurationError("no node said Hello to the hostile broker") }
        sequence += 1
        var frame = Frame()
        frame.deliver = deliver
        frame.deliver.sequence = sequence
        try socket.send([node, try frame.serializedBytes()], dontWait: true)
        return sequence
    }

    /// Serves the node (Welcome to its Hello, heartbeats) until it acknowledged `sequence`, for
    /// at most `seconds`; false when it did not.
    public func waitForAcknowledgement(through sequence: UInt64, as nodeId: String, seconds: Double = 15) async throws -> Bool {
        try await serve(seconds: seconds, as: nodeId) { self.acknowledged >= sequence }
    }

    /// Between looks at the socket the task sleeps: a waiting test holds no thread of the
    /// cooperative pool.
    private func serve(seconds: Double, as nodeId: String, until done: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !done() {
            guard ContinuousClock.now < deadline else { return false }
            guard let message = try socket.receive(dontWait: true) else {
                try await Task.sleep(for: .milliseconds(2))
                continue
            }
            guard message.frames.count == 2, let frame = try? Frame(serializedBytes: message.frames[1]) else { continue }
            switch frame.kind {
            case .hello:
                node = message.frames[0]
                var welcome = Welcome()
                welcome.protocolVersion = 3
                welcome.nodeID = nodeId
                welcome.maxMessageBytes = 1 << 20
                var reply = Frame()
                reply.welcome = welcome
                try socket.send([message.frames[0], try reply.serializedBytes()], dontWait: true)
            case .heartbeat:
                var reply = Frame()
                reply.heartbeat = Heartbeat()
                try socket.send([message.frames[0], try reply.serializedBytes()], dontWait: true)
            case .deliveryAck(let ack):
                acknowledged = max(acknowledged, ack.throughSequence)
            default:
                break
            }
        }
        return true
    }
}
