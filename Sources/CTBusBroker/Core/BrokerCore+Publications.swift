import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf

/// Publications (PROTOCOL.md 5.2, 5.3) and revocations (5.5).
extension BrokerCore {
    /// Checks a batch's publications (5.2) side by side on the machine's cores, each batch root
    /// verified once (`RootOrderedChecks`), in the batch's order. What each comes to depends only
    /// on the publication, the registry and the time, not on the order the cores took them.
    func admit(_ batch: [PendingPublish], at now: Moment) -> [Result<Publication, BusError>] {
        let (registry, roots, maxMessageBytes) = (registry, batchRoots, limits.maxMessageBytes)
        let admit = { @Sendable (pending: PendingPublish) in
            Result { () throws(BusError) in
                try BrokerDecisions.publication(pending.publish, size: pending.frame.count, from: pending.nodeId, registry: registry,
                                                roots: roots, maxMessageBytes: maxMessageBytes, at: now.date)
            }
        }
        guard batch.count > 1 else { return batch.map(admit) }
        return RootOrderedChecks.run(count: batch.count, include: { _ in true },
                                     root: { batch[$0].publish.proof.rootName },
                                     failed: { if case .failure = $0 { true } else { false } },
                                     check: { admit(batch[$0]) }).map { $0! } // every publication is included
    }

    /// Takes one publication of the batch with what `admit` found, or answers it with the error
    /// and returns nil.
    mutating func admitOrRefuse(_ pending: PendingPublish, _ admission: Result<Publication, BusError>, at now: Moment,
                                _ step: inout Step) -> (PendingPublish, Publication)? {
        if sessions[pending.nodeId]?.held == true {
            step.count(.refused(.internal))
            step.send(error: BusError(.internal, "an earlier publication of this session could not be stored; say Hello, then resend from the oldest",
                                      messageId: Admission.messageId(of: pending.publish)), to: pending.connection)
            return nil
        }
        do throws(BusError) {
            return (pending, try admission.get())
        } catch {
            var error = error
            if error.messageId == nil, error.frameSHA256 == nil {
                error = BusError(error.code, error.detail, frameSHA256: Data(SHA256.hash(data: pending.frame)))
            }
            step.count(.refused(error.code))
            step.log(.notice, "publication refused", [
                "node": "\(pending.nodeId)", "message-id": "\(error.messageId ?? "-")", "code": "\(error.codeName)",
            ], throttle: "refused:\(pending.nodeId):\(error.codeName)")
            step.send(error: error, to: pending.connection)
            return nil
        }
    }

    /// The store's answer to a batch of publications: PublishAck each stored one (only now that
    /// the transaction committed), send fresh deliveries straight from memory, then the rest.
    mutating func stored(_ accepted: [(PendingPublish, Publication)], acknowledged: [String: UInt64],
                         _ result: Result<[StoreOutcome], StoreError>, at now: Moment, _ step: inout Step) {
        let outcomes: [StoreOutcome]
        switch result {
        case .success(let stored):
            outcomes = stored
            acknowledgements.written(acknowledged)
        case .failure(let error):
            storeFailed(accepted, error, &step)
            scheduleAfterBatch(behind: [])
            return
        }
        var behind = Set<String>()
        for ((pending, publication), outcome) in zip(accepted, outcomes) {
            switch outcome {
            case .stored(let sequences):
                step.send(.publishAck(BrokerFrames.publishAck(publication, recipients: publication.recipients.count)), to: pending.connection)
                step.count(.accepted)
                for entry in publication.audit where entry.outcome == .refused {
                    if case .policy(let rule)? = entry.rule { step.count(.policyRefusal(node: entry.nodeId, rule: rule)) }
                }
                step.log(.info, "publication stored", [
                    "node": "\(publication.originator)", "message-id": "\(publication.messageId)",
                    "type": "\(publication.typeName)", "classification": "\(publication.classificationName)",
                    "recipients": "\(publication.recipients.map(\.nodeId).joined(separator: ","))",
                ])
                for (recipient, sequence) in zip(publication.recipients, sequences)
                where !deliverFresh(publication, to: recipient, sequence: sequence, at: now, &step) {
                    behind.insert(recipient.nodeId)
                }
            case .alreadyStored(let count):
                // As first stored, whatever the policy says today.
                step.send(.publishAck(BrokerFrames.publishAck(publication, recipients: count)), to: pending.connection)
            case .conflict:
                step.count(.refused(.conflictingDuplicate))
                // A client bug or an attack: the operator must see it (never the body).
                step.log(.warning, "a different message under a stored id was refused", [
                    "node": "\(pending.nodeId)", "message-id": "\(publication.messageId)", "rule": "conflicting-duplicate",
                ], throttle: "conflict:\(pending.nodeId)")
                step.send(error: BusError(.conflictingDuplicate, "message id already used by a different message",
                                          messageId: publication.messageId), to: pending.connection)
            }
        }
        scheduleAfterBatch(behind: behind)
    }

