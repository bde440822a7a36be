import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// Full-text search over a journal's text fields (SQLite FTS5), the references between
/// messages read both ways ("answered by"), and the themes messages are tagged with, without
/// decoding every entry.
///
/// The text index holds tokens only: the text itself is read through the view `entry_search`,
/// which computes it from the entry's hashed envelope and payload (`ctbus_search_text`) when
/// FTS5 needs it for a snippet. What a search result shows is therefore always derived from
/// the hashed bytes, never from a second copy that could be edited beside them.
///
/// The indexes are filled beside the journal, never in the transaction that journals a delivery:
/// indexing there cost the broker's fan-out 14-16 % (measured). `index` adds the
/// entries written since the last call (the console runs it every second and before each
/// search), and `status` says how far it has come, so that a page can say so. Only what
/// the journal holds is indexed: fields withheld at a Member State's request never arrived.
public struct JournalSearch: Sendable {
    let journal: NodeJournal
    var database: StoreDatabase { journal.database }

    /// The search table (row id = position) over the view that computes each entry's text;
    /// every reference an entry makes (envelope references, and the recommendations an activity
    /// matrix's activities name, as ANSWERS), by target; and every theme it is tagged with.
    static let schema = textIndex + referenceIndex + themeIndex

    private static let textIndex = """
        CREATE VIEW entry_search AS SELECT position, ctbus_search_text(envelope, payload) AS text FROM entry;
        CREATE VIRTUAL TABLE entry_text USING fts5(text, content='entry_search', content_rowid='position', tokenize='unicode61 remove_diacritics 2');
        """

    private static let referenceIndex = """

        CREATE TABLE entry_reference (
            position INTEGER NOT NULL,
            target TEXT NOT NULL,
            relation TEXT NOT NULL
        );
        CREATE INDEX entry_reference_target ON entry_reference(target);
        CREATE INDEX entry_reference_position ON entry_reference(position);
        """

    /// The themes of each entry (the theme filter), and the filters' choices: each Member State
    /// or region and each theme the entries are about, once per classification (a console shows
    /// those of the classifications it may show, without reading every entry).
    private static let themeIndex = """

        CREATE TABLE entry_theme (
            position INTEGER NOT NULL,
            theme TEXT NOT NULL
        );
        CREATE INDEX entry_theme_theme ON entry_theme(theme, position);
        CREATE TABLE entry_facet (
            kind TEXT NOT NULL CHECK (kind IN ('subject', 'theme')),
            value TEXT NOT NULL,
            classification TEXT NOT NULL,
            PRIMARY KEY (kind, value, classification)
        ) WITHOUT ROWID;
        """

    /// Schema 1's search indexes: the text index was contentless, and there was no theme index.
    static let schemaVersion1 = """
        CREATE VIRTUAL TABLE entry_text USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2');
        """ + referenceIndex

    /// From schema 1 to 2: the indexes are dropped and emptied, and `index` fills them again
    /// from the entries (the console does it in the background, saying how far it has come).
    static let upgradeFromVersion1 = """
        DROP TABLE entry_text;
        DELETE FROM entry_reference;
        DELETE FROM meta WHERE key = 'search-indexed-through';
        """ + textIndex + themeIndex

    /// `ctbus_search_text(envelope, payload)`: the words of an entry (`searchText`), for the
    /// view FTS5 reads snippets from, from the hashed bytes alone (the payload's type is the
    /// envelope's, not the `type` column beside it). NULL for bytes that do not decode.
    static let searchTextFunction = DatabaseFunction("ctbus_search_text", argumentCount: 2, pure: true) { values in
        guard let envelope = Data.fromDatabaseValue(values[0]), let payload = Data.fromDatabaseValue(values[1]) else { return nil }
        let (decoded, body) = decode(envelope: envelope, payload: payload)
        return searchText(envelope: decoded, payload: body)
    }

