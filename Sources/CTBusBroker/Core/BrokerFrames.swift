import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// Frames and errors the broker builds from stored or received bytes.
enum BrokerFrames {
    /// The answer to bytes that are not one Frame: with the id when one can be read from them,
    /// else with their SHA-256, so the client can tell which of its frames it was.
    static func malformed(_ frames: [[UInt8]]) -> BusError {
        let detail = "expected one protobuf Frame after the routing id"
        guard frames.count == 1 else { return BusError(.malformedFrame, detail) }
        if let id = FrameSalvage.messageId(in: frames[0]) {
            return BusError(.malformedFrame, "the Frame does not decode (a field is not valid protobuf or not UTF-8)", messageId: id)
        }
        return BusError(.malformedFrame, detail, frameSHA256: Data(SHA256.hash(data: frames[0])))
    }

    static func sessionReplaced(_ nodeId: String) -> BusError {
        BusError(.sessionReplaced, "a newer connection said Hello as node \(nodeId); this session has ended")
    }

    /// The acknowledgement of a stored publication, with its recipient count.
    static func publishAck(_ publication: Publication, recipients: Int) -> PublishAck {
        var ack = PublishAck()
        ack.messageID = publication.messageId
        ack.originator = publication.originator
        ack.recipientCount = UInt32(recipients)
        return ack
    }

    /// A queued revocation: the signed statement as stored. One that no longer decodes (a damaged
    /// store) goes out naming the message unsigned, and nodes refuse it.
    static func revocationFrame(_ delivery: QueuedDelivery) -> [UInt8] {
        var revocation = delivery.revocation.flatMap { try? Revocation(serializedBytes: $0) } ?? Revocation()
        if revocation.messageID.isEmpty {
            revocation.messageID = delivery.messageId
            revocation.reason = delivery.revocationReason ?? ""
            revocation.revokedBy = delivery.originator
        }
        var deliver = Deliver()
        deliver.sequence = delivery.sequence
        deliver.revocation = revocation
        var frame = Frame()
        frame.kind = .deliver(deliver)
        return (try? frame.serializedBytes()) ?? []
    }

    /// The proof a recipient gets: the stored one, without the disclosures of `paths` (the
    /// restricted fields this node may not see). Signature and digests stay as signed.
    static func proof(_ stored: Data, withholding paths: [String]) -> Data {
        guard !paths.isEmpty else { return stored }
        guard let proof = try? Proof(serializedBytes: stored) else { return Data() } // a recipient refuses it: nothing leaks
        return (try? proof.withholding(paths).serializedData()) ?? Data()
    }
}
