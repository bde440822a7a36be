import CTBusJournal
import CTBusNode
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import InMemoryLogging
import Logging
import Testing

@Suite("Logging", .busSlot)
struct LoggingTests {
    @Test("Broker and node logs, at trace level, never hold the body of a classified message")
    func logsCarryNoBodies() async throws {
        let handler = InMemoryLogHandler()
        var logger = Logger(label: "ctbus", factory: { _ in handler })
        logger.logLevel = .trace
        let bus = try LocalBus(logger: logger)
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())

        let marker = "CONFIDENTIAL-BODY-\(UUID().uuidString)"
        let accepted = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]), text: marker)
        try bus.publish(accepted, from: "cted")
        var refused = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential), text: marker)
        refused.countryVisitRecommendation.technicalAssistanceNeed = marker
        try bus.publish(refused, from: "cted")
        let oct = try bus.journal("oct")
        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try oct.count(messageId: accepted.envelope.messageID) == 1 })
        #expect(try await Wait.until {
            if case .refused = try cted.outbox.status(messageId: refused.envelope.messageID) { return true }
            return false
        })

        let lines = handler.entries.map { "\($0.message) \($0.metadata)" }
        #expect(lines.contains { $0.contains(accepted.envelope.messageID) }) // the logs do talk about the message
        #expect(!lines.contains { $0.contains(marker) })
    }
}
