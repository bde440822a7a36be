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

/// Bad input against a real broker: every case gets a typed answer (or nothing, for clients the
/// broker does not admit), nobody receives what was refused, and the broker keeps serving.
@Suite("Bad input", .serialized, .busSlot)
struct BadInputTests {
    /// A running bus where every node but `idle` is connected (a test speaks for the idle one
    /// with a raw client).
    static let raw = "cted-raw"

    static func runningBus(maxMessageBytes: Int = BrokerConfiguration.defaultMaxMessageBytes, deliveryWindow: Int = 256,
                           idle: String = "wg-cft") async throws -> LocalBus {
        // "cted-raw" publishes like CTED but is never started: the tests speak for it with a raw
        // client, so no running node competes for its session.
        let bus = try LocalBus(nodes: LocalBus.standardNodes + [.init(raw, role: .cted, clearance: .strictlyConfidential)],
                               maxMessageBytes: maxMessageBytes, deliveryWindow: deliveryWindow)
        try bus.startBroker()
        for entry in bus.registry.entries where entry.profile.id != idle && entry.profile.id != raw { try bus.startNode(entry.profile.id) }
        #expect(await bus.waitUntilConnected())
        return bus
    }

    /// A raw client with a registered node's keys and an open session.
    static func session(_ bus: LocalBus, as node: String, keepAlive: Bool = true) async throws -> RawClient {
        let client = try bus.rawClient(as: node)
        try client.hello(keepAlive: keepAlive)
        guard case .welcome(let welcome) = try await client.receiveCommand() else {
            throw ConfigurationError("no Welcome for \(node)")
        }
        #expect(welcome.nodeID == node)
        return client
    }

    /// A Publish signed with a key no registry lists (for clients that are not registered nodes).
    static func publish(_ message: BusMessage) throws -> Frame.OneOf_Kind {
        .publish(try RawClient.signedPublish(message, with: Curve25519.Signing.PrivateKey()))
    }

    /// Publishes `message` through `client` and returns its PublishAck; records an issue and
    /// returns nil when none comes.
    static func publishAcknowledged(_ client: RawClient, _ message: BusMessage,
                                    sourceLocation: SourceLocation = #_sourceLocation) async throws -> PublishAck? {
        try client.publish(message)
        guard case .publishAck(let ack) = try await client.receiveReply() else {
            Issue.record("no PublishAck", sourceLocation: sourceLocation)
            return nil
        }
        return ack
    }

    static func expectError(_ client: RawClient, _ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation) async throws -> ErrorReport? {
        guard case .error(let report) = try await client.receiveReply() else {
            Issue.record("expected an Error frame \(code.name)", sourceLocation: sourceLocation)
            return nil
        }
        #expect(report.code == code, sourceLocation: sourceLocation)
        return report
    }

    /// Publishes an UNCLASSIFIED message from CTED and waits until every other node has it: after
    /// that, anything published earlier by CTED that was going to arrive has arrived.
    static func sentinel(_ bus: LocalBus, receivers: [String] = ["oct", "wg-border", "wg-rights"]) async throws {
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        for node in receivers {
            let journal = try bus.journal(node)
            #expect(try await Wait.until { try journal.count(messageId: id) == 1 }, "\(node) did not get the sentinel")
        }
    }

