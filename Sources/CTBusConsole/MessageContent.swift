import CTBusSchema
import Foundation

/// A message's content on its page, for people: the text first, then what it asks, then its
/// context; an activity matrix as a table whose answered recommendations are named by their
/// text. Labels are the compose form's. A field withheld from this node's copy says so where it
/// would stand.
struct MessageContent {
    let payload: BusMessage.OneOf_Payload?
    /// The payload paths withheld from this node's copy, and the State that asked.
    let withheld: Set<String>
    let withheldFor: String
    /// What this console may show of the messages the content names (a matrix's recommendations).
    let referenced: [String: Referenced]

    /// A message named in another, as this console may show it.
    enum Referenced {
        /// `classification`: its marking, for the banner of the page that names it.
        case shown(summary: String, typeName: String, classification: String)
        /// Not in this journal, or above this console's clearance: nothing about it is shown.
        case notVisible
    }

    var html: HTML {
        var html = HTML()
        switch payload {
        case .countryVisitRecommendation(let value): recommendation(value, into: &html)
        case .missionReport(let value): missionReport(value, into: &html)
        case .activityMatrix(let value): activityMatrix(value, into: &html)
        case nil: html.element("p", "This message has no content.")
        }
        return html
    }

    // MARK: Types

    private func recommendation(_ value: CountryVisitRecommendation, into html: inout HTML) {
        let type = MessageType.countryVisitRecommendation
        html.raw("<section class=\"content\" aria-labelledby=\"c-text\"><h2 id=\"c-text\">Recommendation</h2>")
        paragraph(value.recommendationText, path: "recommendation_text", into: &html)
        html.raw("</section>")
        section("c-asks", "What it asks", [
            row(type, "priority", Reading.priority(value.priority), path: "priority"),
            row(type, "technical_assistance_needed", Reading.yesNo(value.technicalAssistanceNeeded)),
            value.technicalAssistanceNeed.isEmpty && !withheld.contains("technical_assistance_need") ? nil
                : row(type, "technical_assistance_need", value.technicalAssistanceNeed, path: "technical_assistance_need"),
            row(type, "follow_up_status", Reading.followUp(value.followUpStatus)),
        ], into: &html)
        section("c-context", "Context", [
            row(type, "member_state", value.memberState),
            row(type, "visit_id", value.visitID),
            row(type, "visit_dates", value.hasVisitDates ? Reading.range(value.visitDates) : "", path: "visit_dates"),
            row(type, "thematic_area", value.thematicArea, path: "thematic_area"),
            row(type, "resolutions_assessed", Reading.resolutions(value.resolutionsAssessed), path: "resolutions_assessed"),
            row(type, "pillars", value.pillars.map(Reading.pillar).joined(separator: "; ")),
            row(type, "gender_cross_cutting", Reading.yesNo(value.genderCrossCutting)),
            row(type, "children_cross_cutting", Reading.yesNo(value.childrenCrossCutting)),
        ], into: &html)
    }

    private func missionReport(_ value: MissionReport, into html: inout HTML) {
        let type = MessageType.missionReport
        html.raw("<section class=\"content\" aria-labelledby=\"c-summary\"><h2 id=\"c-summary\">Summary</h2>")
        paragraph(value.summary, path: "summary", into: &html)
        for (id, field, items) in [("c-findings", "findings", value.findings), ("c-actions", "follow_up_actions", value.followUpActions)] {
            guard !items.isEmpty || withheld.contains(field) else { continue }
            html.raw("<section aria-labelledby=\"\(id)\">")
            html.element("h3", Self.label(type, field), attributes: [("id", id)])
            list(items, path: field, into: &html)
            html.raw("</section>")
        }
        html.raw("</section>")
        section("c-context", "Context", [
            row(type, "mission_id", value.missionID),
            Reading.kind(value.kind).isEmpty ? nil : row(type, "kind", Reading.kind(value.kind)),
            value.memberState.isEmpty ? nil : row(type, "member_state", value.memberState),
            value.region.isEmpty ? nil : row(type, "region", value.region),
            row(type, "dates", value.hasDates ? Reading.range(value.dates) : "", path: "dates"),
            row(type, "participating_entities", value.participatingEntities.joined(separator: ", "), path: "participating_entities"),
        ], into: &html)
    }

