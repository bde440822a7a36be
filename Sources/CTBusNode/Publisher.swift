import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// What `ctbus publish` does: validates a message and puts it in a node's outbox. Needs neither
/// the node daemon nor the broker to be running.
public enum Publisher {
    /// Parses protobuf JSON into a message, filling in what the publisher may leave out: a new
    /// UUIDv7 id when none is given, the schema version, the creation time, the type from the
    /// payload, the originator (this node's id). A message naming another originator is refused
    /// (NOT_PERMITTED): a node publishes only as itself, and a file that says otherwise is a mistake
    /// to show, not to mend in silence. Without `nodeId` (validation alone, `ctbus validate`) any
    /// originator is kept, and "validator" stands in for a missing one.
    public static func prepare(json: Data, nodeId: String?, now: Date = Date()) throws(BusError) -> BusMessage {
        var message: BusMessage
        do {
            message = try BusMessage(jsonUTF8Data: json)
        } catch {
            throw BusError(.validationFailed, "not a CTBus message in protobuf JSON: \(describe(error))")
        }
        if message.envelope.messageID.isEmpty { message.envelope.messageID = MessageID.generate(now: now) }
        if message.envelope.schemaVersion == 0 { message.envelope.schemaVersion = MessageValidator.schemaVersion }
        if !message.envelope.hasCreatedAt { message.envelope.createdAt = Google_Protobuf_Timestamp(date: now) }
        if message.envelope.type == .unspecified, let payload = message.payload {
            message.envelope.type = payload.messageType
        }
        let nodeId = nodeId ?? (message.envelope.originator.isEmpty ? "validator" : message.envelope.originator)
        guard message.envelope.originator.isEmpty || message.envelope.originator == nodeId else {
            throw BusError(.notPermitted, "envelope.originator is \(MessageValidator.echoable(message.envelope.originator) ?? "another node"), "
                           + "but this node is \(nodeId): a node publishes only as itself (leave originator out, or publish from that node)",
                           messageId: MessageValidator.echoable(message.envelope.messageID))
        }
        message.envelope.originator = nodeId
        // STRICTLY_CONFIDENTIAL always crosses the broker sealed (PROTOCOL.md 7.5).
        if message.envelope.handling.classification == .strictlyConfidential { message.envelope.handling.sealed = true }
        try MessageValidator.validate(message)
        return message
    }

    /// Validates, signs and queues a message in `journal`'s outbox; returns the message id.
    /// `clearance` is the node's own: it may not originate anything marked above it.
    @discardableResult
    public static func enqueue(_ message: BusMessage, into journal: NodeJournal, clearance: Classification,
                               signingKey: Curve25519.Signing.PrivateKey, registry: @autoclosure () throws -> NodeRegistry? = nil,
                               admission: AdmissionCheck? = nil) throws -> String {
        try enqueue([message], into: journal, clearance: clearance, signingKey: signingKey, registry: try registry(), admission: admission)[0]
    }

    /// The broker's admission run at the publisher before anything is queued (`preview`), over
    /// this node's registry copy: what the broker would refuse is refused at once, with the
    /// broker's code, and never enters the outbox.
    public struct AdmissionCheck: Sendable {
        public let nodeId: String
        public let registry: NodeRegistry
        public let maxMessageBytes: Int

        public init(nodeId: String, registry: NodeRegistry, maxMessageBytes: Int = WireLimits.defaultMaxMessageBytes) {
            self.nodeId = nodeId
            self.registry = registry
            self.maxMessageBytes = maxMessageBytes
        }

        func check(_ signed: SignedPublication) throws(BusError) {
            _ = try Publisher.preview(signed: signed, nodeId: nodeId, registry: registry, maxMessageBytes: maxMessageBytes)
        }
    }

