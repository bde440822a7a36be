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
                                 schema: Self.schema, decode: JournalChain.checkedChainRow, otherTables: Self.checkOtherTables)
        }
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
                                     schema: Self.schema, decode: JournalChain.checkedChainRow, otherTables: Self.checkOtherTables)
            }, lastTwo: "SELECT * FROM entry ORDER BY position DESC LIMIT 2", decode: JournalChain.chainRow)
        }
        guard let problem else { return skipped }
        throw StoreError(.damaged, "journal \(path) is damaged: \(problem). Nothing was written to it. "
                         + "See `ctbus journal verify --journal \(path)`; `ctbus journal salvage --journal \(path)` "
                         + "copies every intact entry into a new journal (docs/operations.md, Damaged files)")
    }
}
