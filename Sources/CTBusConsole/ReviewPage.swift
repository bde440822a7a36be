import CTBusPolicy
import CTBusSchema
import Foundation

/// The last step before a message leaves: who the policy sends it to, from this node's registry
/// copy and by the broker's own admission step (`Publisher.preview`), its marks and its content
/// as recipients will read it; Publish, Save as draft, or back to the form. The form's values
/// travel on in hidden fields and are checked again when Publish is pressed.
struct ReviewPage: ConsolePage {
    let type: MessageType
    let message: BusMessage
    /// Each node's decision, the publisher's own left out; nil when the console has no registry.
    let decisions: [(node: NodeProfile, decision: RecipientDecision)]?
    let form: FormValues
    let csrf: String

    var title: String { "Review: \(ComposeForm.title(type).lowercased())" }
    var marking: String? { PageLayout.marking([message.envelope.handling.classification.name]) }

    var body: HTML {
        var html = HTML()
        html.element("p", "Nothing has been sent yet. Check who receives it and what it says, then publish it or keep it as a draft.",
                     attributes: [("class", "lead")])
        html.raw("<section aria-labelledby=\"r-who\"><h2 id=\"r-who\">Who receives it</h2>")
        if let decisions {
            html.element("p", Self.sentence(decisions), attributes: [("class", "recipients")])
            html.raw(Self.table(decisions).text)
        } else {
            html.element("p", "This console has no registry copy, so it cannot say who receives it: the broker decides when it arrives.")
        }
        html.raw("</section>")
        html.raw("<section aria-labelledby=\"r-marks\"><h2 id=\"r-marks\">Marks</h2><dl class=\"facts\">")
        for (name, value) in Reading.marks(message.envelope) { html.element("dt", name); html.element("dd", value) }
        html.raw("</dl></section>")
        html.raw(MessageContent(payload: message.payload, withheld: [], withheldFor: "", referenced: [:]).html.text)
        html.raw("<form method=\"post\" class=\"review\"\(HTML.attributes([("action", "/compose/" + ComposeForm.slug(type))]))>")
        html.raw(PageLayout.csrfField(csrf))
        for (name, values) in form.values.sorted(by: { $0.key < $1.key }) where !["csrf", "action", "envelope.message_id"].contains(name) {
            for value in values { html.raw("<input type=\"hidden\"\(HTML.attributes([("name", name), ("value", value)]))>") }
        }
        html.raw("<input type=\"hidden\"\(HTML.attributes([("name", "envelope.message_id"), ("value", message.envelope.messageID)]))>")
        html.raw("<div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"publish\">Publish</button>"
                 + "<button type=\"submit\" name=\"action\" value=\"draft\">Save as draft</button>"
                 + "<button type=\"submit\" name=\"action\" value=\"edit\">Change it</button></div></form>")
        return html
    }

    /// "Reaches oct and wg-border (without Recommendation); not wg-rights: clearance."
    static func sentence(_ decisions: [(node: NodeProfile, decision: RecipientDecision)]) -> String {
        var reaches: [String] = []
        var not: [String] = []
        for (node, decision) in decisions {
            switch decision {
            case .deliver(let paths):
                reaches.append(paths.isEmpty ? node.id : "\(node.id) (parts withheld)")
            case .refuse(let rule, _):
                if rule != .originator { not.append("\(node.id): \(rule.rawValue.replacingOccurrences(of: "-", with: " "))") }
            }
        }
        let first = reaches.isEmpty ? "Reaches no node" : "Reaches " + reaches.joined(separator: ", ")
        return first + (not.isEmpty ? "" : "; not " + not.joined(separator: "; not ")) + "."
    }

    private static func table(_ decisions: [(node: NodeProfile, decision: RecipientDecision)]) -> HTML {
        var html = HTML(raw: "<div class=\"scroll\"><table class=\"recipients\"><thead><tr>")
        for header in ["Node", "Receives", "Why"] { html.element("th", header, attributes: [("scope", "col")]) }
        html.raw("</tr></thead><tbody>")
        for (node, decision) in decisions {
            if case .refuse(.originator, _) = decision { continue }
            html.raw("<tr>")
            html.element("th", node.id, attributes: [("scope", "row")])
            switch decision {
            case .deliver(let paths) where paths.isEmpty:
                html.element("td", "the whole message")
                html.element("td", "cleared, entitled and subscribed")
            case .deliver(let paths):
                html.element("td", "a copy without " + paths.joined(separator: ", "))
                html.element("td", "the Member State restriction does not allow it the restricted parts")
            case .refuse(let rule, let reason):
                html.element("td", "nothing")
                // The policy's reasons read after the node's id ("is not on the releasability list") or alone.
                let verb = ["is ", "does ", "follows "].contains { reason.hasPrefix($0) }
                html.element("td", "\(rule.rawValue.replacingOccurrences(of: "-", with: " ")): " + (verb ? "\(node.id) \(reason)" : reason))
            }
            html.raw("</tr>")
        }
        html.raw("</tbody></table></div>")
        return html
    }
}
