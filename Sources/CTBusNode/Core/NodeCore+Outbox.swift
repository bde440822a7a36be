import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Logging
import SwiftProtobuf

/// The outbox (PROTOCOL.md 5.3: kept and resent until PublishAck), revocations (5.5) and the
/// journaling of a read batch before its DeliveryAck (6.1).
extension NodeCore {
    /// The Publish frame of an outbox entry: its signed bytes and proof as stored.
    static func publishFrame(_ item: OutboxItem) -> [UInt8] {
        FrameBytes.publish(signedEnvelope: item.envelope, payload: item.payload, proof: item.proof)
    }

    /// Sends what was queued since the last check, oldest first, and what the broker has not
    /// acknowledged for `resendAfter` (a safety net: within a session ZeroMQ loses nothing, and a
    /// new session resends the whole outbox from the oldest entry).
    mutating func outboxRead(_ result: Result<(resend: [OutboxItem], fresh: [OutboxItem]), StoreError>, at now: Moment,
                             _ step: inout Step) {
        let items: (resend: [OutboxItem], fresh: [OutboxItem])
        switch result {
        case .success(let read): items = read
        case .failure(let error):
            step.log(.error, "could not read the outbox", ["error": "\(error)"], throttle: "outbox-read-failed")
            return
        }
        for item in items.resend where item.seq <= window.sentThrough {
            guard let last = window.lastSent(item.messageId), now.instant - last >= settings.resendAfter else { continue }
            step.effects.append(.send(Self.publishFrame(item), .publish(messageId: item.messageId, seq: item.seq, previous: last, first: false)))
            window.resent(item.messageId, at: now.instant)
        }
        for item in items.fresh {
            let first = window.sent(item.messageId, seq: item.seq, at: now.instant)
            step.effects.append(.send(Self.publishFrame(item), .publish(messageId: item.messageId, seq: item.seq, previous: nil, first: first)))
        }
        // A full read means more waits: the next tick goes on at once (unless a send fails).
        outboxDue = items.fresh.count == settings.outboxBatch
    }

    /// Sends the revocations not confirmed yet: all of them in a new session, else those sent
    /// longer than `resendAfter` ago, never, or not taken by the socket last time.
    mutating func pendingRevocationsRead(_ result: Result<[(revocation: Revocation, lastSentAt: Date?)], StoreError>, all: Bool,
                                         at now: Moment, _ step: inout Step) {
        let pending: [(revocation: Revocation, lastSentAt: Date?)]
        switch result {
        case .success(let read): pending = read
        case .failure(let error):
            step.log(.error, "could not read the pending revocations", ["error": "\(error)"], throttle: "revocations-read-failed")
            return
        }
        let resendAfter = Double(settings.resendAfter.components.seconds) + Double(settings.resendAfter.components.attoseconds) / 1e18
        var sent: [String] = []
        for (revocation, lastSentAt) in pending {
            let id = revocation.messageID
            let due = all || unsentRevocations.contains(id) || lastSentAt.map { now.date.timeIntervalSince($0) >= resendAfter } ?? true
            guard due else { continue }
            unsentRevocations.remove(id)
            step.send(.revoke(revocation.frame), .revoke(messageId: id))
            sent.append(id)
        }
        if !sent.isEmpty { step.effects.append(.revocationsSent(sent, at: now.date)) }
    }

    /// A read batch journaled (or not): PublishAcks end their publications' resends; the
    /// DeliveryAck goes only when the deliveries are in the journal, else a new session brings
    /// them again.
    mutating func journaled(_ batch: Batch, _ result: JournalResult, at now: Moment, _ step: inout Step) {
        switch result.acknowledgements {
        case .success:
            for (messageId, _) in batch.publishAcks {
                if let first = window.acknowledged(messageId) { step.effects.append(.publishAcknowledged(after: now.instant - first)) }
            }
            if !batch.publishAcks.isEmpty {
                storeFailure.succeeded() // the broker stores again
                step.log(.debug, "publications acknowledged", ["count": "\(batch.publishAcks.count)"])
            }
        case .failure(let error):
            // Kept in the outbox: resent later, and acknowledged again (the broker's answer is idempotent).
            step.log(.error, "could not record acknowledgements", ["error": "\(error)"], throttle: "acknowledgements-failed")
        }
        guard let through = batch.through else { return }
        switch result.deliveries {
        case .success(let fresh):
            step.effects.append(.journaled(fresh: fresh))
            var ack = DeliveryAck()
            ack.throughSequence = through
            step.send(.deliveryAck(ack), .deliveryAck)
        case .failure(let error):
            // Not journaled: acknowledge nothing; a new session sends it all again.
            step.log(.error, "could not journal deliveries", ["error": "\(error)", "count": "\(batch.deliveries.count)"],
                     throttle: "journal-failed")
            setWelcomed(false, at: now, &step)
            lastHello = nil // Hello at once (4.1)
        }
    }
}
