import CTBusSchema
import Foundation

/// A page of the console as its handler builds it: the title, the banner marking of the most
/// classified content it shows, and its body.
protocol ConsolePage {
    var title: String { get }
    /// The marking banner (`PageLayout.marking`); nil shows UNCLASSIFIED.
    var marking: String? { get }
    /// The action that led here, confirmed under the title (`ActionDone`).
    var done: ActionDone? { get }
    var body: HTML { get }
}

extension ConsolePage {
    var done: ActionDone? { nil }
}

/// What every console page shares: the frame around its body, the classification banner, the
/// stylesheet and the links between pages. Pages are rendered on the server from the journal:
/// no JavaScript, no asset from outside the binary; every value escaped (`HTML`).
enum PageLayout {
    /// A whole page: the UN classification marking in a banner at the top (inside the page's
    /// header landmark, with the navigation) and at the bottom (inside its footer), on every
    /// page, UNCLASSIFIED included, and on every printed sheet. Compose and Drafts are offered
    /// only to a node whose role `publishes`.
    static func page(title: String, node: String, publishes: Bool = true, marking: String?, done: ActionDone? = nil, _ body: HTML) -> String {
        let marking = marking ?? unclassified
        let banner = "<div\(HTML.attributes([("class", marking == unclassified ? "marking unclassified" : "marking")]))>\(HTML.escape(marking))</div>"
        var html = HTML(raw: "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        html.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        html.element("title", "\(title) · CTBus \(node)")
        html.raw("<link rel=\"stylesheet\" href=\"/static/console.css\"></head><body>")
        html.raw("<header>" + banner + "<nav aria-label=\"Console\"><span class=\"node\">CTBus · ")
        html.text(node)
        html.raw("</span>")
        var links = [("/journal", "Journal"), ("/states", "Member States"), ("/trace", "Traceability")]
        if publishes { links += [("/compose", "Compose"), ("/drafts", "Drafts")] }
        for (href, label) in links + [("/notifications", "Notifications"), ("/status", "Status")] {
            html.raw(HTML.link(href, label))
        }
        html.raw("</nav></header><main>")
        html.element("h1", title)
        if let done { html.raw(done.notice.text) }
        html.raw(body.text)
        html.raw("</main><footer>" + banner + "</footer></body></html>")
        return html.text
    }

    static let unclassified = "UNCLASSIFIED"

    /// The highest classification among `names`, as the banner shows it; nil (shown as
    /// UNCLASSIFIED) when nothing is marked higher.
    static func marking(_ names: [String]) -> String? {
        let levels = names.compactMap(Classification.init(name:))
        guard let top = levels.max(by: { $0.rawValue < $1.rawValue }), top != .unclassified else { return nil }
        return top == .strictlyConfidential ? "STRICTLY CONFIDENTIAL" : "CONFIDENTIAL"
    }

    /// `path` with the query `parameters`, each value percent-encoded; a nil or empty value is left out.
    static func href(_ path: String, _ parameters: [(String, String?)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#?")
        let parts = parameters.compactMap { key, value in
            value.flatMap { $0.isEmpty ? nil : "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        }
        return path + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
    }

    static func messageHref(_ id: String) -> String {
        "/messages/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? "")
    }

    /// The hidden field every form that changes something posts to this console: its CSRF token.
    static func csrfField(_ token: String) -> String {
        "<input type=\"hidden\" name=\"csrf\"\(HTML.attributes([("value", token)]))>"
    }

    /// The console's one stylesheet. Long words break rather than widen the page (in a table's
    /// summary column too); wide tables scroll inside their own box (`.scroll`); under 40em the navigation wraps, forms
    /// stack their labels over their fields and definition lists run in one column; printed, the
    /// navigation and forms drop out and the banners repeat at the top and bottom of every sheet.
    static let stylesheet = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1b1f23;background:#fff;overflow-wrap:break-word}
        nav{display:flex;flex-wrap:wrap;gap:.4em 1.5em;padding:.7em 1.5em;background:#0b3d66;color:#fff}
        nav a{color:#fff} nav .node{font-weight:600}
        main{padding:1em 1.5em;max-width:80em}
        .marking{background:#a8000c;color:#fff;text-align:center;font-weight:700;letter-spacing:.1em;padding:.3em}
        .marking.unclassified{background:#1f6f43}
        .lead{font-size:1.05em;color:#3d4650} p.text{font-size:1.1em;line-height:1.5;max-width:50em;white-space:pre-wrap}
        .done{border-left:.4em solid #1f6f43;background:#eef7f1;padding:.5em 1em}
        .not-visible{color:#5b636b;font-style:italic} .scroll{overflow-x:auto;max-width:100%}
        table.activities ul.answers{margin:0;padding-left:1em} th[scope=row]{font-weight:normal}
        th.summary{font-weight:normal;min-width:16em;overflow-wrap:anywhere}
        mark{background:#fff0a8;color:inherit} p.snippet{margin:.3em 0 0;font-size:.92em;color:#3d4650}
        p.count{font-weight:600}
        table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #d0d7de;vertical-align:top}
        .filters{display:flex;flex-wrap:wrap;gap:1em;margin-bottom:1em;align-items:end}
        .filters label{display:flex;flex-direction:column;font-size:.85em}
        dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2em 1em} dl.facts dt{font-weight:600}
        dl.facts dd{margin:0;min-width:0;overflow-wrap:anywhere} svg.chart{max-width:100%;height:auto}
        .withheld,.revoked,.refused{color:#8a4b00}
        form.compose fieldset{border:1px solid #d0d7de;margin:0 0 1em;padding:.6em 1em}
        form.compose .field{display:grid;grid-template-columns:14em 1fr;gap:.2em 1em;margin:.5em 0;align-items:start}
        form.compose .hint,form.compose .error{grid-column:2} form.compose textarea{width:100%}
        form.compose fieldset.field{display:block;border:0;padding:0;margin:.8em 0} form.compose fieldset.field legend{padding:0;margin-bottom:.3em}
        form.compose fieldset.field p.error{margin:.3em 0} .secret{border-left:.3em solid #1f6f3f;background:#eef6f0;padding:.2em 1em;margin-bottom:1em}
        .secret code{overflow-wrap:anywhere}
        form.compose input[type=text]{width:24em} form.compose select,form.compose input[type=date]{justify-self:start} .choices{display:flex;flex-wrap:wrap;gap:.3em 1em}
        .invalid input,.invalid textarea,.invalid select{border:2px solid #a8000c}
        .error,.errors{color:#a8000c} form.compose p.error{grid-column:2;margin:.1em 0 .3em} .errors{border:2px solid #a8000c;padding:.3em 1em;margin-bottom:1em}
        td.actions form{display:inline;margin-right:.4em} form.revoke{display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
        @media (max-width:40em){
        main{padding:.8em} nav{padding:.6em .8em}
        dl.facts{grid-template-columns:minmax(0,1fr)} dl.facts dd{margin:0 0 .5em}
        form.compose .field{grid-template-columns:1fr} form.compose .hint,form.compose .error,form.compose p.error{grid-column:1}
        form.compose input[type=text]{width:100%;box-sizing:border-box} .filters label{flex:1 1 100%}
        .filters input,.filters select{width:100%;box-sizing:border-box}
        }
        @media print{
        nav,form,.filters,.pages{display:none}
        header .marking,footer .marking{position:fixed;left:0;right:0;print-color-adjust:exact;-webkit-print-color-adjust:exact}
        header .marking{top:0} footer .marking{bottom:0} main{margin:2.2em 0}
        a{color:inherit;text-decoration:none}
        }
        """
}