    /// An entry's envelope and payload from its hashed bytes, each nil when it does not decode.
    static func decode(envelope bytes: Data, payload: Data) -> (Envelope?, BusMessage.OneOf_Payload?) {
        guard let envelope = try? Envelope(serializedBytes: bytes) else { return (nil, nil) }
        return (envelope, try? BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: payload))
    }

    /// The version of `searchText`, kept in the journal beside the indexes. The text index
    /// holds the tokens of the text as `searchText` wrote it when the entry was indexed, and
    /// FTS5 cuts snippets from the text as `searchText` writes it now: the two must be the same
    /// function. Any change to `searchText`, `references` or `themes` bumps this; `index` then
    /// empties the indexes and fills them again. The indexes must also lose an entry (FTS5
    /// 'delete', which reads its text through the view) before the entry itself changes or goes.
    static let searchTextVersion = "1"

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
            if try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'search-text-version'") != Self.searchTextVersion {
                // Indexed by another searchText (or none yet): start again.
                try db.execute(sql: """
                    INSERT INTO entry_text (entry_text) VALUES ('delete-all');
                    DELETE FROM entry_reference; DELETE FROM entry_theme; DELETE FROM entry_facet;
                    DELETE FROM meta WHERE key = 'search-indexed-through';
                    """)
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('search-text-version', ?)", arguments: [Self.searchTextVersion])
            }
            let through = try Self.indexedThrough(db)
            let rows = try Row.fetchAll(db, sql: "SELECT position, envelope, payload FROM entry WHERE position > ? ORDER BY position LIMIT ?",
                                        arguments: [through, limit])
            guard !rows.isEmpty else { return 0 }
            let insert = try db.cachedStatement(sql: "INSERT INTO entry_text (rowid, text) VALUES (?, ?)")
            let reference = try db.cachedStatement(sql: "INSERT INTO entry_reference (position, target, relation) VALUES (?, ?, ?)")
            let theme = try db.cachedStatement(sql: "INSERT INTO entry_theme (position, theme) VALUES (?, ?)")
            let facet = try db.cachedStatement(sql: "INSERT OR IGNORE INTO entry_facet (kind, value, classification) VALUES (?, ?, ?)")
            var last = through
            for row in rows {
                let position: Int64 = try row.decode(forColumn: "position")
                let (envelope, payload) = Self.decode(envelope: try row.decode(Data.self, forColumn: "envelope"),
                                                      payload: try row.decode(Data.self, forColumn: "payload"))
                try insert.execute(arguments: [position, Self.searchText(envelope: envelope, payload: payload)])
                for (target, relation) in Self.references(envelope: envelope, payload: payload) {
                    try reference.execute(arguments: [position, target, relation.name])
                }
                let themes = Self.themes(envelope: envelope, payload: payload)
                for name in themes {
                    try theme.execute(arguments: [position, name])
                }
                // Read from the hashed envelope, as everything a filter offers.
                if let envelope {
                    let marked = envelope.handling.classification.name
                    try facet.execute(arguments: ["subject", envelope.subject, marked])
                    for name in themes { try facet.execute(arguments: ["theme", name, marked]) }
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

    /// The themes an entry is tagged with: its envelope's thematic tags and the thematic areas of
    /// its payload, each once.
    static func themes(envelope: Envelope?, payload: BusMessage.OneOf_Payload?) -> [String] {
        var names = envelope?.thematicTags ?? []
        switch payload {
        case .countryVisitRecommendation(let value): names.append(value.thematicArea)
        case .activityMatrix(let value): names += value.activities.map(\.thematicArea)
        default: break
        }
        var seen = Set<String>()
        return names.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    /// The filters' choices among the indexed entries marked at most `ceiling`: the Member
    /// States and regions they are about and the themes they carry, in order, and the
    /// classifications of those entries.
    public func choices(atMost ceiling: Classification) throws(StoreError) -> (subjects: [String], themes: [String], classifications: [String]) {
        let names = JournalFilter.names(atMost: ceiling)
        let marks = names.map { _ in "?" }.joined(separator: ",")
        return try database.read { db in
            func values(_ kind: String) throws -> [String] {
                try String.fetchAll(db, sql: "SELECT DISTINCT value FROM entry_facet WHERE kind = ? AND classification IN (\(marks)) ORDER BY value",
                                    arguments: StatementArguments([kind] + names))
            }
            return (try values("subject"), try values("theme"),
                    try String.fetchAll(db, sql: "SELECT DISTINCT classification FROM entry_facet WHERE kind = 'subject' AND classification IN (\(marks))",
                                        arguments: StatementArguments(names)))
        }
    }

    /// Where each entry at `positions` matched `words` (an FTS5 query, `query`): a snippet of
    /// its text of about 20 words around the matches, each match between `open` and `close`.
    /// Positions that did not match, or are not indexed yet, are left out.
    public func snippets(words: String, positions: [Int64], open: String, close: String) throws(StoreError) -> [Int64: String] {
        guard !positions.isEmpty else { return [:] }
        return try database.read { db in
            let marks = positions.map { _ in "?" }.joined(separator: ",")
            var arguments: [any DatabaseValueConvertible] = [open, close, words]
            arguments += positions.map { $0 as any DatabaseValueConvertible }
            let rows = try Row.fetchAll(db, sql: """
                SELECT rowid, snippet(entry_text, 0, ?, ?, '…', 20) AS snippet FROM entry_text
                WHERE entry_text MATCH ? AND rowid IN (\(marks))
                """, arguments: StatementArguments(arguments))
            var found: [Int64: String] = [:]
            for row in rows {
                if let text: String = row["snippet"] { found[row["rowid"]] = text }
            }
            return found
        }
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
    /// The prose comes first and the identifiers last, so that a snippet of a match in the prose
    /// reads as prose; parts are joined with " · ", which the tokenizer takes as a separator.
    static func searchText(envelope: Envelope?, payload: BusMessage.OneOf_Payload?) -> String {
        var parts: [String] = []
        switch payload {
        case .countryVisitRecommendation(let value):
            parts += [value.recommendationText, value.technicalAssistanceNeed, value.visitID, value.memberState, value.thematicArea]
            parts += value.resolutionsAssessed.map { "\($0)" }
        case .missionReport(let value):
            parts += [value.summary] + value.findings + value.followUpActions + [value.missionID, value.memberState, value.region]
                + value.participatingEntities
        case .activityMatrix(let value):
            for activity in value.activities {
                parts += [activity.title, activity.projectID, activity.region, activity.thematicArea] + activity.memberStates
                    + activity.implementingEntities
            }
        case nil:
            break
        }
        if let envelope { parts += [envelope.subject] + envelope.thematicTags }
        return parts.filter { !$0.isEmpty }.joined(separator: " · ")
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
