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
        let record: RegistryRecord
        do {
            record = try BrokerDecisions.registryRecord(new, changes: changes, source: source, origin: origin, at: now.date)
        } catch {
            step.count(.reload("refused"))
            step.effects.append(.reloadFinished(.failure(StoreError(.unavailable, "\(error)"))))
            return step
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
        for nodeId in sessions.nodes {
            guard let session = sessions[nodeId] else { continue }
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
            for node in BrokerDecisions.rejudged(changes) { rejudgeThrough[node] = .max } // judge all of it: never less
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
}
