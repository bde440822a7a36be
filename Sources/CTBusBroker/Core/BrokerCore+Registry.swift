import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Logging
import SwiftProtobuf

/// Registry reloads (PROTOCOL.md 4.5) and the one translation of the policy's decisions into
/// recipients, audit lines and withdrawals (section 7), for publications, backlogs and
/// deliveries judged again.
extension BrokerCore {
    /// A reload asks to put `new` in force: recorded in the registry audit first (a reload the
    /// store cannot record is not applied), then in force for the next frame.
    mutating func reload(_ new: NodeRegistry, source: String, origin: String?, at now: Moment) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a reload while a store operation is in hand")
        var step = Step()
        let changes = new.changes(from: registry)
        let origin = origin.map { "; \($0)" } ?? ""
        let record: RegistryRecord
        if changes.isEmpty {
            record = RegistryRecord(source: source, outcome: .unchanged, detail: "no change (\(new.entries.count) nodes)" + origin,
                                    registry: nil, changes: [], rejudge: [], at: now.date)
        } else {
            do {
                record = RegistryRecord(source: source, outcome: .applied, detail: Self.summary(new, changes) + origin,
                                        registry: try new.json(), changes: changes.map(Self.auditLine),
                                        rejudge: Self.rejudged(changes), at: now.date)
            } catch {
                step.count(.reload("refused"))
                step.effects.append(.reloadFinished(.failure(StoreError(.unavailable, "\(error)"))))
                return step
            }
        }
        awaiting = .registry(RegistryReload(registry: new, source: source, changes: changes))
        step.request = .recordRegistry(record)
        return step
    }

    mutating func registryRecorded(_ reload: RegistryReload, _ result: Result<Void, StoreError>, at now: Moment, _ step: inout Step) {
        if case .failure(let error) = result {
            step.count(.reload("refused"))
            step.log(.error, "registry reload not applied: the store could not record it", ["error": "\(error)"])
            step.effects.append(.reloadFinished(.failure(error)))
            return
        }
        step.count(.reload(reload.changes.isEmpty ? "unchanged" : "applied"))
        registry = reload.registry
        step.effects.append(.registryInForce(reload.registry))
        for change in reload.changes {
            step.log(.notice, "registry: \(change.kind.rawValue) node", [
                "node": "\(change.nodeId)", "detail": "\(change.details.joined(separator: "; "))", "source": "\(reload.source)",
            ])
        }
        // Sessions whose node or key left the registry end now; every later frame on their
        // connection is refused (each frame's key is looked up in the registry in force).
        for (nodeId, session) in sessions.sorted(by: { $0.key < $1.key }) {
            if let entry = reload.registry.entry(id: nodeId) {
                if !entry.publicKeys.contains(session.publicKey) {
                    endSession(nodeId, because: "the key this connection uses is no longer registered for node \(nodeId)", at: now, &step)
                }
            } else {
                endSession(nodeId, because: "node \(nodeId) was removed from the broker's registry", at: now, &step)
            }
        }
        // What is queued for a node whose entitlement changed was decided under its old entry:
        // the marks recorded with the audit have it judged again before it goes out.
        awaiting = .rejudgeMarks(reload.changes)
        step.request = .readRejudgeMarks
    }

    mutating func rejudgeMarksRead(_ changes: [RegistryChange], _ result: Result<[String: UInt64], StoreError>, _ step: inout Step) {
        switch result {
        case .success(let marks):
            // Merged, not replaced: a fail-safe mark set in memory (the store could not be read) stays.
            rejudgeThrough.merge(marks) { max($0, $1) }
        case .failure:
            for node in Self.rejudged(changes) { rejudgeThrough[node] = .max } // judge all of it: never less
        }
        step.effects.append(.reloadFinished(.success(changes)))
    }

    private mutating func endSession(_ nodeId: String, because reason: String, at now: Moment, _ step: inout Step) {
        guard let session = forgetSession(nodeId, .ended, at: now, &step) else { return }
        step.send(error: BusError(.notAuthenticated, reason), to: session.connection)
        step.log(.notice, "session ended by a registry change", ["node": "\(nodeId)", "reason": "\(reason)"])
    }

    /// The node acknowledged past its mark: everything judged again has gone (or been withdrawn).
    mutating func rejudgeCleared(_ nodeId: String, through: UInt64, _ result: Result<Void, StoreError>, _ step: inout Step) {
        switch result {
        case .success:
            if let mark = rejudgeThrough[nodeId], mark <= through { rejudgeThrough[nodeId] = nil }
        case .failure(let error):
            // Kept: judging again what is already allowed costs a little, and is tried again later.
            step.log(.warning, "could not clear a re-judge mark", ["node": "\(nodeId)", "error": "\(error)"], throttle: "rejudge-mark:\(nodeId)")
        }
    }

    // MARK: Decisions into recipients and audit lines

    /// Every node's decision for a publication: the recipients with what each copy withholds,
    /// and one audit line per node.
    static func recipients(of decisions: [(node: NodeProfile, decision: RecipientDecision)],
                           at date: Date) -> ([Publication.Recipient], [AuditEntry]) {
        var recipients: [Publication.Recipient] = []
        var audit: [AuditEntry] = []
        for (node, decision) in decisions {
            switch decision {
            case .deliver(let paths) where paths.isEmpty:
                recipients.append(Publication.Recipient(nodeId: node.id))
                audit.append(AuditEntry(nodeId: node.id, outcome: .delivered, rule: nil, reason: "entitled", recordedAt: date))
            case .deliver(let paths):
                recipients.append(Publication.Recipient(nodeId: node.id, redactedPaths: paths))
                audit.append(AuditEntry(nodeId: node.id, outcome: .redacted, rule: .policy(.memberStateRestriction),
                                        reason: "removed \(paths.joined(separator: ", "))", recordedAt: date))
            case .refuse(let rule, let reason):
                audit.append(AuditEntry(nodeId: node.id, outcome: .refused, rule: .policy(rule), reason: reason, recordedAt: date))
            }
        }
        return (recipients, audit)
    }

    /// Whether a stored message belongs in a late joiner's backlog (6.2), and its copy: granted
    /// by the policy now and, when sealed, sealed to the node when it was published (a node it
    /// was not sealed to could never open it).
    static func backlogRecipient(envelope bytes: Data, payload: Data, for node: NodeProfile, at date: Date) -> Publication.Recipient? {
        guard let envelope = try? Envelope(serializedBytes: bytes),
              case .deliver(let paths) = ConfidentialityPolicy.decide(envelope, originator: envelope.originator, for: node, at: date)
        else { return nil }
        if envelope.handling.sealed {
            guard let content = try? SealedContent(serializedBytes: payload),
                  content.payload.keys.contains(where: { $0.nodeID == node.id }) else { return nil }
        }
        return Publication.Recipient(nodeId: node.id, redactedPaths: paths)
    }

    /// Why a queued delivery must be withdrawn under the registry in force, or nil when it may
    /// go: the node is no longer entitled to it, or its copy holds a field the policy now withholds.
    static func withdrawal(_ delivery: QueuedDelivery, for profile: NodeProfile?, at date: Date) -> (PolicyRule, String)? {
        guard delivery.revocationReason == nil else { return nil } // tells of a message the node holds
        guard let profile, let envelope = try? Envelope(serializedBytes: delivery.envelope) else {
            return (.releasability, "the node or the stored envelope cannot be read")
        }
        switch ConfidentialityPolicy.decide(envelope, originator: delivery.originator, for: profile, at: date) {
        case .deliver(let paths) where Set(paths).isSubset(of: delivery.redactedPaths):
            return nil // the queued copy withholds at least what the policy asks now
        case .deliver(let paths):
            return (.memberStateRestriction, "the policy now withholds \(paths.joined(separator: ", ")), which the queued copy holds")
        case .refuse(let rule, let reason):
            return (rule, reason)
        }
    }

    // MARK: Registry audit lines

    /// The nodes whose queued deliveries `changes` require to be judged again.
    static func rejudged(_ changes: [RegistryChange]) -> [String] {
        changes.filter { $0.kind != .removed && $0.changesEntitlement }.map(\.nodeId)
    }

    static func summary(_ registry: NodeRegistry, _ changes: [RegistryChange]) -> String {
        let counts = [RegistryChange.Kind.added, .removed, .changed].compactMap { kind -> String? in
            let count = changes.filter { $0.kind == kind }.count
            return count == 0 ? nil : "\(count) \(kind.rawValue)"
        }
        return "\(registry.entries.count) nodes" + (counts.isEmpty ? "" : "; " + counts.joined(separator: ", "))
    }

    static func auditLine(_ change: RegistryChange) -> (nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String) {
        let outcome: RegistryAuditEntry.Outcome = switch change.kind {
        case .added: .added
        case .removed: .removed
        case .changed: .changed
        }
        return (change.nodeId, outcome, change.details.joined(separator: "; "))
    }
}
