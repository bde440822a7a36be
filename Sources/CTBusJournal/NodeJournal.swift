import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// A node's local journal (SQLite, WAL): every message the node sent or received, and the
/// outbox of publications the broker has not acknowledged yet. Several processes may use one
/// journal at once (the node daemon and `ctbus publish`).
public final class NodeJournal: CheckedStoreFile, Sendable {
    public var path: String { database.path }
    let database: StoreDatabase

    /// This node's publications waiting for the broker, and the broker's final refusals.
    public var outbox: JournalOutbox { JournalOutbox(database: database) }
    /// Messages kept here and not sent until released.
    public var drafts: JournalDrafts { JournalDrafts(database: database) }
    /// Subscriptions, and the notifications queued for them.
    public var notifications: JournalNotifications { JournalNotifications(database: database) }
    /// Revocations queued for the broker, and revoked entries.
    public var revocations: JournalRevocations { JournalRevocations(database: database) }
    /// The full-text index and the references between entries.
    public var search: JournalSearch { JournalSearch(journal: self) }

    /// Opens (and when writable, creates) the journal at `path`. Inspection opens it
    /// `.readOnly`: nothing is written, not even a checkpoint.
    public required init(path: String, access: StoreAccess = .readWrite) throws(StoreError) {
        database = try StoreDatabase(path: path, schema: Self.schema, access: access)
    }

    /// Journals deliveries in one transaction (one fsync for the batch), with the notifications
    /// of the subscriptions each passes; returns how many were new. Duplicates (a message id
    /// already journaled) are skipped.
    @discardableResult
    public func recordDeliveries(_ deliveries: [IncomingDelivery], now: Date = Date()) throws(StoreError) -> Int {
        try database.write { db in
            var fresh = 0
            var previous = try JournalChain.lastHash(in: db)
            let subscriptions = try JournalNotifications.subscriptions(db)
            for delivery in deliveries {
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM entry WHERE message_id = ?"),
                                     arguments: [delivery.record.envelope.messageID]) == true {
                    continue
                }
                try JournalChain.insert(db, direction: .received, delivery.record, sequence: delivery.sequence,
                                redactedPaths: delivery.redactedPaths, after: &previous, now: now)
                try JournalNotifications.enqueue(db, position: db.lastInsertedRowID, record: delivery.record,
                                                 subscriptions: subscriptions, now: now)
                fresh += 1
            }
            return fresh
        }
    }

    /// Throws `.schema` when the file at `path` is another kind of file or holds another schema
    /// version; writes nothing, and leaves any other failure to whatever opens the file next.
    public static func refuseOtherSchema(path: String) throws(StoreError) {
        try StoreDatabase.refuseOtherSchema(path: path, schema: schema)
    }

    /// The journal's schema. `entry` holds every message sent or received, in a hash chain:
    /// `envelope` the signed envelope bytes, `payload` the payload as this node holds it,
    /// `proof` the serialized Proof with the disclosures this node holds (PROTOCOL.md 7.2),
    /// `signed_payload` the signed payload when it differs from `payload` (restricted fields
    /// cleared, or sealed), `content_keys` a sealed message's content keys as opened here, and
    /// once revoked, `revocation` the originator's signed Revocation, serialized (5.5), which
    /// `journal verify` checks `revoked_at` and `revoke_reason` against. `outbox` and
    /// `revocation_outbox` wait for the broker's acknowledgement; `entry_text`, `entry_reference`
    /// and `entry_theme` are the search indexes (`JournalSearch.swift`). Schema 2 replaced
    /// schema 1's contentless text index by one whose text is read from the entries (for
    /// snippets) and added the theme index; a schema 1 file is upgraded by dropping its search
    /// indexes, which fill again from the entries. Schema 3 added `subscription` and
    /// `notification` (`JournalNotifications.swift`), created empty by the upgrade from 2.
    static let schema = StoreSchema(kind: "node journal", applicationId: 0x4354_4A4E, version: 3,
                                    sql: tables + JournalSearch.schema + JournalNotifications.schema,
                                    upgrades: [.init(from: 1, sql: tables + JournalSearch.schemaVersion1, script: JournalSearch.upgradeFromVersion1),
                                               .init(from: 2, sql: tables + JournalSearch.schema, script: JournalNotifications.schema)],
                                    functions: [JournalSearch.searchTextFunction])

    /// The entries and the queues beside them, the same in every schema version so far.
    static let tables = """
        CREATE TABLE entry (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
            type TEXT NOT NULL,
            originator TEXT NOT NULL,
            classification TEXT NOT NULL,
            subject TEXT NOT NULL,
            created_at REAL NOT NULL,
            recorded_at REAL NOT NULL,
            acknowledged_at REAL,
            broker_sequence INTEGER,
            envelope BLOB NOT NULL,
            payload BLOB NOT NULL,
            redacted_paths TEXT,
            hash BLOB NOT NULL,
            revoked_at REAL,
            revoke_reason TEXT,
            proof BLOB NOT NULL,
            signed_payload BLOB,
            content_keys BLOB,
            revocation BLOB,
            CHECK ((revoked_at IS NULL) = (revocation IS NULL))
        );
        CREATE INDEX entry_type ON entry(type);
        CREATE INDEX entry_subject ON entry(subject);
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE REFERENCES entry(message_id),
            queued_at REAL NOT NULL,
            refused_code TEXT,
            refused_detail TEXT
        );
        CREATE TABLE revocation_outbox (
            message_id TEXT PRIMARY KEY REFERENCES entry(message_id),
            reason TEXT NOT NULL,
            queued_at REAL NOT NULL,
            last_sent_at REAL,
            revocation BLOB NOT NULL
        );
        CREATE TABLE draft (
            message_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            envelope BLOB NOT NULL,
            payload BLOB NOT NULL,
            saved_at REAL NOT NULL
        );
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
}
