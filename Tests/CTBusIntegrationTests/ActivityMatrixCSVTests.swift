import CTBusJournal
import CTBusNode
import CTBusSchema
import CTBusLocal
import CTBusTesting
import CTBusTrace
import Foundation
import SwiftProtobuf
import Testing

/// OCT's matrix from a spreadsheet: the CSV rules, and `ctbus publish --activity-matrix-csv` over a real bus.
@Suite("Activity matrix from CSV", .serialized, .busSlot)
struct ActivityMatrixCSVTests {
    static let header = "project_id,title,member_states,region,pillars,thematic_area,implementing_entities,status,period_start,period_end,budget_usd,recommendation_ids"

    static func expectFailure(_ csv: String, _ detail: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: BusError(.validationFailed, "activity matrix CSV: \(detail)"), sourceLocation: sourceLocation) {
            _ = try ActivityMatrixCSV.activities(csv: csv)
        }
    }

    @Test("The sample file in deploy/ reads as three valid activities; quoting, a byte order mark and CRLF are fine")
    func sample() async throws {
        let text = try String(contentsOf: CommandLineTests.root.appendingPathComponent("deploy/activity-matrix.csv"), encoding: .utf8)
        let activities = try ActivityMatrixCSV.activities(csv: text)
        #expect(activities.map(\.projectID) == ["UNCCT-BSM-2026-014", "UNCCT-CFT-2026-003", "UNCCT-PVE-2026-021"])
        #expect(activities[1].memberStates == ["NGA", "GHA"] && activities[1].pillars == [.pillarIiPreventAndCombat, .pillarIiiStateCapacity])
        #expect(activities[2].region == "SAHEL" && activities[2].status == .completed && activities[0].budgetUsd == 450_000)
        let windows = "\u{FEFF}" + Self.header + "\r\nP-1,\"A title, with a comma\nand a line break\",KEN,,IV,,,PLANNED,,,,\r\n"
        let quoted = try ActivityMatrixCSV.activities(csv: windows)
        #expect(quoted[0].title == "A title, with a comma\nand a line break")
    }

    @Test("A wrong row names its row and column, and nothing is read")
    func errors() async {
        let good = "P-1,Title,KEN,,II,,,ONGOING,,,,"
        Self.expectFailure(Self.header + "\n" + good + "\nP-2,Title,Kenya,,II,,,ONGOING,,,,\n",
                           "row 3, column member_states: \"Kenya\" must be an ISO 3166-1 alpha-3 code")
        Self.expectFailure(Self.header + "\nP-1,Title,KEN,,II,,,STARTED,,,,\n", "row 2, column status: must be PLANNED, ONGOING, COMPLETED or SUSPENDED")
        Self.expectFailure(Self.header + "\nP-1,Title,KEN,,V,,,ONGOING,,,,\n", "row 2, column pillars: \"V\" is not a pillar (I, II, III or IV)")
        Self.expectFailure(Self.header + "\nP-1,Title,KEN,,II,,,ONGOING,2026-05-01,2026-04-01,,\n", "row 2, column period_end: is before start")
        Self.expectFailure(Self.header + "\nP-1,Title,KEN,,II,,,ONGOING,,,\"1,000\",\n", "row 2, column budget_usd: must be whole US dollars, digits only")
        Self.expectFailure(Self.header + "\nP-1,,KEN,,II,,,ONGOING,,,,\n", "row 2, column title: is required")
        Self.expectFailure(Self.header + "\nP-1,Title,KEN,,II,,,ONGOING,,,,NOT-AN-ID\n",
                           "row 2, column recommendation_ids: \"NOT-AN-ID\" must be a message id: must be a UUID in canonical text form (lower-case, hyphenated)")
        Self.expectFailure("project_id,titel,status,pillars,member_states\nP-1,T,ONGOING,II,KEN\n",
                           "2 problems: row 1, column 2: \"titel\" is not a column of an activity matrix (known: \(ActivityMatrixCSV.columns.joined(separator: ", "))); row 1: the header has no title column")
        Self.expectFailure("project_id,title,pillars,member_states\nP-1,T,II,KEN\n", "row 1: the header has no status column")
        Self.expectFailure(Self.header + "\n", "the file holds no activity (a header row and then one activity a row)")
    }

    @Test("Every problem at once: a row with four wrong cells gets four problems, each by row and column, beside those of other rows")
    func everyProblemAtOnce() async {
        let csv = Self.header + "\nP-1,Title,KEN,,II,,,ONGOING,,,,\nP-2,,Kenya,,V,,,STARTED,,,\"1,000\",\nP-3,Title,NGA,,III,,,DONE,,,,\n"
        let (activities, problems) = ActivityMatrixCSV.read(csv: csv)
        #expect(activities.isEmpty, "nothing is read from a file with a problem")
        #expect(problems.map(\.description) == [
            "row 3, column pillars: \"V\" is not a pillar (I, II, III or IV)",
            "row 3, column status: must be PLANNED, ONGOING, COMPLETED or SUSPENDED",
            "row 3, column budget_usd: must be whole US dollars, digits only",
            "row 3, column title: is required",
            "row 3, column member_states: \"Kenya\" must be an ISO 3166-1 alpha-3 code",
            "row 4, column status: must be PLANNED, ONGOING, COMPLETED or SUSPENDED",
        ], "\(problems.map(\.description))")
        Self.expectFailure(csv, "6 problems: " + problems.map(\.description).joined(separator: "; "))
        // A wrong period end beside another wrong cell: both named, each by its column.
        let period = ActivityMatrixCSV.read(csv: Self.header + "\nP-1,,KEN,,II,,,ONGOING,2026-05-01,2026-13-01,,\n").problems.map(\.description)
        #expect(period.count == 2 && period.contains("row 2, column title: is required") && period.contains { $0.hasPrefix("row 2, column period_end: ") },
                "\(period)")
        // Two header problems at once too.
        let header = ActivityMatrixCSV.read(csv: "project_id,titel,pillars,member_states\nP-1,T,II,KEN\n").problems.map(\.description)
        #expect(header.count == 3 && header[0].hasPrefix("row 1, column 2: \"titel\" is not a column") && header.contains("row 1: the header has no status column"),
                "\(header)")
        Self.expectFailure(Self.header + "\nP-1,Ti\"tle,KEN,,II,,,ONGOING,,,,\n",
                           "the file is not well-formed CSV (a quote inside an unquoted cell, or a quoted cell left open)")
    }

    @Test("ctbus publish --activity-matrix-csv reaches the other nodes over a real bus and the trace shows the coverage")
    func publishOverABus() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let recommendation = try bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted")
        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: recommendation) == 1 })
        try bus.writeConfigurationFiles()
        let file = bus.folder.appendingPathComponent("matrix.csv")
        try (Self.header + "\nUNCCT-BSM-2026-014,API/PNR capacity building,KEN,,III,border-security,UNOCT/UNCCT,ONGOING,,,450000,\(recommendation)\n")
            .write(to: file, atomically: true, encoding: .utf8)

        let missing = try await CommandLineTests.run(["publish", "--node-config", bus.nodeConfigurationPath("oct"), "--activity-matrix-csv", file.path])
        #expect(missing.status != 0 && missing.errors.contains("--reporting-period"))
        let published = try await CommandLineTests.run(["publish", "--node-config", bus.nodeConfigurationPath("oct"), "--activity-matrix-csv", file.path,
                                                  "--reporting-period", "2026-01-01..2026-06-30", "--tlp", "green"])
        #expect(published.status == 0, "\(published.errors)")
        let id = published.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await Wait.until { try cted.count(messageId: id) == 1 })
        let matrix = try #require(try cted.entry(messageId: id)?.message())
        #expect(matrix.envelope.handling.tlp == .tlpGreen && matrix.envelope.subject == "KEN")
        #expect(matrix.activityMatrix.activities.map(\.recommendationIds) == [[recommendation]])

        let trace = try await TraceCommandTests.report(bus.journalPath("cted"))
        #expect(trace.byMemberState.first { $0.name == "KEN" }?.coverage == 1)
    }
}
