import CTBusSchema
import Foundation
import SwiftProtobuf

/// What the broker does with the bytes of a frame before anything is stored: decode, check size,
/// set the originator, decode and validate the payload, apply the role and need-to-know rules,
/// and decide every node's copy. Pure (no I/O), so the fuzzer and the tests drive exactly the
/// code the broker runs.
public enum Admission {
    /// Decodes one wire frame; anything that is not a Frame with a command is MALFORMED_FRAME.
    public static func decodeFrame(_ bytes: [UInt8]) throws(BusError) -> Frame.OneOf_Kind {
        guard let frame = try? Frame(serializedBytes: bytes), let kind = frame.kind else {
            throw BusError(.malformedFrame, "expected one protobuf Frame after the routing id")
        }
        return kind
    }

    /// A publication the broker accepts, with each node's decision and copy.
    public struct Admitted: Sendable {
        /// The envelope with the originator set to the authenticated publisher.
        public let envelope: Envelope
        /// The payload bytes as published (forwarded unchanged to whole recipients).
        public let payload: Data
        public let decisions: [(node: NodeProfile, decision: RecipientDecision)]
        /// Redacted payload bytes per node, for the nodes under a partial restriction.
        public let redactedPayloads: [String: Data]
        /// Whether the publisher wrote another originator (the broker overrode it).
        public let claimedOriginator: String?
    }

    /// Admits a Publish of `size` bytes from the authenticated `publisher`, or throws the error
    /// to send back.
    public static func admit(_ publish: Publish, size: Int, from publisher: NodeProfile, among nodes: [NodeProfile],
                             maxMessageBytes: Int, at now: Date = Date()) throws(BusError) -> Admitted {
        var envelope = publish.envelope
        let messageId = MessageValidator.echoable(envelope.messageID)
        guard size <= maxMessageBytes else {
            throw BusError(.messageTooLarge, "\(size) bytes; this broker accepts at most \(maxMessageBytes)", messageId: messageId)
        }
        guard publish.hasEnvelope else { throw BusError(.malformedFrame, "Publish without an envelope") }
        let claimed = envelope.originator.isEmpty || envelope.originator == publisher.id ? nil : envelope.originator
        envelope.originator = publisher.id
        let payload: BusMessage.OneOf_Payload
        do {
            payload = try BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: publish.payload)
            try MessageValidator.validate(envelope: envelope, payload: payload)
        } catch {
            throw BusError(error.code, error.detail, messageId: messageId)
        }
        try ConfidentialityPolicy.checkPublication(envelope, by: publisher)
        let decisions = ConfidentialityPolicy.decide(envelope, originator: publisher.id, among: nodes, at: now)
        var redacted: [String: Data] = [:]
        for (node, decision) in decisions {
            guard case .deliver(let paths) = decision, !paths.isEmpty else { continue }
            do {
                redacted[node.id] = try Redactor.redact(payload, paths: paths).serialized()
            } catch {
                throw BusError(.internal, "could not prepare the redacted copy", messageId: messageId)
            }
        }
        return Admitted(envelope: envelope, payload: publish.payload, decisions: decisions, redactedPayloads: redacted,
                        claimedOriginator: claimed)
    }
}
