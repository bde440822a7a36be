import CTBusSchema
import Foundation

/// The drafts this node keeps, each said by what it says, with a form to release it (validated
/// again, then to the outbox) and one to discard it.
struct DraftsPage: ConsolePage {
    let drafts: [(envelope: Envelope, payload: BusMessage.OneOf_Payload?, savedAt: Date)]
    let csrf: String
    var done: ActionDone? = nil

    var title: String { "Drafts" }
    var marking: String? { PageLayout.marking(drafts.map(\.envelope.handling.classification.name)) }

    var body: HTML {
        var html = HTML()
        guard !drafts.isEmpty else {
            html.element("p", "No draft.", attributes: [("class", "empty")])
            return html
        }
        html.raw("<div class=\"scroll\"><table class=\"drafts\"><thead><tr>")
        for header in ["Draft", "Type", "Classification", "Member State", "Saved", "Actions"] { html.element("th", header, attributes: [("scope", "col")]) }
        html.raw("</tr></thead><tbody>")
        for draft in drafts {
            let id = draft.envelope.messageID
            html.raw("<tr>")
            html.element("th", Reading.summary(draft.payload), attributes: [("scope", "row"), ("class", "summary")])
            for value in [Reading.typeName(draft.envelope.type), Reading.classification(draft.envelope.handling.classification.name),
                          draft.envelope.subject, Reading.time(draft.savedAt)] {
                html.element("td", value)
            }
            html.raw("<td class=\"actions\">")
            for (action, label) in [("release", "Release"), ("discard", "Discard")] {
                html.raw("<form method=\"post\"\(HTML.attributes([("action", "/drafts/\(id)/\(action)")]))>" + PageLayout.csrfField(csrf))
                html.raw("<button type=\"submit\"\(HTML.attributes([("aria-label", "\(label) the draft saved \(Reading.time(draft.savedAt))")]))>\(label)</button></form>")
            }
            html.raw("</td></tr>")
        }
        html.raw("</tbody></table></div>")
        return html
    }
}
