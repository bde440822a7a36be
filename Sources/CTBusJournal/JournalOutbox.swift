import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// The publications of this node waiting for the broker's acknowledgement, and the refusals it
/// answered for good. The outbox sends the exact bytes journaled when they were signed.
public struct JournalOutbox: Sendable {
    let database: StoreDatabase

    /// Puts signed messages into the outbox (and the journal, as sent) in one transaction: all
    /// or none. Works while the node daemon and the broker are down; the daemon sends them when
    /// it can, as the exact bytes signed here.
    public func enqueue(_ records: [JournalRecord], now: Date = Date()) throws(StoreError) {
        try database.write { db in
            var previous = try JournalChain.lastHash(in: db)
            for record in records {
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM entry WHERE message_id = ?"), arguments: [record.envelope.messageID]) == true {
                    throw StoreError(.duplicate, "message \(record.envelope.messageID) is already in the journal")
                }
                try JournalChain.insertSent(db, record, after: &previous, now: now)
            }
        }
    }

    /// Outbox entries queued after `seq` (an `OutboxItem.seq`), in the order they were queued.
    /// The outbox drives the query (CROSS JOIN keeps SQLite from scanning the whole journal).
    public func items(after seq: Int64 = 0, limit: Int = 100) throws(StoreError) -> [OutboxItem] {
        try database.read { db in
            try OutboxItem.fetchAll(db.cachedStatement(sql: """
                SELECT o.seq, e.message_id, e.envelope, coalesce(e.signed_payload, e.payload) AS payload, e.proof FROM outbox o
                CROSS JOIN entry e ON e.message_id = o.message_id
                WHERE o.seq > ? AND o.refused_code IS NULL
                ORDER BY o.seq LIMIT ?
                """), arguments: [seq, limit])
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
    public func counts() throws(StoreError) -> (waiting: Int, refused: Int) {
        try database.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT count(*) FILTER (WHERE refused_code IS NULL) AS waiting, count(*) FILTER (WHERE refused_code IS NOT NULL) AS refused
                FROM outbox
                """)
            return try (row?.decode(Int.self, forColumn: "waiting") ?? 0, row?.decode(Int.self, forColumn: "refused") ?? 0)
        }
    }

    /// Where a publication of this node stands: queued, acknowledged, or refused with a code.
    public func status(messageId: String) throws(StoreError) -> PublicationStatus? {
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
}
