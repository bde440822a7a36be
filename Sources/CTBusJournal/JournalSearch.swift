import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// Full-text search over a journal's text fields (SQLite FTS5), and the references between
/// messages read both ways ("answered by"), without decoding every entry.
///
/// The indexes are filled beside the journal, never in the transaction that journals a delivery:
/// indexing there cost the broker's fan-out 14-16 % (measured). `index` adds the
/// entries written since the last call (the console runs it every second and before each
/// search), and `status` says how far it has come, so that a page can say so. Only what
/// the journal holds is indexed: fields withheld at a Member State's request never arrived.
public struct JournalSearch: Sendable {
    let journal: NodeJournal
    var database: StoreDatabase { journal.database }

    /// The search table: contentless (the text is in the entries already), row id = position;
    /// and every reference an entry makes (envelope references, and the recommendations an
    /// activity matrix's activities name, as ANSWERS), by target.
    static let schema = """
        CREATE VIRTUAL TABLE entry_text USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2');
        CREATE TABLE entry_reference (
            position INTEGER NOT NULL,
            target TEXT NOT NULL,
            relation TEXT NOT NULL
        );
        CREATE INDEX entry_reference_target ON entry_reference(target);
        CREATE INDEX entry_reference_position ON entry_reference(position);
        """

    /// How far the index has come: entries up to `indexedThrough` are searchable, of `last`.
    public func status() throws(StoreError) -> (indexedThrough: Int64, last: Int64) {
        try database.read { db in
            (try Self.indexedThrough(db), try Int64.fetchOne(db, sql: "SELECT max(position) FROM entry") ?? 0)
        }
    }

    /// The last position the indexes hold (0: none yet).
    static func indexedThrough(_ db: Database) throws -> Int64 {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'search-indexed-through'").flatMap { Int64($0) } ?? 0
    }

    /// Indexes up to `limit` entries not indexed yet, in one transaction; returns how many.
    /// An entry whose message cannot be decoded is indexed by its envelope alone (verify reports it).
    @discardableResult
    public func index(limit: Int = 1_000) throws(StoreError) -> Int {
        try database.write { db in
            let through = try Self.indexedThrough(db)
            let rows = try Row.fetchAll(db, sql: "SELECT position, type, envelope, payload FROM entry WHERE position > ? ORDER BY position LIMIT ?",
                                        arguments: [through, limit])
            guard !rows.isEmpty else { return 0 }
            let insert = try db.cachedStatement(sql: "INSERT INTO entry_text (rowid, text) VALUES (?, ?)")
            let reference = try db.cachedStatement(sql: "INSERT INTO entry_reference (position, target, relation) VALUES (?, ?, ?)")
            var last = through
            for row in rows {
                let position: Int64 = try row.decode(forColumn: "position")
                let envelope = try? Envelope(serializedBytes: try row.decode(Data.self, forColumn: "envelope"))
                let type = MessageType(name: try row.decode(String.self, forColumn: "type")) ?? .unspecified
                let payload = try? BusMessage.OneOf_Payload.decode(type: type, bytes: try row.decode(Data.self, forColumn: "payload"))
                try insert.execute(arguments: [position, Self.searchText(envelope: envelope, payload: payload)])
                for (target, relation) in Self.references(envelope: envelope, payload: payload) {
                    try reference.execute(arguments: [position, target, relation.name])
                }
                last = position
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('search-indexed-through', ?)", arguments: ["\(last)"])
            return rows.count
        }
    }

    /// What an entry points at: its envelope's references, and the recommendations its
    /// activities name (as ANSWERS), each target once.
    static func references(envelope: Envelope?, payload: BusMessage.OneOf_Payload?) -> [(String, Reference.Relation)] {
        var seen = Set<String>()
        var result: [(String, Reference.Relation)] = []
        for item in envelope?.references ?? [] where seen.insert(item.messageID).inserted { result.append((item.messageID, item.relation)) }
        if case .activityMatrix(let matrix)? = payload {
            for id in matrix.activities.flatMap(\.recommendationIds) where seen.insert(id).inserted { result.append((id, .answers)) }
        }
        return result
    }

    /// The entries that point at `id` (see `references`), with the relation; entries the index
    /// does not hold yet are read directly, so the answer is whole even while it is filled.
    public func referrers(of id: String) throws(StoreError) -> [(entry: JournalEntry, relation: Reference.Relation)] {
        let through = try status().indexedThrough
        var found = try database.read { db in
            // A cursor's rows are read in their statement (found by name through its index).
            try Array(Row.fetchCursor(db, sql: """
                SELECT entry.*, outbox.refused_code, outbox.refused_detail, entry_reference.relation AS relation_name FROM entry_reference
                JOIN entry ON entry.position = entry_reference.position
                LEFT JOIN outbox ON outbox.message_id = entry.message_id
                WHERE entry_reference.target = ? ORDER BY entry.position
                """, arguments: [id]).map { row in
                (try JournalEntry(row: row), Reference.Relation(name: try row.decode(String.self, forColumn: "relation_name")) ?? .unspecified)
            })
        }
        for entry in try journal.entries(matching: JournalFilter(after: through)) {
            let message = try? entry.message()
            if let match = Self.references(envelope: message?.envelope, payload: message?.payload).first(where: { $0.0 == id }) {
                found.append((entry, match.1))
            }
        }
        return found
    }

    /// The entries of `type` that reference some message (a mission report reporting on a
    /// visit, say): from the index, and read directly beyond it.
    public func entriesWithReferences(type: MessageType) throws(StoreError) -> [JournalEntry] {
        let through = try status().indexedThrough
        var found = try database.read { db in
            try JournalEntry.fetchAll(db, sql: """
                SELECT entry.*, outbox.refused_code, outbox.refused_detail FROM entry
                LEFT JOIN outbox ON outbox.message_id = entry.message_id
                WHERE entry.type = ? AND entry.position <= ? AND entry.position IN (SELECT position FROM entry_reference)
                ORDER BY entry.position
                """, arguments: [type.name, through])
        }
        found += try journal.entries(matching: JournalFilter(type: type, after: through)).filter { entry in
            !((try? entry.envelope())?.references.isEmpty ?? true)
        }
        return found
    }

    /// What a traceability report reads: every recommendation and activity matrix, and the
    /// mission reports that reference something (a report counts only through the
    /// recommendations it names, and most name none), found by type and through the reference
    /// index, never by decoding the whole journal.
    public func traceEntries() throws(StoreError) -> [JournalEntry] {
        try journal.entries(matching: JournalFilter(type: .countryVisitRecommendation)) + journal.entries(matching: JournalFilter(type: .activityMatrix))
            + entriesWithReferences(type: .missionReport)
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
    public static func query(_ text: String) -> String? {
        let words = text.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).prefix(16)
        guard !words.isEmpty else { return nil }
        return words.enumerated().map { index, word in
            "\"\(word)\"" + (index == words.count - 1 ? "*" : "")
        }.joined(separator: " ")
    }
}
