import CTBusSchema
import Foundation
import SwiftCSV
import SwiftProtobuf

/// OCT's activity matrix from a spreadsheet: a CSV file (RFC 4180, UTF-8, comma-separated, a
/// header row, one activity a row) read with SwiftCSV and checked row by row with the same
/// `MessageValidator` as any publication. An error names the row (the spreadsheet's row number,
/// the header being row 1) and the column; nothing is published when any row is wrong.
///
/// Columns (header names as below, in any order, case-insensitive; cells of list columns hold
/// their values separated by `;`):
///
/// | column | required | content |
/// |---|---|---|
/// | `project_id` | yes | the project's id |
/// | `title` | yes | what the activity does |
/// | `member_states` | one of the two | ISO 3166-1 alpha-3 codes (`KEN; NGA`) |
/// | `region` | one of the two | a region code (`SAHEL`) |
/// | `pillars` | yes | Global Strategy pillars: `I`, `II`, `III`, `IV` |
/// | `thematic_area` | no | a theme (`border-security`) |
/// | `implementing_entities` | no | entities (`UNOCT/UNCCT; UNODC`) |
/// | `status` | yes | `PLANNED`, `ONGOING`, `COMPLETED` or `SUSPENDED` |
/// | `period_start`, `period_end` | no (both or neither) | YYYY-MM-DD |
/// | `budget_usd` | no | whole US dollars, digits only |
/// | `recommendation_ids` | no | ids of the CTED recommendations the activity answers |
public enum ActivityMatrixCSV {
    public static let columns = ["project_id", "title", "member_states", "region", "pillars", "thematic_area",
                                 "implementing_entities", "status", "period_start", "period_end", "budget_usd",
                                 "recommendation_ids"]
    static let required: Set<String> = ["project_id", "title", "pillars", "status"]

