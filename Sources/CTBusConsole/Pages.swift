import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusTrace
import Foundation
import SwiftProtobuf

/// The console's pages, rendered on the server from the journal. No JavaScript, no asset from
/// outside the binary; every value escaped (`HTML`).
enum Pages {
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

    static func query(_ pairs: [(String, String?)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#?")
        let parts = pairs.compactMap { key, value in
            value.flatMap { $0.isEmpty ? nil : "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
        }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    static func messageHref(_ id: String) -> String {
        "/messages/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? "")
    }

    // MARK: Journal

    struct JournalQuery {
        var type: String?
        var originator: String?
        var memberState: String?
        var classification: String?
        var direction: String?
        var words: String?
        var before: Int64?

        var pairs: [(String, String?)] {
            [("q", words), ("type", type), ("originator", originator), ("member_state", memberState), ("classification", classification),
             ("direction", direction)]
        }
    }

    static func journal(_ entries: [JournalEntry], query: JournalQuery, next: Int64?, unindexed: Int64 = 0, now: Date) -> HTML {
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
        if unindexed > 0 {
            html.element("p", "The \(unindexed) newest entries are not in the search index yet (it is being filled); "
                         + "search again in a moment to include them.", attributes: [("class", "notice")])
        }
        guard !entries.isEmpty else {
            html.element("p", "No message matches.", attributes: [("class", "empty")])
            return html
        }
        html.raw("<table class=\"journal\"><thead><tr>")
        for header in ["Created (UTC)", "Type", "Classification", "Member State", "From", "Direction", "Notes"] { html.element("th", header) }
        html.raw("</tr></thead><tbody>")
        let time = ISO8601DateFormatter()
        for entry in entries {
            var notes: [String] = []
            if entry.revokedAt != nil { notes.append("revoked") }
            if let envelope = try? entry.envelope(), ConfidentialityPolicy.isExpired(envelope, at: now) { notes.append("expired") }
            if !entry.redactedPaths.isEmpty { notes.append("parts withheld") }
            if let code = entry.refusedCode { notes.append("refused \(code)") }
            html.raw("<tr><td>")
            html.raw(HTML.link(messageHref(entry.messageId), time.string(from: entry.createdAt)))
            html.raw("</td>")
            for value in [entry.typeName, entry.classificationName, entry.subject, entry.originator, entry.direction.rawValue,
                          notes.joined(separator: ", ")] {
                html.element("td", value)
            }
            html.raw("</tr>")
        }
        html.raw("</tbody></table>")
        if let next {
            var older = query
            older.before = next
            html.raw("<p class=\"pages\">" + HTML.link("/journal" + Pages.query(older.pairs + [("before", "\(next)")]), "Older messages") + "</p>")
        }
        return html
    }

    // MARK: Message

    /// A reference's relation in words, read from the referring message ("answers") or from the
    /// message referred to ("answered by").
    static func relationName(_ relation: Reference.Relation, reverse: Bool) -> String {
        switch relation {
        case .answers: reverse ? "answered by" : "answers"
        case .reportsOn: reverse ? "reported on by" : "reports on"
        case .followsUp: reverse ? "followed up by" : "follows up"
        case .supersedes: reverse ? "superseded by" : "supersedes"
        default: reverse ? "referred to by" : "refers to"
        }
    }

    static func message(_ entry: JournalEntry, _ message: BusMessage, hashHex: String, signature: SignatureState?,
                        registry: NodeRegistry?, answeredBy: [(entry: JournalEntry, relation: String)] = []) -> HTML {
        var html = HTML()
        let envelope = message.envelope
        let handling = envelope.handling
        html.raw("<dl class=\"facts\">")
        var facts: [(String, String)] = [
            ("Message id", envelope.messageID), ("Type", envelope.type.name), ("From", entry.originator),
            ("Direction", entry.direction.rawValue), ("Member State or region", envelope.subject),
            ("Created (UTC)", ISO8601DateFormatter().string(from: entry.createdAt)),
            ("Classification", handling.classification.name),
            ("Releasable to", handling.releasability.isEmpty ? "every entitled node" : handling.releasability.joined(separator: ", ")),
        ]
        if handling.tlp != .tlpUnspecified { facts.append(("TLP", "\(handling.tlp)".uppercased())) }
        if !handling.declassifyOn.isEmpty { facts.append(("Declassified on", handling.declassifyOn)) }
        if envelope.hasExpiresAt { facts.append(("Expires (UTC)", ISO8601DateFormatter().string(from: envelope.expiresAt.date))) }
        if handling.hasMemberStateRestriction {
            let restriction = handling.memberStateRestriction
            facts.append(("Member State restriction", "\(restriction.state), \(restriction.scope == .whole ? "whole message" : "parts"), "
                          + "requested on \(restriction.requestedOn)"))
        }
        if !envelope.thematicTags.isEmpty { facts.append(("Themes", envelope.thematicTags.joined(separator: ", "))) }
        facts.append(("Signature", signature?.summary ?? "not checked: this console has no registry"))
        facts.append(("Journal position", "\(entry.position)"))
        facts.append(("Hash", hashHex))
        for (name, value) in facts { html.element("dt", name); html.element("dd", value) }
        html.raw("</dl>")
        if let revoked = entry.revocationSummary(registry: registry) {
            html.element("p", "This message was \(revoked).", attributes: [("class", "revoked")])
        }
        if let code = entry.refusedCode {
            html.element("p", "The broker refused this publication (\(code): \(entry.refusedDetail ?? "")); it is not sent again.",
                         attributes: [("class", "refused")])
        }
        if !entry.redactedPaths.isEmpty {
            let state = handling.hasMemberStateRestriction ? handling.memberStateRestriction.state : "a Member State"
            html.raw("<ul class=\"withheld\">")
            for path in entry.redactedPaths {
                html.element("li", "\(path): withheld at the request of \(state)")
            }
            html.raw("</ul>")
        }
        if !envelope.references.isEmpty {
            html.element("h2", "References")
            html.raw("<ul>")
            for reference in envelope.references {
                html.raw("<li>")
                html.text(relationName(reference.relation, reverse: false) + " ")
                html.raw(HTML.link(messageHref(reference.messageID), reference.messageID))
                html.raw("</li>")
            }
            html.raw("</ul>")
        }
        if !answeredBy.isEmpty {
            html.element("h2", "Referred to by")
            html.raw("<ul class=\"referrers\">")
            for item in answeredBy {
                html.raw("<li>")
                html.text("\(item.relation) ")
                html.raw(HTML.link(messageHref(item.entry.messageId),
                                   "\(item.entry.typeName.replacingOccurrences(of: "_", with: " ").lowercased()) from \(item.entry.originator)"))
                html.text(" (\(ISO8601DateFormatter().string(from: item.entry.createdAt)))")
                html.raw("</li>")
            }
            html.raw("</ul>")
        }
        html.element("h2", "Content")
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        if let payload = try? message.jsonUTF8Data(options: options),
           let object = try? JSONSerialization.jsonObject(with: payload) as? [String: Any] {
            let content = object.filter { $0.key != "envelope" }.values.first
            html.raw(render(content ?? [:]))
        }
        return html
    }

    /// A decoded JSON value as nested definition lists, every key and value escaped.
    static func render(_ value: Any) -> String {
        switch value {
        case let object as [String: Any]:
            var html = HTML(raw: "<dl class=\"fields\">")
            for key in object.keys.sorted() {
                html.element("dt", key.replacingOccurrences(of: "_", with: " "))
                html.raw("<dd>" + render(object[key]!) + "</dd>")
            }
            html.raw("</dl>")
            return html.text
        case let list as [Any]:
            return "<ul>" + list.map { "<li>" + render($0) + "</li>" }.joined() + "</ul>"
        case let number as NSNumber:
            return HTML.escape(number.stringValue)
        default:
            return HTML.escape("\(value)")
        }
    }

    // MARK: Traceability

    static func trace(_ report: TraceReport) -> HTML {
        var html = HTML()
        html.element("p", "Coverage: the share of recommendations with at least one ongoing or completed activity answering them. "
                     + "Revoked and expired messages do not count.")
        for (title, groups) in [("By Member State", report.byMemberState), ("By thematic area", report.byThematicArea)] {
            html.element("h2", title)
            html.raw(chart(groups))
        }
        html.element("h2", "Recommendations")
        html.raw("<table class=\"trace\"><thead><tr>")
        for header in ["Member State", "Theme", "Priority", "Follow-up", "Trace", "Answered by", "Mission reports"] { html.element("th", header) }
        html.raw("</tr></thead><tbody>")
        for line in report.recommendations {
            html.raw("<tr><td>" + HTML.link(messageHref(line.id), line.memberState) + "</td>")
            html.element("td", line.thematicArea)
            html.element("td", line.priority)
            html.element("td", line.followUp)
            html.element("td", line.state == "active" ? (line.covered ? "covered" : "open") : line.state)
            html.raw("<td>" + line.answeredBy.map { HTML.link(messageHref($0.matrixId), "\($0.projectId) (\($0.status.lowercased()))") }
                .joined(separator: "<br>") + "</td>")
            html.raw("<td>" + line.missionReports.map { HTML.link(messageHref($0), "report") }.joined(separator: ", ") + "</td></tr>")
        }
        html.raw("</tbody></table>")
        if !report.notVisible.isEmpty {
            html.element("p", "\(report.notVisible.count) activity references point to recommendations not visible to this node.")
        }
        return html
    }

    /// Coverage as horizontal bars (server-rendered SVG; presentation attributes only, no style).
    static func chart(_ groups: [TraceReport.Group]) -> String {
        guard !groups.isEmpty else { return HTML.escape("No recommendation in this journal.") }
        let row = 26
        let labelWidth = 190
        let barWidth = 360
        var svg = "<svg class=\"chart\" role=\"img\" width=\"\(labelWidth + barWidth + 120)\" height=\"\(groups.count * row + 8)\""
            + " viewBox=\"0 0 \(labelWidth + barWidth + 120) \(groups.count * row + 8)\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (index, group) in groups.enumerated() {
            let y = index * row + 4
            let width = Int((group.coverage * Double(barWidth)).rounded())
            let label = "\(Int((group.coverage * 100).rounded()))% of \(group.recommendations)"
            svg += "<text x=\"0\" y=\"\(y + 16)\" font-size=\"13\">\(HTML.escape(group.name))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(barWidth)\" height=\"20\" fill=\"#e4e7eb\"/>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(width)\" height=\"20\" fill=\"#1f6f43\"/>"
            svg += "<text x=\"\(labelWidth + barWidth + 8)\" y=\"\(y + 16)\" font-size=\"13\">\(HTML.escape(label))</text>"
        }
        return svg + "</svg>"
    }

    // MARK: Status

    struct StatusFacts {
        var daemonRunning: Bool
        var session: (open: Bool, since: Date)?
        var entries: Int64
        var outbox: Int
        var refused: Int
        var drafts: Int
        var lastReceived: Date?
        var lastAcknowledged: Date?
        var searchIndexed: Int64
        var verify: JournalCheck.Outcome?
        var verifying: Bool
    }

    static func status(_ facts: StatusFacts, csrf: String) -> HTML {
        let time = ISO8601DateFormatter()
        let connection: String
        switch (facts.daemonRunning, facts.session) {
        case (true, let session?) where session.open: connection = "connected to the broker since \(time.string(from: session.since))"
        case (true, let session?): connection = "running, not connected to the broker since \(time.string(from: session.since)) (it keeps trying)"
        case (true, nil): connection = "running, not connected to the broker yet"
        case (false, _): connection = "not running: nothing is sent or received until ctbus node runs"
        }
        let verify: String
        switch facts.verify?.result {
        case .success(let report)? where report.isIntact:
            verify = "intact: \(report.entries) entries and their hash chain (checked \(time.string(from: facts.verify!.at)))"
        case .success(let report)?:
            verify = "DAMAGED: " + (report.firstBreak.map { "entry \($0.position): \($0.reason)" } ?? report.damage.joined(separator: "; "))
                + " (checked \(time.string(from: facts.verify!.at))); see ctbus journal salvage"
        case .failure(let error)?:
            verify = "could not run: \(error)"
        case nil:
            verify = facts.verifying ? "running…" : "not run yet"
        }
        var html = HTML(raw: "<dl class=\"facts status\">")
        for (name, value) in [("Node daemon", connection), ("Journal entries", "\(facts.entries)"),
                              ("Publications waiting in the outbox", "\(facts.outbox)"),
                              ("Publications refused by the broker", "\(facts.refused)"), ("Drafts", "\(facts.drafts)"),
                              ("Last message received (UTC)", facts.lastReceived.map { time.string(from: $0) } ?? "none yet"),
                              ("Last publication acknowledged (UTC)", facts.lastAcknowledged.map { time.string(from: $0) } ?? "none yet"),
                              ("Search index", "\(facts.searchIndexed) of \(facts.entries) entries"),
                              ("Journal verify", verify)] {
            html.element("dt", name)
            html.element("dd", value)
        }
        html.raw("</dl><form method=\"post\" action=\"/status/verify\">" + csrfField(csrf)
                 + "<button type=\"submit\">Verify the journal now</button></form>")
        return html
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
