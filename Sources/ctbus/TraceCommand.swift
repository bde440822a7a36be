import ArgumentParser
import CTBusJournal
import CTBusSchema
import CTBusTrace
import Foundation

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Which of CTED's recommendations OCT's activities answer, per Member State and thematic area, from a node's journal.",
        discussion: """
            Coverage is the share of recommendations with at least one ONGOING or COMPLETED activity \\
            answering them. Revoked and expired messages do not count; the latest activity matrix of a \\
            reporting period supersedes earlier ones; references to recommendations this node does not \\
            hold are counted as not visible. The journal is read, never written.
            """)

    @OptionGroup var location: JournalCommand.Location

    @Option(help: "Only this Member State (ISO 3166-1 alpha-3).")
    var memberState: String?

    @Option(help: "table (fits the terminal, or 100 columns), csv (a row per recommendation) or json (the whole report).")
    var format: OutputFormat = .table

    func run() throws {
        try runReportingErrors {
            if let memberState, !Geography.isCountryCode(memberState) {
                throw ValidationError("--member-state takes an ISO 3166-1 alpha-3 code such as KEN")
            }
            var messages: [Traceability.Message] = []
            var unreadable = 0
            for entry in try location.open().search.traceEntries() {
                guard let message = try? entry.message(), let payload = message.payload else { unreadable += 1; continue }
                messages.append(Traceability.Message(envelope: message.envelope, payload: payload, revoked: entry.revokedAt != nil,
                                                     redactedPaths: entry.redactedPaths))
            }
            if unreadable > 0 {
                FileHandle.standardError.write(Data("ctbus: \(unreadable) journal entries could not be decoded and are left out (see `ctbus journal verify`)\n".utf8))
            }
            let report = Traceability.report(messages, memberState: memberState)
            switch format {
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .utcTime
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            case .csv:
                print(TextTable.csv(columns: Self.recommendationColumns, rows: report.recommendations.map(Self.row)), terminator: "")
            case .table:
                print(Self.table(report, width: TextTable.outputWidth()), terminator: "")
            }
        }
    }

    static let recommendationColumns = ["id", "member_state", "thematic_area", "visit_id", "visit_date", "published",
                                        "priority", "follow_up", "state", "covered", "answered_by", "mission_reports"]

    static func row(_ line: TraceReport.Recommendation) -> [String] {
        [line.id, line.memberState, line.thematicArea, line.visitId, line.visitDate,
         UTCTime.iso8601(line.publishedAt), line.priority, line.followUp, line.state,
         line.covered ? "yes" : "no", line.answeredBy.map { "\($0.projectId) \($0.status)" }.joined(separator: "; "),
         line.missionReports.joined(separator: "; ")]
    }

    static func table(_ report: TraceReport, width: Int) -> String {
        func groups(_ title: String, _ groups: [TraceReport.Group]) -> String {
            let rows = groups.map { group in
                [group.name, "\(group.recommendations)", "\(group.covered)", "\(Int((group.coverage * 100).rounded()))%",
                 group.oldestUncoveredDays.map { "\($0) days" } ?? "-"]
            }
            return TextTable(columns: [title, "recommendations", "covered", "coverage", "oldest uncovered"], rows: rows,
                             fixedColumns: 1).render(width: width)
        }
        var text = groups("member state", report.byMemberState) + "\n" + groups("thematic area", report.byThematicArea) + "\n"
        let rows = report.recommendations.map { line in
            [line.id, line.memberState, line.state == "active" ? (line.covered ? "covered" : "open") : line.state,
             line.priority, line.thematicArea,
             line.answeredBy.isEmpty ? "-" : line.answeredBy.map { "\($0.projectId) \($0.status)" }.joined(separator: ", ")]
        }
        text += TextTable(columns: ["recommendation", "member state", "status", "priority", "theme", "answered by"], rows: rows,
                          fixedColumns: 1).render(width: width)
        if !report.notVisible.isEmpty {
            let count = report.notVisible.count
            text += count == 1 ? "\n1 activity answers a recommendation not visible to this node\n"
                : "\n\(count) activities answer recommendations not visible to this node\n"
        }
        return text
    }
}
