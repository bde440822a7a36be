import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

extension NodeJournal {
    /// Said when opening found that the last write had been torn by a crash (and dropped).
    public var recovery: String? { database.recovery }

    /// Checks the whole journal: SQLite's integrity check, then the hash chain from the first
    /// entry, reporting the first broken link. Never crashes on a damaged file.
    public func verify() throws(StoreError) -> ChainReport {
        try database.read { db in
            ChainVerifier.verify(db, sql: "SELECT * FROM entry ORDER BY position", recovery: database.recovery, what: "entry",
                                 schema: Self.schema, decode: Self.checkedChainRow, otherTables: Self.checkOtherTables)
        }
    }

    static func chainRow(_ row: Row) throws -> ChainRow {
        let messageId = try row.decode(String.self, forColumn: "message_id")
        return ChainRow(position: try row.decode(forColumn: "position"), messageId: messageId, fields: chainFields(
            messageId: messageId, direction: try row.decode(forColumn: "direction"), envelope: try row.decode(forColumn: "envelope"),
            payload: try row.decode(forColumn: "payload"), redacted: try row.decode(String?.self, forColumn: "redacted_paths") ?? "",
            proof: try row.decode(forColumn: "proof"), signedPayload: try row.decode(forColumn: "signed_payload"),
            contentKeys: try row.decode(forColumn: "content_keys")),
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
        let disagreeing = [("message_id", envelope.messageID == entry.messageId), ("type", envelope.type.name == entry.typeName),
                           ("subject", envelope.subject == entry.subject), ("originator", envelope.originator == entry.originator),
                           ("classification", envelope.handling.classification.name == entry.classificationName),
                           ("created_at", entry.createdAt.isStoredTime(of: envelope.createdAt.date))]
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
                         row.decode(Double?.self, forColumn: "last_sent_at"), row.decode(Data.self, forColumn: "revocation"))
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
            ChainVerifier.startCheck(db, table: "entry", what: "entry", schema: Self.schema, full: { db in
                ChainVerifier.verify(db, sql: "SELECT * FROM entry ORDER BY position", recovery: nil, what: "entry",
                                     schema: Self.schema, decode: Self.checkedChainRow, otherTables: Self.checkOtherTables)
            }, lastTwo: "SELECT * FROM entry ORDER BY position DESC LIMIT 2", decode: Self.chainRow)
        }
        guard let problem else { return skipped }
        throw StoreError(.damaged, "journal \(path) is damaged: \(problem). Nothing was written to it. "
                         + "See `ctbus journal verify --journal \(path)`; `ctbus journal salvage --journal \(path)` "
                         + "copies every intact entry into a new journal (docs/operations.md, Damaged files)")
    }
}
