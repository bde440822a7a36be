import CTBusSchema
import CTBusTrace
import Foundation

/// A Member State's file: what is unanswered and for how long, then its visits in time with
/// their recommendations, their follow-up and the activities answering them, the activities that
/// name it, and the mission reports about it. Printable: the print stylesheet repeats the
/// marking banners on every sheet.
struct CountryFilePage: ConsolePage {
    let file: CountryFile
    /// The classification of every message the page shows, for the banner.
    let classifications: [String]
    let now: Date

    var title: String { Geography.displayName(file.memberState) }
    var marking: String? { PageLayout.marking(classifications) }

    var body: HTML {
        var html = HTML()
        let lines = file.report.recommendations
        let active = lines.filter { $0.state == "active" }
        let open = active.filter { !$0.covered }.sorted { ($0.publishedAt, $0.id) < ($1.publishedAt, $1.id) }
        html.element("p", summary(recommendations: lines.count, active: active.count, open: open), attributes: [("class", "lead")])
        html.raw("<p class=\"pages\">" + HTML.link(TracePage.href(.init(memberState: file.memberState, sort: .open)), "Traceability of \(file.memberState)")
                 + " · " + HTML.link(PageLayout.href("/journal", [("member_state", file.memberState)]),
                                     "Every message about \(file.memberState)") + "</p>")

        html.raw("<section aria-labelledby=\"s-open\"><h2 id=\"s-open\">Unanswered</h2>")
        if open.isEmpty {
            html.element("p", active.isEmpty ? "No recommendation to answer." : "Every recommendation has an ongoing or completed activity answering it.")
        } else {
            table(["Recommendation", "Unanswered for", "Priority", "Follow-up", "Planned or suspended activities"], rows: open.map { line in
                [.markup(line.link), .text(days(since: line.publishedAt)), .text(line.priorityWords), .text(line.followUpWords),
                 .markup(line.answeredByLinks)]
            }, into: &html)
        }
        html.raw("</section>")

        html.raw("<section aria-labelledby=\"s-visits\"><h2 id=\"s-visits\">Visits and recommendations</h2>")
        if file.visits.isEmpty { html.element("p", "No recommendation about \(file.memberState) in this journal.") }
        for (index, visit) in file.visits.enumerated() {
            let id = "visit-\(index)"
            html.raw("<section\(HTML.attributes([("aria-labelledby", id)]))>")
            html.element("h3", "Visit \(visit.id)" + (visit.firstDay.isEmpty ? "" : ", from \(Reading.date(visit.firstDay))"), attributes: [("id", id)])
            table(["Recommendation", "Theme", "Priority", "Follow-up", "Trace", "Answered by", "Published"], rows: visit.recommendations.map { line in
                [.markup(line.link), .text(line.thematicArea == Traceability.withheld ? "withheld" : line.thematicArea),
                 .text(line.priorityWords), .text(line.followUpWords), .text(line.trace), .markup(line.answeredByLinks),
                 .text(Reading.time(line.publishedAt))]
            }, into: &html)
            html.raw("</section>")
        }
        html.raw("</section>")

        html.raw("<section aria-labelledby=\"s-activities\"><h2 id=\"s-activities\">Activities</h2>")
        if file.activities.isEmpty {
            html.element("p", "No activity in force names \(file.memberState).")
        } else {
            table(["Activity", "Project", "Status", "Period", "Theme", "Answers"], rows: file.activities.map { activity in
                [.markup(HTML.link(PageLayout.messageHref(activity.matrixId), activity.title == Traceability.withheld ? "(title withheld)" : activity.title)),
                 .text(activity.projectId), .text(TraceReport.words(activity.status)),
                 .text(Reading.range({ var range = DateRange(); range.start = activity.start; range.end = activity.end; return range }())),
                 .text(activity.thematicArea),
                 .text(activity.answers == 1 ? "1 recommendation" : "\(activity.answers) recommendations")]
            }, into: &html)
        }
        html.raw("</section>")

        html.raw("<section aria-labelledby=\"s-reports\"><h2 id=\"s-reports\">Mission reports</h2>")
        if file.missionReports.isEmpty {
            html.element("p", "No mission report about \(file.memberState) in this journal.")
        } else {
            table(["Report", "Kind", "Dates", "Published"], rows: file.missionReports.map { report in
                let text = report.summary == Traceability.withheld ? "Mission \(report.missionId) (summary withheld)" : "\(report.missionId): \(report.summary)"
                var range = DateRange()
                (range.start, range.end) = (report.start, report.end)
                return [.markup(HTML.link(PageLayout.messageHref(report.id), Reading.shortened(text))), .text(Reading.kind(report.kind)),
                        .text(report.start.isEmpty ? "withheld" : Reading.range(range)), .text(Reading.time(report.publishedAt))]
            }, into: &html)
        }
        html.raw("</section>")
        return html
    }

