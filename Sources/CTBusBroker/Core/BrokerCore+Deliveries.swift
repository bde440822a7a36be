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
        guard let session = sessions[nodeId] else { return }
        let room = limits.deliveryWindow - session.inFlight.count
        guard room > 0 else { return }
        awaiting = .queue(node: nodeId, after: session.sentThrough)
        step.request = .readQueue(node: nodeId, after: session.sentThrough, limit: room)
    }

    /// Sends what a queue read brought, in sequence order. An expired message leaves the queue
    /// unsent; one the node is no longer entitled to (judged again after a registry change) is
    /// withdrawn, and nothing after it goes until the store has recorded the withdrawal.
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
        var removals: [Removal] = []
        for delivery in batch {
            if delivery.revocationReason != nil {
                deliver(Self.revocationFrame(delivery), sequence: delivery.sequence, to: nodeId, &step)
                continue
            }
            if let expiry = delivery.expiresAt, expiry <= now.date {
                // Expired while queued: not delivered any more, and it leaves the queue.
                removals.append(Removal(sequence: delivery.sequence, messageId: delivery.messageId, why: .expired,
                                        audit: AuditEntry(nodeId: nodeId, outcome: .refused, rule: .policy(.expired),
                                                          reason: "expired before the node came to take it", recordedAt: now.date)))
                sessions[nodeId]?.sentThrough = delivery.sequence
                continue
            }
            if let mark = rejudgeThrough[nodeId], delivery.sequence <= mark,
               let (rule, reason) = Self.withdrawal(delivery, for: registry.entry(id: nodeId)?.profile, at: now.date) {
                removals.append(Removal(sequence: delivery.sequence, messageId: delivery.messageId, why: .withdrawn(rule),
                                        audit: AuditEntry(nodeId: nodeId, outcome: .refused, rule: .policy(rule),
                                                          reason: "withdrawn before delivery after a registry change: \(reason)",
                                                          recordedAt: now.date)))
                break
            }
            // The stored envelope bytes go out as they are: no decoding on the hot path (the proof
            // is decoded only for a copy under a partial restriction, to leave disclosures out).
            let frame = FrameBytes.deliver(sequence: delivery.sequence, envelope: delivery.envelope, payload: delivery.payload,
                                           redactedPaths: delivery.redactedPaths,
                                           proof: Self.proof(delivery.proof, withholding: delivery.redactedPaths))
            deliver(frame, sequence: delivery.sequence, to: nodeId, &step)
        }
        guard !removals.isEmpty else { return }
        awaiting = .discard(node: nodeId, removals)
        step.request = .discard(node: nodeId, removals)
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
                sessions[nodeId]?.sentThrough = removal.sequence
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
        // Changed in place: a copy of the session would copy its in-flight list at every delivery.
        guard let index = sessions.index(forKey: nodeId) else { return }
        sessions.values[index].sentThrough = sequence
        sessions.values[index].inFlight.append(sequence)
        let session = sessions.values[index]
        step.effects.append(.deliver(frame, to: session.connection, node: nodeId, sequence: sequence, inFlight: session.inFlight.count))
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
