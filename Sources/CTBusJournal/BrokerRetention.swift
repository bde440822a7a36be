import CTBusSchema
import Foundation
import GRDB

/// How long the broker keeps what it stored (broker.json `retention`).
public struct RetentionPolicy: Sendable, Equatable {
    /// Per message type name (`MISSION_REPORT`): how long a message of that type is kept after
    /// it was stored. A type not listed, or listed as nil, is kept forever.
    public var messages: [String: TimeInterval?]
    /// How long the queue of a node removed from the registry waits (in case it comes back)
    /// before its entries go.
    public var removedNodeQueues: TimeInterval

    public init(messages: [String: TimeInterval?] = [:], removedNodeQueues: TimeInterval = 30 * 86_400) {
        self.messages = messages
        self.removedNodeQueues = removedNodeQueues
    }

    /// Keeps every message forever; removed nodes' queues go after 30 days.
    public static let keepEverything = RetentionPolicy()
}

/// What one compaction pass did.
public struct CompactionReport: Sendable, Equatable {
    /// Messages that left the store (row, content and audit trail).
    public var messagesRemoved = 0
    /// Queue entries of removed nodes that waited out their grace period.
    public var queueEntriesDropped = 0

    public init() {}

    public var isEmpty: Bool { messagesRemoved == 0 && queueEntriesDropped == 0 }

    public static func += (lhs: inout CompactionReport, rhs: CompactionReport) {
        lhs.messagesRemoved += rhs.messagesRemoved
        lhs.queueEntriesDropped += rhs.queueEntriesDropped
    }
}

/// Retention in a broker store. A message past its type's retention and delivered to every
/// recipient (nothing of it queued, not even a revocation notice) leaves the store with its audit
/// trail. The hash chain of what remains still verifies: the next row's entry in `chain_link`
/// records the hash it links to. The newest row stays (the next publication links to its hash)
/// until a newer one arrives. The queues of nodes removed from the registry long enough ago go
/// too.
struct BrokerRetention {
    let database: StoreDatabase

    /// One bounded pass (at most `batch` rows of each kind, one transaction each, so the broker's
    /// own writes wait milliseconds at most); call again while the report is not empty.
    /// `registryNodes`: the node ids of the registry in force; a node with queue entries that is
    /// not among them was removed, and its entries go once the registry audit shows it removed
    /// longer ago than `policy.removedNodeQueues`.
    func compact(policy: RetentionPolicy, registryNodes: Set<String>, now: Date, batch: Int) throws(StoreError) -> CompactionReport {
        var report = CompactionReport()
        report.queueEntriesDropped = try dropRemovedNodeQueues(policy: policy, registryNodes: registryNodes, now: now, batch: batch)
        report.messagesRemoved = try removeExpired(policy: policy, now: now, batch: batch)
        return report
    }

    private func dropRemovedNodeQueues(policy: RetentionPolicy, registryNodes: Set<String>, now: Date, batch: Int) throws(StoreError) -> Int {
        try database.write { db in
            var dropped = 0
            for node in try String.fetchAll(db, sql: "SELECT DISTINCT node_id FROM delivery") where !registryNodes.contains(node) {
                // Removed for good only if the registry audit's latest word on the node is its removal
                // (read in this transaction: a reload that adds it back is recorded before it applies).
                guard let last = try Row.fetchOne(db, sql: """
                    SELECT outcome, recorded_at FROM registry_audit WHERE node_id = ? AND outcome IN ('added', 'removed')
                    ORDER BY seq DESC LIMIT 1
                    """, arguments: [node]), try last.decode(String.self, forColumn: "outcome") == "removed" else { continue }
                let removedAt = try last.decode(Double.self, forColumn: "recorded_at")
                guard removedAt + policy.removedNodeQueues <= now.timeIntervalSince1970 else { continue }
                let entries = try Row.fetchAll(db, sql: "SELECT sequence, message_id FROM delivery WHERE node_id = ? ORDER BY sequence LIMIT ?",
                                               arguments: [node, batch - dropped])
                let removed = UTCTime.iso8601(Date(timeIntervalSince1970: removedAt))
                let write = BrokerWrite(db, now: now)
                for entry in entries {
                    let messageId: String = try entry.decode(forColumn: "message_id")
                    try db.execute(sql: "DELETE FROM delivery WHERE node_id = ? AND sequence = ?",
                                   arguments: [node, try entry.decode(Int64.self, forColumn: "sequence")])
                    try write.record([AuditEntry(nodeId: node, outcome: .refused, rule: .nodeRemoved,
                                                 reason: "dropped from the queue: the node was removed from the registry at \(removed)")],
                                     of: messageId)
                }
                dropped += entries.count
                if dropped >= batch { break }
            }
            return dropped
        }
    }

    private func removeExpired(policy: RetentionPolicy, now: Date, batch: Int) throws(StoreError) -> Int {
        try database.write { db in
            let newest = try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM message") ?? 0
            // Due: past the retention of its type, nothing of it queued (the delivery_message index
            // answers that), and not the newest row.
            var due: [(position: Int64, id: String, hash: Data)] = []
            for (type, keep) in policy.messages.sorted(by: { $0.key < $1.key }) {
                guard let keep, due.count < batch else { continue }
                for row in try Row.fetchAll(db, sql: """
                    SELECT rowid AS position, message_id, hash FROM message m
                    WHERE type = ? AND received_at <= ? AND rowid < ?
                      AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.message_id)
                    ORDER BY rowid LIMIT ?
                    """, arguments: [type, now.timeIntervalSince1970 - keep, newest, batch - due.count]) {
                    due.append((try row.decode(forColumn: "position"), try row.decode(forColumn: "message_id"), try row.decode(forColumn: "hash")))
                }
            }
            // In row order, so that each row's successor is found after the rows before it went.
            for (position, id, hash) in due.sorted(by: { $0.position < $1.position }) {
                // The row after it links to this row's hash, unless it already records where it links to.
                if let next = try Int64.fetchOne(db, sql: "SELECT min(rowid) FROM message WHERE rowid > ?", arguments: [position]) {
                    try db.execute(sql: "INSERT OR IGNORE INTO chain_link (position, previous_hash) VALUES (?, ?)", arguments: [next, hash])
                }
                try db.execute(sql: "DELETE FROM chain_link WHERE position = ?", arguments: [position])
                try db.execute(sql: "DELETE FROM audit WHERE message_id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM message WHERE rowid = ?", arguments: [position])
            }
            if !due.isEmpty {
                try db.execute(sql: """
                    INSERT INTO retention_total (id, removed) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET removed = removed + excluded.removed
                    """, arguments: [due.count])
            }
            return due.count
        }
    }

    /// How many messages retention removed, in all.
    static func removedTotal(in db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT removed FROM retention_total WHERE id = 1") ?? 0
    }
}
