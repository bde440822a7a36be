import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// What `JournalSalvage.salvage` kept and what it could not.
public struct SalvageReport: Sendable {
    public struct Lost: Sendable {
        public let position: Int64
        /// Empty when the entry was too damaged to tell.
        public let messageId: String
        public let direction: String?
        public let reason: String
    }

    /// Entries copied, each verified against its hash.
    public let kept: Int
    public let lost: [Lost]
    /// Unacknowledged publications back in the new journal's outbox.
    public let outbox: Int
    public let drafts: Int
    /// Set when reading stopped early (the rest of the file could not be read at all).
    public let unreadableTail: String?
    /// Kept entries that were revoked, but whose signed revocation no longer reads: they are
    /// copied as not revoked (the statement is what proves a revocation), by message id.
    public let revocationsLost: [String]
}

/// Salvage of a damaged node journal into a new one.
public enum JournalSalvage {
    /// Copies every entry of the journal at `damaged` that still verifies (readable, and its
    /// content matches its hash given the stored hash before it) into a new journal at
    /// `newPath`, re-linked into a fresh chain, with the outbox, pending revocations, drafts,
    /// subscriptions and unsent notifications that belong to kept entries. The damaged file is only read (read-only: nothing is written to it).
    /// The new journal asks the broker for its backlog once, so received messages the damage
    /// took come back (deduplicated by id); lost sent messages are listed in the report.
    public static func salvage(from damaged: String, into newPath: String, now: Date = Date()) throws(StoreError) -> SalvageReport {
        guard !FileManager.default.fileExists(atPath: newPath) else {
            throw StoreError(.duplicate, "\(newPath) exists already; salvage writes a new journal")
        }
        // A file of another kind or schema version is not a damaged journal: it is refused.
        try NodeJournal.refuseOtherSchema(path: damaged)
        let source = readDamaged(damaged)
        let (kept, lost) = verifiedEntries(source.rows, now: now)
        let (outboxCount, draftCount) = try write(kept, with: source, into: newPath, now: now)
        return SalvageReport(kept: kept.count, lost: lost, outbox: outboxCount, drafts: draftCount, unreadableTail: source.unreadableTail,
                             revocationsLost: kept.filter(\.revocationLost).map(\.messageId))
    }

    /// What could be read of a damaged journal, row by row.
    private struct DamagedRows {
        var rows: [(position: Int64, row: Row?)] = []
        var unreadableTail: String?
        var outboxRows: [Row] = []
        var revocationRows: [Row] = []
        var draftRows: [Row] = []
        var subscriptionRows: [Row] = []
        /// Notifications not sent yet, with the message id of their entry.
        var notificationRows: [Row] = []
    }

    /// Reads the damaged file read-only, one entry at a time by position.
    private static func readDamaged(_ damaged: String) -> DamagedRows {
        var source = DamagedRows()
        do {
            let journal = try NodeJournal(path: damaged, access: .readOnly)
            try journal.database.read { db in
                // One entry at a time, by position: damage in one page loses the entries on it, not the rest.
                switch Result(catching: { try Int64.fetchOne(db, sql: "SELECT max(position) FROM entry") }) {
                case .success(let last):
                    for position in stride(from: Int64(1), through: last ?? 0, by: 1) {
                        source.rows.append((position, try? Row.fetchOne(db, sql: "SELECT * FROM entry WHERE position = ?", arguments: [position])))
                    }
                case .failure:
                    do {
                        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM entry ORDER BY position")
                        while let row = try cursor.next() {
                            source.rows.append(((try? row.decode(Int64.self, forColumn: "position")) ?? Int64(source.rows.count + 1), row.copy()))
                        }
                    } catch {
                        source.unreadableTail = "entries after the \(source.rows.count)th could not be read (\(ChainVerifier.describe(error)))"
                    }
                }
                source.outboxRows = (try? Row.fetchAll(db, sql: "SELECT * FROM outbox ORDER BY seq")) ?? []
                source.revocationRows = (try? Row.fetchAll(db, sql: "SELECT * FROM revocation_outbox")) ?? []
                source.draftRows = (try? Row.fetchAll(db, sql: "SELECT * FROM draft ORDER BY saved_at")) ?? []
                // A journal of an older schema has neither table: nothing to carry.
                source.subscriptionRows = (try? Row.fetchAll(db, sql: "SELECT * FROM subscription ORDER BY created_at")) ?? []
                source.notificationRows = (try? Row.fetchAll(db, sql: """
                    SELECT n.*, e.message_id FROM notification n JOIN entry e ON e.position = n.position
                    WHERE n.sent_at IS NULL AND n.failed_at IS NULL ORDER BY n.id
                    """)) ?? []
            }
        } catch {
            source.unreadableTail = "the file could not be opened as a journal (\(error.description))"
        }

        return source
    }