    private func activityMatrix(_ value: ActivityMatrix, into html: inout HTML) {
        html.raw("<section class=\"content\" aria-labelledby=\"c-activities\"><h2 id=\"c-activities\">Activities</h2>")
        html.element("p", "Reporting period: \(Reading.range(value.reportingPeriod)). "
                     + (value.activities.count == 1 ? "1 activity." : "\(value.activities.count) activities."))
        html.raw("<div class=\"scroll\"><table class=\"activities\"><thead><tr>")
        for header in ["Project", "Title", "Member States", "Status", "Period", "Theme", "Pillars", "Implementing entities", "Budget",
                       "Answers"] {
            html.element("th", header, attributes: [("scope", "col")])
        }
        html.raw("</tr></thead><tbody>")
        for activity in value.activities {
            html.raw("<tr>")
            html.element("th", activity.projectID, attributes: [("scope", "row")])
            cell(activity.title, path: "activities.title", into: &html)
            html.element("td", activity.memberStates.isEmpty ? activity.region : activity.memberStates.joined(separator: ", "))
            html.element("td", Reading.status(activity.status))
            html.element("td", activity.hasPeriod ? Reading.range(activity.period) : "")
            html.element("td", activity.thematicArea)
            html.element("td", activity.pillars.map(Reading.pillar).joined(separator: "; "))
            cell(activity.implementingEntities.joined(separator: ", "), path: "activities.implementing_entities", into: &html)
            cell(activity.budgetUsd == 0 ? "" : Reading.money(activity.budgetUsd), path: "activities.budget_usd", into: &html)
            html.raw("<td>")
            answers(activity.recommendationIds, into: &html)
            html.raw("</td></tr>")
        }
        html.raw("</tbody></table></div></section>")
    }

    // MARK: Pieces

    /// A label and its value; the value of a withheld `path` is replaced by the notice.
    private struct Row {
        let label: String
        let value: String
        let withheld: Bool
    }

    private func row(_ type: MessageType, _ field: String, _ value: String, path: String? = nil) -> Row {
        Row(label: Self.label(type, field), value: value, withheld: path.map(withheld.contains) ?? false)
    }

    private var notice: String { "withheld at the request of \(withheldFor)" }

    private func section(_ id: String, _ heading: String, _ rows: [Row?], into html: inout HTML) {
        html.raw("<section aria-labelledby=\"\(id)\">")
        html.element("h2", heading, attributes: [("id", id)])
        html.raw("<dl class=\"facts\">")
        for row in rows.compactMap({ $0 }) {
            html.element("dt", row.label)
            if row.withheld {
                html.element("dd", notice, attributes: [("class", "withheld")])
            } else {
                html.element("dd", row.value.isEmpty ? "not given" : row.value)
            }
        }
        html.raw("</dl></section>")
    }

    private func paragraph(_ text: String, path: String, into html: inout HTML) {
        if withheld.contains(path) {
            html.element("p", notice, attributes: [("class", "withheld")])
        } else {
            html.element("p", text, attributes: [("class", "text")])
        }
    }

    private func list(_ items: [String], path: String, into html: inout HTML) {
        if withheld.contains(path) {
            html.element("p", notice, attributes: [("class", "withheld")])
            return
        }
        html.raw("<ul>")
        for item in items { html.element("li", item) }
        html.raw("</ul>")
    }

    private func cell(_ text: String, path: String, into html: inout HTML) {
        if withheld.contains(path) {
            html.element("td", "withheld", attributes: [("class", "withheld")])
        } else {
            html.element("td", text)
        }
    }

    /// The recommendations an activity answers, by their text; one this console may not show is
    /// named as such and links nowhere.
    private func answers(_ ids: [String], into html: inout HTML) {
        guard !ids.isEmpty else { return }
        html.raw("<ul class=\"answers\">")
        for id in ids {
            html.raw("<li>")
            switch referenced[id] {
            case .shown(let summary, _, _)?:
                html.raw(HTML.link(PageLayout.messageHref(id), summary))
            case .notVisible?, nil:
                html.element("span", "a recommendation not visible to this node", attributes: [("class", "not-visible")])
            }
            html.raw("</li>")
        }
        html.raw("</ul>")
    }

    /// The compose form's label of `field` of `type`'s payload.
    static func label(_ type: MessageType, _ field: String) -> String {
        let activityColumns = ["activities.title": "activity titles", "activities.implementing_entities": "implementing entities",
                               "activities.budget_usd": "budgets"]
        if let label = activityColumns[field] { return label }
        if let label = ComposeForm.payloadFields(type).first(where: { $0.name.hasSuffix("." + field) })?.label { return label }
        return field.replacingOccurrences(of: "_", with: " ").capitalized
    }
}
