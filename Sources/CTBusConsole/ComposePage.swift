import CTBusSchema
import Foundation

/// The types this node may publish, each a link to its form.
struct ComposeIndexPage: ConsolePage {
    let context: ComposeContext

    var title: String { "Compose" }
    var marking: String? { nil }

    var body: HTML {
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
}

/// The form of one type, with the values sent and the errors found (next to their fields). It
/// posts to this console with its CSRF token in a hidden field.
struct ComposePage: ConsolePage {
    let type: MessageType
    let context: ComposeContext
    let form: FormValues
    let errors: ComposeForm.Errors
    let csrf: String

    var title: String { ComposeForm.title(type) }
    var marking: String? { nil }

    var body: HTML {
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
        html.raw(PageLayout.csrfField(csrf))
        for (legend, fields) in [("Content", ComposeForm.payloadFields(type)),
                                 ("Links", ComposeForm.envelopeFields(type, context: context)),
                                 ("Handling", ComposeForm.handlingFields(type, context: context))] {
            html.raw("<fieldset>")
            html.element("legend", legend)
            for field in fields { html.raw(Self.render(field, form: form, error: errors.byField[field.name])) }
            html.raw("</fieldset>")
        }
        // The first button is the one Enter presses: it reviews, never publishes.
        html.raw("<div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"review\">Review before publishing</button>"
                 + "<button type=\"submit\" name=\"action\" value=\"draft\">Save as draft</button></div></form>")
        return html
    }

    /// One field: label, input, hint and error. Values come back from the form as sent.
    static func render(_ field: ComposeForm.Field, form: FormValues, error: String?) -> String {
        let id = "f-" + field.name
        let described = error == nil ? [] : [("aria-invalid", "true"), ("aria-describedby", id + "-error")]
        var html = HTML(raw: "<div\(HTML.attributes([("class", error == nil ? "field" : "field invalid")]))>")
        html.raw(control(field, id: id, described: described, form: form).text)
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

    /// A field's label and input, holding the value sent; `described` marks the input invalid
    /// and points at its error.
    private static func control(_ field: ComposeForm.Field, id: String, described: [(String, String)], form: FormValues) -> HTML {
        var html = HTML()
        func label() { html.raw("<label\(HTML.attributes([("for", id)]))>"); html.text(field.label); html.raw("</label>") }
        func input(_ name: String, _ type: String, _ extra: [(String, String)] = []) {
            html.raw("<input\(HTML.attributes([("type", type), ("name", name), ("value", form.values[name]?.first ?? "")] + extra))>")
        }
        switch field.kind {
        case .text:
            label()
            input(field.name, "text", [("id", id)] + described)
        case .date:
            label()
            input(field.name, "date", [("id", id)] + described)
        case .textarea, .lines:
            label()
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
            label()
            html.raw("<select\(HTML.attributes([("name", field.name), ("id", id)] + described))>")
            let chosen = form.values[field.name]?.first
            for option in options {
                html.raw("<option\(HTML.attributes([("value", option.value)]))\(option.value == chosen ? " selected" : "")>")
                html.text(option.label)
                html.raw("</option>")
            }
            html.raw("</select>")
        case .file(let accept):
            label()
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
        return html
    }
}
