import CTBusTrace
import Foundation

/// The traceability report: coverage by Member State and by thematic area, then each
/// recommendation with the activities answering it and the mission reports on it.
struct TracePage: ConsolePage {
    let report: TraceReport
    /// The classification of every message the report reads, for the banner.
    let classifications: [String]

    var title: String { "Traceability" }
    var marking: String? { PageLayout.marking(classifications) }

    var body: HTML {
        var html = HTML()
        html.element("p", "Coverage: the share of recommendations with at least one ongoing or completed activity answering them. "
                     + "Revoked and expired messages do not count.")
        for (title, groups) in [("By Member State", report.byMemberState), ("By thematic area", report.byThematicArea)] {
            html.element("h2", title)
            html.raw(Self.chart(groups))
        }
        html.element("h2", "Recommendations")
        html.raw("<table class=\"trace\"><thead><tr>")
        for header in ["Member State", "Theme", "Priority", "Follow-up", "Trace", "Answered by", "Mission reports"] { html.element("th", header) }
        html.raw("</tr></thead><tbody>")
        for line in report.recommendations {
            html.raw("<tr><td>" + HTML.link(PageLayout.messageHref(line.id), line.memberState) + "</td>")
            html.element("td", line.thematicArea)
            html.element("td", line.priority)
            html.element("td", line.followUp)
            html.element("td", line.state == "active" ? (line.covered ? "covered" : "open") : line.state)
            html.raw("<td>" + line.answeredBy.map { HTML.link(PageLayout.messageHref($0.matrixId), "\($0.projectId) (\($0.status.lowercased()))") }
                .joined(separator: "<br>") + "</td>")
            html.raw("<td>" + line.missionReports.map { HTML.link(PageLayout.messageHref($0), "report") }.joined(separator: ", ") + "</td></tr>")
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
}
