import CTBusSchema
import Foundation

/// A page of the console as its handler builds it: the title, the banner marking of the most
/// classified content it shows, and its body.
protocol ConsolePage {
    var title: String { get }
    /// The marking banner (`PageLayout.marking`), or nil when the page shows nothing classified.
    var marking: String? { get }
    var body: HTML { get }
}

/// What every console page shares: the frame around its body, the classification banner, the
/// stylesheet and the links between pages. Pages are rendered on the server from the journal:
/// no JavaScript, no asset from outside the binary; every value escaped (`HTML`).
enum PageLayout {
    /// A whole page: navigation, and the UN classification marking in a banner at the top and the
    /// bottom when the page shows classified content.
    static func page(title: String, node: String, marking: String?, _ body: HTML) -> String {
        var html = HTML(raw: "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        html.element("title", "\(title) · CTBus \(node)")
        html.raw("<link rel=\"stylesheet\" href=\"/static/console.css\"></head><body>")
        if let marking { html.raw("<div class=\"marking\">"); html.text(marking); html.raw("</div>") }
        html.raw("<nav><span class=\"node\">CTBus · ")
        html.text(node)
        html.raw("</span>")
        for (href, label) in [("/journal", "Journal"), ("/trace", "Traceability"), ("/compose", "Compose"), ("/drafts", "Drafts"),
                              ("/status", "Status")] {
            html.raw(HTML.link(href, label))
        }
        html.raw("</nav><main>")
        html.element("h1", title)
        html.raw(body.text)
        html.raw("</main>")
        if let marking { html.raw("<div class=\"marking\">"); html.text(marking); html.raw("</div>") }
        html.raw("</body></html>")
        return html.text
    }

    /// The highest classification among `names`, as the banner shows it ("UNCLASSIFIED" alone
    /// shows no banner).
    static func marking(_ names: [String]) -> String? {
        let levels = names.compactMap(Classification.init(name:))
        guard let top = levels.max(by: { $0.rawValue < $1.rawValue }), top != .unclassified else { return nil }
        return top == .strictlyConfidential ? "STRICTLY CONFIDENTIAL" : "CONFIDENTIAL"
    }

    static func messageHref(_ id: String) -> String {
        "/messages/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? "")
    }

    /// The hidden field every form that changes something posts to this console: its CSRF token.
    static func csrfField(_ token: String) -> String {
        "<input type=\"hidden\" name=\"csrf\"\(HTML.attributes([("value", token)]))>"
    }

    static let stylesheet = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1b1f23;background:#fff}
        nav{display:flex;gap:1.5em;padding:.7em 1.5em;background:#0b3d66;color:#fff}
        nav a{color:#fff} nav .node{font-weight:600}
        main{padding:1em 1.5em;max-width:80em}
        .marking{background:#a8000c;color:#fff;text-align:center;font-weight:700;letter-spacing:.1em;padding:.3em}
        table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #d0d7de;vertical-align:top}
        .filters{display:flex;flex-wrap:wrap;gap:1em;margin-bottom:1em;align-items:end}
        .filters label{display:flex;flex-direction:column;font-size:.85em}
        dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em} dl.facts dt{font-weight:600}
        dl.fields dt{font-weight:600;margin-top:.4em} dl.fields dd{margin-left:1.2em;white-space:pre-wrap}
        .withheld li,.revoked,.refused{color:#8a4b00}
        form.compose fieldset{border:1px solid #d0d7de;margin:0 0 1em;padding:.6em 1em}
        form.compose .field{display:grid;grid-template-columns:14em 1fr;gap:.2em 1em;margin:.5em 0;align-items:start}
        form.compose .hint,form.compose .error{grid-column:2} form.compose textarea{width:100%}
        form.compose input[type=text]{width:24em} form.compose select,form.compose input[type=date]{justify-self:start} .choices{display:flex;flex-wrap:wrap;gap:.3em 1em}
        .invalid input,.invalid textarea,.invalid select{border:2px solid #a8000c}
        .error,.errors{color:#a8000c} form.compose p.error{grid-column:2;margin:.1em 0 .3em} .errors{border:2px solid #a8000c;padding:.3em 1em;margin-bottom:1em}
        td.actions form{display:inline;margin-right:.4em} form.revoke{display:flex;gap:.6em;align-items:center}
        """
}