    /// Nothing of the batch is stored: every publication is answered INTERNAL and its session is
    /// held, not ended. The publisher backs off, says Hello and resends its outbox from the oldest
    /// entry, so a later publication can never be stored before this one; deliveries go on.
    private mutating func storeFailed(_ accepted: [(PendingPublish, Publication)], _ error: StoreError, _ step: inout Step) {
        for _ in accepted { step.count(.refused(.internal)) }
        step.log(.error, "store failed; publications not accepted", ["error": "\(error)", "count": "\(accepted.count)"], throttle: "store-failed")
        for (pending, publication) in accepted {
            step.send(error: BusError(.internal, "the broker could not store the publication; retry later", messageId: publication.messageId),
                      to: pending.connection)
            sessions.hold(pending.nodeId)
        }
    }

    /// After a batch's publications: queue reads for the nodes that could not be served from
    /// memory or whose credit acknowledgements freed, then the batch's revocations.
    mutating func scheduleAfterBatch(behind: Set<String>) {
        let nodes = behind.union(freed).filter { sessions[$0] != nil }
        freed = []
        agenda.append(contentsOf: nodes.sorted().map(Work.pump))
        agenda.append(contentsOf: revokes.map(Work.revoke))
        revokes = []
    }

    /// Sends a delivery just stored straight from memory when it is next in line for a
    /// connected node with credit left. Otherwise (returns false) a queue read sends it.
    private mutating func deliverFresh(_ publication: Publication, to recipient: Publication.Recipient, sequence: UInt64,
                                       at now: Moment, _ step: inout Step) -> Bool {
        guard sessions.isNext(sequence, for: recipient.nodeId, window: limits.deliveryWindow),
              publication.expiresAt.map({ $0 > now.date }) ?? true else { return false }
        let frame = FrameBytes.deliver(sequence: sequence, envelope: publication.envelope, payload: publication.payload,
                                       redactedPaths: recipient.redactedPaths,
                                       proof: BrokerFrames.proof(publication.proof, withholding: recipient.redactedPaths))
        deliver(frame, sequence: sequence, to: recipient.nodeId, &step)
        return true
    }

    // MARK: Revocations

    /// Checks a revocation's signature with the originator's key, then asks the store to revoke.
    mutating func revoke(_ pending: PendingRevoke, at now: Moment, _ step: inout Step) {
        let id = pending.revoke.messageID
        let statement = pending.revoke.statement(by: pending.nodeId)
        let encoded: Data
        do {
            try statement.verify(signingKey: registry.signingKey(of:), previousKey: registry.previousSigningKey(of:keyId:))
            encoded = try Canonical.encode(statement)
        } catch {
            let error = error as? BusError ?? BusError(.internal, "could not encode the revocation", messageId: id)
            step.log(.warning, "refused a revocation whose signature does not check out", [
                "node": "\(pending.nodeId)", "message-id": "\(id)", "code": "\(error.codeName)", "detail": "\(error.detail)",
            ], throttle: "revoke-unsigned:\(pending.nodeId)")
            step.send(error: error, to: pending.connection)
            return
        }
        awaiting = .revoke(pending)
        step.request = .revoke(messageId: id, by: pending.nodeId, reason: pending.revoke.reason, statement: encoded)
    }

    mutating func revoked(_ pending: PendingRevoke, _ result: Result<RevokeOutcome, StoreError>, _ step: inout Step) {
        let id = pending.revoke.messageID
        let nodeId = pending.nodeId
        switch result {
        case .failure(let error):
            step.log(.error, "could not store a revocation", ["node": "\(nodeId)", "message-id": "\(id)", "error": "\(error)"],
                     throttle: "revocation-failed")
            step.send(error: BusError(.internal, "the broker could not store the revocation; retry later", messageId: id), to: pending.connection)
        case .success(.revoked), .success(.alreadyRevoked):
            var ack = RevokeAck()
            ack.messageID = id
            if case .success(.revoked(let count)) = result {
                ack.recipientCount = UInt32(count)
                step.log(.info, "message revoked", ["node": "\(nodeId)", "message-id": "\(id)", "recipients": "\(count)"])
            }
            step.send(.revokeAck(ack), to: pending.connection)
            // The revocation notices just queued go out within each node's credit.
            agenda.insert(contentsOf: sessions.nodes.map(Work.pump), at: 0)
        case .success(.notFound):
            step.send(error: BusError(.validationFailed, "revoke.message_id names no message in the broker's store", messageId: id),
                      to: pending.connection)
        case .success(.notOriginator):
            step.log(.warning, "refused a revocation by a node that is not the originator", ["node": "\(nodeId)", "message-id": "\(id)"],
                     throttle: "revoke-refused:\(nodeId)")
            step.send(error: BusError(.notPermitted, "only the originator may revoke a message", messageId: id), to: pending.connection)
        }
    }
}
