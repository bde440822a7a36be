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

extension BrokerStore {
    /// Records a registry applied, unchanged or refused, with the node changes it made, in one
    /// transaction; `registry` (the JSON applied, public keys only) is kept with an applied one
    /// so that the next start can tell what changed while the broker was stopped. Returns the
    /// registry line's `seq`.
    @discardableResult
    public func recordRegistry(source: String, outcome: RegistryAuditEntry.Outcome, detail: String, registry: Data?,
                               changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)],
                               now: Date = Date()) throws(StoreError) -> Int64 {
        try database.write { db in
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

    /// The registry last applied (its JSON), or nil when none was recorded yet.
    public func lastAppliedRegistry() throws(StoreError) -> Data? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT registry FROM registry_audit WHERE outcome = 'applied' AND node_id IS NULL ORDER BY seq DESC LIMIT 1")
                .flatMap { try $0.decode(Data?.self, atIndex: 0) }
        }
    }

    /// The registry audit after `seq`, oldest first (at most `limit` lines).
    public func registryAudit(after seq: Int64 = 0, limit: Int = 10_000) throws(StoreError) -> [RegistryAuditEntry] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT seq, reload, recorded_at, source, outcome, node_id, detail FROM registry_audit WHERE seq > ? ORDER BY seq LIMIT ?
                """, arguments: [seq, limit]).map { row in
                let outcome: String = try row.decode(atIndex: 4)
                guard let known = RegistryAuditEntry.Outcome(rawValue: outcome) else {
                    throw StoreError(.damaged, "registry_audit row \(try row.decode(Int64.self, atIndex: 0)): unknown outcome \(outcome)")
                }
                return try RegistryAuditEntry(seq: row.decode(atIndex: 0), reload: row.decode(atIndex: 1),
                                              recordedAt: Date(timeIntervalSince1970: row.decode(atIndex: 2)),
                                              source: row.decode(atIndex: 3), outcome: known, nodeId: row.decode(atIndex: 5),
                                              detail: row.decode(atIndex: 6))
            }
        }
    }

    /// The highest queue sequence waiting for `nodeId` (0 when its queue is empty).
    public func lastQueuedSequence(for nodeId: String) throws(StoreError) -> UInt64 {
        try database.read { db in
            UInt64(bitPattern: try Int64.fetchOne(db, sql: "SELECT max(sequence) FROM delivery WHERE node_id = ?", arguments: [nodeId]) ?? 0)
        }
    }
}
