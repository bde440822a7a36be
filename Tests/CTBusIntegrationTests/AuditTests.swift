import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusSchema
import CTBusTesting
import Foundation
import Testing

@Suite("Audit")
struct AuditTests {
    @Test("The broker records who received a message and who was refused by which rule; ctbus audit prints it without content")
    func auditTrail() throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        let marker = "AUDIT-SECRET-\(UUID().uuidString.prefix(8))"
        var handling = SampleMessages.handling(.confidential, releasableTo: ["oct", "compact-wg"])
        var restriction = MemberStateRestriction()
        restriction.state = "KEN"
        restriction.requestedOn = "2026-03-01"
        restriction.scope = .partial
        restriction.fieldPaths = ["recommendation_text"]
        restriction.allowedNodes = ["oct"]
        handling.memberStateRestriction = restriction
        let id = try bus.publish(SampleMessages.recommendation(handling: handling, text: marker), from: "cted")
        let cted = try bus.journal("cted")
        #expect(try Wait.until { try cted.publicationStatus(messageId: id) == .acknowledged })

        let trail = try #require(try bus.broker!.store.audit(messageId: id))
        let byNode = Dictionary(uniqueKeysWithValues: trail.entries.map { ($0.nodeId, $0) })
        #expect(byNode["oct"]?.outcome == .delivered)
        #expect(byNode["wg-border"]?.outcome == .redacted)
        #expect(byNode["wg-cft"]?.outcome == .redacted)
        #expect(byNode["wg-rights"]?.outcome == .refused)
        #expect(byNode["wg-rights"]?.rule == "clearance")
        #expect(byNode["cted"]?.rule == "originator")
        #expect(trail.originator == "cted")

        let cli = try CommandLineTests.run(["audit", "--store", bus.brokerConfiguration.storePath, id])
        #expect(cli.status == 0)
        #expect(cli.output.contains("wg-rights    refused    [clearance]"))
        #expect(!cli.output.contains(marker))
        let missing = try CommandLineTests.run(["audit", "--store", bus.brokerConfiguration.storePath, MessageID.generate()])
        #expect(missing.status == 1)
    }
}