    /// The entries whose hashed bytes verify against the chain as stored, and why each other one is lost.
    private static func verifiedEntries(_ rows: [(position: Int64, row: Row?)], now: Date) -> ([SalvagedEntry], [SalvageReport.Lost]) {
        var kept: [SalvagedEntry] = []
        var lost: [SalvageReport.Lost] = []
        var previousHash: Data? = HashChain.genesis
        for (position, row) in rows {
            guard let row, let item = try? JournalChain.chainRow(row) else {
                lost.append(.init(position: position, messageId: ((try? row?.decode(String?.self, forColumn: "message_id")) ?? nil) ?? "",
                                  direction: (try? row?.decode(String?.self, forColumn: "direction")) ?? nil,
                                  reason: row == nil ? "unreadable" : "a field is missing or of the wrong type"))
                previousHash = nil
                continue
            }
            defer { previousHash = item.hash }
            let direction = (try? row.decode(String.self, forColumn: "direction")) ?? ""
            guard let previousHash else {
                lost.append(.init(position: position, messageId: item.messageId, direction: direction,
                                  reason: "the entry before it is unreadable, so its link cannot be checked"))
                continue
            }
            guard HashChain.link(previous: previousHash, fields: item.fields) == item.hash else {
                lost.append(.init(position: position, messageId: item.messageId, direction: direction,
                                  reason: "its content does not match its hash"))
                continue
            }
            guard let entry = SalvagedEntry(row, messageId: item.messageId, now: now) else {
                lost.append(.init(position: position, messageId: item.messageId, direction: direction,
                                  reason: "its hashed envelope does not decode or names another message"))
                continue
            }
            kept.append(entry)
        }

        return (kept, lost)
    }

    /// Writes a new journal with the kept entries re-linked, and the outbox, pending revocations
    /// and drafts that belong to them. Returns the outbox entries and drafts written.
    private static func write(_ kept: [SalvagedEntry], with source: DamagedRows, into newPath: String,
                              now: Date) throws(StoreError) -> (outbox: Int, drafts: Int) {
        let keptIds = Set(kept.map(\.messageId))
        let journal = try NodeJournal(path: newPath)
        var outboxCount = 0
        var draftCount = 0
        try journal.database.write { db in
            var previous = HashChain.genesis
            for entry in kept {
                let hash = HashChain.link(previous: previous, fields: JournalChain.chainFields(
                    messageId: entry.messageId, direction: entry.direction, envelope: entry.envelopeBytes,
                    payload: entry.payload, redacted: entry.redacted, proof: entry.proof,
                    signedPayload: entry.signedPayload, contentKeys: entry.contentKeys))
                // The columns beside the hashed bytes are written anew from the envelope, so damage
                // there costs nothing and the new journal verifies.
                let envelope = entry.envelope
                try db.execute(sql: """
                    INSERT INTO entry (message_id, direction, type, originator, classification, subject, created_at, recorded_at,
                                       acknowledged_at, broker_sequence, envelope, payload, redacted_paths, hash, revoked_at, revoke_reason,
                                       proof, signed_payload, content_keys, revocation)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [
                        entry.messageId, entry.direction, envelope.type.name, envelope.originator, envelope.handling.classification.name,
                        envelope.subject, envelope.createdAt.date.timeIntervalSince1970, entry.recordedAt.timeIntervalSince1970,
                        entry.acknowledgedAt?.timeIntervalSince1970, entry.brokerSequence, entry.envelopeBytes, entry.payload,
                        entry.redacted.isEmpty ? nil : entry.redacted, hash,
                        entry.revokedAt?.timeIntervalSince1970, entry.revokeReason, entry.proof, entry.signedPayload, entry.contentKeys,
                        entry.revocation,
                    ])
                previous = hash
            }
            // Unacknowledged publications go back to the outbox (in their order), refusals stay recorded.
            var inOutbox = Set<String>()
            for row in source.outboxRows {
                guard let id = try? row.decode(String.self, forColumn: "message_id"), keptIds.contains(id) else { continue }
                try db.execute(sql: "INSERT INTO outbox (message_id, queued_at, refused_code, refused_detail) VALUES (?, ?, ?, ?)",
                               arguments: [id, (try? row.decode(Double.self, forColumn: "queued_at")) ?? now.timeIntervalSince1970,
                                           (try? row.decode(String?.self, forColumn: "refused_code")) ?? nil,
                                           (try? row.decode(String?.self, forColumn: "refused_detail")) ?? nil])
                inOutbox.insert(id)
                outboxCount += 1
            }
            // A sent entry without acknowledgement whose outbox row was lost is sent again (the broker deduplicates).
            for entry in kept where entry.direction == Direction.sent.rawValue && entry.acknowledgedAt == nil && !inOutbox.contains(entry.messageId) {
                try db.execute(sql: "INSERT INTO outbox (message_id, queued_at) VALUES (?, ?)",
                               arguments: [entry.messageId, now.timeIntervalSince1970])
                outboxCount += 1
            }
            for row in source.revocationRows {
                guard let id = try? row.decode(String.self, forColumn: "message_id"), keptIds.contains(id),
                      let reason = try? row.decode(String.self, forColumn: "reason"),
                      let signed = try? row.decode(Data.self, forColumn: "revocation") else { continue }
                try db.execute(sql: "INSERT INTO revocation_outbox (message_id, reason, queued_at, revocation) VALUES (?, ?, ?, ?)",
                               arguments: [id, reason, now.timeIntervalSince1970, signed])
            }
            for row in source.draftRows {
                guard let id = try? row.decode(String.self, forColumn: "message_id"), let type = try? row.decode(String.self, forColumn: "type"),
                      let envelope = try? row.decode(Data.self, forColumn: "envelope"),
                      let payload = try? row.decode(Data.self, forColumn: "payload"),
                      (try? Envelope(serializedBytes: envelope)) != nil else { continue }
                try db.execute(sql: "INSERT INTO draft (message_id, type, envelope, payload, saved_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [id, type, envelope, payload,
                                           (try? row.decode(Double.self, forColumn: "saved_at")) ?? now.timeIntervalSince1970])
                draftCount += 1
            }
            // Subscriptions, and what they had still to send about kept entries (under the same
            // sending ids, so a receiver still recognises one it already took).
            var subscriptions = Set<String>()
            for row in source.subscriptionRows {
                guard let subscription = try? Subscription(row: row) else { continue }
                try subscription.insert(db, now: Date(timeIntervalSince1970: (try? row.decode(Double.self, forColumn: "created_at")) ?? now.timeIntervalSince1970))
                subscriptions.insert(subscription.id)
            }
            for row in source.notificationRows {
                guard let id = try? row.decode(String.self, forColumn: "message_id"), keptIds.contains(id),
                      let subscription = try? row.decode(String.self, forColumn: "subscription_id"), subscriptions.contains(subscription),
                      let position = try Int64.fetchOne(db, sql: "SELECT position FROM entry WHERE message_id = ?", arguments: [id]) else { continue }
                try db.execute(sql: """
                    INSERT INTO notification (subscription_id, position, queued_at, due_at, sending, attempts, last_error, last_attempt_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [subscription, position, (try? row.decode(Double.self, forColumn: "queued_at")) ?? now.timeIntervalSince1970,
                                      (try? row.decode(Double.self, forColumn: "due_at")) ?? now.timeIntervalSince1970,
                                      (try? row.decode(String?.self, forColumn: "sending")) ?? nil,
                                      (try? row.decode(Int.self, forColumn: "attempts")) ?? 0,
                                      (try? row.decode(String?.self, forColumn: "last_error")) ?? nil,
                                      (try? row.decode(Double?.self, forColumn: "last_attempt_at")) ?? nil])
            }
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('backlog-after-salvage', ?)",
                           arguments: [UTCTime.iso8601(now)])
        }
        return (outboxCount, draftCount)
    }
}

