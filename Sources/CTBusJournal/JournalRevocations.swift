import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// Revocations: those this node queued for the broker, and the marks on revoked entries, each
/// with the originator's signed statement.
public struct JournalRevocations: Sendable {
    let database: StoreDatabase

    /// Queues the revocation of a message this node published, signed by this node
    /// (`Revocation.signed`); the daemon sends it until the broker acknowledges. Throws `notFound`
    /// for a message this node did not send.
    public func queue(_ revocation: Revocation, now: Date = Date()) throws(StoreError) {
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

    /// Revocations waiting for the broker, oldest first, with when each was last sent. One whose
    /// stored statement no longer decodes (a damaged file) comes unsigned, and the broker refuses it.
    public func pending() throws(StoreError) -> [(revocation: Revocation, lastSentAt: Date?)] {
        try database.read { db in try Self.pending(db, where: "") }
    }

    /// An entry and its revocation still waiting for the broker, read together: a revocation
    /// confirmed between two reads would otherwise show as neither pending nor done.
    public func entryWithPending(messageId: String) throws(StoreError)
        -> (entry: JournalEntry, pending: (revocation: Revocation, lastSentAt: Date?)?)? {
        try database.read { db in
            guard let entry = try NodeJournal.entry(db, messageId: messageId) else { return nil }
            return (entry, try Self.pending(db, where: "WHERE message_id = ?", [messageId]).first)
        }
    }

    static func pending(_ db: Database, where condition: String,
                        _ arguments: StatementArguments = []) throws -> [(revocation: Revocation, lastSentAt: Date?)] {
        try Row.fetchAll(db, sql: "SELECT message_id, reason, last_sent_at, revocation FROM revocation_outbox \(condition) ORDER BY queued_at",
                         arguments: arguments).map { row in
            var revocation = (try? Revocation(serializedBytes: try row.decode(Data.self, forColumn: "revocation"))) ?? Revocation()
            revocation.messageID = try row.decode(forColumn: "message_id")
            revocation.reason = try row.decode(forColumn: "reason")
            return (revocation, try row.decode(Double?.self, forColumn: "last_sent_at").map(Date.init(timeIntervalSince1970:)))
        }
    }

    public func markSent(_ messageId: String, at now: Date = Date()) throws(StoreError) {
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
                try Self.mark(revocation.messageID, revokedAt: revocation.revokedAt.date, reason: revocation.reason,
                              statement: try revocation.serializedData(), in: db)
            }
            return refused
        }
    }

    /// The broker acknowledged these revocations of this node's messages: mark the entries revoked
    /// as signed when they were queued.
    public func confirm(_ messageIds: [String], now: Date = Date()) throws(StoreError) {
        try database.write { db in
            for messageId in messageIds {
                guard let row = try Row.fetchOne(db, sql: "SELECT reason, revocation FROM revocation_outbox WHERE message_id = ?",
                                                 arguments: [messageId]) else { continue }
                let signed: Data = try row.decode(forColumn: "revocation")
                let revokedAt = (try? Revocation(serializedBytes: signed)).map(\.revokedAt.date) ?? now
                try Self.mark(messageId, revokedAt: revokedAt, reason: try row.decode(String.self, forColumn: "reason"), statement: signed, in: db)
            }
        }
    }

    /// Marks an entry revoked with the originator's signed statement (a mark already there
    /// stays), and drops its revocation waiting for the broker.
    private static func mark(_ messageId: String, revokedAt: Date, reason: String, statement: Data, in db: Database) throws {
        try db.cachedStatement(sql: """
            UPDATE entry SET revoked_at = coalesce(revoked_at, ?), revoke_reason = coalesce(revoke_reason, ?),
                revocation = coalesce(revocation, ?)
            WHERE message_id = ?
            """).execute(arguments: [revokedAt.timeIntervalSince1970, reason, statement, messageId])
        try db.cachedStatement(sql: "DELETE FROM revocation_outbox WHERE message_id = ?").execute(arguments: [messageId])
    }
}
