import CTBusSchema
import Foundation

/// The drafts this node keeps, each with a form to release it (validated again, then to the
/// outbox) and one to discard it.
struct DraftsPage: ConsolePage {
    let drafts: [(envelope: Envelope, savedAt: Date)]
    let csrf: String

    var title: String { "Drafts" }
    var marking: String? { PageLayout.marking(drafts.map(\.envelope.handling.classification.name)) }

    var body: HTML {
        var html = HTML()
        guard !drafts.isEmpty else {
            html.element("p", "No draft.", attributes: [("class", "empty")])
            return html
        }
        html.raw("<table class=\"drafts\"><thead><tr>")
        for header in ["Saved (UTC)", "Type", "Classification", "Member State", "Message id", ""] { html.element("th", header) }
        html.raw("</tr></thead><tbody>")
        let time = ISO8601DateFormatter()
        for draft in drafts {
            let id = draft.envelope.messageID
            html.raw("<tr>")
            for value in [time.string(from: draft.savedAt), draft.envelope.type.name, draft.envelope.handling.classification.name,
                          draft.envelope.subject, id] {
                html.element("td", value)
            }
            html.raw("<td class=\"actions\">")
            for (action, label) in [("release", "Release"), ("discard", "Discard")] {
                html.raw("<form method=\"post\"\(HTML.attributes([("action", "/drafts/\(id)/\(action)")]))>" + PageLayout.csrfField(csrf))
                html.raw("<button type=\"submit\">\(label)</button></form>")
            }
            html.raw("</td></tr>")
        }
        html.raw("</tbody></table>")
        return html
    }
}
