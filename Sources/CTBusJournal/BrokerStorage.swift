import Foundation

/// What the broker needs from its store, and nothing else: the SQLite `BrokerStore` is one
/// implementation; a store on a database server (for a broker that fails over to another
/// machine) comes in beside it without touching the broker's protocol core.
///
/// Contract, whatever the implementation:
/// - Each method is one transaction: all of it is durable when it returns, or none of it is
///   and it throws a `StoreError`.
/// - `store` keeps each publication with one queue entry per recipient and its audit lines,
///   gives each queue entry the recipient's next sequence (1, 2, 3, ... per node, never reused),
///   and deletes the queue entries the acknowledgements cover, in the same transaction. A
///   publication whose id is stored already is `alreadyStored` when its bytes are identical,
///   `conflict` otherwise, and changes nothing.
/// - `pendingDeliveries` returns a node's queue entries after a sequence, ascending.
/// - Everything shown or checked later (messages, audit, registry audit) is under the hash
///   chain `verify` checks.
public protocol BrokerStorage: AnyObject, Sendable {
    /// What opening found and repaired after a crash (a torn last write), if anything.
    var recovery: String? { get }

    // MARK: Publications, queues, acknowledgements

    func store(_ publications: [Publication], acknowledging acknowledgements: [String: UInt64],
               now: Date) throws(StoreError) -> [StoreOutcome]
    /// Deletes every queue entry up to each node's cumulative acknowledgement.
    func acknowledge(_ acknowledgements: [String: UInt64]) throws(StoreError)
    func pendingDeliveries(for nodeId: String, after sequence: UInt64, limit: Int) throws(StoreError) -> [QueuedDelivery]
    /// Deletes one queue entry that will not be sent (expired, withdrawn) and records why.
    func discard(nodeId: String, sequence: UInt64, messageId: String, audit: AuditEntry) throws(StoreError)
    /// Queues for a late joiner every retained, unrevoked message `entitle` grants it, oldest first.
    func queueBacklog(for nodeId: String,
                      entitle: (_ envelope: Data, _ payload: Data) -> Publication.Recipient?) throws(StoreError) -> Int
    /// Marks a message revoked by its originator and queues the signed statement for its holders.
    func revoke(messageId: String, by originator: String, reason: String, revocation: Data,
                now: Date) throws(StoreError) -> RevokeOutcome

    // MARK: Registry audit and re-judge marks

    @discardableResult
    func recordRegistry(source: String, outcome: RegistryAuditEntry.Outcome, detail: String, registry: Data?,
                        changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)],
                        rejudge: [String], now: Date) throws(StoreError) -> Int64
    func lastAppliedRegistry() throws(StoreError) -> Data?
    func registryAppliedAt() throws(StoreError) -> Date?
    func registryAudit(after seq: Int64, limit: Int) throws(StoreError) -> [RegistryAuditEntry]
    func rejudgeMarks() throws(StoreError) -> [String: UInt64]
    func clearRejudge(nodeId: String, through sequence: UInt64) throws(StoreError)
    func nodesRecordedRemoved() throws(StoreError) -> Set<String>
    func nodesWithQueue() throws(StoreError) -> Set<String>

    // MARK: Retention

    /// One bounded step of retention; called until it reports nothing more.
    func compact(policy: RetentionPolicy, registryNodes: Set<String>, now: Date, batch: Int) throws(StoreError) -> CompactionReport
    func removedByRetention() throws(StoreError) -> Int

    // MARK: Figures and checks

    func queueDepth(for nodeId: String) throws(StoreError) -> Int
    func queueFigures() throws(StoreError) -> [String: (depth: Int, oldest: Date?)]
    func messageCount() throws(StoreError) -> Int
    /// The store's size: units of storage in use and free (pages for SQLite).
    func pageFigures() throws(StoreError) -> (pages: Int, free: Int)
    func audit(messageId: String) throws(StoreError) -> AuditTrail?
    func verify() throws(StoreError) -> ChainReport
}

extension BrokerStore: BrokerStorage {}

/// The defaults callers use: now, no acknowledgements, no re-judge marks, the usual batch.
extension BrokerStorage {
    public func store(_ publications: [Publication], acknowledging acknowledgements: [String: UInt64] = [:]) throws(StoreError)
        -> [StoreOutcome] {
        try store(publications, acknowledging: acknowledgements, now: Date())
    }

    public func revoke(messageId: String, by originator: String, reason: String, revocation: Data) throws(StoreError)
        -> RevokeOutcome {
        try revoke(messageId: messageId, by: originator, reason: reason, revocation: revocation, now: Date())
    }

    @discardableResult
    public func recordRegistry(source: String, outcome: RegistryAuditEntry.Outcome, detail: String, registry: Data?,
                               changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)],
                               rejudge: [String] = []) throws(StoreError) -> Int64 {
        try recordRegistry(source: source, outcome: outcome, detail: detail, registry: registry, changes: changes, rejudge: rejudge, now: Date())
    }

    public func compact(policy: RetentionPolicy, registryNodes: Set<String>, now: Date = Date()) throws(StoreError) -> CompactionReport {
        try compact(policy: policy, registryNodes: registryNodes, now: now, batch: 500)
    }

    public func registryAudit() throws(StoreError) -> [RegistryAuditEntry] { try registryAudit(after: 0, limit: 10_000) }
}

/// What storing one publication came to.
public enum StoreOutcome: Sendable, Equatable {
    /// Stored now: the queue sequence each recipient got, in the order of `recipients`.
    case stored(sequences: [UInt64])
    /// The same message from the same originator was stored before: acknowledge again with
    /// the recipient count of its first storing, queue nothing new (the publisher resent after
    /// a lost acknowledgement).
    case alreadyStored(recipientCount: Int)
    /// The id is taken by a different message or another originator.
    case conflict
}

/// What revoking a message came to.
public enum RevokeOutcome: Sendable, Equatable {
    /// Revoked now; the revocation is queued for this many nodes that received the message.
    case revoked(recipients: Int)
    /// It was revoked before; nothing new is queued.
    case alreadyRevoked
    case notFound
    /// Only the originator may revoke.
    case notOriginator
}
