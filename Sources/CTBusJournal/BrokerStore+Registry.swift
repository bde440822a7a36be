import Foundation
import GRDB

/// One line of the broker's registry audit: a registry applied or refused (`nodeId` nil), or
/// one node's change within an applied one.
public struct RegistryAuditEntry: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        /// A registry took effect (at start, or on a reload that changed something).
        case applied
        /// A reload found the same registry: nothing changed.
        case unchanged
        /// A reload was refused (the file did not validate); the registry in force stays.
        case refused
        case added, removed, changed
    }

    public let seq: Int64
    /// The `seq` of the registry line this line belongs to (its own for a registry line).
    public let reload: Int64
    public let recordedAt: Date
    /// What asked for it: "start", "SIGHUP", "ctbus registry reload", "test".
    public let source: String
    public let outcome: Outcome
    public let nodeId: String?
    public let detail: String
}

extension RegistryAuditEntry: FetchableRecord {
    public init(row: Row) throws {
        seq = try row.decode(forColumn: "seq")
        let outcomeName: String = try row.decode(forColumn: "outcome")
        guard let outcome = Outcome(rawValue: outcomeName) else {
            throw StoreError(.damaged, "registry_audit row \(seq): unknown outcome \(outcomeName)")
        }
        self.outcome = outcome
        reload = try row.decode(forColumn: "reload")
        recordedAt = Date(timeIntervalSince1970: try row.decode(forColumn: "recorded_at"))
        source = try row.decode(forColumn: "source")
        nodeId = try row.decode(forColumn: "node_id")
        detail = try row.decode(forColumn: "detail")
    }
}

extension BrokerStore {
    /// Records a registry applied, unchanged or refused, with the node changes it made, in one
    /// transaction; `registry` (the JSON applied, public keys only) is kept with an applied one
    /// so that the next start can tell what changed while the broker was stopped. Returns the
    /// registry line's `seq`.
    /// `rejudge`: nodes whose queued deliveries must be judged again under this registry before
    /// they go out; each gets a mark at its last queued sequence, kept until it acknowledges past it
    /// (so a restart in between judges them again too).
    @discardableResult
    public func recordRegistry(source: String, outcome: RegistryAuditEntry.Outcome, detail: String, registry: Data?,
                               changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)],
                               rejudge: [String] = [], now: Date = Date()) throws(StoreError) -> Int64 {
        try database.write { db in
            for node in rejudge {
                guard let last = try Int64.fetchOne(db, sql: "SELECT max(sequence) FROM delivery WHERE node_id = ?", arguments: [node]) else {
                    continue
                }
                try db.execute(sql: """
                    INSERT INTO rejudge (node_id, through) VALUES (?, ?)
                    ON CONFLICT (node_id) DO UPDATE SET through = max(through, excluded.through)
                    """, arguments: [node, last])
            }
            try db.execute(sql: """
                INSERT INTO registry_audit (reload, recorded_at, source, outcome, node_id, detail, registry)
                VALUES (0, ?, ?, ?, NULL, ?, ?)
                """, arguments: [now.timeIntervalSince1970, source, outcome.rawValue, detail, registry])
            let reload = db.lastInsertedRowID
            try db.execute(sql: "UPDATE registry_audit SET reload = seq WHERE seq = ?", arguments: [reload])
            for change in changes {
                try db.execute(sql: """
                    INSERT INTO registry_audit (reload, recorded_at, source, outcome, node_id, detail) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [reload, now.timeIntervalSince1970, source, change.outcome.rawValue, change.nodeId, change.detail])
            }
            return reload
        }
    }

    /// When the registry in force was applied (at start or by a reload), if recorded.
    public func registryAppliedAt() throws(StoreError) -> Date? {
        try database.read { db in
            try Double.fetchOne(db, sql: """
                SELECT recorded_at FROM registry_audit WHERE outcome = 'applied' AND node_id IS NULL ORDER BY seq DESC LIMIT 1
                """).map(Date.init(timeIntervalSince1970:))
        }
    }

    /// The registry last applied (its JSON), or nil when none was recorded yet.
    public func lastAppliedRegistry() throws(StoreError) -> Data? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT registry FROM registry_audit WHERE outcome = 'applied' AND node_id IS NULL ORDER BY seq DESC LIMIT 1")
                .flatMap { try $0.decode(Data?.self, forColumn: "registry") }
        }
    }

    /// The registry audit after `seq`, oldest first (at most `limit` lines).
    public func registryAudit(after seq: Int64 = 0, limit: Int = 10_000) throws(StoreError) -> [RegistryAuditEntry] {
        try database.read { db in
            try RegistryAuditEntry.fetchAll(db, sql: """
                SELECT seq, reload, recorded_at, source, outcome, node_id, detail FROM registry_audit WHERE seq > ? ORDER BY seq LIMIT ?
                """, arguments: [seq, limit])
        }
    }

    /// Per node, the last queue sequence whose delivery must be judged again before it goes out.
    public func rejudgeMarks() throws(StoreError) -> [String: UInt64] {
        try database.read { db in
            var marks: [String: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT node_id, through FROM rejudge") {
                marks[try row.decode(String.self, forColumn: "node_id")] = UInt64(bitPattern: try row.decode(Int64.self, forColumn: "through"))
            }
            return marks
        }
    }

    /// Drops the mark of `nodeId` once it acknowledged through `sequence` (a later mark stays).
    public func clearRejudge(nodeId: String, through sequence: UInt64) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "DELETE FROM rejudge WHERE node_id = ? AND through <= ?", arguments: [nodeId, Int64(bitPattern: sequence)])
        }
    }

    /// The nodes whose latest added-or-removed line in the registry audit is their removal.
    public func nodesRecordedRemoved() throws(StoreError) -> Set<String> {
        try database.read { db in
            Set(try String.fetchAll(db, sql: """
                SELECT node_id FROM registry_audit a WHERE outcome = 'removed' AND seq = (
                    SELECT max(seq) FROM registry_audit b WHERE b.node_id = a.node_id AND b.outcome IN ('added', 'removed'))
                """))
        }
    }

    /// The nodes with something queued.
    public func nodesWithQueue() throws(StoreError) -> Set<String> {
        try database.read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT node_id FROM delivery")) }
    }

    /// The `seq` of the registry audit's last line (0 when empty).
    public func lastRegistryAuditSeq() throws(StoreError) -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM registry_audit") ?? 0 }
    }
}
