import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// Full-text search over a journal's text fields (SQLite FTS5).
///
/// The index is filled beside the journal, never in the transaction that journals a delivery:
/// indexing there cost the broker's fan-out 14-16 % (measured). `indexForSearch` adds the
/// entries written since the last call (the console runs it every second and before each
/// search), and `searchStatus` says how far it has come, so that a page can say so. Only what
/// the journal holds is indexed: fields withheld at a Member State's request never arrived.
extension NodeJournal {
    /// The search table: contentless (the text is in the entries already), row id = position.
    static let searchMigration = """
        CREATE VIRTUAL TABLE entry_text USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2');
        """

    /// How far the index has come: entries up to `indexedThrough` are searchable, of `last`.
    public func searchStatus() throws(StoreError) -> (indexedThrough: Int64, last: Int64) {
        try database.read { db in
            let through = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'search-indexed-through'").flatMap { Int64($0) } ?? 0
            return (through, try Int64.fetchOne(db, sql: "SELECT max(position) FROM entry") ?? 0)
        }
    }

    /// Indexes up to `limit` entries not indexed yet, in one transaction; returns how many.
    /// An entry whose message cannot be decoded is indexed by its envelope alone (verify reports it).
    @discardableResult
    public func indexForSearch(limit: Int = 1_000) throws(StoreError) -> Int {
        try database.write { db in
            let through = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'search-indexed-through'").flatMap { Int64($0) } ?? 0
            let rows = try Row.fetchAll(db, sql: "SELECT position, type, envelope, payload FROM entry WHERE position > ? ORDER BY position LIMIT ?",
                                        arguments: [through, limit])
            guard !rows.isEmpty else { return 0 }
            let insert = try db.cachedStatement(sql: "INSERT INTO entry_text (rowid, text) VALUES (?, ?)")
            var last = through
            for row in rows {
                let position: Int64 = try row.decode(forColumn: "position")
                let envelope = try? Envelope(serializedBytes: try row.decode(Data.self, forColumn: "envelope"))
                let type = MessageType(name: try row.decode(String.self, forColumn: "type")) ?? .unspecified
                let payload = try? BusMessage.OneOf_Payload.decode(type: type, bytes: try row.decode(Data.self, forColumn: "payload"))
                try insert.execute(arguments: [position, Self.searchText(envelope: envelope, payload: payload)])
                last = position
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('search-indexed-through', ?)", arguments: ["\(last)"])
            return rows.count
        }
    }

    /// The words of a message a person may look for: every text of the payload, the envelope's
    /// subject and themes.
    static func searchText(envelope: Envelope?, payload: BusMessage.OneOf_Payload?) -> String {
        var parts: [String] = []
        if let envelope { parts += [envelope.subject] + envelope.thematicTags }
        switch payload {
        case .countryVisitRecommendation(let value):
            parts += [value.visitID, value.memberState, value.thematicArea, value.recommendationText, value.technicalAssistanceNeed]
            parts += value.resolutionsAssessed.map { "\($0)" }
        case .missionReport(let value):
            parts += [value.missionID, value.memberState, value.region, value.summary] + value.participatingEntities
                + value.findings + value.followUpActions
        case .activityMatrix(let value):
            for activity in value.activities {
                parts += [activity.projectID, activity.title, activity.region, activity.thematicArea] + activity.memberStates
                    + activity.implementingEntities
            }
        case nil:
            break
        }
        return parts.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    /// A person's words as an FTS5 query: each word must occur (a prefix of it, for the last
    /// one, as they type); quotes and operators are taken as text, never as query syntax.
    public static func searchQuery(_ text: String) -> String? {
        let words = text.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).prefix(16)
        guard !words.isEmpty else { return nil }
        return words.enumerated().map { index, word in
            "\"\(word)\"" + (index == words.count - 1 ? "*" : "")
        }.joined(separator: " ")
    }
}
