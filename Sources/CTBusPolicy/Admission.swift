import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// What the broker does with the bytes of a frame before anything is stored: decode, check size,
/// check the publisher's signature and disclosures, validate the payload, apply the role and
/// need-to-know rules, and decide every node's copy. Pure (no I/O), so the fuzzer and the tests drive exactly the
/// code the broker runs.
public enum Admission {
    /// Decodes one wire frame; anything that is not a Frame with a command is MALFORMED_FRAME.
    /// Fields this version does not know are dropped, so that nothing unread is stored or
    /// passed on (the signed parts travel as bytes and are checked as such).
    public static func decodeFrame(_ bytes: [UInt8]) throws(BusError) -> Frame.OneOf_Kind {
        var options = BinaryDecodingOptions()
        options.discardUnknownFields = true
        guard let frame = try? Frame(serializedBytes: bytes, options: options), let kind = frame.kind else {
            throw BusError(.malformedFrame, "expected one protobuf Frame after the routing id")
        }
        return kind
    }

    /// The message id a Publish announces in its signed envelope, when it can be read and echoed.
    public static func messageId(of publish: Publish) -> String? {
        (try? Envelope(serializedBytes: publish.signedEnvelope)).flatMap { MessageValidator.echoable($0.messageID) }
    }

    /// A publication the broker accepts, with each node's decision.
    public struct Admitted: Sendable {
        /// The envelope as signed (its originator is the authenticated publisher).
        public let envelope: Envelope
        /// The bytes and proof as published, with every disclosure: stored and forwarded unchanged
        /// (a recipient under a partial restriction gets `signed.withholding(paths)`).
        public let signed: SignedPublication
        public let decisions: [(node: NodeProfile, decision: RecipientDecision)]
    }

    /// Admits a Publish of `size` bytes from the authenticated `publisher`, or throws the error
    /// to send back: the signature and disclosures checked with the publisher's signing key (one
    /// verification per publication, whatever the number of recipients, and one per batch root
    /// with `roots`, which keeps the roots verified), the whole payload
    /// validated, the role and need-to-know rules applied, every node's copy decided.
    public static func admit(_ publish: Publish, size: Int, from publisher: NodeProfile, signingKey: Curve25519.Signing.PublicKey?,
                             previousKey: PreviousKeyLookup = { _, _ in nil }, roots: BatchRoots? = nil,
                             among nodes: [NodeProfile], maxMessageBytes: Int, at now: Date = Date()) throws(BusError) -> Admitted {
        guard size <= maxMessageBytes else {
            throw BusError(.messageTooLarge, "\(size) bytes; this broker accepts at most \(maxMessageBytes)", messageId: messageId(of: publish))
        }
        guard !publish.hasEnvelope else {
            throw BusError(.malformedFrame, "Publish.envelope is protocol version 1; version 2 sends signed_envelope and proof",
                           messageId: MessageValidator.echoable(publish.envelope.messageID))
        }
        guard !publish.signedEnvelope.isEmpty, publish.hasProof else {
            throw BusError(.signatureInvalid, "an unsigned publication: protocol versions 2 and later require signed_envelope and proof",
                           messageId: messageId(of: publish))
        }
        let signed = SignedPublication(signedEnvelope: publish.signedEnvelope, payload: publish.payload, proof: publish.proof)
        let (envelope, keyId) = try signed.verifySignature(signingKey: { $0 == publisher.id ? signingKey : nil }, previousKey: previousKey,
                                                           originator: publisher.id, roots: roots)
        // The broker cannot read a sealed payload: it validates the envelope alone, then (below)
        // checks that the message is sealed to exactly the nodes the policy decides.
        let sealed = envelope.handling.sealed
        do {
            if sealed {
                try MessageValidator.validate(sealedEnvelope: envelope)
            } else {
                let verified = try signed.verifyContents(envelope: envelope, keyId: keyId, whole: true)
                try MessageValidator.validate(envelope: envelope, payload: verified.payload)
            }
        } catch let error where error.messageId == nil {
            throw error.about(MessageValidator.echoable(envelope.messageID))
        }
        try ConfidentialityPolicy.checkPublication(envelope, by: publisher)
        let decisions = ConfidentialityPolicy.decide(envelope, originator: publisher.id, among: nodes, at: now)
        if sealed {
            guard publish.proof.disclosures.isEmpty else {
                throw BusError(.sealInvalid, "a sealed publication's disclosures travel inside its SealedContent",
                               messageId: MessageValidator.echoable(envelope.messageID))
            }
            let content = try SignedPublication.sealedContent(publish.payload, messageId: MessageValidator.echoable(envelope.messageID))
            try checkSealedTo(content, envelope: envelope, decisions: decisions)
        }
        return Admitted(envelope: envelope, signed: signed, decisions: decisions)
    }

