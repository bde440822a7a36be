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

    // MARK: Outbox

    /// Puts signed messages into the outbox (and the journal, as sent) in one transaction: all
    /// or none. Works while the node daemon and the broker are down; the daemon sends them when
    /// it can, as the exact bytes signed here.
    public func enqueue(_ records: [JournalRecord], now: Date = Date()) throws(StoreError) {
        try database.write { db in
            var previous = try Self.lastHash(in: db)
            for record in records {
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM entry WHERE message_id = ?"), arguments: [record.envelope.messageID]) == true {
                    throw StoreError(.duplicate, "message \(record.envelope.messageID) is already in the journal")
                }
                try Self.insertSent(db, record, after: &previous, now: now)
            }
        }
    }

    /// Outbox entries queued after `seq` (an `OutboxItem.seq`), in the order they were queued.
    /// The outbox drives the query (CROSS JOIN keeps SQLite from scanning the whole journal).
    public func outbox(after seq: Int64 = 0, limit: Int = 100) throws(StoreError) -> [OutboxItem] {
        try database.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT o.seq, e.message_id, e.envelope, coalesce(e.signed_payload, e.payload), e.proof FROM outbox o
                CROSS JOIN entry e ON e.message_id = o.message_id
                WHERE o.seq > ? AND o.refused_code IS NULL
                ORDER BY o.seq LIMIT ?
                """), arguments: [seq, limit]).map { row in
                try OutboxItem(seq: row.decode(atIndex: 0), messageId: row.decode(atIndex: 1), envelope: row.decode(atIndex: 2),
                               payload: row.decode(atIndex: 3), proof: row.decode(atIndex: 4))
            }
        }
    }

    /// Records the broker's acknowledgement: the publication leaves the outbox and its journal
    /// entry takes the originator the broker recorded. Returns false when it was not in the outbox.
    @discardableResult
    public func acknowledge(messageId: String, originator: String, now: Date = Date()) throws(StoreError) -> Bool {
        try acknowledge([(messageId, originator)], now: now) == 1
    }

    /// Records many acknowledgements in one transaction; returns how many left the outbox.
    @discardableResult
    public func acknowledge(_ acknowledgements: [(messageId: String, originator: String)], now: Date = Date()) throws(StoreError) -> Int {
        try database.write { db in
            var count = 0
            for (messageId, originator) in acknowledgements {
                try db.cachedStatement(sql: "DELETE FROM outbox WHERE message_id = ?").execute(arguments: [messageId])
                guard db.changesCount > 0 else { continue }
                count += 1
                try db.cachedStatement(sql: "UPDATE entry SET acknowledged_at = ?, originator = ? WHERE message_id = ?")
                    .execute(arguments: [now.timeIntervalSince1970, originator, messageId])
            }
            return count
        }
    }

    /// Records that the broker refused a publication for good (validation, role, need to know):
    /// it is not sent again, and the journal keeps the entry and the reason for the record.
    public func refuse(messageId: String, code: String, detail: String) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "UPDATE outbox SET refused_code = ?, refused_detail = ? WHERE message_id = ?",
                           arguments: [code, detail, messageId])
            // No publication waiting under this id: the refusal concerns its revocation.
            if db.changesCount == 0 {
                try db.cachedStatement(sql: "DELETE FROM revocation_outbox WHERE message_id = ?").execute(arguments: [messageId])
            }
        }
    }

    /// Publications in the outbox: waiting for the broker, and refused by it for good.
    public func outboxCounts() throws(StoreError) -> (waiting: Int, refused: Int) {
        try database.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*) FILTER (WHERE refused_code IS NULL), count(*) FILTER (WHERE refused_code IS NOT NULL) FROM outbox
                """)
            return try (row?.decode(Int.self, atIndex: 0) ?? 0, row?.decode(Int.self, atIndex: 1) ?? 0)
        }
    }

    /// Where a publication of this node stands: queued, acknowledged, or refused with a code.
    public func publicationStatus(messageId: String) throws(StoreError) -> PublicationStatus? {
        try database.read { db in
            guard let entry = try Row.fetchOne(db, sql: "SELECT acknowledged_at FROM entry WHERE message_id = ? AND direction = ?",
                                               arguments: [messageId, Direction.sent.rawValue]) else { return nil }
            if try entry.decode(Double?.self, forColumn: "acknowledged_at") != nil { return .acknowledged }
            guard let row = try Row.fetchOne(db, sql: "SELECT refused_code, refused_detail FROM outbox WHERE message_id = ?",
                                             arguments: [messageId]) else { return .queued }
            if let code = try row.decode(String?.self, forColumn: "refused_code") {
                return .refused(code: code, detail: try row.decode(forColumn: "refused_detail") ?? "")
            }
            return .queued
        }
    }

    // MARK: Revocation

    /// Queues the revocation of a message this node published, signed by this node
    /// (`Revocation.signed`); the daemon sends it until the broker acknowledges. Throws `notFound`
    /// for a message this node did not send.
    public func queueRevocation(_ revocation: Revocation, now: Date = Date()) throws(StoreError) {
        let messageId = revocation.messageID
        try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT acknowledged_at FROM entry WHERE message_id = ? AND direction = ?",
                                             arguments: [messageId, Direction.sent.rawValue]) else {
                throw StoreError(.notFound, "this node published no message \(messageId)")
            }
            // Until the broker has stored the message there is nothing to revoke there, and an
            // error about the id could not be told apart from one about the publication.
            guard try row.decode(Double?.self, forColumn: "acknowledged_at") != nil else {
                throw StoreError(.notFound, "message \(messageId) is not acknowledged by the broker yet; revoke it once it is")
            }
            try db.execute(sql: "INSERT OR REPLACE INTO revocation_outbox (message_id, reason, queued_at, revocation) VALUES (?, ?, ?, ?)",
                           arguments: [messageId, revocation.reason, now.timeIntervalSince1970, try revocation.serializedData()])
        }
    }

    /// Revocations waiting for the broker, oldest first, with when each was last sent. A
    /// revocation queued before they were signed comes unsigned (the broker refuses it).
    public func pendingRevocations() throws(StoreError) -> [(revocation: Revocation, lastSentAt: Date?)] {
        try database.read { db in try Self.pendingRevocations(db, where: "") }
    }

    /// An entry and its revocation still waiting for the broker, read together: a revocation
    /// confirmed between two reads would otherwise show as neither pending nor done.
    public func entryWithPendingRevocation(messageId: String) throws(StoreError)
        -> (entry: JournalEntry, pending: (revocation: Revocation, lastSentAt: Date?)?)? {
        try database.read { db in
            guard let entry = try Self.entry(db, messageId: messageId) else { return nil }
            return (entry, try Self.pendingRevocations(db, where: "WHERE message_id = ?", [messageId]).first)
        }
    }

    private static func pendingRevocations(_ db: Database, where condition: String,
                                           _ arguments: StatementArguments = []) throws -> [(revocation: Revocation, lastSentAt: Date?)] {
        try Row.fetchAll(db, sql: "SELECT message_id, reason, last_sent_at, revocation FROM revocation_outbox \(condition) ORDER BY queued_at",
                         arguments: arguments).map { row in
            var revocation = try row.decode(Data?.self, forColumn: "revocation").flatMap { try? Revocation(serializedBytes: $0) } ?? Revocation()
            revocation.messageID = try row.decode(forColumn: "message_id")
            revocation.reason = try row.decode(forColumn: "reason")
            return (revocation, try row.decode(Double?.self, forColumn: "last_sent_at").map(Date.init(timeIntervalSince1970:)))
        }
    }

    public func markRevocationSent(_ messageId: String, at now: Date = Date()) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "UPDATE revocation_outbox SET last_sent_at = ? WHERE message_id = ?",
                           arguments: [now.timeIntervalSince1970, messageId])
        }
    }

    /// Marks entries revoked (kept for audit, hidden from default listings) with the signed
    /// revocations the caller checked, and clears their pending revocations. A revocation whose
    /// `revoked_by` is not the entry's originator changes nothing and is returned; unknown ids are
    /// ignored (a revocation may overtake nothing here).
    @discardableResult
    public func markRevoked(_ revocations: [Revocation]) throws(StoreError) -> [Revocation] {
        try database.write { db in
            var refused: [Revocation] = []
            for revocation in revocations {
                let originator = try String.fetchOne(db.cachedStatement(sql: "SELECT originator FROM entry WHERE message_id = ?"),
                                                     arguments: [revocation.messageID])
                guard originator == nil || originator == revocation.revokedBy else {
                    refused.append(revocation)
                    continue
                }
                try db.execute(sql: """
                    UPDATE entry SET revoked_at = coalesce(revoked_at, ?), revoke_reason = coalesce(revoke_reason, ?),
                        revocation = coalesce(revocation, ?)
                    WHERE message_id = ?
                    """, arguments: [revocation.revokedAt.date.timeIntervalSince1970, revocation.reason,
                                     try revocation.serializedData(), revocation.messageID])
                try db.cachedStatement(sql: "DELETE FROM revocation_outbox WHERE message_id = ?").execute(arguments: [revocation.messageID])
            }
            return refused
        }
    }

    /// The broker acknowledged these revocations of this node's messages: mark the entries revoked
    /// as signed when they were queued.
    public func confirmRevocations(_ messageIds: [String], now: Date = Date()) throws(StoreError) {
        try database.write { db in
            for messageId in messageIds {
                guard let row = try Row.fetchOne(db, sql: "SELECT reason, revocation FROM revocation_outbox WHERE message_id = ?",
                                                 arguments: [messageId]) else { continue }
                let signed: Data? = try row.decode(forColumn: "revocation")
                let revokedAt = signed.flatMap { try? Revocation(serializedBytes: $0) }.map(\.revokedAt.date) ?? now
                try db.execute(sql: """
                    UPDATE entry SET revoked_at = coalesce(revoked_at, ?), revoke_reason = coalesce(revoke_reason, ?),
                        revocation = coalesce(revocation, ?)
                    WHERE message_id = ?
                    """, arguments: [revokedAt.timeIntervalSince1970, try row.decode(String.self, forColumn: "reason"), signed, messageId])
                try db.cachedStatement(sql: "DELETE FROM revocation_outbox WHERE message_id = ?").execute(arguments: [messageId])
            }
        }
    }

    // MARK: Drafts

    /// Keeps a validated message as a draft: it stays in this journal and is never sent until
    /// `releaseDraft` moves it to the outbox.
    public func saveDraft(envelope: Envelope, payload: Data, now: Date = Date()) throws(StoreError) {
        try database.write { db in
            let known = try Bool.fetchOne(db, sql: """
                SELECT 1 FROM entry WHERE message_id = ? UNION SELECT 1 FROM draft WHERE message_id = ?
                """, arguments: [envelope.messageID, envelope.messageID]) ?? false
            if known { throw StoreError(.duplicate, "message \(envelope.messageID) is already in the journal") }
            try db.execute(sql: "INSERT INTO draft (message_id, type, envelope, payload, saved_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [envelope.messageID, envelope.type.name, try envelope.serializedData(), payload,
                                       now.timeIntervalSince1970])
        }
    }

    /// The drafts, oldest first: (message id, type, saved at).
    public func drafts() throws(StoreError) -> [(messageId: String, typeName: String, savedAt: Date)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT message_id, type, saved_at FROM draft ORDER BY saved_at").map { row in
                try (row.decode(forColumn: "message_id"), row.decode(forColumn: "type"), Date(timeIntervalSince1970: row.decode(forColumn: "saved_at")))
            }
        }
    }

    /// The drafts with their envelopes, oldest first (the console lists them).
    public func draftEnvelopes() throws(StoreError) -> [(envelope: Envelope, savedAt: Date)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT envelope, saved_at FROM draft ORDER BY saved_at").map { row in
                try (Envelope(serializedBytes: row.decode(Data.self, forColumn: "envelope")),
                     Date(timeIntervalSince1970: row.decode(forColumn: "saved_at")))
            }
        }
    }

    /// Discards a draft: it is deleted and was never sent. Returns false when there was none.
    @discardableResult
    public func discardDraft(messageId: String) throws(StoreError) -> Bool {
        try database.write { db in
            try db.execute(sql: "DELETE FROM draft WHERE message_id = ?", arguments: [messageId])
            return db.changesCount > 0
        }
    }

    /// Moves a draft into the journal and the outbox (as `enqueue` does), in one transaction.
    /// `sign` gets the draft's envelope and payload, validates them again and signs them.
    public func releaseDraft(messageId: String, sign: (Envelope, Data) throws -> JournalRecord, now: Date = Date()) throws -> Envelope {
        try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT envelope, payload FROM draft WHERE message_id = ?", arguments: [messageId]) else {
                throw StoreError(.notFound, "no draft \(messageId) in this journal")
            }
            let envelope = try Envelope(serializedBytes: try row.decode(Data.self, forColumn: "envelope"))
            let payload: Data = try row.decode(forColumn: "payload")
            let record = try sign(envelope, payload)
            try db.cachedStatement(sql: "DELETE FROM draft WHERE message_id = ?").execute(arguments: [messageId])
            var previous = try Self.lastHash(in: db)
            try Self.insertSent(db, record, after: &previous, now: now)
            return record.envelope
        }
    }

    // MARK: Session

    /// Records that the node daemon's session with the broker opened or closed (the console's
    /// status page reads it). Written only when the state changes.
    public func recordSession(open: Bool, at now: Date = Date()) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('session', ?)",
                           arguments: ["\(open ? "open" : "closed") \(now.timeIntervalSince1970)"])
        }
    }

    /// The last session state the node daemon recorded, and since when; nil if it never did.
    public func session() throws(StoreError) -> (open: Bool, since: Date)? {
        try database.read { db in
            guard let value = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'session'") else { return nil }
            let parts = value.split(separator: " ")
            guard parts.count == 2, let seconds = Double(parts[1]) else { return nil }
            return (parts[0] == "open", Date(timeIntervalSince1970: seconds))
        }
    }

    /// When the broker last acknowledged a publication of this node; nil if never.
    public func lastAcknowledgement() throws(StoreError) -> Date? {
        try database.read { db in
            try Double.fetchOne(db, sql: "SELECT max(acknowledged_at) FROM entry WHERE direction = ?", arguments: [Direction.sent.rawValue]).map(Date.init(timeIntervalSince1970:))
        }
    }

    // MARK: Backlog

    /// Whether this node should ask the broker for its backlog: it never did, and its journal
    /// has received nothing yet (a node that joined late, or a fresh journal).
    public func needsBacklog() throws(StoreError) -> Bool {
        try database.read { db in
            // A salvaged journal asks once more, for what the damage took (see `salvage`).
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM meta WHERE key = 'backlog-after-salvage'") ?? false { return true }
            let asked = try Bool.fetchOne(db, sql: "SELECT 1 FROM meta WHERE key = 'backlog-requested'") ?? false
            let received = try Bool.fetchOne(db, sql: "SELECT 1 FROM entry WHERE direction = ? LIMIT 1", arguments: [Direction.received.rawValue]) ?? false
            return !asked && !received
        }
    }

    /// Records that the broker answered a backlog request.
    public func markBacklogRequested(now: Date = Date()) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('backlog-requested', ?)",
                           arguments: [ISO8601DateFormatter().string(from: now)])
            try db.execute(sql: "DELETE FROM meta WHERE key = 'backlog-after-salvage'")
        }
    }

    // MARK: Deliveries

    /// Journals deliveries in one transaction (one fsync for the batch); returns how many were
    /// new. Duplicates (a message id already journaled) are skipped.
    @discardableResult
    public func recordDeliveries(_ deliveries: [IncomingDelivery], now: Date = Date()) throws(StoreError) -> Int {
        try database.write { db in
            var fresh = 0
            var previous = try Self.lastHash(in: db)
            for delivery in deliveries {
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM entry WHERE message_id = ?"),
                                     arguments: [delivery.record.envelope.messageID]) == true {
                    continue
                }
                try Self.insert(db, direction: .received, delivery.record, sequence: delivery.sequence,
                                redactedPaths: delivery.redactedPaths, after: &previous, now: now)
                fresh += 1
            }
            return fresh
        }
    }

    /// Journals a publication as sent and queues it in the outbox.
    private static func insertSent(_ db: Database, _ record: JournalRecord, after previous: inout Data, now: Date) throws {
        try insert(db, direction: .sent, record, sequence: nil, after: &previous, now: now)
        try db.cachedStatement(sql: "INSERT INTO outbox (message_id, queued_at) VALUES (?, ?)")
            .execute(arguments: [record.envelope.messageID, now.timeIntervalSince1970])
    }

    /// The hash of the journal's last entry, which the next entry links to.
    private static func lastHash(in db: Database) throws -> Data {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM entry ORDER BY position DESC LIMIT 1")) ?? HashChain.genesis
    }

    /// Appends an entry linked to `previous` (the last entry's hash, read once per transaction
    /// and carried along), which then becomes this entry's hash.
    private static func insert(_ db: Database, direction: Direction, _ record: JournalRecord,
                               sequence: UInt64?, redactedPaths: [String] = [], after previous: inout Data, now: Date) throws {
        let envelope = record.envelope
        let redacted = redactedPaths.joined(separator: ",")
        let hash = HashChain.link(previous: previous, fields: chainFields(
            messageId: envelope.messageID, direction: direction.rawValue, envelope: record.envelopeBytes, payload: record.payload,
            redacted: redacted, proof: record.proof, signedPayload: record.signedPayload, contentKeys: record.contentKeys))
        try db.cachedStatement(sql: """
            INSERT INTO entry (message_id, direction, type, originator, classification, subject, created_at,
                               recorded_at, acknowledged_at, broker_sequence, envelope, payload, redacted_paths, hash,
                               proof, signed_payload, content_keys)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                envelope.messageID, direction.rawValue, envelope.type.name, envelope.originator,
                envelope.handling.classification.name, envelope.subject,
                envelope.createdAt.date.timeIntervalSince1970, now.timeIntervalSince1970,
                direction == .received ? now.timeIntervalSince1970 : nil,
                sequence.map { Int64(bitPattern: $0) }, record.envelopeBytes, record.payload,
                redacted.isEmpty ? nil : redacted, hash, record.proof, record.signedPayload, record.contentKeys,
            ])
        previous = hash
    }

    /// What an entry's hash covers: everything that says what the message was and how it came,
    /// and its proof when it has one (entries from before signatures keep the hash they were
    /// written with). Bookkeeping that changes later (acknowledgement time) is outside the chain.
    static func chainFields(messageId: String, direction: String, envelope: Data, payload: Data, redacted: String,
                            proof: Data?, signedPayload: Data?, contentKeys: Data?) -> [Data] {
        let fields = [Data(messageId.utf8), Data(direction.utf8), envelope, payload, Data(redacted.utf8)]
        guard let proof else { return fields }
        return fields + [proof, signedPayload ?? Data(), contentKeys ?? Data()]
    }

    // MARK: Integrity

    /// Said when opening found that the last write had been torn by a crash (and dropped).
    public var recovery: String? { database.recovery }

    /// Checks the whole journal: SQLite's integrity check, then the hash chain from the first
    /// entry, reporting the first broken link. Never crashes on a damaged file.
    public func verify() throws(StoreError) -> ChainReport {
        try database.read { db in
            ChainVerifier.verify(db, sql: "SELECT * FROM entry ORDER BY position", recovery: database.recovery, what: "entry",
                                 migrator: Self.migrator, decode: Self.checkedChainRow, otherTables: Self.checkOtherTables)
        }
    }

    static func chainRow(_ row: Row) throws -> ChainRow {
        let messageId = try row.decode(String.self, forColumn: "message_id")
        let signed = row.hasColumn("proof")
        return ChainRow(position: try row.decode(forColumn: "position"), messageId: messageId, fields: chainFields(
            messageId: messageId, direction: try row.decode(forColumn: "direction"), envelope: try row.decode(forColumn: "envelope"),
            payload: try row.decode(forColumn: "payload"), redacted: try row.decode(String?.self, forColumn: "redacted_paths") ?? "",
            proof: signed ? try row.decode(Data?.self, forColumn: "proof") : nil,
            signedPayload: signed ? try row.decode(Data?.self, forColumn: "signed_payload") : nil,
            contentKeys: signed ? try row.decode(Data?.self, forColumn: "content_keys") : nil),
            hash: try row.decode(forColumn: "hash"))
    }

    /// The chain's view of a whole entry row, after checking that the row reads as every command
    /// reads it and that the columns copied from the envelope (which the chain does not cover)
    /// still say what the envelope says.
    static func checkedChainRow(_ row: Row) throws -> ChainRow {
        let item = try chainRow(row)
        let entry = try JournalEntry(row: row)
        let envelope = try entry.envelope()
        guard Direction(rawValue: try row.decode(forColumn: "direction")) != nil else {
            throw StoreError(.damaged, "entry \(entry.position): its direction is neither sent nor received")
        }
        // Within a millisecond: a Date's conversions round the time the column was written from.
        let disagreeing = [("message_id", envelope.messageID == entry.messageId), ("type", envelope.type.name == entry.typeName),
                           ("subject", envelope.subject == entry.subject), ("originator", envelope.originator == entry.originator),
                           ("classification", envelope.handling.classification.name == entry.classificationName),
                           ("created_at", abs(envelope.createdAt.date.timeIntervalSince1970 - entry.createdAt.timeIntervalSince1970) < 0.001)]
            .filter { !$0.1 }.map(\.0)
        guard disagreeing.isEmpty else {
            throw StoreError(.damaged, "entry \(entry.position): its \(disagreeing.joined(separator: ", ")) disagree with its envelope")
        }
        return item
    }

    /// Reads the outbox, revocations and drafts as the daemon and `ctbus publish` read them.
    static func checkOtherTables(_ db: Database) -> [String] {
        [
            ChainVerifier.unreadable("outbox", sql: "SELECT * FROM outbox", in: db) { row in
                _ = try (row.decode(Int64.self, forColumn: "seq"), row.decode(String.self, forColumn: "message_id"),
                         row.decode(Double.self, forColumn: "queued_at"), row.decode(String?.self, forColumn: "refused_code"))
            },
            ChainVerifier.unreadable("revocation queue", sql: "SELECT * FROM revocation_outbox", in: db) { row in
                _ = try (row.decode(String.self, forColumn: "message_id"), row.decode(String.self, forColumn: "reason"),
                         row.decode(Double?.self, forColumn: "last_sent_at"))
            },
            ChainVerifier.unreadable("drafts", sql: "SELECT * FROM draft", in: db) { row in
                _ = try (row.decode(String.self, forColumn: "message_id"), row.decode(String.self, forColumn: "type"),
                         row.decode(Data.self, forColumn: "envelope"), row.decode(Data.self, forColumn: "payload"),
                         row.decode(Double.self, forColumn: "saved_at"))
            },
        ].compactMap { $0 }
    }

    /// What a daemon checks before it writes to its journal (`ChainVerifier.startProblem`).
    /// Throws `StoreError.damaged` naming the file, the damage and the commands that help.
    public func checkAtStart() throws(StoreError) -> String? {
        let (problem, skipped) = try database.read { db in
            ChainVerifier.startCheck(db, table: "entry", what: "entry", migrator: Self.migrator, full: { db in
                ChainVerifier.verify(db, sql: "SELECT * FROM entry ORDER BY position", recovery: nil, what: "entry",
                                     migrator: Self.migrator, decode: Self.checkedChainRow, otherTables: Self.checkOtherTables)
            }, lastTwo: "SELECT * FROM entry ORDER BY position DESC LIMIT 2", decode: Self.chainRow)
        }
        guard let problem else { return skipped }
        throw StoreError(.damaged, "journal \(path) is damaged: \(problem). Nothing was written to it. "
                         + "See `ctbus journal verify --journal \(path)`; `ctbus journal salvage --journal \(path)` "
                         + "copies every intact entry into a new journal (README, Damaged files)")
    }

    // MARK: Reading

    /// Journal entries matching `filter`, oldest first.
    public func entries(matching filter: JournalFilter = JournalFilter()) throws(StoreError) -> [JournalEntry] {
        var clauses: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let type = filter.type { clauses.append("type = ?"); arguments.append(type.name) }
        if let originator = filter.originator { clauses.append("originator = ?"); arguments.append(originator) }
        if let subject = filter.subject { clauses.append("subject = ?"); arguments.append(subject) }
        if let classification = filter.classification { clauses.append("classification = ?"); arguments.append(classification.name) }
        if let direction = filter.direction { clauses.append("direction = ?"); arguments.append(direction.rawValue) }
        if let since = filter.since { clauses.append("created_at >= ?"); arguments.append(since.timeIntervalSince1970) }
        if let until = filter.until { clauses.append("created_at < ?"); arguments.append(until.timeIntervalSince1970) }
        if let before = filter.before { clauses.append("entry.position < ?"); arguments.append(before) }
        if let after = filter.after { clauses.append("entry.position > ?"); arguments.append(after) }
        if let words = filter.words {
            clauses.append("entry.position IN (SELECT rowid FROM entry_text WHERE entry_text MATCH ?)")
            arguments.append(words)
        }
        let condition = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT entry.*, outbox.refused_code, outbox.refused_detail FROM entry
                LEFT JOIN outbox ON outbox.message_id = entry.message_id \(condition)
                ORDER BY position \(filter.newestFirst ? "DESC" : "") \(filter.limit.map { "LIMIT \(max(0, $0))" } ?? "")
                """,
                             arguments: StatementArguments(arguments)).map { try JournalEntry(row: $0) }
        }
    }

    /// Every entry in journal order, one at a time (a cursor: a journal may hold millions).
    /// A row that does not read stops the walk with its error.
    public func forEachEntry(_ body: (JournalEntry) throws -> Void) throws {
        try database.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM entry ORDER BY position")
            while let row = try rows.next() { try body(try JournalEntry(row: row)) }
        }
    }

    /// The entry of one message id, or nil.
    public func entry(messageId: String) throws(StoreError) -> JournalEntry? {
        try database.read { db in try Self.entry(db, messageId: messageId) }
    }

    private static func entry(_ db: Database, messageId: String) throws -> JournalEntry? {
        try Row.fetchOne(db, sql: """
            SELECT entry.*, outbox.refused_code, outbox.refused_detail FROM entry
            LEFT JOIN outbox ON outbox.message_id = entry.message_id WHERE entry.message_id = ?
            """, arguments: [messageId])
            .map { try JournalEntry(row: $0) }
    }

    /// The position of the newest entry (0 for an empty journal): how many entries were ever
    /// written, read from the primary key without scanning the table.
    public func lastPosition() throws(StoreError) -> Int64 {
        try database.read { db in try Int64.fetchOne(db, sql: "SELECT max(position) FROM entry") ?? 0 }
    }

    /// The number of entries that hold this message id (0 or 1, by the unique index; tests check it).
    public func count(messageId: String? = nil) throws(StoreError) -> Int {
        try database.read { db in
            if let messageId {
                return try Int.fetchOne(db, sql: "SELECT count(*) FROM entry WHERE message_id = ?", arguments: [messageId]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM entry") ?? 0
        }
    }
}

/// A message as the journal keeps it: the signed bytes, the payload as this node holds it and
/// the author's proof (PROTOCOL.md 7.2).
public struct JournalRecord: Sendable {
    /// `envelopeBytes` decoded, for the columns the journal indexes.
    public let envelope: Envelope
    /// The exact envelope bytes the originator signed.
    public let envelopeBytes: Data
    /// The payload as this node holds it: the signed payload with the disclosures it has put back.
    public let payload: Data
    /// The signed payload, when it differs from `payload` (a partial restriction cleared fields).
    public let signedPayload: Data?
    /// The serialized Proof, with the disclosures this node holds (a sealed message's travel
    /// sealed: none here); nil only for entries written before signatures.
    public let proof: Data?
    /// A sealed message's content keys as opened here (32 bytes each: the payload's, then the
    /// disclosures'), so that the journal's copy can be checked against the sealed bytes signed.
    public let contentKeys: Data?

    public init(envelope: Envelope, envelopeBytes: Data, payload: Data, signedPayload: Data?, proof: Data?, contentKeys: Data? = nil) {
        self.envelope = envelope
        self.envelopeBytes = envelopeBytes
        self.payload = payload
        self.signedPayload = signedPayload == payload ? nil : signedPayload
        self.proof = proof
        self.contentKeys = contentKeys
    }
}

/// A delivery on its way into the journal, checked.
public struct IncomingDelivery: Sendable {
    public let record: JournalRecord
    public let sequence: UInt64
    /// The restricted paths whose values this node did not get.
    public let redactedPaths: [String]

    public init(_ record: JournalRecord, sequence: UInt64, redactedPaths: [String] = []) {
        self.record = record
        self.sequence = sequence
        self.redactedPaths = redactedPaths
    }
}

/// A publication waiting for the broker's acknowledgement, as the bytes to send.
public struct OutboxItem: Sendable {
    /// The outbox's own order: later publications have higher numbers.
    public let seq: Int64
    public let messageId: String
    /// The signed envelope bytes.
    public let envelope: Data
    /// The signed payload.
    public let payload: Data
    /// The serialized Proof; nil for an entry queued before signatures (the broker refuses it).
    public let proof: Data?
}

/// Where a publication stands in the publishing node's journal.
public enum PublicationStatus: Sendable, Equatable {
    /// In the outbox, not acknowledged yet.
    case queued
    /// Stored by the broker.
    case acknowledged
    /// The broker refused it with this error code; it will not be sent again.
    case refused(code: String, detail: String)
}

public enum Direction: String, Sendable, CaseIterable {
    case sent, received
}

/// Which journal entries to list; nil fields do not filter.
public struct JournalFilter: Sendable {
    public var type: MessageType?
    public var originator: String?
    /// The Member State (or region) the message is about.
    public var subject: String?
    public var classification: Classification?
    public var direction: Direction?
    /// Created at or after.
    public var since: Date?
    /// Created before.
    public var until: Date?
    /// Newest first (the pages of a listing) instead of journal order.
    public var newestFirst = false
    /// Only entries before this position (the next page of a newest-first listing).
    public var before: Int64?
    /// At most this many entries.
    public var limit: Int?
    /// Only entries after this position.
    public var after: Int64?
    /// Full-text search: an FTS5 query (`NodeJournal.searchQuery` makes one from a person's
    /// words); only entries indexed so far can match (`searchStatus`).
    public var words: String?

    public init(type: MessageType? = nil, originator: String? = nil, subject: String? = nil,
                classification: Classification? = nil, direction: Direction? = nil,
                since: Date? = nil, until: Date? = nil, newestFirst: Bool = false, before: Int64? = nil, limit: Int? = nil) {
        self.type = type
        self.originator = originator
        self.subject = subject
        self.classification = classification
        self.direction = direction
        self.since = since
        self.until = until
        self.newestFirst = newestFirst
        self.before = before
        self.limit = limit
    }

    public init(type: MessageType? = nil, after: Int64) {
        self.type = type
        self.after = after
    }
}

/// One message in a journal.
public struct JournalEntry: Sendable {
    public let position: Int64
    public let messageId: String
    public let direction: Direction
    public let typeName: String
    public let originator: String
    public let classificationName: String
    public let subject: String
    public let createdAt: Date
    public let recordedAt: Date
    public let acknowledgedAt: Date?
    public let brokerSequence: Int64?
    /// The envelope's wire bytes as journaled.
    public let envelopeBytes: Data
    /// The payload's wire bytes, exactly as published (or as redacted for this node).
    public let payload: Data
    /// Fields the broker removed for this node under a partial Member State restriction (the
    /// journal records that a redaction happened and which paths, never the removed values).
    public let redactedPaths: [String]
    /// Set when the originator revoked the message (it stays in the journal, for audit).
    public let revokedAt: Date?
    public let revokeReason: String?
    /// The originator's signed revocation, serialized (nil when not revoked, or revoked before
    /// revocations were signed).
    public let revocation: Data?
    /// For a publication of this node the broker refused for good: the error code and detail
    /// (it is not sent again).
    public let refusedCode: String?
    public let refusedDetail: String?
    /// The entry's link in the journal's hash chain.
    public let hash: Data
    /// The author's proof (serialized Proof with the disclosures this node holds); nil for an
    /// entry written before signatures.
    public let proof: Data?
    /// The payload the signature covers, when it differs from `payload`.
    public let signedPayload: Data?
    /// A sealed message's content keys as opened by this node (`JournalRecord.contentKeys`).
    public let contentKeys: Data?

    /// Decodes a row; a NULL or a value of the wrong type (a damaged file) throws.
    init(row: Row) throws {
        position = try row.decode(forColumn: "position")
        messageId = try row.decode(forColumn: "message_id")
        let directionName: String = try row.decode(forColumn: "direction")
        guard let direction = Direction(rawValue: directionName) else {
            throw StoreError(.damaged, "journal entry \(messageId): direction is neither sent nor received")
        }
        self.direction = direction
        typeName = try row.decode(forColumn: "type")
        originator = try row.decode(forColumn: "originator")
        classificationName = try row.decode(forColumn: "classification")
        subject = try row.decode(forColumn: "subject")
        createdAt = Date(timeIntervalSince1970: try row.decode(forColumn: "created_at"))
        recordedAt = Date(timeIntervalSince1970: try row.decode(forColumn: "recorded_at"))
        acknowledgedAt = try row.decode(Double?.self, forColumn: "acknowledged_at").map(Date.init(timeIntervalSince1970:))
        brokerSequence = try row.decode(forColumn: "broker_sequence")
        envelopeBytes = try row.decode(forColumn: "envelope")
        payload = try row.decode(forColumn: "payload")
        redactedPaths = try row.decode(String?.self, forColumn: "redacted_paths")?.split(separator: ",").map(String.init) ?? []
        revokedAt = try row.decode(Double?.self, forColumn: "revoked_at").map(Date.init(timeIntervalSince1970:))
        revokeReason = try row.decode(forColumn: "revoke_reason")
        hash = try row.decode(Data.self, forColumn: "hash")
        refusedCode = try row.decode(String?.self, forColumn: "refused_code")
        refusedDetail = try row.decode(String?.self, forColumn: "refused_detail")
        proof = row.hasColumn("proof") ? try row.decode(Data?.self, forColumn: "proof") : nil
        signedPayload = row.hasColumn("signed_payload") ? try row.decode(Data?.self, forColumn: "signed_payload") : nil
        contentKeys = row.hasColumn("content_keys") ? try row.decode(Data?.self, forColumn: "content_keys") : nil
        revocation = row.hasColumn("revocation") ? try row.decode(Data?.self, forColumn: "revocation") : nil
    }

    /// The envelope, decoded.
    public func envelope() throws(BusError) -> Envelope {
        do {
            return try Envelope(serializedBytes: envelopeBytes)
        } catch {
            throw BusError(.malformedFrame, "journal entry \(messageId): envelope does not decode")
        }
    }

    /// The whole message, decoded (for `journal show` and `export`).
    public func message() throws(BusError) -> BusMessage {
        let envelope = try envelope()
        var message = BusMessage()
        message.envelope = envelope
        message.payload = try BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: payload)
        return message
    }
}
