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
    var before: Int64?

    /// The query and the journal filter it asks for; a value that names nothing is bad input.
    static func parse(_ parameters: Parameters) throws(ConsoleInputError) -> (filter: JournalFilter, query: JournalQuery) {
        func value(_ name: String) -> String? {
            parameters.get(name).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var query = JournalQuery(type: value("type"), originator: value("originator"), memberState: value("member_state"),
                                 classification: value("classification"), direction: value("direction"), words: value("q"))
        var filter = JournalFilter(originator: query.originator, subject: query.memberState?.uppercased(), newestFirst: true)
        if let words = query.words {
            guard words.utf8.count <= 512, let search = JournalSearch.query(words) else {
                throw ConsoleInputError("Search for words (letters and digits), at most 512 bytes.")
            }
            filter.words = search
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
        if let before = value("before") {
            guard let position = Int64(before) else { throw ConsoleInputError("before must be a journal position.") }
            query.before = position
            filter.before = position
        }
        return (filter, query)
    }

    /// The journal page with this query's filters, from `position` back.
    func href(before position: Int64) -> String {
        let pairs = [("q", words), ("type", type), ("originator", originator), ("member_state", memberState),
                     ("classification", classification), ("direction", direction), ("before", "\(position)")]
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#?")
        let parts = pairs.compactMap { key, value in
            value.flatMap { $0.isEmpty ? nil : "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        }
        return "/journal" + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
    }
}
