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

    /// Opens (and when writable, creates) the journal at `path`. Inspection opens it
    /// `.readOnly`: nothing is written, not even a migration.
    public required init(path: String, access: StoreAccess = .readWrite) throws(StoreError) {
        database = try StoreDatabase(path: path, migrator: Self.migrator, access: access)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
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
                    revoke_reason TEXT
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
                    last_sent_at REAL
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
                """)
        }
        migrator.registerMigration("v2 search") { db in
            try db.execute(sql: searchMigration)
        }
        // Signatures (PROTOCOL.md 7.2): `envelope` holds the signed envelope bytes, `proof` the
        // serialized Proof with the disclosures this node holds, `signed_payload` the signed
        // payload when it differs from `payload` (restricted fields cleared, or sealed), and
        // `content_keys` a sealed message's content keys as opened here. NULL proof: an entry from
        // before signatures.
        migrator.registerMigration("v3 signatures") { db in
            try db.execute(sql: """
                ALTER TABLE entry ADD COLUMN proof BLOB;
                ALTER TABLE entry ADD COLUMN signed_payload BLOB;
                ALTER TABLE entry ADD COLUMN content_keys BLOB;
                """)
        }
        // Signed revocations (PROTOCOL.md 5.5): `revocation` holds the originator's signed
        // Revocation, serialized, beside the entry it revokes (`journal verify` checks it and that
        // `revoked_at` and `revoke_reason` are what it says) and beside a queued revocation of
        // this node's own.
        migrator.registerMigration("v4 signed revocations") { db in
            try db.execute(sql: """
                ALTER TABLE entry ADD COLUMN revocation BLOB;
                ALTER TABLE revocation_outbox ADD COLUMN revocation BLOB;
                """)
        }
        return migrator
    }
}
