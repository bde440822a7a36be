import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Logging
import SwiftProtobuf

/// Deliveries (PROTOCOL.md 6.1, 6.3): queue reads within the credit, expiry, judging again
/// after a registry change, and the Deliver frames.
extension BrokerCore {
    /// Asks for the node's next queued deliveries, as many as its credit allows.
    mutating func pump(_ nodeId: String, _ step: inout Step) {
        guard let (after, limit) = sessions.room(for: nodeId, window: limits.deliveryWindow) else { return }
        awaiting = .queue(node: nodeId, after: after)
        step.request = .readQueue(node: nodeId, after: after, limit: limit)
    }

    /// Sends what a queue read brought as its `DeliveryPlan` says, then asks the store to remove
    /// what leaves the queue unsent.
    mutating func queueRead(_ nodeId: String, after: UInt64, _ result: Result<[QueuedDelivery], StoreError>, at now: Moment,
                            _ step: inout Step) {
        let batch: [QueuedDelivery]
        switch result {
        case .success(let read): batch = read
        case .failure(let error):
            step.log(.error, "could not read a delivery queue", ["node": "\(nodeId)", "error": "\(error)"], throttle: "queue-read-failed:\(nodeId)")
            return
        }
        // The session may have ended (its connection gone) since the read was asked for.
        guard sessions[nodeId]?.sentThrough == after else { return }
        let plan = DeliveryPlan(batch, for: nodeId, rejudgeThrough: rejudgeThrough[nodeId],
                                profile: registry.entry(id: nodeId)?.profile, at: now.date)
        for item in plan.items {
            switch item {
            case .send(let sequence, let frame): deliver(frame, sequence: sequence, to: nodeId, &step)
            case .skip(let sequence): sessions.skipped(through: sequence, for: nodeId)
            }
        }
        guard !plan.removals.isEmpty else { return }
        awaiting = .discard(node: nodeId, plan.removals)
        step.request = .discard(node: nodeId, plan.removals)
    }

    /// What the store made of the removals. An expired delivery stays skipped even when its
    /// removal failed (the next session's read finds it expired again); a withdrawal that failed
    /// stops the node's deliveries for now. Otherwise the queue is read again from past them:
    /// skipped entries use no credit, so what follows them goes now, not at the next trigger.
    mutating func discarded(_ nodeId: String, _ removals: [Removal], _ results: [Result<Void, StoreError>], _ step: inout Step) {
        var goOn = false
        for (removal, result) in zip(removals, results) {
            switch (removal.why, result) {
            case (.expired, .failure(let error)):
                step.log(.error, "could not discard an expired delivery", ["node": "\(nodeId)", "error": "\(error)"], throttle: "discard-failed:\(nodeId)")
                goOn = true
            case (.expired, .success):
                goOn = true
            case (.withdrawn, .failure(let error)):
                step.log(.error, "could not withdraw a queued delivery; nothing more is sent to the node for now",
                         ["node": "\(nodeId)", "error": "\(error)"], throttle: "withdraw-failed:\(nodeId)")
                goOn = false // always the last removal: nothing after it was read
            case (.withdrawn(let rule), .success):
                sessions.skipped(through: removal.sequence, for: nodeId)
                step.count(.policyRefusal(node: nodeId, rule: rule))
                step.log(.notice, "queued delivery withdrawn after a registry change",
                         ["node": "\(nodeId)", "message-id": "\(removal.messageId)", "rule": "\(rule.rawValue)"])
                goOn = true
            }
        }
        if goOn { agenda.insert(.pump(nodeId), at: 0) }
    }

    /// Sends one Deliver frame and counts it against the node's credit.
    mutating func deliver(_ frame: [UInt8], sequence: UInt64, to nodeId: String, _ step: inout Step) {
        guard let (connection, inFlight) = sessions.sent(sequence, to: nodeId) else { return }
        step.effects.append(.deliver(frame, to: connection, node: nodeId, sequence: sequence, inFlight: inFlight))
    }
}