    /// The activities of a CSV text, each checked by the validator, or the first error.
    public static func activities(csv text: String) throws(BusError) -> [ActivityMatrix.Activity] {
        // Spreadsheets often write a byte order mark first; it is not part of the first column's name.
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        let table: CSV<Enumerated>
        do {
            table = try CSV<Enumerated>(string: text, delimiter: .comma, loadColumns: false)
        } catch {
            throw failure("the file is not well-formed CSV (a quote inside an unquoted cell, or a quoted cell left open)")
        }
        let header = table.header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var index: [String: Int] = [:]
        for (position, name) in header.enumerated() {
            guard columns.contains(name) else {
                throw failure("column \(position + 1) \"\(name.prefix(40))\" is not a column of an activity matrix (known: \(columns.joined(separator: ", ")))")
            }
            guard index.updateValue(position, forKey: name) == nil else { throw failure("column \(name) appears twice") }
        }
        for name in required.sorted() where index[name] == nil { throw failure("the header has no \(name) column") }
        guard index["member_states"] != nil || index["region"] != nil else {
            throw failure("the header needs a member_states or a region column")
        }
        let rows = table.rows.filter { !$0.allSatisfy { $0.trimmingCharacters(in: .whitespaces).isEmpty } }
        guard !rows.isEmpty else { throw failure("the file holds no activity (a header row and then one activity a row)") }
        guard rows.count <= WireLimits.activities else {
            throw failure("\(rows.count) activities; an activity matrix holds at most \(WireLimits.activities)")
        }
        return try rows.enumerated().map { (offset, cells) throws(BusError) in
            let row = offset + 2
            func cell(_ name: String) -> String {
                guard let position = index[name], position < cells.count else { return "" }
                return cells[position].trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func list(_ name: String) -> [String] {
                cell(name).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            var activity = ActivityMatrix.Activity()
            activity.projectID = cell("project_id")
            activity.title = cell("title")
            activity.memberStates = list("member_states")
            activity.region = cell("region")
            activity.thematicArea = cell("thematic_area")
            activity.implementingEntities = list("implementing_entities")
            activity.recommendationIds = list("recommendation_ids")
            for pillar in list("pillars") {
                guard let value = pillars[pillar.uppercased()] else {
                    throw failure("row \(row), column pillars: \"\(pillar.prefix(20))\" is not a pillar (I, II, III or IV)")
                }
                activity.pillars.append(value)
            }
            let status = cell("status")
            guard let value = statuses[status.uppercased()] else {
                throw failure("row \(row), column status: must be PLANNED, ONGOING, COMPLETED or SUSPENDED")
            }
            activity.status = value
            switch (cell("period_start"), cell("period_end")) {
            case ("", ""): break
            case (let start, let end):
                activity.period.start = start
                activity.period.end = end
            }
            let budget = cell("budget_usd")
            if !budget.isEmpty {
                guard budget.utf8.allSatisfy({ (48...57).contains($0) }), let dollars = Int64(budget) else {
                    throw failure("row \(row), column budget_usd: must be whole US dollars, digits only")
                }
                activity.budgetUsd = dollars
            }
            try check(activity, row: row)
            return activity
        }
    }

    /// Runs the validator's activity rules on one row and names the row and the column.
    static func check(_ activity: ActivityMatrix.Activity, row: Int) throws(BusError) {
        var matrix = ActivityMatrix()
        matrix.reportingPeriod.start = "2000-01-01"
        matrix.reportingPeriod.end = "2000-01-01"
        matrix.activities = [activity]
        do {
            try MessageValidator.validate(matrix, at: "m")
        } catch {
            // m.activities[0].member_states[1] breaks a rule -> "row 3, column member_states: ..."
            guard let violation = error.violation else { throw failure("row \(row): \(error.detail)") }
            // "period.end" is the period_end column; "member_states[1]" the member_states column.
            let path = violation.path.dropFirst("m.activities[0].".count).replacingOccurrences(of: "period.", with: "period_")
            let column = path.prefix { $0 != "[" && $0 != "." }
            throw failure("row \(row), column \(column.isEmpty ? "?" : column): \(violation.rule)")
        }
    }

    static func failure(_ detail: String) -> BusError { BusError(.validationFailed, "activity matrix CSV: \(detail)") }

    static let pillars: [String: StrategyPillar] = [
        "I": .pillarIConditionsConducive, "II": .pillarIiPreventAndCombat, "III": .pillarIiiStateCapacity, "IV": .pillarIvHumanRights,
        "PILLAR_I_CONDITIONS_CONDUCIVE": .pillarIConditionsConducive, "PILLAR_II_PREVENT_AND_COMBAT": .pillarIiPreventAndCombat,
        "PILLAR_III_STATE_CAPACITY": .pillarIiiStateCapacity, "PILLAR_IV_HUMAN_RIGHTS": .pillarIvHumanRights,
    ]
    static let statuses: [String: ActivityMatrix.Status] = [
        "PLANNED": .planned, "ONGOING": .ongoing, "COMPLETED": .completed, "SUSPENDED": .suspended,
    ]

    /// An activity matrix message of these activities for `period`, with `handling`: the envelope's
    /// subject is the one Member State all activities share (else GLOBAL), its thematic tags the
    /// activities' themes, and it references every recommendation answered (relation ANSWERS).
    public static func message(activities: [ActivityMatrix.Activity], period: DateRange, handling: Handling,
                               now: Date = Date()) -> BusMessage {
        var matrix = ActivityMatrix()
        matrix.reportingPeriod = period
        matrix.activities = activities
        var message = BusMessage()
        message.envelope.messageID = MessageID.generate(now: now)
        message.envelope.type = .activityMatrix
        message.envelope.schemaVersion = MessageValidator.schemaVersion
        message.envelope.createdAt = .init(date: now)
        message.envelope.handling = handling
        let states = Set(activities.flatMap(\.memberStates))
        message.envelope.subject = states.count == 1 ? states.first! : "GLOBAL"
        var seenThemes = Set<String>()
        let themes = activities.map(\.thematicArea).filter { !$0.isEmpty && seenThemes.insert($0).inserted }
        message.envelope.thematicTags = Array(themes.prefix(WireLimits.thematicTags))
        var seen = Set<String>()
        let answered = activities.flatMap(\.recommendationIds).filter { seen.insert($0).inserted }
        message.envelope.references = answered.prefix(WireLimits.references).map { Reference(to: $0, .answers) }
        message.activityMatrix = matrix
        return message
    }
}
