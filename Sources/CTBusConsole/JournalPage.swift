import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation

/// The journal, a page at a time: the filter form, how many messages match, then a row per
/// entry, each headed by what the message says and, for a search, where it matched (FTS5's
/// snippet, the matched words marked).
struct JournalPage: ConsolePage {
    let page: VisibleJournal.Page
    let query: JournalQuery
    /// The filter's choices: the Member States the journal's entries are about, the themes they carry.
    let memberStates: [String]
    let themes: [String]
    /// The markings of the entries the choices come from: the State a message is about is
    /// marked as the message is.
    let choiceClassifications: [String]
    let now: Date

    var title: String { "Journal" }
    var marking: String? { PageLayout.marking(page.entries.map(\.classificationName) + choiceClassifications) }

    var body: HTML {
        var html = filters()
        if let unindexed = page.unindexed, unindexed > 0 {
            html.element("p", "The \(unindexed) newest entries are not in the search index yet (it is being filled); "
                         + "search again in a moment to include them.", attributes: [("class", "notice")])
        }
        html.element("p", count, attributes: [("class", "count"), ("role", "status")])
        guard !page.entries.isEmpty else { return html }
        html.raw("<div class=\"scroll\"><table class=\"journal\"><thead><tr>")
        for header in ["Message", "Created", "Type", "Classification", "Member State", "From", "Direction", "Notes"] {
            html.element("th", header, attributes: [("scope", "col")])
        }
        html.raw("</tr></thead><tbody>")
        for entry in page.entries {
            var notes: [String] = []
            if entry.revokedAt != nil { notes.append("revoked") }
            if let envelope = try? entry.envelope(), ConfidentialityPolicy.isExpired(envelope, at: now) { notes.append("expired") }
            if !entry.redactedPaths.isEmpty { notes.append("parts withheld") }
            if let code = entry.refusedCode { notes.append("refused \(code)") }
            let summary = Reading.summary((try? entry.message())?.payload, withheld: entry.redactedPaths)
            html.raw("<tr><th scope=\"row\" class=\"summary\">" + HTML.link(PageLayout.messageHref(entry.messageId), summary))
            if let snippet = page.snippets[entry.position] { html.raw("<p class=\"snippet\">" + Self.marked(snippet) + "</p>") }
            html.raw("</th>")
            for value in [Reading.time(entry.createdAt), Reading.typeName(entry.typeName), Reading.classification(entry.classificationName)] {
                html.element("td", value)
            }
            html.raw("<td>" + HTML.link(CountryFilePage.href(entry.subject), entry.subject) + "</td>")
            for value in [entry.originator, entry.direction.rawValue, notes.joined(separator: ", ")] { html.element("td", value) }
            html.raw("</tr>")
        }
        html.raw("</tbody></table></div>")
        if let next = page.next {
            html.raw("<p class=\"pages\">" + HTML.link(query.href(continuingAfter: next),
                                                        query.order == .newest ? "Older messages" : "Newer messages") + "</p>")
        }
        return html
    }

    /// "3 messages match "border police"", "1,204 messages".
    private var count: String {
        let number = Reading.grouped(page.total)
        let noun = page.total == 1 ? "message" : "messages"
        let filtered = [query.type, query.originator, query.memberState, query.classification, query.direction, query.theme, query.from,
                        query.to].contains { $0 != nil }
        if let words = query.words {
            return "\(number) \(noun) \(page.total == 1 ? "matches" : "match") \u{201C}\(words)\u{201D}" + (filtered ? " with these filters." : ".")
        }
        if page.total == 0 { return filtered ? "No message matches these filters." : "The journal holds no message yet." }
        return "\(number) \(noun)" + (filtered ? (page.total == 1 ? " matches these filters." : " match these filters.") : ".")
    }

    /// A snippet as markup: its text escaped, each match (between FTS5's marks) in `<mark>`.
    static func marked(_ snippet: String) -> String {
        HTML.escape(snippet).replacingOccurrences(of: VisibleJournal.matchOpen, with: "<mark>")
            .replacingOccurrences(of: VisibleJournal.matchClose, with: "</mark>")
    }

    /// The filter form, filled with the query shown.
    private func filters() -> HTML {
        var html = HTML()
        html.raw("<form method=\"get\" action=\"/journal\" class=\"filters\">")
        html.raw("<label>Search<input\(HTML.attributes([("type", "search"), ("name", "q"), ("value", query.words ?? ""), ("size", "24")]))></label>")
        func select(_ name: String, _ label: String, _ options: [(value: String, label: String)], _ selected: String?, any: String = "any") {
            html.raw(HTML.select(name, label: label, options: options, selected: selected, empty: any))
        }
        func input(_ name: String, _ label: String, _ value: String?, type: String = "text") {
            html.raw("<label>"); html.text(label)
            html.raw("<input\(HTML.attributes([("type", type), ("name", name), ("value", value ?? "")]))></label>")
        }
        select("member_state", "Member State", memberStates.map { ($0, $0) }, query.memberState)
        select("theme", "Theme", themes.map { ($0, $0) }, query.theme)
        select("type", "Type", MessageType.allCases.filter { $0 != .unspecified }.map { ($0.name, Reading.typeName($0)) }, query.type)
        select("classification", "Classification", ["UNCLASSIFIED", "CONFIDENTIAL", "STRICTLY_CONFIDENTIAL"].map { ($0, Reading.classification($0)) },
               query.classification)
        select("direction", "Direction", [("received", "received"), ("sent", "sent")], query.direction)
        input("originator", "From node", query.originator)
        input("from", "Created from", query.from, type: "date")
        input("to", "Created to", query.to, type: "date")
        select("sort", "Order", JournalQuery.Order.allCases.map { ($0.rawValue, $0.label) }, query.order == .newest ? nil : query.order.rawValue,
               any: JournalQuery.Order.newest.label)
        html.raw("<button type=\"submit\">Filter</button></form>")
        return html
    }
}
