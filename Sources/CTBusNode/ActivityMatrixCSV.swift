import CTBusSchema
import Foundation
import SwiftCSV
import SwiftProtobuf

/// OCT's activity matrix from a spreadsheet: a CSV file (RFC 4180, UTF-8, comma-separated, a
/// header row, one activity a row) read with SwiftCSV and checked row by row with the same
/// `MessageValidator` as any publication. Every problem is reported at once, each naming the row
/// (the spreadsheet's row number, the header being row 1) and the column as the header names it;
/// nothing is published when any row is wrong.
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

    /// One thing wrong in a CSV file: where (the spreadsheet's row, the header being row 1, and
    /// the column as its header names it) and what.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public let row: Int?
        public let column: String?
        public let text: String

        public var description: String {
            switch (row, column) {
            case (let row?, let column?): "row \(row), column \(column): \(text)"
            case (let row?, nil): "row \(row): \(text)"
            case (nil, let column?): "column \(column): \(text)"
            case (nil, nil): text
            }
        }
    }

    /// The activities of a CSV text, each checked by the validator; or every problem found, in
    /// one error whose detail lists them (at most `listed`, then how many more).
    public static func activities(csv text: String, listed: Int = 50) throws(BusError) -> [ActivityMatrix.Activity] {
        let (activities, problems) = read(csv: text)
        guard !problems.isEmpty else { return activities }
        let shown = problems.prefix(listed).map(\.description)
        let more = problems.count > listed ? "; and \(problems.count - listed) more" : ""
        throw failure((problems.count == 1 ? "" : "\(problems.count) problems: ") + shown.joined(separator: "; ") + more)
    }

    /// Reads every row and checks every cell: the activities, and every problem found (a file
    /// that cannot be read as an activity matrix at all has one problem and no activities).
    public static func read(csv text: String) -> (activities: [ActivityMatrix.Activity], problems: [Problem]) {
        // Spreadsheets often write a byte order mark first; it is not part of the first column's name.
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        let table: CSV<Enumerated>
        do {
            table = try CSV<Enumerated>(string: text, delimiter: .comma, loadColumns: false)
        } catch {
            return ([], [Problem(row: nil, column: nil, text: "the file is not well-formed CSV (a quote inside an unquoted cell, or a quoted cell left open)")])
        }
        let header = table.header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var index: [String: Int] = [:]
        var problems: [Problem] = []
        for (position, name) in header.enumerated() {
            guard columns.contains(name) else {
                problems.append(Problem(row: 1, column: "\(position + 1)", text: "\"\(name.prefix(40))\" is not a column of an activity matrix (known: \(columns.joined(separator: ", ")))"))
                continue
            }
            if index.updateValue(position, forKey: name) != nil { problems.append(Problem(row: 1, column: name, text: "appears twice")) }
        }
        for name in required.sorted() where index[name] == nil { problems.append(Problem(row: 1, column: nil, text: "the header has no \(name) column")) }
        if index["member_states"] == nil && index["region"] == nil {
            problems.append(Problem(row: 1, column: nil, text: "the header needs a member_states or a region column"))
        }
        guard problems.isEmpty else { return ([], problems) }
        let rows = table.rows.enumerated().filter { !$0.element.allSatisfy { $0.trimmingCharacters(in: .whitespaces).isEmpty } }
        guard !rows.isEmpty else { return ([], [Problem(row: nil, column: nil, text: "the file holds no activity (a header row and then one activity a row)")]) }
        guard rows.count <= WireLimits.activities else {
            return ([], [Problem(row: nil, column: nil, text: "\(rows.count) activities; an activity matrix holds at most \(WireLimits.activities)")])
        }
        var activities: [ActivityMatrix.Activity] = []
        for (offset, cells) in rows {
            let row = offset + 2
            let (activity, found) = read(cells, index: index, row: row)
            activities.append(activity)
            problems += found
        }
        return (problems.isEmpty ? activities : [], problems)
    }

    /// One row: the activity, and every problem of its cells. Each column is checked alone (its
    /// value in an activity otherwise valid), so that every wrong cell is named, not only the
    /// first; the rules between columns are checked once every cell is right.
    static func read(_ cells: [String], index: [String: Int], row: Int) -> (ActivityMatrix.Activity, [Problem]) {
        func cell(_ name: String) -> String {
            guard let position = index[name], position < cells.count else { return "" }
            return cells[position].trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func list(_ name: String) -> [String] {
            cell(name).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        var problems: [Problem] = []
        var activity = ActivityMatrix.Activity()
        var cellChecks: [(column: String, set: (inout ActivityMatrix.Activity) -> Void)] = []
        func take(_ column: String, _ set: @escaping (inout ActivityMatrix.Activity) -> Void) {
            set(&activity)
            cellChecks.append((column, set))
        }
        take("project_id") { [value = cell("project_id")] in $0.projectID = value }
        take("title") { [value = cell("title")] in $0.title = value }
        take("member_states") { [value = list("member_states")] in $0.memberStates = value }
        take("region") { [value = cell("region")] in $0.region = value }
        take("thematic_area") { [value = cell("thematic_area")] in $0.thematicArea = value }
        take("implementing_entities") { [value = list("implementing_entities")] in $0.implementingEntities = value }
        take("recommendation_ids") { [value = list("recommendation_ids")] in $0.recommendationIds = value }
        var pillarValues: [StrategyPillar] = []
        for pillar in list("pillars") {
            if let value = pillars[pillar.uppercased()] {
                pillarValues.append(value)
            } else {
                problems.append(Problem(row: row, column: "pillars", text: "\"\(pillar.prefix(20))\" is not a pillar (I, II, III or IV)"))
            }
        }
        if problems.isEmpty { take("pillars") { [pillarValues] in $0.pillars = pillarValues } }
        if let value = statuses[cell("status").uppercased()] {
            activity.status = value
        } else {
            problems.append(Problem(row: row, column: "status", text: "must be PLANNED, ONGOING, COMPLETED or SUSPENDED"))
        }
        let (start, end) = (cell("period_start"), cell("period_end"))
        if !start.isEmpty || !end.isEmpty {
            // The two cells are checked as the pair they are: a problem of either, or of their
            // order, is named by the column the validator names.
            take("period") { $0.period.start = start; $0.period.end = end }
        }
        let budget = cell("budget_usd")
        if !budget.isEmpty {
            if budget.utf8.allSatisfy({ (48...57).contains($0) }), let dollars = Int64(budget) {
                activity.budgetUsd = dollars
            } else {
                problems.append(Problem(row: row, column: "budget_usd", text: "must be whole US dollars, digits only"))
            }
        }
        // An empty member_states or region is wrong only if the other is empty too: the check
        // of the whole row says so.
        for (column, set) in cellChecks where !(["member_states", "region"].contains(column) && cell(column).isEmpty) {
            var alone = baseline
            set(&alone)
            guard let problem = validationProblem(alone, row: row) else { continue }
            if column == "period", let named = problem.column, named.hasPrefix("period") {
                problems.append(Problem(row: row, column: named == "period" ? "period_start, period_end" : named, text: problem.text))
            } else if problem.column == column || problem.column == nil {
                problems.append(Problem(row: row, column: column, text: problem.text))
            }
        }
        if problems.isEmpty, let problem = validationProblem(activity, row: row) { problems.append(problem) }
        return (activity, problems)
    }

    /// An activity every column of which is valid: each column is checked alone inside it.
    static let baseline: ActivityMatrix.Activity = {
        var activity = ActivityMatrix.Activity()
        activity.projectID = "P"
        activity.title = "T"
        activity.memberStates = ["KEN"]
        activity.pillars = [.pillarIiiStateCapacity]
        activity.status = .planned
        return activity
    }()

    /// The validator's activity rules on one row: the first broken one, named by row and column.
    static func validationProblem(_ activity: ActivityMatrix.Activity, row: Int) -> Problem? {
        var matrix = ActivityMatrix()
        matrix.reportingPeriod.start = "2000-01-01"
        matrix.reportingPeriod.end = "2000-01-01"
        matrix.activities = [activity]
        do {
            try MessageValidator.validate(matrix, at: "m")
            return nil
        } catch {
            // m.activities[0].member_states[1] breaks a rule -> "row 3, column member_states: ..."
            guard let violation = error.violation else { return Problem(row: row, column: nil, text: error.detail) }
            // "period.end" is the period_end column; "member_states[1]" the member_states column.
            let path = violation.path.dropFirst("m.activities[0].".count).replacingOccurrences(of: "period.", with: "period_")
            let column = String(path.prefix { $0 != "[" && $0 != "." })
            // A value of a list column is quoted: "Kenya" must be an ISO 3166-1 alpha-3 code.
            let values = ["member_states": activity.memberStates, "implementing_entities": activity.implementingEntities,
                          "recommendation_ids": activity.recommendationIds][column]
            let element = Int(path.dropFirst(column.count).dropFirst().prefix { $0 != "]" })
            let quoted = values.flatMap { list in element.flatMap { $0 < list.count ? "\"\(list[$0].prefix(40))\" " : nil } } ?? ""
            return Problem(row: row, column: column.isEmpty ? nil : column, text: quoted + violation.rule)
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
