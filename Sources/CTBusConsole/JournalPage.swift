import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation

/// The journal, newest first, a page at a time: the filter form, then a row per entry, each
/// headed by what the message says.
struct JournalPage: ConsolePage {
    let entries: [JournalEntry]
    let query: JournalQuery
    /// Where the next (older) page starts; nil on the last page.
    let next: Int64?
    /// With a search: the newest entries the search index does not hold yet.
    let unindexed: Int64
    let now: Date

    var title: String { "Journal" }
    var marking: String? { PageLayout.marking(entries.map(\.classificationName)) }

    var body: HTML {
        var html = filters()
        if unindexed > 0 {
            html.element("p", "The \(unindexed) newest entries are not in the search index yet (it is being filled); "
                         + "search again in a moment to include them.", attributes: [("class", "notice")])
        }
        guard !entries.isEmpty else {
            html.element("p", "No message matches.", attributes: [("class", "empty")])
            return html
        }
        html.raw("<div class=\"scroll\"><table class=\"journal\"><thead><tr>")
        for header in ["Message", "Created", "Type", "Classification", "Member State", "From", "Direction", "Notes"] {
            html.element("th", header, attributes: [("scope", "col")])
        }
        html.raw("</tr></thead><tbody>")
        for entry in entries {
            var notes: [String] = []
            if entry.revokedAt != nil { notes.append("revoked") }
            if let envelope = try? entry.envelope(), ConfidentialityPolicy.isExpired(envelope, at: now) { notes.append("expired") }
            if !entry.redactedPaths.isEmpty { notes.append("parts withheld") }
            if let code = entry.refusedCode { notes.append("refused \(code)") }
            let summary = Reading.summary((try? entry.message())?.payload, withheld: entry.redactedPaths)
            html.raw("<tr><th scope=\"row\" class=\"summary\">" + HTML.link(PageLayout.messageHref(entry.messageId), summary) + "</th>")
            for value in [Reading.time(entry.createdAt), Reading.typeName(entry.typeName), Reading.classification(entry.classificationName),
                          entry.subject, entry.originator, entry.direction.rawValue, notes.joined(separator: ", ")] {
                html.element("td", value)
            }
            html.raw("</tr>")
        }
        html.raw("</tbody></table></div>")
        if let next {
            html.raw("<p class=\"pages\">" + HTML.link(query.href(before: next), "Older messages") + "</p>")
        }
        return html
    }

    /// The filter form, filled with the query shown.
    private func filters() -> HTML {
        var html = HTML()
        html.raw("<form method=\"get\" action=\"/journal\" class=\"filters\">")
        html.raw("<label>Search<input\(HTML.attributes([("type", "search"), ("name", "q"), ("value", query.words ?? ""), ("size", "24")]))></label>")
        func select(_ name: String, _ label: String, _ options: [String], _ selected: String?) {
            html.raw("<label>"); html.text(label); html.raw("<select name=\"\(name)\"><option value=\"\">any</option>")
            for option in options {
                html.raw("<option\(HTML.attributes([("value", option)]))\(option == selected ? " selected" : "")>")
                html.text(option)
                html.raw("</option>")
            }
            html.raw("</select></label>")
        }
        func input(_ name: String, _ label: String, _ value: String?) {
            html.raw("<label>"); html.text(label)
            html.raw("<input\(HTML.attributes([("name", name), ("value", value ?? ""), ("size", "12")]))></label>")
        }
        select("type", "Type", MessageType.allCases.filter { $0 != .unspecified }.map(\.name), query.type)
        select("classification", "Classification", ["UNCLASSIFIED", "CONFIDENTIAL", "STRICTLY_CONFIDENTIAL"], query.classification)
        select("direction", "Direction", ["received", "sent"], query.direction)
        input("originator", "From", query.originator)
        input("member_state", "Member State", query.memberState)
        html.raw("<button type=\"submit\">Filter</button></form>")
        return html
    }
}
