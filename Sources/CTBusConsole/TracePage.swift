import CTBusTrace
import Foundation

/// The traceability report: coverage by Member State and by thematic area (each chart with the
/// same figures as a table), then each recommendation, said by its text, with the activities
/// answering it and the mission reports on it; for one Member State or all, in the order asked.
struct TracePage: ConsolePage {
    let report: TraceReport
    /// The classification of every message the report reads, for the banner.
    let classifications: [String]
    /// The Member States the journal's recommendations name (the filter's choices).
    let memberStates: [String]
    let query: Query

    /// What the page was asked for: `?member_state=KEN&sort=oldest`.
    struct Query: Equatable {
        var memberState: String?
        var sort: Sort = .memberState

        enum Sort: String, CaseIterable {
            case memberState = "member_state"
            case oldest
            case open
            case priority

            var label: String {
                switch self {
                case .memberState: "Member State, then date"
                case .oldest: "oldest first"
                case .open: "unanswered first"
                case .priority: "priority, high first"
                }
            }
        }

        /// A query that names a sort order that does not exist, or a Member State that is not a
        /// code, is bad input.
        static func parse(memberState: String?, sort: String?) throws(ConsoleInputError) -> Query {
            var query = Query()
            if let state = memberState?.trimmingCharacters(in: .whitespaces).uppercased(), !state.isEmpty {
                guard state.utf8.count <= 16, state.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
                    throw ConsoleInputError("A Member State is a code such as KEN.")
                }
                query.memberState = state
            }
            if let sort, !sort.isEmpty {
                guard let order = Sort(rawValue: sort) else {
                    throw ConsoleInputError("Sort by " + Sort.allCases.map(\.rawValue).joined(separator: ", ") + ".")
                }
                query.sort = order
            }
            return query
        }
    }

    var title: String { query.memberState.map { "Traceability · \($0)" } ?? "Traceability" }
    var marking: String? { PageLayout.marking(classifications) }

    var body: HTML {
        var html = filters()
        html.element("p", "Coverage: the share of recommendations with at least one ongoing or completed activity answering them. "
                     + "Revoked and expired messages do not count.")
        for (index, (title, groups, column)) in [("By Member State", report.byMemberState, "Member State"),
                                                 ("By thematic area", report.byThematicArea, "Thematic area")].enumerated() {
            let id = "chart-\(index)"
            html.element("h2", title, attributes: [("id", id)])
            html.raw(Self.chart(groups, labelledBy: id))
            html.raw(Self.figures(groups, column: column, caption: "\(title): the figures of the chart", linkStates: index == 0).text)
        }
        html.element("h2", "Recommendations")
        let lines = sorted(report.recommendations)
        html.element("p", lines.count == 1 ? "1 recommendation." : "\(lines.count) recommendations.")
        html.raw("<div class=\"scroll\"><table class=\"trace\"><thead><tr>")
        for header in ["Recommendation", "Member State", "Theme", "Priority", "Follow-up", "Trace", "Answered by", "Mission reports"] {
            html.element("th", header, attributes: [("scope", "col")])
        }
        html.raw("</tr></thead><tbody>")
        for line in lines {
            html.raw("<tr><th scope=\"row\" class=\"summary\">" + line.link + "</th>")
            html.raw("<td>" + HTML.link(CountryFilePage.href(line.memberState), line.memberState) + "</td>")
            html.element("td", line.thematicArea)
            html.element("td", line.priorityWords)
            html.element("td", line.followUpWords)
            html.element("td", line.trace)
            html.raw("<td>" + line.answeredByLinks + "</td>")
            html.raw("<td>" + line.missionReports.enumerated().map { HTML.link(PageLayout.messageHref($1), "report \($0 + 1)") }
                .joined(separator: ", ") + "</td></tr>")
        }
        html.raw("</tbody></table></div>")
        if !report.notVisible.isEmpty {
            html.element("p", "\(report.notVisible.count) activity references point to recommendations not visible to this node.")
        }
        return html
    }

    /// The recommendations in the order asked for.
    private func sorted(_ lines: [TraceReport.Recommendation]) -> [TraceReport.Recommendation] {
        let rank = ["HIGH": 0, "MEDIUM": 1, "LOW": 2]
        switch query.sort {
        case .memberState: return lines
        case .oldest: return lines.sorted { ($0.publishedAt, $0.id) < ($1.publishedAt, $1.id) }
        case .open:
            return lines.sorted { a, b in
                let (x, y) = (a.state == "active" && !a.covered ? 0 : 1, b.state == "active" && !b.covered ? 0 : 1)
                return x != y ? x < y : (a.publishedAt, a.id) < (b.publishedAt, b.id)
            }
        case .priority:
            return lines.sorted { a, b in
                let (x, y) = (rank[a.priority] ?? 3, rank[b.priority] ?? 3)
                return x != y ? x < y : (a.publishedAt, a.id) < (b.publishedAt, b.id)
            }
        }
    }

    /// The Member State filter and the sort order (a GET form: the address says what is shown).
    private func filters() -> HTML {
        var html = HTML(raw: "<form method=\"get\" action=\"/trace\" class=\"filters\">")
        html.raw(HTML.select("member_state", label: "Member State", options: memberStates.map { ($0, $0) }, selected: query.memberState,
                             empty: "all"))
        html.raw(HTML.select("sort", label: "Order", options: Query.Sort.allCases.map { ($0.rawValue, $0.label) }, selected: query.sort.rawValue))
        html.raw("<button type=\"submit\">Show</button></form>")
        return html
    }

    static func href(_ query: Query) -> String {
        PageLayout.href("/trace", [("member_state", query.memberState), ("sort", query.sort == .memberState ? nil : query.sort.rawValue)])
    }

    /// A chart's figures as a table, for screen readers and for reading exact numbers.
    static func figures(_ groups: [TraceReport.Group], column: String, caption: String, linkStates: Bool) -> HTML {
        var html = HTML()
        guard !groups.isEmpty else { return html }
        html.raw("<details class=\"figures\"><summary>The figures as a table</summary><div class=\"scroll\"><table>")
        html.element("caption", caption)
        html.raw("<thead><tr>")
        for header in [column, "Recommendations", "Answered", "Coverage", "Oldest unanswered"] { html.element("th", header, attributes: [("scope", "col")]) }
        html.raw("</tr></thead><tbody>")
        for group in groups {
            html.raw("<tr>")
            html.raw("<th scope=\"row\">" + (linkStates ? HTML.link(CountryFilePage.href(group.name), group.name) : HTML.escape(group.name)) + "</th>")
            html.element("td", "\(group.recommendations)")
            html.element("td", "\(group.covered)")
            html.element("td", "\(Int((group.coverage * 100).rounded()))%")
            html.element("td", group.oldestUncoveredDays.map { $0 == 1 ? "1 day" : "\($0) days" } ?? "none")
            html.raw("</tr>")
        }
        html.raw("</tbody></table></div></details>")
        return html
    }

    /// Coverage as horizontal bars (server-rendered SVG; presentation attributes only, no
    /// style), named by the heading `labelledBy`; the table beside it (`figures`) holds its numbers.
    static func chart(_ groups: [TraceReport.Group], labelledBy: String) -> String {
        guard !groups.isEmpty else { return HTML.escape("No recommendation in this journal.") }
        let row = 26
        let labelWidth = 190
        let barWidth = 360
        var svg = "<svg class=\"chart\" role=\"img\"\(HTML.attributes([("aria-labelledby", labelledBy)]))"
            + " width=\"\(labelWidth + barWidth + 120)\" height=\"\(groups.count * row + 8)\""
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
}
