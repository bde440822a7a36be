import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// Validated messages kept in the journal and never sent until released into the outbox.
public struct JournalDrafts: Sendable {
    let database: StoreDatabase

    /// Keeps a validated message as a draft: it stays in this journal and is never sent until
    /// `release` moves it to the outbox.
    public func save(envelope: Envelope, payload: Data, now: Date = Date()) throws(StoreError) {
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
    public func list() throws(StoreError) -> [(messageId: String, typeName: String, savedAt: Date)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT message_id, type, saved_at FROM draft ORDER BY saved_at").map { row in
                try (row.decode(forColumn: "message_id"), row.decode(forColumn: "type"), Date(timeIntervalSince1970: row.decode(forColumn: "saved_at")))
            }
        }
    }

    /// The drafts with their envelopes and payloads, oldest first (the console lists them).
    public func all() throws(StoreError) -> [(envelope: Envelope, payload: BusMessage.OneOf_Payload?, savedAt: Date)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT type, envelope, payload, saved_at FROM draft ORDER BY saved_at").map { row in
                let type = MessageType(name: try row.decode(String.self, forColumn: "type")) ?? .unspecified
                return try (Envelope(serializedBytes: row.decode(Data.self, forColumn: "envelope")),
                            try? BusMessage.OneOf_Payload.decode(type: type, bytes: row.decode(Data.self, forColumn: "payload")),
                            Date(timeIntervalSince1970: row.decode(forColumn: "saved_at")))
            }
        }
    }

    /// Discards a draft: it is deleted and was never sent. Returns false when there was none.
    @discardableResult
    public func discard(messageId: String) throws(StoreError) -> Bool {
        try database.write { db in
            try db.execute(sql: "DELETE FROM draft WHERE message_id = ?", arguments: [messageId])
            return db.changesCount > 0
        }
    }

    /// Moves a draft into the journal and the outbox (as `JournalOutbox.enqueue` does), in one transaction.
    /// `sign` gets the draft's envelope and payload, validates them again and signs them.
    public func release(messageId: String, sign: (Envelope, Data) throws -> JournalRecord, now: Date = Date()) throws -> Envelope {
        try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT envelope, payload FROM draft WHERE message_id = ?", arguments: [messageId]) else {
                throw StoreError(.notFound, "no draft \(messageId) in this journal")
            }
            let envelope = try Envelope(serializedBytes: try row.decode(Data.self, forColumn: "envelope"))
            let payload: Data = try row.decode(forColumn: "payload")
            let record = try sign(envelope, payload)
            try db.cachedStatement(sql: "DELETE FROM draft WHERE message_id = ?").execute(arguments: [messageId])
            var previous = try JournalChain.lastHash(in: db)
            try JournalChain.insertSent(db, record, after: &previous, now: now)
            return record.envelope
        }
    }
}
