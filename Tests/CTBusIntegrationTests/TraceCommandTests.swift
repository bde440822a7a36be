import CTBusJournal
import CTBusSchema
import CTBusLocal
import CTBusTesting
import CTBusTrace
import Foundation
import SwiftProtobuf
import Testing

/// `ctbus trace` on journals a real bus filled: coverage changes when OCT publishes its matrix,
/// and a node that is not cleared for a recommendation counts OCT's reference to it as not visible.
@Suite("Trace command", .serialized, .busSlot)
struct TraceCommandTests {
    static func report(_ journal: String, _ extra: [String] = []) async throws -> TraceReport {
        let result = try await CommandLineTests.run(["trace", "--journal", journal, "--format", "json"] + extra)
        #expect(result.status == 0, "\(result.errors)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcTime
        return try decoder.decode(TraceReport.self, from: Data(result.output.utf8))
    }

    @Test("Coverage per Member State from a node's journal, before and after OCT's matrix; unseen references are counted")
    func coverageOverARealBus() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let kenya = try bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted")
        let indonesia = try bus.publish(SampleMessages.recommendation(memberState: "IDN",
                                                                      handling: SampleMessages.handling(.confidential)), from: "cted")
        let oct = try bus.journal("oct")
        let rights = try bus.journal("wg-rights")
        #expect(try await Wait.until { try oct.count(messageId: kenya) == 1 && oct.count(messageId: indonesia) == 1 && rights.count(messageId: kenya) == 1 })

        var before = try await Self.report(bus.journalPath("oct"))
        #expect(before.byMemberState.map(\.name) == ["IDN", "KEN"])
        #expect(before.byMemberState.allSatisfy { $0.coverage == 0 })

        let matrix = try bus.publish(SampleMessages.activityMatrix(answering: [kenya, indonesia]), from: "oct")
        #expect(try await Wait.until { try bus.journal("wg-rights").count(messageId: matrix) == 1 })
        before = try await Self.report(bus.journalPath("oct"))
        #expect(before.byMemberState.allSatisfy { $0.coverage == 1 })

        // wg-rights (UNCLASSIFIED) holds Kenya's recommendation and the matrix, not Indonesia's.
        let unseen = try await Self.report(bus.journalPath("wg-rights"))
        #expect(unseen.byMemberState.map(\.name) == ["KEN"])
        #expect(unseen.byMemberState[0].coverage == 1)
        #expect(unseen.notVisible.map(\.recommendationId) == [indonesia])

        let table = try await CommandLineTests.run(["trace", "--journal", bus.journalPath("wg-rights"), "--member-state", "KEN"])
        #expect(table.output.contains("KEN           1                1        100%"), "\(table.output)")
        #expect(table.output.split(separator: "\n").allSatisfy { $0.count <= 100 })
        let bad = try await CommandLineTests.run(["trace", "--journal", bus.journalPath("oct"), "--member-state", "Kenya"])
        #expect(bad.status != 0 && bad.errors.contains("ISO 3166-1 alpha-3"))
    }
}
