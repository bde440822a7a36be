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

    func replace(with new: NodeRegistry) { registry.withLock { $0 = new } }

    func ask(_ request: ReloadRequest) { requests.withLock { $0.append(request) } }

    func next() -> ReloadRequest? {
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

    func finish(_ outcome: Result<[RegistryChange], StoreError>) {
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
    /// Records the registry in force at start when it differs from the one last applied (the
    /// changes made while the broker was stopped), so the audit holds every registry in force, and
    /// returns the marks of what is to be judged again (a restart keeps those of earlier reloads).
    static func recordRegistryAtStart(_ registry: NodeRegistry, store: any BrokerStorage, logger: Logger) -> [String: UInt64] {
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
                try store.recordRegistry(source: "start", outcome: .applied, detail: BrokerDecisions.summary(registry, changes),
                                         registry: try registry.json(), changes: changes.map(BrokerDecisions.auditLine),
                                         rejudge: BrokerDecisions.rejudged(changes))
            }
            return try store.rejudgeMarks()
        } catch {
            logger.error("could not record the registry in the store's registry audit", metadata: ["error": "\(error)"])
            // Without the marks, judge everything queued once: never less than the policy asks.
            return Dictionary(uniqueKeysWithValues: registry.entries.map { ($0.profile.id, UInt64.max) })
        }
    }
}
