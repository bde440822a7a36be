import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

extension NodeJournal {
    /// Journal entries matching `filter`, oldest first.
    public func entries(matching filter: JournalFilter = JournalFilter()) throws(StoreError) -> [JournalEntry] {
        let (condition, arguments) = Self.condition(filter)
        return try database.read { db in
            try JournalEntry.fetchAll(db, sql: """
                SELECT entry.*, outbox.refused_code, outbox.refused_detail FROM entry
                LEFT JOIN outbox ON outbox.message_id = entry.message_id \(condition)
                ORDER BY position \(filter.newestFirst ? "DESC" : "") \(filter.limit.map { "LIMIT \(max(0, $0))" } ?? "")
                """, arguments: StatementArguments(arguments))
        }
    }

    /// How many entries match `filter` (its order, limit and page bounds `before`/`after` aside).
    public func count(matching filter: JournalFilter) throws(StoreError) -> Int {
        var whole = filter
        (whole.before, whole.after, whole.limit) = (nil, nil, nil)
        let (condition, arguments) = Self.condition(whole)
        return try database.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM entry \(condition)", arguments: StatementArguments(arguments)) ?? 0
        }
    }

    /// The WHERE clause of `filter`, with its arguments.
    private static func condition(_ filter: JournalFilter) -> (String, [any DatabaseValueConvertible]) {
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
        if let theme = filter.theme {
            clauses.append("entry.position IN (SELECT position FROM entry_theme WHERE theme = ?)")
            arguments.append(theme)
        }
        if let ceiling = filter.atMost {
            let names = JournalFilter.names(atMost: ceiling)
            clauses.append("classification IN (\(names.map { _ in "?" }.joined(separator: ",")))")
            arguments += names.map { $0 as any DatabaseValueConvertible }
        }
        return (clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND "), arguments)
    }

    /// Every entry in journal order, one at a time (a cursor: a journal may hold millions).
    /// A row that does not read stops the walk with its error.
    public func forEachEntry(_ body: (JournalEntry) throws -> Void) throws {
        try database.read { db in
            let entries = try JournalEntry.fetchCursor(db, sql: "SELECT * FROM entry ORDER BY position")
            while let entry = try entries.next() { try body(entry) }
        }
    }

    /// The entry of one message id, or nil.
    public func entry(messageId: String) throws(StoreError) -> JournalEntry? {
        try database.read { db in try Self.entry(db, messageId: messageId) }
    }

    static func entry(_ db: Database, messageId: String) throws -> JournalEntry? {
        try JournalEntry.fetchOne(db, sql: """
            SELECT entry.*, outbox.refused_code, outbox.refused_detail FROM entry
            LEFT JOIN outbox ON outbox.message_id = entry.message_id WHERE entry.message_id = ?
            """, arguments: [messageId])
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
