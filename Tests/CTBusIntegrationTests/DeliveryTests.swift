import CTBusJournal
import CTBusNode
import CTBusSchema
import CTBusTesting
import Foundation
import SwiftProtobuf
import Testing

/// End-to-end delivery over real CURVE sockets on 127.0.0.1 with real SQLite journals.
@Suite("Delivery", .serialized)
struct DeliveryTests {
    @Test("CTED's recommendation reaches OCT's journal byte for byte, with the broker-set originator")
    func recommendationReachesOCT() throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(bus.waitUntilConnected())

        var message = SampleMessages.recommendation()
        message.envelope.originator = "oct" // a publisher cannot claim another originator
        let id = try Publisher.enqueue(message, into: try bus.journal("cted"))
        let sentPayload = try message.payload!.serialized()

        let oct = try bus.journal("oct")
        #expect(try Wait.until { try oct.count(messageId: id) == 1 })
        let entry = try #require(try oct.entry(messageId: id))
        #expect(entry.payload == sentPayload)
        #expect(entry.originator == "cted")
        let received = try entry.message()
        #expect(received.envelope.originator == "cted")
        #expect(received.countryVisitRecommendation == message.countryVisitRecommendation)
        #expect(received.envelope.handling == message.envelope.handling)

        let cted = try bus.journal("cted")
        #expect(try Wait.until { try cted.publicationStatus(messageId: id) == .acknowledged })
    }
}
