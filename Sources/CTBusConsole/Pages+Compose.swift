import CTBusJournal
import CTBusSchema
import Foundation

/// The pages that change something: compose, drafts, revocation. Every form posts to this
/// console with its CSRF token in a hidden field.
extension Pages {
    static func csrfField(_ token: String) -> String {
        "<input type=\"hidden\" name=\"csrf\"\(HTML.attributes([("value", token)]))>"
    }

    /// The types this node may publish, each a link to its form.
    static func composeIndex(_ context: ComposeContext) -> HTML {
        var html = HTML()
        let types = ComposeForm.slugs.filter { context.mayPublish.contains($0.type) }
        guard !types.isEmpty else {
            html.element("p", "This node's role publishes nothing.")
            return html
        }
        html.raw("<ul class=\"compose\">")
        for item in types { html.raw("<li>" + HTML.link("/compose/" + item.slug, item.title) + "</li>") }
        html.raw("</ul>")
        return html
    }

    /// The form of one type, with the values sent and the errors found (next to their fields).
    static func compose(_ type: MessageType, context: ComposeContext, form: FormValues, errors: ComposeForm.Errors,
                        csrf: String) -> HTML {
        var html = HTML()
        if !errors.isEmpty {
            html.raw("<div class=\"errors\" role=\"alert\">")
            html.element("p", "Nothing was saved: correct the fields marked below.")
            if !errors.general.isEmpty {
                html.raw("<ul>")
                for line in errors.general { html.element("li", line) }
                html.raw("</ul>")
            }
            html.raw("</div>")
        }
        var attributes = [("action", "/compose/" + ComposeForm.slug(type))]
        if ComposeForm.payloadFields(type).contains(where: { if case .file = $0.kind { true } else { false } }) {
            attributes.append(("enctype", "multipart/form-data"))
        }
        html.raw("<form method=\"post\" class=\"compose\"\(HTML.attributes(attributes))>")
        html.raw(csrfField(csrf))
        for (legend, fields) in [("Content", ComposeForm.payloadFields(type)),
                                 ("Links", ComposeForm.envelopeFields(type, context: context)),
                                 ("Handling", ComposeForm.handlingFields(type, context: context))] {
            html.raw("<fieldset>")
            html.element("legend", legend)
            for field in fields { html.raw(render(field, form: form, error: errors.byField[field.name])) }
            html.raw("</fieldset>")
        }
        html.raw("<div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"publish\">Publish</button>"
                 + "<button type=\"submit\" name=\"action\" value=\"draft\">Save as draft</button></div></form>")
        return html
    }

    /// One field: label, input, hint and error. Values come back from the form as sent.
    static func render(_ field: ComposeForm.Field, form: FormValues, error: String?) -> String {
        var html = HTML(raw: "<div\(HTML.attributes([("class", error == nil ? "field" : "field invalid")]))>")
        let id = "f-" + field.name
        let described = error == nil ? [] : [("aria-invalid", "true"), ("aria-describedby", id + "-error")]
        func input(_ name: String, _ type: String, _ extra: [(String, String)] = []) {
            html.raw("<input\(HTML.attributes([("type", type), ("name", name), ("value", form.values[name]?.first ?? "")] + extra))>")
        }
        switch field.kind {
        case .text:
            html.raw("<label\(HTML.attributes([("for", id)]))>"); html.text(field.label); html.raw("</label>")
            input(field.name, "text", [("id", id)] + described)
        case .date:
            html.raw("<label\(HTML.attributes([("for", id)]))>"); html.text(field.label); html.raw("</label>")
            input(field.name, "date", [("id", id)] + described)
        case .textarea, .lines:
            html.raw("<label\(HTML.attributes([("for", id)]))>"); html.text(field.label); html.raw("</label>")
            html.raw("<textarea\(HTML.attributes([("name", field.name), ("id", id), ("rows", "5")] + described))>")
            html.text(form.values[field.name]?.first ?? "")
            html.raw("</textarea>")
        case .range:
            html.raw("<span class=\"label\">"); html.text(field.label); html.raw("</span><span class=\"range\">")
            input(field.name + ".start", "date", [("id", id), ("aria-label", field.label + " from")] + described)
            html.raw(" to ")
            input(field.name + ".end", "date", [("aria-label", field.label + " to")] + described)
            html.raw("</span>")
        case .choice(let options):
            html.raw("<label\(HTML.attributes([("for", id)]))>"); html.text(field.label); html.raw("</label>")
            html.raw("<select\(HTML.attributes([("name", field.name), ("id", id)] + described))>")
            let chosen = form.values[field.name]?.first
            for option in options {
                html.raw("<option\(HTML.attributes([("value", option.value)]))\(option.value == chosen ? " selected" : "")>")
                html.text(option.label)
                html.raw("</option>")
            }
            html.raw("</select>")
        case .file(let accept):
            html.raw("<label\(HTML.attributes([("for", id)]))>"); html.text(field.label); html.raw("</label>")
            html.raw("<input\(HTML.attributes([("type", "file"), ("name", field.name), ("id", id), ("accept", accept)] + described))>")
        case .flag:
            html.raw("<label class=\"flag\"><input\(HTML.attributes([("type", "checkbox"), ("name", field.name), ("value", "on"), ("id", id)]))"
                     + "\(form.values[field.name] != nil ? " checked" : "")> ")
            html.text(field.label)
            html.raw("</label>")
        case .choices(let options):
            html.raw("<span class=\"label\">"); html.text(field.label); html.raw("</span><span class=\"choices\">")
            let chosen = Set(form.values[field.name] ?? [])
            for option in options {
                html.raw("<label class=\"flag\"><input\(HTML.attributes([("type", "checkbox"), ("name", field.name), ("value", option.value)]))"
                         + "\(chosen.contains(option.value) ? " checked" : "")> ")
                html.text(option.label)
                html.raw("</label>")
            }
            html.raw("</span>")
        }
        if field.required { html.raw("<small class=\"hint\">required</small>") }
        if let hint = field.hint { html.element("small", hint, attributes: [("class", "hint")]) }
        if let error {
            let sentence = error == "is required" ? "\(field.label): required"
                : error.hasPrefix("is ") || error.hasPrefix("must ") ? "\(field.label) \(error)" : "\(field.label): \(error)"
            html.element("p", sentence, attributes: [("class", "error"), ("id", id + "-error")])
        }
        html.raw("</div>")
        return html.text
    }

