import CTBusJournal
import CTBusSchema
import CTBusTrace
import Foundation
import Logging

/// The node's journal as this console may show it: every entry a page or the API shows is read
/// here and passes `visible`.
struct VisibleJournal: Sendable {
    let journal: NodeJournal
    let clearance: Classification
    /// Where a search index that could not be brought up to date is reported.
    let problems: SharedThrottledLogger

    /// Entries on a journal page, and the API's default `limit`.
    static let pageSize = 50

    /// Defence in depth: nothing above this node's clearance is shown, whatever the journal holds.
    func visible(_ entry: JournalEntry) -> Bool {
        (Classification(name: entry.classificationName)?.rawValue ?? Int.max) <= clearance.rawValue
    }

    /// The entry of message `id` (canonical), if the journal holds it and the console may show it.
    func entry(messageId id: String) throws -> JournalEntry? {
        guard MessageID.isUUID(id), let entry = try journal.entry(messageId: id), visible(entry) else { return nil }
        return entry
    }

    /// The entry of message `id` (canonical) with its revocation still waiting for the broker,
    /// if the journal holds it and the console may show it.
    func entryWithPending(messageId id: String) throws
        -> (entry: JournalEntry, pending: (revocation: Revocation, lastSentAt: Date?)?)? {
        guard MessageID.isUUID(id), let found = try journal.revocations.entryWithPending(messageId: id), visible(found.entry) else { return nil }
        return found
    }

    /// One page of a listing.
    struct Page {
        let entries: [JournalEntry]
        /// Where the next page starts (before it newest first, after it oldest first); nil on the last one.
        let next: Int64?
        /// With words or a theme: how many of the newest entries the indexes do not hold yet.
        let unindexed: Int64?
        /// How many entries this console may show match the filter, on every page.
        let total: Int
        /// With words: where each entry on the page matched, as FTS5's snippet marks it between
        /// `Self.matchOpen` and `Self.matchClose` (the page escapes the text, then marks it).
        let snippets: [Int64: String]
    }

    static let matchOpen = "\u{2}"
    static let matchClose = "\u{3}"

    /// At most `size` visible entries matching `filter`, with the total and, for a search, the
    /// snippets. A search or theme filter first brings the indexes up to date as far as they
    /// quickly can, and says how many entries they could not reach.
    func page(_ filter: JournalFilter, size: Int) throws -> Page {
        var filter = filter
        filter.limit = size + 1
        filter.atMost = clearance
        let unindexed = filter.words == nil && filter.theme == nil ? nil : try searchLag()
        var entries = try journal.entries(matching: filter).filter(visible)
        let more = entries.count > size
        if more { entries.removeLast() }
        let snippets = try filter.words.map { words in
            try journal.search.snippets(words: words, positions: entries.map(\.position), open: Self.matchOpen, close: Self.matchClose)
        } ?? [:]
        return Page(entries: entries, next: more ? entries.last?.position : nil, unindexed: unindexed,
                    total: try journal.count(matching: filter), snippets: snippets)
    }

    /// The choices of the journal's filters, from the search index (`JournalSearch.choices`):
    /// the Member States its entries are about, the themes they are tagged with, and the
    /// classifications of those entries.
    func filterChoices() throws -> (memberStates: [String], themes: [String], classifications: [String]) {
        let choices = try journal.search.choices(atMost: clearance)
        return (choices.subjects, choices.themes, choices.classifications)
    }

    /// Before a search: indexes what is waiting (a bounded batch, so that the page stays quick),
    /// and returns how many entries are still not searchable.
    func searchLag() throws -> Int64 {
        do {
            try journal.search.index(limit: 2 * SearchIndexer.batch)
        } catch {
            problems.log("index", .warning, "search index not updated before a search: \(error)")
        }
        let status = try journal.search.status()
        return max(0, status.last - status.indexedThrough)
    }

    /// What the traceability report reads: every message this console may show, with the
    /// classification of each (for the page's banner).
    func traceMessages() throws -> (messages: [Traceability.Message], classifications: [String]) {
        var messages: [Traceability.Message] = []
        var names: [String] = []
        for entry in try journal.search.traceEntries() where visible(entry) {
            guard let message = Self.traceMessage(entry) else { continue }
            messages.append(message)
            names.append(entry.classificationName)
        }
        return (messages, names)
    }

    /// An entry as the traceability report reads it; nil when it does not decode (verify says why).
    private static func traceMessage(_ entry: JournalEntry) -> Traceability.Message? {
        guard let message = try? entry.message(), let payload = message.payload else { return nil }
        return Traceability.Message(envelope: message.envelope, payload: payload, revoked: entry.revokedAt != nil,
                                    redactedPaths: entry.redactedPaths)
    }

    /// What this console may show of each message `ids` name: what it says and its type, or that
    /// it is not visible here (not in this journal, or above this console's clearance; which of
    /// the two is not told).
    func referenced(_ ids: [String]) throws -> [String: MessageContent.Referenced] {
        var found: [String: MessageContent.Referenced] = [:]
        for id in ids where found[id] == nil {
            guard let entry = try entry(messageId: MessageID.canonical(id)) else {
                found[id] = .notVisible
                continue
            }
            found[id] = .shown(summary: Reading.summary((try? entry.message())?.payload, withheld: entry.redactedPaths),
                               typeName: Reading.typeName(entry.typeName), classification: entry.classificationName)
        }
        return found
    }

    /// What a country file reads: the messages of the traceability report and every mission
    /// report about `memberState`, each with its classification (for the page's banner).
    func countryMessages(_ memberState: String) throws -> [(message: Traceability.Message, classification: String)] {
        let (messages, names) = try traceMessages()
        var found = Array(zip(messages, names))
        let known = Set(messages.map(\.envelope.messageID))
        for entry in try journal.entries(matching: JournalFilter(type: .missionReport, subject: memberState))
        where visible(entry) && !known.contains(entry.messageId) {
            if let message = Self.traceMessage(entry) { found.append((message, entry.classificationName)) }
        }
        return found
    }

    /// The messages in this journal that point at `id` (activity matrices answering it, mission
    /// reports and follow-ups referring to it), from the journal's reference index.
    func referrers(of id: String) throws -> [(entry: JournalEntry, relation: Reference.Relation)] {
        try journal.search.referrers(of: id).filter { visible($0.entry) && $0.entry.messageId != id }
    }
}
