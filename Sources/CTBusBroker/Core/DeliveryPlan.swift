import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation

/// What one read of a node's queue comes to (PROTOCOL.md 6.1, 6.3, 4.5), in sequence order:
/// the Deliver frames to send, the entries passed over, and the entries that leave the queue
/// unsent with their audit lines. An expired message is passed over; one the node is no longer
/// entitled to (judged again after a registry change) is withdrawn, and the plan stops there:
/// nothing after it goes until the store has recorded the withdrawal.
struct DeliveryPlan {
    enum Item: Equatable {
        case send(sequence: UInt64, frame: [UInt8])
        /// Leaves the queue unsent: uses no credit.
        case skip(sequence: UInt64)
    }

    private(set) var items: [Item] = []
    private(set) var removals: [BrokerCore.Removal] = []

    /// `mark`: the node's re-judge mark (deliveries up to it are judged again under `profile`,
    /// its entry in the registry in force).
    init(_ batch: [QueuedDelivery], for nodeId: String, rejudgeThrough mark: UInt64?, profile: NodeProfile?, at date: Date) {
        for delivery in batch {
            if delivery.revocationReason != nil {
                items.append(.send(sequence: delivery.sequence, frame: BrokerFrames.revocationFrame(delivery)))
                continue
            }
            if let expiry = delivery.expiresAt, expiry <= date {
                removals.append(BrokerCore.Removal(
                    sequence: delivery.sequence, messageId: delivery.messageId, why: .expired,
                    audit: AuditEntry(nodeId: nodeId, outcome: .refused, rule: .policy(.expired),
                                      reason: "expired before the node came to take it", recordedAt: date)))
                items.append(.skip(sequence: delivery.sequence))
                continue
            }
            if let mark, delivery.sequence <= mark, let (rule, reason) = BrokerDecisions.withdrawal(delivery, for: profile, at: date) {
                removals.append(BrokerCore.Removal(
                    sequence: delivery.sequence, messageId: delivery.messageId, why: .withdrawn(rule),
                    audit: AuditEntry(nodeId: nodeId, outcome: .refused, rule: .policy(rule),
                                      reason: "withdrawn before delivery after a registry change: \(reason)", recordedAt: date)))
                break
            }
            // The stored envelope bytes go out as they are: no decoding on the hot path (the proof
            // is decoded only for a copy under a partial restriction, to leave disclosures out).
            let frame = FrameBytes.deliver(sequence: delivery.sequence, envelope: delivery.envelope, payload: delivery.payload,
                                           redactedPaths: delivery.redactedPaths,
                                           proof: BrokerFrames.proof(delivery.proof, withholding: delivery.redactedPaths))
            items.append(.send(sequence: delivery.sequence, frame: frame))
        }
    }
}