    // MARK: Drafts

    static func drafts(_ drafts: [(envelope: Envelope, savedAt: Date)], csrf: String) -> HTML {
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
                html.raw("<form method=\"post\"\(HTML.attributes([("action", "/drafts/\(id)/\(action)")]))>" + csrfField(csrf))
                html.raw("<button type=\"submit\">\(label)</button></form>")
            }
            html.raw("</td></tr>")
        }
        html.raw("</tbody></table>")
        return html
    }

    /// The life of this node's own publication, as its journal records it: queued, acknowledged
    /// by the broker (or refused), revocation sent and confirmed. Who received it, who got a
    /// redacted copy and who was refused by which rule is the broker's audit (`ctbus audit`).
    static func publication(_ entry: JournalEntry, revocation: (reason: String, lastSentAt: Date?)?) -> HTML {
        let time = ISO8601DateFormatter()
        var facts: [(String, String)] = [("Queued in the outbox (UTC)", time.string(from: entry.recordedAt))]
        if let code = entry.refusedCode {
            facts.append(("Broker", "refused it: \(code)"))
        } else {
            facts.append(("Stored by the broker (UTC)", entry.acknowledgedAt.map { time.string(from: $0) } ?? "not yet: the node daemon sends it"))
        }
        if let revoked = entry.revokedAt {
            facts.append(("Revoked (UTC)", "\(time.string(from: revoked)), confirmed by the broker"))
        } else if let revocation {
            facts.append(("Revocation", revocation.lastSentAt.map { "sent at \(time.string(from: $0)), waiting for the broker to confirm it" }
                          ?? "queued; the node daemon sends it"))
        }
        var html = HTML()
        html.element("h2", "Publication")
        html.raw("<dl class=\"facts publication\">")
        for (name, value) in facts { html.element("dt", name); html.element("dd", value) }
        html.raw("</dl>")
        html.element("p", "Who received it, who got a copy with parts withheld and who was refused by which rule: "
                     + "the broker's audit (ctbus audit on the broker's host).", attributes: [("class", "hint")])
        return html
    }

    /// The revocation form shown on a message this node published and has not revoked.
    static func revokeForm(_ messageId: String, csrf: String) -> HTML {
        var html = HTML(raw: "<form method=\"post\" class=\"revoke\"\(HTML.attributes([("action", messageHref(messageId) + "/revoke")]))>")
        html.raw(csrfField(csrf))
        html.raw("<label for=\"reason\">Reason</label><input type=\"text\" id=\"reason\" name=\"reason\" maxlength=\"1024\">")
        html.raw("<button type=\"submit\">Revoke this message</button></form>")
        return html
    }
}
