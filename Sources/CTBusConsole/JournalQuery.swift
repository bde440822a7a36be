import CTBusJournal
import CTBusSchema
import Foundation
import Hummingbird

/// The journal filter a query asks for, as the person typed it (the journal page shows it back in
/// its form). The journal page and the API take the same parameters.
struct JournalQuery {
    var type: String?
    var originator: String?
    var memberState: String?
    var classification: String?
    var direction: String?
    var words: String?
    var theme: String?
    /// Created on or after this day, and on or before that one (YYYY-MM-DD, UTC).
    var from: String?
    var to: String?
    var order: Order = .newest
    var before: Int64?
    var after: Int64?

    enum Order: String, CaseIterable {
        case newest
        case oldest

        var label: String { self == .newest ? "newest first" : "oldest first" }
    }

    /// The query and the journal filter it asks for; a value that names nothing is bad input.
    static func parse(_ parameters: Parameters) throws(ConsoleInputError) -> (filter: JournalFilter, query: JournalQuery) {
        func value(_ name: String) -> String? {
            parameters.get(name).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var query = JournalQuery(type: value("type"), originator: value("originator"), memberState: value("member_state")?.uppercased(),
                                 classification: value("classification"), direction: value("direction"),
                                 // A form sent by GET writes a space as "+", which the search takes as a separator anyway.
                                 words: value("q")?.replacingOccurrences(of: "+", with: " "),
                                 theme: value("theme"), from: value("from"), to: value("to"))
        var filter = JournalFilter(originator: query.originator, subject: query.memberState, newestFirst: true)
        if let words = query.words {
            guard words.utf8.count <= 512, let search = JournalSearch.query(words) else {
                throw ConsoleInputError("Search for words (letters and digits), at most 512 bytes.")
            }
            filter.words = search
        }
        if let theme = query.theme {
            guard theme.utf8.count <= 128 else { throw ConsoleInputError("A theme is at most 128 bytes.") }
            filter.theme = theme
        }
        if let type = query.type {
            guard let value = MessageType(name: type), value != .unspecified else { throw ConsoleInputError("There is no message type \(type.prefix(40)).") }
            filter.type = value
        }
        if let name = query.classification {
            guard let value = Classification(name: name) else { throw ConsoleInputError("There is no classification \(name.prefix(40)).") }
            filter.classification = value
        }
        if let name = query.direction {
            guard let value = Direction(rawValue: name) else { throw ConsoleInputError("Direction is received or sent.") }
            filter.direction = value
        }
        if let from = query.from {
            guard let day = Self.day(from) else { throw ConsoleInputError("From is a day, such as 2026-11-02.") }
            filter.since = day
        }
        if let to = query.to {
            guard let day = Self.day(to) else { throw ConsoleInputError("To is a day, such as 2026-11-30.") }
            filter.until = day.addingTimeInterval(86_400)
        }
        if let since = filter.since, let until = filter.until, since >= until {
            throw ConsoleInputError("From must not be after To.")
        }
        if let name = value("sort") {
            guard let order = Order(rawValue: name) else { throw ConsoleInputError("Sort newest or oldest first.") }
            query.order = order
            filter.newestFirst = order == .newest
        }
        if let before = value("before") {
            guard let position = Int64(before) else { throw ConsoleInputError("before must be a journal position.") }
            query.before = position
            filter.before = position
        }
        if let after = value("after") {
            guard let position = Int64(after) else { throw ConsoleInputError("after must be a journal position.") }
            query.after = position
            filter.after = position
        }
        return (filter, query)
    }

    /// Midnight UTC of a YYYY-MM-DD day, if it is one (`CalendarDate`, the policy's own reading
    /// of dates). Computed with the C library's `timegm`: Foundation's calendars reach ICU time
    /// zones, which are not safe to use from several threads at once on Linux.
    static func day(_ text: String) -> Date? {
        guard let number = CalendarDate.parse(text) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(number / 10_000 - 1900)
        parts.tm_mon = Int32(number / 100 % 100 - 1)
        parts.tm_mday = Int32(number % 100)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    /// The journal page with this query's filters, continuing past `position` in its order.
    func href(continuingAfter position: Int64) -> String {
        let page = order == .newest ? ("before", "\(position)") : ("after", "\(position)")
        return PageLayout.href("/journal", [("q", words), ("type", type), ("originator", originator), ("member_state", memberState),
                                            ("classification", classification), ("direction", direction), ("theme", theme), ("from", from),
                                            ("to", to), ("sort", order == .newest ? nil : order.rawValue), (page.0, page.1)])
    }
}