    private func summary(recommendations: Int, active: Int, open: [TraceReport.Recommendation]) -> String {
        guard recommendations > 0 else { return "This journal holds no recommendation about \(file.memberState)." }
        let visits = file.visits.count == 1 ? "1 visit" : "\(file.visits.count) visits"
        var text = (recommendations == 1 ? "1 recommendation" : "\(recommendations) recommendations") + " from \(visits)"
        if active < recommendations { text += " (\(recommendations - active) revoked or expired)" }
        text += ": \(active - open.count) answered by an ongoing or completed activity, \(open.count) unanswered"
        if let oldest = open.first { text += ", the oldest for \(days(since: oldest.publishedAt))" }
        return text + "."
    }

    private func days(since date: Date) -> String {
        let days = max(0, Int(now.timeIntervalSince(date) / 86_400))
        return days == 1 ? "1 day" : "\(days) days"
    }

    /// One table cell: text (escaped here) or markup built by this module.
    private enum Cell {
        case text(String)
        case markup(String)
    }

    private func table(_ headers: [String], rows: [[Cell]], into html: inout HTML) {
        html.raw("<div class=\"scroll\"><table><thead><tr>")
        for header in headers { html.element("th", header, attributes: [("scope", "col")]) }
        html.raw("</tr></thead><tbody>")
        for row in rows {
            html.raw("<tr>")
            for (index, cell) in row.enumerated() {
                let tag = index == 0 ? "th" : "td"
                html.raw(index == 0 ? "<th scope=\"row\" class=\"summary\">" : "<td>")
                switch cell {
                case .text(let text): html.text(text)
                case .markup(let markup): html.raw(markup)
                }
                html.raw("</\(tag)>")
            }
            html.raw("</tr>")
        }
        html.raw("</tbody></table></div>")
    }

    static func href(_ code: String) -> String {
        "/states/" + (code.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
    }
}

/// Every Member State and region the journal's messages are about, with the coverage of their
/// recommendations, each leading to its country file.
struct CountryIndexPage: ConsolePage {
    let groups: [TraceReport.Group]
    let subjects: [String]
    let classifications: [String]

    var title: String { "Member States" }
    var marking: String? { PageLayout.marking(classifications) }

    var body: HTML {
        var html = HTML()
        guard !subjects.isEmpty else {
            html.element("p", "The journal holds no message yet.", attributes: [("class", "empty")])
            return html
        }
        let byName = Dictionary(groups.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        html.raw("<div class=\"scroll\"><table><thead><tr>")
        for header in ["Member State or region", "Recommendations", "Answered", "Unanswered", "Oldest unanswered"] {
            html.element("th", header, attributes: [("scope", "col")])
        }
        html.raw("</tr></thead><tbody>")
        for subject in subjects {
            let group = byName[subject]
            html.raw("<tr><th scope=\"row\">" + HTML.link(CountryFilePage.href(subject), Geography.displayName(subject)) + "</th>")
            html.element("td", group.map { "\($0.recommendations)" } ?? "0")
            html.element("td", group.map { "\($0.covered)" } ?? "0")
            html.element("td", group.map { "\($0.recommendations - $0.covered)" } ?? "0")
            html.element("td", group?.oldestUncoveredDays.map { $0 == 1 ? "1 day" : "\($0) days" } ?? "none")
            html.raw("</tr>")
        }
        html.raw("</tbody></table></div>")
        return html
    }
}
