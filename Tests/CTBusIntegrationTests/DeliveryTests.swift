import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import SwiftProtobuf
import Testing
import ZeroMQ

/// End-to-end delivery over real CURVE sockets on 127.0.0.1 with real SQLite journals.
@Suite("Delivery", .serialized, .busSlot)
struct DeliveryTests {
    @Test("CTED's recommendation reaches OCT's journal byte for byte, signed by CTED; a claim to be another originator is refused")
    func recommendationReachesOCT() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())

        let message = SampleMessages.recommendation()
        let id = try bus.publish(message, from: "cted")
        let sentPayload = try message.payload!.serialized()

        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 })
        let entry = try #require(try oct.entry(messageId: id))
        #expect(entry.payload == sentPayload)
        #expect(entry.originator == "cted")
        #expect(entry.redactedPaths.isEmpty)
        let received = try entry.message()
        #expect(received.envelope.originator == "cted")
        #expect(received.countryVisitRecommendation == message.countryVisitRecommendation)
        #expect(received.envelope.handling == message.envelope.handling)
        #expect(entry.signatureState(registry: bus.registry)
                == .verified(originator: "cted", keyId: PublicationSignature.keyId(try bus.signingKey(of: "cted").publicKey), withheld: [], sealed: false))

        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try cted.outbox.status(messageId: id) == .acknowledged })
        #expect(try cted.entry(messageId: id)?.originator == "cted")

        // A publisher cannot claim another originator: the broker can no longer rewrite a signed
        // envelope, so it refuses it, and the publisher's journal records why.
        var claimed = SampleMessages.recommendation()
        claimed.envelope.originator = "oct"
        let claimedId = try Publisher.enqueue(claimed, into: cted, clearance: .strictlyConfidential, signingKey: try bus.signingKey(of: "cted"))
        #expect(try await Wait.until { if case .refused = try cted.outbox.status(messageId: claimedId) { true } else { false } })
        guard case .refused(let code, let detail) = try cted.outbox.status(messageId: claimedId) else { return }
        #expect(code == "NOT_PERMITTED")
        #expect(detail.contains("publishes only as itself"))
        #expect(try oct.count(messageId: claimedId) == 0)
    }

    @Test("A CONFIDENTIAL recommendation releasable to OCT only reaches OCT and no working group")
    func releasabilityLimitsRecipients() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())

        let secret = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]))
        let secretId = try bus.publish(secret, from: "cted")
        // Order per publisher is kept, so once a later message from CTED arrives everywhere,
        // the first one would have arrived too if the broker had routed it.
        let sentinelId = try bus.publish(SampleMessages.recommendation(), from: "cted")

        for node in ["oct", "wg-border", "wg-cft", "wg-rights"] {
            let journal = try bus.journal(node)
            #expect(try await Wait.until { try journal.count(messageId: sentinelId) == 1 }, "\(node) did not get the sentinel")
        }
        #expect(try bus.journal("oct").count(messageId: secretId) == 1)
        #expect(try bus.journal("wg-border").count(messageId: secretId) == 0) // CONFIDENTIAL clearance, not named
        #expect(try bus.journal("wg-cft").count(messageId: secretId) == 0)
        #expect(try bus.journal("wg-rights").count(messageId: secretId) == 0) // UNCLASSIFIED clearance
        #expect(try await Wait.until { try bus.broker!.store.queueDepth(for: "wg-border") == 0 })
    }

    @Test("A node that was down gets its queue when it comes back, and a duplicate delivery is journaled once")
    func awayNodeCatchesUpAndDeduplicates() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        for node in ["cted", "wg-border"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())

        let ids = try (0..<3).map { _ in try bus.publish(SampleMessages.recommendation(), from: "cted") }
        let broker = try #require(bus.broker)
        #expect(try await Wait.until { try broker.store.queueDepth(for: "oct") == 3 })

        // A client with OCT's keys takes the first delivery, journals it and "crashes" before
        // acknowledging: the broker must send it again, and the journal must hold it once.
        do {
            let raw = try RawClient(endpoint: bus.endpoint, brokerPublicKey: bus.brokerKeys.publicKey, keyPair: bus.nodeKeys["oct"]!)
            try raw.hello()
            guard case .welcome = try await raw.receiveCommand() else { Issue.record("no Welcome"); return }
            guard case .deliver(let deliver) = try await raw.receiveCommand() else { Issue.record("no Deliver"); return }
            let envelope = try Envelope(serializedBytes: deliver.signedEnvelope)
            #expect(envelope.messageID == ids[0])
            let record = JournalRecord(envelope: envelope, envelopeBytes: deliver.signedEnvelope, payload: deliver.payload,
                                       signedPayload: nil, proof: try deliver.proof.serializedData())
            #expect(try bus.journal("oct").recordDeliveries([IncomingDelivery(record, sequence: deliver.sequence)]) == 1)
        }

        try bus.startNode("oct")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try broker.store.queueDepth(for: "oct") == 0 })
        for id in ids { #expect(try oct.count(messageId: id) == 1) }
        #expect(try oct.entries(matching: JournalFilter(direction: .received)).map(\.messageId) == ids)
    }

    @Test("ctbus publish while the broker is down: the message waits in the outbox and goes out once the broker starts")
    func publishWhileBrokerDown() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startNode("cted")
        try bus.startNode("oct")
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        let cted = try bus.journal("cted")
        #expect(try cted.outbox.status(messageId: id) == .queued)
        #expect(try cted.outbox.items().map(\.messageId) == [id])

        try bus.startBroker()
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 })
        #expect(try await Wait.until { try cted.outbox.status(messageId: id) == .acknowledged })
        #expect(try cted.outbox.items().isEmpty)
    }

    @Test("A broker restart loses nothing it acknowledged: queued messages reach the node afterwards")
    func brokerRestartKeepsQueues() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try bus.journal("cted").outbox.status(messageId: id) == .acknowledged })
        bus.stopBroker()

        try bus.startBroker()
        try bus.startNode("oct")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 })
    }

    @Test("A node added to the registry later gets the backlog it is entitled to under today's policy, once")
    func lateJoinerBacklog() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        let open = try bus.publish(SampleMessages.recommendation(), from: "cted")
        let confidential = try bus.publish(SampleMessages.missionReport(handling: SampleMessages.handling(.confidential)), from: "cted")
        let octOnly = try bus.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"])),
                                      from: "cted")
        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try [open, confidential, octOnly].allSatisfy { try cted.outbox.status(messageId: $0) == .acknowledged } })

        try bus.addNode(.init("wg-late", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"]))
        bus.stopBroker()
        try bus.startBroker() // the broker reads the registry when it starts
        try bus.startNode("wg-late")
        let late = try bus.journal("wg-late")
        #expect(try await Wait.until { try late.count() == 2 })
        #expect(try late.entries().map(\.messageId) == [open, confidential])
        #expect(try await Wait.until { try bus.broker!.store.queueDepth(for: "wg-late") == 0 })

        // A restart neither asks again nor duplicates anything.
        bus.stopNode("wg-late")
        try bus.startNode("wg-late")
        #expect(await bus.waitUntilConnected())
        let later = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try late.count(messageId: later) == 1 })
        #expect(try late.count() == 3)
    }

    @Test("A stalled node holds back only its own queue: the others get everything, the broker keeps its backlog on disk")
    func stalledNodeDoesNotHoldOthersBack() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        for node in ["cted", "oct", "wg-border"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        // wg-cft says Hello and then never reads nor acknowledges anything.
        let stalled = try RawClient(endpoint: bus.endpoint, brokerPublicKey: bus.brokerKeys.publicKey, keyPair: bus.nodeKeys["wg-cft"]!)
        try stalled.hello()
        let broker = try #require(bus.broker)
        let cted = try bus.journal("cted")
        let count = 1_000
        let key = try bus.signingKey(of: "cted")
        for _ in 0..<count { try Publisher.enqueue(SampleMessages.recommendation(), into: cted, clearance: .strictlyConfidential, signingKey: key) }

        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until(seconds: 60) { try oct.count() == count && border.count() == count })
        #expect(try broker.store.queueDepth(for: "wg-cft") == count) // all kept, none acknowledged, none dropped
        _ = stalled
    }
}