    /// Validates and signs messages and queues them in one transaction (all or none); returns
    /// their ids. Several messages are signed with one signature per batch of at most
    /// `batchLeaves` (PROTOCOL.md 7.2, batch signatures). What is signed here is what the broker
    /// and every recipient get: the outbox keeps the signed bytes and a resend sends them again
    /// unchanged. A sealed message is sealed to the recipients the policy decides over `registry`
    /// (this node's copy), read only when a message is sealed, and once for all of them.
    @discardableResult
    public static func enqueue(_ messages: [BusMessage], into journal: NodeJournal, clearance: Classification,
                               signingKey: Curve25519.Signing.PrivateKey, registry: @autoclosure () throws -> NodeRegistry? = nil,
                               batchLeaves: Int = 256, admission: AdmissionCheck? = nil) throws -> [String] {
        var ids = Set<String>()
        for message in messages where !ids.insert(message.envelope.messageID).inserted {
            throw BusError(.validationFailed, "message id \(message.envelope.messageID) is given twice; each message needs its own",
                           messageId: MessageValidator.echoable(message.envelope.messageID))
        }
        var read: NodeRegistry??
        let toSign = try messages.map { message throws -> SignedPublication.ToSign in
            try check(message, clearance: clearance)
            guard let payload = message.payload else { throw BusError(.validationFailed, "payload is required") }
            let sealing = try sealingRecipients(of: message.envelope, registry: try {
                if read == nil { read = .some(try registry()) }
                return read!
            }())
            return (message.envelope, payload, sealing)
        }
        let signed = try SignedPublication.signBatch(toSign, with: signingKey, maxLeaves: batchLeaves)
        if let admission { for publication in signed { try admission.check(publication.signed) } }
        let records = try zip(toSign, signed).map { message, signed in
            try record(message.envelope, payload: message.payload, signed: signed.signed, contentKeys: signed.contentKeys)
        }
        try journal.outbox.enqueue(records)
        return messages.map(\.envelope.messageID)
    }

    /// What the broker would answer if this node published `message` now, judged from this
    /// node's registry copy by the broker's own step (`Admission.admit`, through
    /// `preview(signed:...)`) on the bytes that would travel: each node's decision (whole copy,
    /// parts withheld, or refused by which rule), or the error the broker would send back (too
    /// large, not permitted, need to know, a key the registry does not hold). Nothing is queued;
    /// publishing signs again.
    public static func preview(_ message: BusMessage, nodeId: String, clearance: Classification, signingKey: Curve25519.Signing.PrivateKey,
                               registry: NodeRegistry, maxMessageBytes: Int = WireLimits.defaultMaxMessageBytes,
                               at now: Date = Date()) throws -> [(node: NodeProfile, decision: RecipientDecision)] {
        try check(message, clearance: clearance)
        guard let payload = message.payload else { throw BusError(.validationFailed, "payload is required") }
        let sealing = try sealingRecipients(of: message.envelope, registry: registry)
        let (signed, _) = try SignedPublication.signSealed(message.envelope, payload: payload, with: signingKey, sealing: sealing)
        return try preview(signed: signed, nodeId: nodeId, registry: registry, maxMessageBytes: maxMessageBytes, at: now)
    }

    /// The broker's decisions for a publication already signed: the frame it would receive, and
    /// `Admission.admit` over this node's registry copy.
    public static func preview(signed: SignedPublication, nodeId: String, registry: NodeRegistry,
                               maxMessageBytes: Int = WireLimits.defaultMaxMessageBytes,
                               at now: Date = Date()) throws(BusError) -> [(node: NodeProfile, decision: RecipientDecision)] {
        let proof: Data
        do {
            proof = try signed.proof.serializedData()
        } catch {
            throw BusError(.internal, "the proof could not be encoded")
        }
        let frame = FrameBytes.publish(signedEnvelope: signed.signedEnvelope, payload: signed.payload, proof: proof)
        var publish = Publish()
        publish.signedEnvelope = signed.signedEnvelope
        publish.payload = signed.payload
        publish.proof = signed.proof
        return try Admission.admit(publish, size: frame.count, from: nodeId, registry: registry, maxMessageBytes: maxMessageBytes,
                                   at: now).decisions
    }

    /// The journal record of a message signed with `key` (PROTOCOL.md 7.2): the envelope bytes
    /// signed, the whole payload, the signed payload (restricted fields cleared) and the proof
    /// with every disclosure.
    public static func signed(_ envelope: Envelope, payload: BusMessage.OneOf_Payload,
                              with key: Curve25519.Signing.PrivateKey, registry: @autoclosure () throws -> NodeRegistry? = nil) throws -> JournalRecord {
        try signed(envelope, payload: payload, with: key, sealing: try sealingRecipients(of: envelope, registry: try registry()))
    }

