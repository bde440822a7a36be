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

    /// At most `size` visible entries matching `filter`; `next` is where the next (older) page
    /// starts, nil on the last one. A search first brings the index up to date as far as it
    /// quickly can: `unindexed` says how many entries it could not search (nil without words).
    func page(_ filter: JournalFilter, size: Int) throws -> (entries: [JournalEntry], next: Int64?, unindexed: Int64?) {
        var filter = filter
        filter.limit = size + 1
        let unindexed = filter.words == nil ? nil : try searchLag()
        var entries = try journal.entries(matching: filter).filter(visible)
        let more = entries.count > size
        if more { entries.removeLast() }
        return (entries, more ? entries.last?.position : nil, unindexed)
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
            guard let message = try? entry.message(), let payload = message.payload else { continue }
            messages.append(Traceability.Message(envelope: message.envelope, payload: payload, revoked: entry.revokedAt != nil,
                                                 redactedPaths: entry.redactedPaths))
            names.append(entry.classificationName)
        }
        return (messages, names)
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
                               typeName: Reading.typeName(entry.typeName))
        }
        return found
    }

    /// The messages in this journal that point at `id` (activity matrices answering it, mission
    /// reports and follow-ups referring to it), from the journal's reference index.
    func referrers(of id: String) throws -> [(entry: JournalEntry, relation: Reference.Relation)] {
        try journal.search.referrers(of: id).filter { visible($0.entry) && $0.entry.messageId != id }
    }
}
