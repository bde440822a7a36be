import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Logging
import SwiftProtobuf
import Synchronization

/// The registry in force, shared by the loop (which replaces it) and the ZAP handler (which
/// reads it at each handshake), and the reloads asked of the loop.
final class SharedRegistry: Sendable {
    private let registry: Mutex<NodeRegistry>
    private let requests = Mutex<[ReloadRequest]>([])

    init(_ registry: NodeRegistry) { self.registry = Mutex(registry) }

    var current: NodeRegistry { registry.withLock { $0 } }

    fileprivate func replace(with new: NodeRegistry) { registry.withLock { $0 = new } }

    func ask(_ request: ReloadRequest) { requests.withLock { $0.append(request) } }

    fileprivate func next() -> ReloadRequest? {
        requests.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
}

/// A validated registry handed to the loop, and the loop's answer.
final class ReloadRequest: Sendable {
    let registry: NodeRegistry
    let source: String
    /// Where it came from, for the audit: "registry.json, sha256 3f2a…".
    let origin: String?
    private let result = Mutex<Result<[RegistryChange], StoreError>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(registry: NodeRegistry, source: String, origin: String?) {
        self.registry = registry
        self.source = source
        self.origin = origin
    }

    fileprivate func finish(_ outcome: Result<[RegistryChange], StoreError>) {
        result.withLock { $0 = outcome }
        done.signal()
    }

    /// The loop's answer, or nil when it did not come within `seconds`.
    func wait(seconds: Double) -> Result<[RegistryChange], StoreError>? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return result.withLock { $0 }
    }
}

extension BrokerLoop {
    /// What judging a queued delivery again came to.
    enum Judgement {
        case deliver
        /// Withdrawn from the queue and audited: skip it.
        case withdrawn
        /// The store could not record the withdrawal: send nothing more now.
        case failed
    }

    /// Records the registry in force at start when it differs from the one last applied (the
    /// changes made while the broker was stopped), so the audit holds every registry in force, and
    /// marks for judging again what is queued for nodes whose entitlement changed meanwhile. Then
    /// reads the marks (a restart keeps those of earlier reloads).
    func recordRegistryAtStart() {
        do {
            let previous = try store.lastAppliedRegistry().flatMap { try? NodeRegistry(json: $0) }
            var changes = registry.changes(from: previous ?? NodeRegistry())
            // Nodes with a queue that neither registry holds (removed before the registry audit
            // existed): recorded as removed now, so their grace period starts.
            let known = Set(registry.entries.map(\.profile.id)).union(previous?.entries.map(\.profile.id) ?? [])
                .union(try store.nodesRecordedRemoved()) // removed by an earlier reload: its grace runs already
            for node in try store.nodesWithQueue().subtracting(known).sorted() {
                changes.append(RegistryChange(nodeId: node, kind: .removed, details: ["has a queue but is not in the registry"]))
            }
            if previous == nil || !changes.isEmpty {
                try store.recordRegistry(source: "start", outcome: .applied, detail: Self.summary(registry, changes),
                                         registry: try registry.json(), changes: changes.map(Self.auditLine),
                                         rejudge: Self.rejudged(changes))
            }
            rejudgeThrough.merge(try store.rejudgeMarks()) { max($0, $1) }
        } catch {
            logger.error("could not record the registry in the store's registry audit", metadata: ["error": "\(error)"])
            // Without the marks, judge everything queued once: never less than the policy asks.
            rejudgeThrough = Dictionary(uniqueKeysWithValues: registry.entries.map { ($0.profile.id, UInt64.max) })
        }
    }

    /// The nodes whose queued deliveries `changes` require to be judged again.
    private static func rejudged(_ changes: [RegistryChange]) -> [String] {
        changes.filter { $0.kind != .removed && $0.changesEntitlement }.map(\.nodeId)
    }