    /// The nodes a sealed message is sealed to (nil when it is not sealed): those the policy
    /// decides over `registry`, which a sealed message needs.
    static func sealingRecipients(of envelope: Envelope, registry: @autoclosure () throws -> NodeRegistry?) throws -> SealingRecipients? {
        guard envelope.handling.sealed else { return nil }
        guard let registry = try registry() else {
            throw BusError(.sealInvalid, "a sealed message is sealed to its recipients' keys from the registry: give the node a registryFile",
                           messageId: MessageValidator.echoable(envelope.messageID))
        }
        return try SealingRecipients.decide(envelope, originator: envelope.originator, registry: registry)
    }

    /// The journal record of a message signed with `key` and, when it is sealed, sealed to
    /// `sealing`. A sealed message's disclosures are inside its sealed bytes; the journal keeps the
    /// content keys that open them.
    public static func signed(_ envelope: Envelope, payload: BusMessage.OneOf_Payload, with key: Curve25519.Signing.PrivateKey,
                              sealing: SealingRecipients?) throws -> JournalRecord {
        let (signed, contentKeys) = try SignedPublication.signSealed(envelope, payload: payload, with: key, sealing: sealing)
        return try record(envelope, payload: payload, signed: signed, contentKeys: contentKeys)
    }

    static func record(_ envelope: Envelope, payload: BusMessage.OneOf_Payload, signed: SignedPublication, contentKeys: Data?) throws -> JournalRecord {
        JournalRecord(envelope: envelope, envelopeBytes: signed.signedEnvelope, payload: try payload.serialized(),
                      signedPayload: signed.payload, proof: try signed.proof.serializedData(), contentKeys: contentKeys)
    }

    /// Validates a message and keeps it as a draft in `journal`; it leaves the node only when
    /// released. Returns the message id.
    @discardableResult
    public static func saveDraft(_ message: BusMessage, into journal: NodeJournal, clearance: Classification) throws -> String {
        try check(message, clearance: clearance)
        guard let payload = message.payload else { throw BusError(.validationFailed, "payload is required") }
        try journal.drafts.save(envelope: message.envelope, payload: try payload.serialized())
        return message.envelope.messageID
    }

    /// Releases a draft: validates it again (the rules may have changed since), signs it and
    /// moves it to the outbox, from where the node daemon sends it.
    public static func releaseDraft(_ messageId: String, from journal: NodeJournal, clearance: Classification,
                                    signingKey: Curve25519.Signing.PrivateKey, registry: @autoclosure () throws -> NodeRegistry? = nil,
                                    admission: AdmissionCheck? = nil) throws {
        _ = try journal.drafts.release(messageId: messageId) { envelope, bytes in
            let payload = try BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: bytes)
            try MessageValidator.validate(envelope: envelope, payload: payload)
            try ConfidentialityPolicy.checkOriginatorClearance(envelope, nodeId: envelope.originator, clearance: clearance)
            let (signed, contentKeys) = try SignedPublication.signSealed(envelope, payload: payload, with: signingKey,
                                                                         sealing: try sealingRecipients(of: envelope, registry: try registry()))
            try admission?.check(signed)
            return try record(envelope, payload: payload, signed: signed, contentKeys: contentKeys)
        }
    }

    /// The publishing node's checks: the schema rules, and its own clearance (the broker
    /// checks both again against the registry).
    static func check(_ message: BusMessage, clearance: Classification) throws(BusError) {
        guard !message.envelope.originator.isEmpty else {
            throw BusError(.validationFailed, "envelope.originator is required: the id of the publishing node, which signs the message",
                           messageId: MessageValidator.echoable(message.envelope.messageID))
        }
        try MessageValidator.validate(message)
        try ConfidentialityPolicy.checkOriginatorClearance(message.envelope, nodeId: message.envelope.originator, clearance: clearance)
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? JSONDecodingError {
            switch error {
            case .unrecognizedEnumValue: return "an enum value is not one the schema knows"
            case .unknownField(let name): return "unknown field \(name)"
            case .malformedNumber: return "a malformed number"
            case .malformedString: return "a malformed string"
            case .missingFieldNames: return "missing field names"
            default: return "malformed JSON (\(error))"
            }
        }
        return "\(error)"
    }
}
