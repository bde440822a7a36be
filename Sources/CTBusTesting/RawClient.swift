import CTBusPolicy
import CTBusSchema
import Crypto
import CTBusLocal
import Foundation
import SwiftProtobuf
import ZeroMQ

/// A bare DEALER client for adversarial tests: speaks frames directly, with whatever keys (or
/// none) it is given, and reads what comes back. Used by one task at a time; with a session kept
/// alive (`hello(keepAlive:)`) a thread of its own reads the socket and sends the heartbeats, and
/// every use of the socket is under `lock`.
public final class RawClient: @unchecked Sendable {
    private let context: ZMQContext
    private let socket: ZMQSocket
    private let lock = NSLock()
    /// Under `lock`: what the keep-alive thread read and the test has not yet. That thread holds
    /// the client only during one turn, and ends once the client is gone.
    private var inbox: [[UInt8]] = []
    private var keeper: Thread?

    /// The node this client publishes as, and its signing key (`publish`); nil: it signs nothing.
    private let signer: Signer?

    /// Connects with CURVE using `keyPair` and the broker's key; with `keyPair` nil, without CURVE.
    /// `signer`: the node id and key `publish` signs with.
    public init(endpoint: String, brokerPublicKey: String, keyPair: CurveKeyPair?, signer: Signer? = nil) throws {
        self.signer = signer
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, type: .dealer)
        if let keyPair { try socket.makeCurveClient(serverPublicKey: brokerPublicKey, keyPair: keyPair) }
        try socket.connect(endpoint)
    }

    deinit {
        lock.withLock { socket.close() }
        context.shutdown()
    }

    /// Sends raw ZeroMQ frames.
    public func send(raw frames: [[UInt8]]) throws {
        try lock.withLock { try socket.send(frames, dontWait: true) }
    }

    public func send(_ kind: Frame.OneOf_Kind) throws {
        var frame = Frame()
        frame.kind = kind
        try send(raw: [try frame.serializedBytes()])
    }

    /// A node id and its signing key.
    public struct Signer {
        public let nodeId: String
        public let key: Curve25519.Signing.PrivateKey

        public init(nodeId: String, key: Curve25519.Signing.PrivateKey) {
            self.nodeId = nodeId
            self.key = key
        }
    }

    /// A Publish of `message` signed as this client's node, with that node as originator unless
    /// `keepOriginator` (a test that claims another one).
    public func publishFrame(_ message: BusMessage, keepOriginator: Bool = false) throws -> Frame.OneOf_Kind {
        guard let signer else { throw ConfigurationError("this raw client has no signing key") }
        var message = message
        if !keepOriginator { message.envelope.originator = signer.nodeId }
        return .publish(try Self.signedPublish(message, with: signer.key))
    }

    /// Signs and sends `message` (see `publishFrame`).
    public func publish(_ message: BusMessage, keepOriginator: Bool = false) throws {
        try send(try publishFrame(message, keepOriginator: keepOriginator))
    }

    /// A Publish signed with `key` as a node signs it, without validating the message first (the
    /// broker's checks are what a test looks at): a restriction that names paths the payload
    /// does not have is signed without disclosures.
    public static func signedPublish(_ message: BusMessage, with key: Curve25519.Signing.PrivateKey) throws -> Publish {
        let signed: SignedPublication
        if let payload = message.payload, let made = try? SignedPublication.sign(message.envelope, payload: payload, with: key) {
            signed = made
        } else {
            let envelope = try message.envelope.serializedData()
            let payload = try message.payload?.serialized() ?? Data()
            var proof = Proof()
            proof.keyID = PublicationSignature.keyId(key.publicKey)
            proof.signature = try PublicationSignature.sign(envelope: envelope, payload: payload, digests: [], with: key)
            signed = SignedPublication(signedEnvelope: envelope, payload: payload, proof: proof)
        }
        return Publish(signed)
    }

    /// Says Hello. With `keepAlive`, from the Welcome on the client keeps its session as a node
    /// does, whatever the test does meanwhile: a thread of its own reads the socket and sends a
    /// Heartbeat every 250 ms (the bus's session timeout is 1 s, and a loaded machine can hold a
    /// test up longer than that).
    public func hello(keepAlive: Bool = false) throws {
        var hello = Hello()
        hello.protocolVersion = 3
        if keepAlive, keeper == nil {
            let thread = Thread { [weak self] in
                var welcomed = false
                var lastHeartbeat = ContinuousClock.now
                while let client = self {
                    client.keepAlive(welcomed: &welcomed, lastHeartbeat: &lastHeartbeat)
                    Thread.sleep(forTimeInterval: 0.005) // the I/O thread's pace: it never waits on the socket
                }
            }
            lock.withLock { keeper = thread }
            thread.start()
        }
        try send(.hello(hello))
    }

    /// One turn of the keep-alive thread: reads what came, then heartbeats when due.
    private func keepAlive(welcomed: inout Bool, lastHeartbeat: inout ContinuousClock.Instant) {
        lock.withLock {
            while let message = try? socket.receive(dontWait: true) {
                guard message.frames.count == 1 else { continue }
                if case .welcome? = (try? Frame(serializedBytes: message.frames[0]))?.kind { welcomed = true }
                inbox.append(message.frames[0])
            }
            if welcomed, ContinuousClock.now - lastHeartbeat >= .milliseconds(250) {
                _ = try? socket.send([[0x3A, 0x00]], dontWait: true) // Frame{heartbeat: Heartbeat{}}
                lastHeartbeat = .now
            }
        }
    }

    /// The next frame from the broker, or nil when none came within `seconds`. Between looks
    /// the task sleeps: a waiting test holds no thread of the cooperative pool. The socket is
    /// looked at once more after the deadline, so a task held up past it still sees what came.
    public func receive(seconds: Double = 5) async throws -> Frame? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            let next: [UInt8]? = try lock.withLock {
                if !inbox.isEmpty { return inbox.removeFirst() }
                // With a keep-alive thread, that thread alone reads the socket: it must see the Welcome.
                guard keeper == nil else { return nil }
                while let message = try socket.receive(dontWait: true) {
                    if message.frames.count == 1 { return message.frames[0] }
                }
                return nil
            }
            if let next { return try Frame(serializedBytes: next) }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The next frame that is not a heartbeat, or nil.
    public func receiveCommand(seconds: Double = 5) async throws -> Frame.OneOf_Kind? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            guard let frame = try await receive(seconds: 0.2) else { continue }
            if case .heartbeat = frame.kind { continue }
            return frame.kind
        }
        return nil
    }

    /// The next answer to something this client sent (PublishAck, RevokeAck, Welcome or an
    /// error), skipping the deliveries and heartbeats that a session receives meanwhile.
    public func receiveReply(seconds: Double = 5) async throws -> Frame.OneOf_Kind? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            guard let kind = try await receiveCommand(seconds: 0.2) else { continue }
            if case .deliver = kind { continue }
            return kind
        }
        return nil
    }
}

extension Publish {
    /// The Publish that carries `signed` as signed (what a node sends for it).
    public init(_ signed: SignedPublication) {
        self.init()
        signedEnvelope = signed.signedEnvelope
        payload = signed.payload
        proof = signed.proof
    }
}

extension LocalBus {
    /// A raw client with node `id`'s transport key that signs what it publishes as that node.
    public func rawClient(as id: String) throws -> RawClient {
        guard let keys = nodeKeys[id] else { throw ConfigurationError("node \(id) is not in this bus's registry") }
        return try RawClient(endpoint: endpoint, brokerPublicKey: brokerKeys.publicKey, keyPair: keys,
                             signer: RawClient.Signer(nodeId: id, key: try signingKey(of: id)))
    }
}