/// An entry whose hashed bytes verified, as salvage copies it: those bytes, the bookkeeping
/// columns where they still read (each alone: one damaged value does not cost the entry), and the
/// envelope the other columns are written from.
struct SalvagedEntry {
    let messageId: String
    let direction: String
    let envelopeBytes: Data
    let envelope: Envelope
    let payload: Data
    let redacted: String
    let proof: Data
    let signedPayload: Data?
    let contentKeys: Data?
    let recordedAt: Date
    let acknowledgedAt: Date?
    let brokerSequence: Int64?
    let revokedAt: Date?
    let revokeReason: String?
    let revocation: Data?
    /// The row says the entry was revoked, but its signed statement does not read.
    let revocationLost: Bool

    init?(_ row: Row, messageId: String, now: Date) {
        func value<T: DatabaseValueConvertible>(_ column: String, _: T.Type) -> T? {
            (try? row.decode(T?.self, forColumn: column)) ?? nil
        }
        guard let direction = value("direction", String.self), let envelopeBytes = value("envelope", Data.self),
              let envelope = try? Envelope(serializedBytes: envelopeBytes), envelope.messageID == messageId,
              let payload = value("payload", Data.self), let proof = value("proof", Data.self) else { return nil }
        self.messageId = messageId
        self.direction = direction
        self.envelopeBytes = envelopeBytes
        self.envelope = envelope
        self.payload = payload
        redacted = value("redacted_paths", String.self) ?? ""
        self.proof = proof
        signedPayload = value("signed_payload", Data.self)
        contentKeys = value("content_keys", Data.self)
        recordedAt = value("recorded_at", Double.self).map(Date.init(timeIntervalSince1970:)) ?? now
        acknowledgedAt = value("acknowledged_at", Double.self).map(Date.init(timeIntervalSince1970:))
        brokerSequence = value("broker_sequence", Int64.self)
        // Revoked when the originator's signed statement still reads: it is what proves the
        // revocation, and the columns beside it are filled from it where they were damaged.
        let statement = value("revocation", Data.self).flatMap { bytes in
            (try? Revocation(serializedBytes: bytes)).flatMap { $0.messageID == messageId ? (bytes, $0) : nil }
        }
        revocation = statement?.0
        revokedAt = statement.map { value("revoked_at", Double.self).map(Date.init(timeIntervalSince1970:)) ?? $0.1.revokedAt.date }
        revokeReason = statement.map { value("revoke_reason", String.self) ?? $0.1.reason }
        revocationLost = statement == nil && (value("revocation", Data.self) != nil || value("revoked_at", Double.self) != nil)
    }
}