    @Test("A client with an unregistered key gets nothing through and receives nothing")
    func unregisteredKey() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await Self.session(bus, as: "wg-cft") // a registered client in the same run is served
        _ = client
        let stranger = try RawClient(endpoint: bus.endpoint, brokerPublicKey: bus.brokerKeys.publicKey, keyPair: try CurveKeyPair.generate())
        try stranger.hello()
        let message = SampleMessages.recommendation()
        try? stranger.send(try Self.publish(message))
        #expect(try await stranger.receive(seconds: 1) == nil)
        try await Self.sentinel(bus)
        for node in ["oct", "cted", "wg-border", "wg-cft", "wg-rights"] {
            #expect(try bus.journal(node).count(messageId: message.envelope.messageID) == 0)
        }
        #expect(try bus.broker!.store.messageCount() == 1) // the sentinel only
    }

    @Test("A working group publishing an activity matrix gets NOT_PERMITTED and nobody receives it")
    func workingGroupMayNotPublishMatrix() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let matrix = SampleMessages.activityMatrix(answering: [])
        let id = try bus.publish(matrix, from: "wg-border")
        let journal = try bus.journal("wg-border")
        #expect(try await Wait.until {
            if case .refused(code: "NOT_PERMITTED", detail: _) = try journal.outbox.status(messageId: id) { return true }
            return false
        })
        #expect(bus.node("wg-border")!.errorsReceived.contains { $0.code == .notPermitted && $0.messageId == id })
        try await Self.sentinel(bus)
        for node in ["oct", "cted", "wg-rights"] {
            #expect(try bus.journal(node).count(messageId: id) == 0)
        }
        #expect(try journal.outbox.items().isEmpty) // refused for good: not sent again
    }

    @Test("Schema-invalid publications get VALIDATION_FAILED naming the field, without the content")
    func invalidPublication() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await Self.session(bus, as: Self.raw)

        var badState = SampleMessages.recommendation(text: "SECRET-TEXT-MUST-NOT-LEAK")
        badState.countryVisitRecommendation.memberState = "XXX"
        try client.publish(badState)
        let report = try await Self.expectError(client, .validationFailed)
        #expect(report?.detail.contains("country_visit_recommendation.member_state") == true)
        #expect(report?.detail.contains("SECRET-TEXT") == false)
        #expect(report?.messageID == badState.envelope.messageID)

        var badDates = SampleMessages.recommendation()
        badDates.countryVisitRecommendation.visitDates.end = "2026-03-01"
        try client.publish(badDates)
        await #expect(try Self.expectError(client, .validationFailed)?.detail.contains("visit_dates.end") == true)

        var wrongType = SampleMessages.recommendation()
        wrongType.envelope.type = .missionReport // payload bytes are a recommendation
        try client.publish(wrongType)
        await #expect(try Self.expectError(client, .malformedFrame)?.detail.contains("MISSION_REPORT") == true)

        var garbage = Publish()
        garbage.envelope = SampleMessages.recommendation().envelope
        garbage.payload = Data([0xFF, 0xFF, 0xFF, 0xFF])
        try client.send(.publish(garbage))
        _ = try await Self.expectError(client, .malformedFrame)

        try await Self.sentinel(bus)
        for id in [badState, badDates, wrongType].map(\.envelope.messageID) {
            #expect(try bus.journal("oct").count(messageId: id) == 0)
        }
    }

    @Test("STRICTLY_CONFIDENTIAL without a releasability list is refused: NEED_TO_KNOW_REQUIRED")
    func needToKnow() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await Self.session(bus, as: Self.raw)
        let message = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential))
        try client.publish(message)
        _ = try await Self.expectError(client, .needToKnowRequired)
        try await Self.sentinel(bus)
        #expect(try bus.journal("oct").count(messageId: message.envelope.messageID) == 0)
    }

    @Test("An oversize publication gets MESSAGE_TOO_LARGE; the same client then publishes normally")
    func oversize() async throws {
        let bus = try await Self.runningBus(maxMessageBytes: 16 * 1024)
        defer { bus.shutdown() }
        let client = try await Self.session(bus, as: Self.raw)
        let big = SampleMessages.missionReport(summaryBytes: 20 * 1024)
        try client.publish(big)
        await #expect(try Self.expectError(client, .messageTooLarge)?.messageID == big.envelope.messageID)
        let fine = SampleMessages.missionReport()
        try client.publish(fine)
        guard case .publishAck(let ack) = try await client.receiveReply() else { Issue.record("no PublishAck"); return }
        #expect(ack.messageID == fine.envelope.messageID)
        #expect(try bus.journal("oct").count(messageId: big.envelope.messageID) == 0)
    }

    @Test("A resent publication is acknowledged again and delivered once; another message under its id is a conflict")
    func idempotentPublish() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await Self.session(bus, as: Self.raw)
        let message = SampleMessages.recommendation()
        for _ in 0..<2 {
            try client.publish(message)
            guard case .publishAck(let ack) = try await client.receiveReply() else { Issue.record("no PublishAck"); return }
            #expect(ack.originator == Self.raw)
        }
        var other = SampleMessages.recommendation(text: "A different recommendation.")
        other.envelope.messageID = message.envelope.messageID
        try client.publish(other)
        _ = try await Self.expectError(client, .conflictingDuplicate)
        try await Self.sentinel(bus)
        #expect(try bus.journal("oct").count(messageId: message.envelope.messageID) == 1)
        #expect(try bus.journal("oct").entry(messageId: message.envelope.messageID)?.payload == (try message.payload!.serialized()))
    }

    @Test("Clients with the wrong server key or without CURVE never get a session")
    func wrongServerKeyAndNoCurve() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let wrongServer = try RawClient(endpoint: bus.endpoint, brokerPublicKey: try CurveKeyPair.generate().publicKey,
                                        keyPair: bus.nodeKeys["wg-border"]!)
        try? wrongServer.hello()
        let plain = try RawClient(endpoint: bus.endpoint, brokerPublicKey: "", keyPair: nil)
        try? plain.hello()
        #expect(try await wrongServer.receive(seconds: 1) == nil)
        #expect(try await plain.receive(seconds: 0.2) == nil)
        try await Self.sentinel(bus)
    }

    @Test("A DeliveryAck beyond what was sent deletes nothing")
    func overAcknowledgement() async throws {
        // One delivery in flight at a time, so the second message waits in the store, unsent.
        let bus = try await Self.runningBus(deliveryWindow: 1)
        defer { bus.shutdown() }
        let store = bus.broker!.store
        let client = try await Self.session(bus, as: "wg-cft")
        let first = try bus.publish(SampleMessages.recommendation(), from: "cted")
        let second = try bus.publish(SampleMessages.recommendation(), from: "cted")
        guard case .deliver(let deliver) = try await client.receiveCommand() else { Issue.record("no Deliver"); return }
        #expect(try Envelope(serializedBytes: deliver.signedEnvelope).messageID == first && deliver.sequence == 1)
        #expect(try await Wait.until { try store.queueDepth(for: "wg-cft") == 2 })
        // Acknowledging far beyond: only the one sent counts, the unsent second is kept and sent.
        var ack = DeliveryAck()
        ack.throughSequence = 1_000
        try client.send(.deliveryAck(ack))
        guard case .deliver(let next) = try await client.receiveCommand() else { Issue.record("the second message was lost"); return }
        #expect(try Envelope(serializedBytes: next.signedEnvelope).messageID == second && next.sequence == 2)
        // Another publication is stored in the transaction that records pending acknowledgements.
        _ = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try store.messageCount() == 3 })
        #expect(try store.queueDepth(for: "wg-cft") == 2) // the second (unacknowledged) and the third
        ack.throughSequence = 2
        try client.send(.deliveryAck(ack))
        guard case .deliver(let third) = try await client.receiveCommand() else { Issue.record("no third Deliver"); return }
        ack.throughSequence = third.sequence
        try client.send(.deliveryAck(ack))
        #expect(try await Wait.until { try store.queueDepth(for: "wg-cft") == 0 })
    }
}