    /// `admit` as the registry `registry` says: the publisher's profile, signing key and retired
    /// keys, and every node, by their ids there. A publisher the registry does not name is
    /// NOT_AUTHENTICATED. What the broker runs on each publication, and what a node runs over its
    /// registry copy before it queues one.
    public static func admit(_ publish: Publish, size: Int, from nodeId: String, registry: NodeRegistry, roots: BatchRoots? = nil,
                             maxMessageBytes: Int, at now: Date = Date()) throws(BusError) -> Admitted {
        guard let publisher = registry.entry(id: nodeId)?.profile else {
            throw BusError(.notAuthenticated, "node \(nodeId) is not in the registry", messageId: messageId(of: publish))
        }
        return try admit(publish, size: size, from: publisher, signingKey: registry.signingKey(of: publisher.id),
                         previousKey: registry.previousSigningKey(of:keyId:), roots: roots, among: registry.profiles,
                         maxMessageBytes: maxMessageBytes, at: now)
    }

    /// A sealed publication must be sealed to exactly the nodes the policy sends it to, and its
    /// disclosures to exactly those of them that receive the restricted fields (none without a
    /// PARTIAL restriction): the broker never stores a message a recipient could not open, nor
    /// one sealed to a node the policy excludes.
    static func checkSealedTo(_ content: SealedContent, envelope: Envelope,
                              decisions: [(node: NodeProfile, decision: RecipientDecision)]) throws(BusError) {
        let messageId = MessageValidator.echoable(envelope.messageID)
        let recipients = Set(decisions.filter { $0.decision.isDelivered }.map(\.node.id))
        let whole = Set(decisions.filter { if case .deliver(let paths) = $0.decision { paths.isEmpty } else { false } }.map(\.node.id))
        func compare(_ box: SealedBox, _ expected: Set<String>, _ what: String) throws(BusError) {
            let sealedTo = box.recipients
            guard Set(sealedTo) == expected, sealedTo.count == expected.count else {
                let extra = Set(sealedTo).subtracting(expected).sorted(), missing = expected.subtracting(sealedTo).sorted()
                throw BusError(.sealedToMismatch, "\(what) is sealed to other nodes than the policy decides"
                               + (extra.isEmpty ? "" : "; not entitled: \(extra.joined(separator: ", "))")
                               + (missing.isEmpty ? "" : "; missing: \(missing.joined(separator: ", "))"), messageId: messageId)
            }
        }
        try compare(content.payload, recipients, "the payload")
        if SignedPublication.restrictedPaths(of: envelope).isEmpty {
            guard !content.hasDisclosures else {
                throw BusError(.sealInvalid, "sealed disclosures without a partial restriction", messageId: messageId)
            }
        } else {
            guard content.hasDisclosures else {
                throw BusError(.sealInvalid, "a sealed publication under a partial restriction carries no sealed disclosures", messageId: messageId)
            }
            try compare(content.disclosures, whole, "the restricted part")
        }
    }
}