    /// Applies a registry a reload asked for, if one waits: recorded in the audit first (a
    /// reload the store cannot record is not applied), then in force for the next frame.
    func applyPendingReload() {
        guard let request = sharedRegistry.next() else { return }
        let new = request.registry
        let changes = new.changes(from: registry)
        do {
            if changes.isEmpty {
                try store.recordRegistry(source: request.source, outcome: .unchanged,
                                         detail: "no change (\(new.entries.count) nodes)" + (request.origin.map { "; \($0)" } ?? ""),
                                         registry: nil, changes: [])
            } else {
                try store.recordRegistry(source: request.source, outcome: .applied,
                                         detail: Self.summary(new, changes) + (request.origin.map { "; \($0)" } ?? ""),
                                         registry: try new.json(), changes: changes.map(Self.auditLine), rejudge: Self.rejudged(changes))
            }
        } catch let error as StoreError {
            metrics.reload("refused")
            logger.error("registry reload not applied: the store could not record it", metadata: ["error": "\(error)"])
            request.finish(.failure(error))
            return
        } catch {
            metrics.reload("refused")
            request.finish(.failure(StoreError(.unavailable, "\(error)")))
            return
        }
        metrics.reload(changes.isEmpty ? "unchanged" : "applied")
        registry = new
        sharedRegistry.replace(with: new)
        do {
            // Merged, not replaced: a fail-safe mark set in memory (the store could not be read) stays.
            rejudgeThrough.merge(try store.rejudgeMarks()) { max($0, $1) }
        } catch {
            for node in Self.rejudged(changes) { rejudgeThrough[node] = .max } // judge all of it: never less
        }
        metrics.addNodes(new.entries.map(\.profile.id))
        for change in changes {
            logger.notice("registry: \(change.kind.rawValue) node", metadata: ["node": "\(change.nodeId)", "detail": "\(change.details.joined(separator: "; "))",
                                                                              "source": "\(request.source)"])
        }
        // Sessions whose node or key left the registry end now; every later frame on their
        // connection is refused (`handle` looks the key up again).
        for (nodeId, session) in sessions {
            guard let entry = new.entry(id: nodeId) else {
                endSession(nodeId, because: "node \(nodeId) was removed from the broker's registry")
                continue
            }
            if !entry.publicKeys.contains(session.publicKey) {
                endSession(nodeId, because: "the key this connection uses is no longer registered for node \(nodeId)")
            }
        }
        // What is queued for a node whose entitlement changed was decided under its old entry: the
        // marks recorded with the audit (read above) have it judged again before it goes out.
        request.finish(.success(changes))
    }

    /// Judges a queued delivery again under the registry in force: one the node is no longer
    /// entitled to leaves the queue, and its audit says by which rule.
    func judgeAgain(_ delivery: QueuedDelivery, for nodeId: String) -> Judgement {
        guard delivery.revocationReason == nil else { return .deliver } // tells of a message it holds
        let decision: RecipientDecision
        if let profile = registry.entry(id: nodeId)?.profile, let envelope = try? Envelope(serializedBytes: delivery.envelope) {
            decision = ConfidentialityPolicy.decide(envelope, originator: delivery.originator, for: profile)
        } else {
            decision = .refuse(.releasability, reason: "the node or the stored envelope cannot be read")
        }
        let rule: PolicyRule
        let reason: String
        switch decision {
        case .deliver(let paths) where Set(paths).isSubset(of: delivery.redactedPaths):
            return .deliver // the queued copy withholds at least what the policy asks now
        case .deliver(let paths):
            rule = .memberStateRestriction
            reason = "the policy now withholds \(paths.joined(separator: ", ")), which the queued copy holds"
        case .refuse(let refusedBy, let why):
            rule = refusedBy
            reason = why
        }
        do {
            try store.discard(nodeId: nodeId, sequence: delivery.sequence, messageId: delivery.messageId,
                              audit: AuditEntry(nodeId: nodeId, outcome: .refused, rule: rule.rawValue,
                                                reason: "withdrawn before delivery after a registry change: \(reason)"))
        } catch {
            throttled.log("withdraw-failed:\(nodeId)", .error, "could not withdraw a queued delivery; nothing more is sent to the node for now",
                          metadata: ["node": "\(nodeId)", "error": "\(error)"])
            return .failed
        }
        metrics.refused(node: nodeId, rule: rule.rawValue)
        logger.notice("queued delivery withdrawn after a registry change", metadata: [
            "node": "\(nodeId)", "message-id": "\(delivery.messageId)", "rule": "\(rule.rawValue)",
        ])
        return .withdrawn
    }

    /// The node acknowledged past its mark: everything judged again has gone (or been withdrawn).
    func clearRejudge(_ nodeId: String, through: UInt64) {
        do {
            try store.clearRejudge(nodeId: nodeId, through: through)
            rejudgeThrough[nodeId] = nil
        } catch {
            // Kept: judging again what is already allowed costs a little, and is tried again later.
            throttled.log("rejudge-mark:\(nodeId)", .warning, "could not clear a re-judge mark", metadata: ["node": "\(nodeId)", "error": "\(error)"])
        }
    }

    private func endSession(_ nodeId: String, because reason: String) {
        guard let session = forgetSession(nodeId, .ended) else { return }
        send(error: BusError(.notAuthenticated, reason), to: session.routingId)
        logger.notice("session ended by a registry change", metadata: ["node": "\(nodeId)", "reason": "\(reason)"])
    }

    private static func summary(_ registry: NodeRegistry, _ changes: [RegistryChange]) -> String {
        let counts = [RegistryChange.Kind.added, .removed, .changed].compactMap { kind -> String? in
            let count = changes.filter { $0.kind == kind }.count
            return count == 0 ? nil : "\(count) \(kind.rawValue)"
        }
        return "\(registry.entries.count) nodes" + (counts.isEmpty ? "" : "; " + counts.joined(separator: ", "))
    }

    private static func auditLine(_ change: RegistryChange) -> (nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String) {
        let outcome: RegistryAuditEntry.Outcome = switch change.kind {
        case .added: .added
        case .removed: .removed
        case .changed: .changed
        }
        return (change.nodeId, outcome, change.details.joined(separator: "; "))
    }
}
