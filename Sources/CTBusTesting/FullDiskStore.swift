import CTBusJournal
import Foundation
import Synchronization

/// A broker store whose disk fills up on demand, for fault tests of a running broker: it reads
/// and writes through a real `BrokerStore`, and while `full` is set every write fails the way
/// SQLite fails on a full disk (an unavailable store, nothing written).
public final class FullDiskStore: BrokerStorage {
    public let store: BrokerStore
    private let isFull = Atomic<Bool>(false)

    public init(_ store: BrokerStore) { self.store = store }

    /// Whether writes fail as on a full disk.
    public var full: Bool {
        get { isFull.load(ordering: .acquiring) }
        set { isFull.store(newValue, ordering: .releasing) }
    }

    private func write<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        if full { throw StoreError(.unavailable, "\(store.path): database or disk is full") }
        return try body()
    }

    public var recovery: String? { store.recovery }

    public func store(_ publications: [Publication], acknowledging acknowledgements: [String: UInt64],
                      now: Date) throws(StoreError) -> [StoreOutcome] {
        try write { () throws(StoreError) in try store.store(publications, acknowledging: acknowledgements, now: now) }
    }

    public func acknowledge(_ acknowledgements: [String: UInt64]) throws(StoreError) {
        try write { () throws(StoreError) in try store.acknowledge(acknowledgements) }
    }

    public func pendingDeliveries(for nodeId: String, after sequence: UInt64, limit: Int) throws(StoreError) -> [QueuedDelivery] {
        try store.pendingDeliveries(for: nodeId, after: sequence, limit: limit)
    }

    public func discard(nodeId: String, sequence: UInt64, messageId: String, audit: AuditEntry) throws(StoreError) {
        try write { () throws(StoreError) in try store.discard(nodeId: nodeId, sequence: sequence, messageId: messageId, audit: audit) }
    }

    public func queueBacklog(for nodeId: String,
                             entitle: (_ envelope: Data, _ payload: Data) -> Publication.Recipient?) throws(StoreError) -> Int {
        try write { () throws(StoreError) in try store.queueBacklog(for: nodeId, entitle: entitle) }
    }

    public func revoke(messageId: String, by originator: String, reason: String, revocation: Data,
                       now: Date) throws(StoreError) -> RevokeOutcome {
        try write { () throws(StoreError) in
            try store.revoke(messageId: messageId, by: originator, reason: reason, revocation: revocation, now: now)
        }
    }

    @discardableResult
    public func recordRegistry(source: String, outcome: RegistryAuditEntry.Outcome, detail: String, registry: Data?,
                               changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)],
                               rejudge: [String], now: Date) throws(StoreError) -> Int64 {
        try write { () throws(StoreError) in
            try store.recordRegistry(source: source, outcome: outcome, detail: detail, registry: registry, changes: changes,
                                     rejudge: rejudge, now: now)
        }
    }

    public func lastAppliedRegistry() throws(StoreError) -> Data? { try store.lastAppliedRegistry() }
    public func registryAppliedAt() throws(StoreError) -> Date? { try store.registryAppliedAt() }
    public func registryAudit(after seq: Int64, limit: Int) throws(StoreError) -> [RegistryAuditEntry] {
        try store.registryAudit(after: seq, limit: limit)
    }
    public func rejudgeMarks() throws(StoreError) -> [String: UInt64] { try store.rejudgeMarks() }
    public func clearRejudge(nodeId: String, through sequence: UInt64) throws(StoreError) {
        try write { () throws(StoreError) in try store.clearRejudge(nodeId: nodeId, through: sequence) }
    }
    public func nodesRecordedRemoved() throws(StoreError) -> Set<String> { try store.nodesRecordedRemoved() }
    public func nodesWithQueue() throws(StoreError) -> Set<String> { try store.nodesWithQueue() }

    public func compact(policy: RetentionPolicy, registryNodes: Set<String>, now: Date, batch: Int) throws(StoreError) -> CompactionReport {
        try write { () throws(StoreError) in try store.compact(policy: policy, registryNodes: registryNodes, now: now, batch: batch) }
    }
    public func removedByRetention() throws(StoreError) -> Int { try store.removedByRetention() }

    public func queueDepth(for nodeId: String) throws(StoreError) -> Int { try store.queueDepth(for: nodeId) }
    public func queueFigures() throws(StoreError) -> [String: (depth: Int, oldest: Date?)] { try store.queueFigures() }
    public func messageCount() throws(StoreError) -> Int { try store.messageCount() }
    public func pageFigures() throws(StoreError) -> (pages: Int, free: Int) { try store.pageFigures() }
    public func audit(messageId: String) throws(StoreError) -> AuditTrail? { try store.audit(messageId: messageId) }
    public func verify() throws(StoreError) -> ChainReport { try store.verify() }
}
