/// Server-rendered HTML. Every piece of text that reaches a page goes through `escape`; markup
/// is written only by this module's own code, never taken from a message, a query or a file.
struct HTML: Sendable {
    private(set) var text: String

    init(raw: String = "") { text = raw }

    /// Text as it must appear on a page: `&`, `<`, `>`, `"` and `'` escaped.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    /// Appends markup of this module's own.
    mutating func raw(_ markup: String) { text += markup }

    /// Appends text, escaped.
    mutating func text(_ value: String) { text += Self.escape(value) }

    /// Appends `<tag attributes>escaped text</tag>`; attribute values are escaped too.
    mutating func element(_ tag: String, _ value: String, attributes: [(String, String)] = []) {
        text += "<\(tag)\(Self.attributes(attributes))>\(Self.escape(value))</\(tag)>"
    }

    static func attributes(_ list: [(String, String)]) -> String {
        list.map { " \($0.0)=\"\(escape($0.1))\"" }.joined()
    }

    /// A labelled select of a filter form. `empty`, when given, labels the option that filters
    /// nothing (value ""); the option whose value is `selected` is chosen.
    static func select(_ name: String, label: String, options: [(value: String, label: String)], selected: String?,
                       empty: String? = nil) -> String {
        var html = HTML(raw: "<label>")
        html.text(label)
        html.raw("<select\(attributes([("name", name)]))>")
        if let empty { html.element("option", empty, attributes: [("value", "")]) }
        for option in options {
            html.raw("<option\(attributes([("value", option.value)]))\(option.value == selected ? " selected" : "")>")
            html.text(option.label)
            html.raw("</option>")
        }
        html.raw("</select></label>")
        return html.text
    }

    /// A link; `href` is built by this module from escaped, percent-encoded parts.
    static func link(_ href: String, _ label: String, classes: String? = nil) -> String {
        var attributes = [("href", href)]
        if let classes { attributes.append(("class", classes)) }
        return "<a\(Self.attributes(attributes))>\(escape(label))</a>"
    }
}
