import CTBusPolicy
import CTBusSchema
import Crypto
import CTBusLocal
import Foundation
import SwiftProtobuf
import ZeroMQ

/// A bare DEALER client for adversarial tests: speaks frames directly, with whatever keys (or
/// none) it is given, and reads what comes back. Lives on the thread that made it.
public final class RawClient {
    private let context: ZMQContext
    private let socket: ZMQSocket

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

    public func hello() throws {
        var hello = Hello()
        hello.protocolVersion = 2
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
