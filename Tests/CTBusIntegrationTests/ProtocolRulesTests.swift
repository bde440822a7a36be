import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import SwiftProtobuf
import Testing

/// The protocol rules an outside client found unspecified: one canonical spelling of
/// every id, a bound on every field, and an originator's own clearance. Each is checked against
/// a real broker over CURVE, the way that client met it.
@Suite("Protocol rules", .serialized, .busSlot)
struct ProtocolRulesTests {
    /// A CTED-role node cleared only to CONFIDENTIAL, spoken for by a raw client.
    static let lowCleared = "cted-low"

    static func runningBus() async throws -> LocalBus {
        let bus = try LocalBus(nodes: LocalBus.standardNodes + [
            .init(BadInputTests.raw, role: .cted, clearance: .strictlyConfidential),
            .init(lowCleared, role: .cted, clearance: .confidential),
        ])
        try bus.startBroker()
        for node in ["oct", "cted", "wg-border", "wg-rights"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        return bus
    }

    @Test("An id spelt in upper case is refused, naming the field; the message reaches each journal once")
    func canonicalIds() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw)
        let message = SampleMessages.recommendation()
        guard try await BadInputTests.publishAcknowledged(client, message) != nil else { return }

        var shouted = message
        shouted.envelope.messageID = message.envelope.messageID.uppercased()
        try client.publish(shouted)
        let report = try await BadInputTests.expectError(client, .validationFailed)
        #expect(report?.detail.hasPrefix("envelope.message_id ") == true)
        #expect(report?.messageID == shouted.envelope.messageID) // as sent, so the client finds its entry

        var follow = SampleMessages.recommendation()
        follow.envelope.references = [Reference(to: message.envelope.messageID.uppercased(), .followsUp)]
        try client.publish(follow)
        await #expect(try BadInputTests.expectError(client, .validationFailed)?.detail.hasPrefix("envelope.references[0].message_id ") == true)

        var revoke = Revoke()
        revoke.messageID = message.envelope.messageID.uppercased()
        try client.send(.revoke(revoke))
        let refusal = try await BadInputTests.expectError(client, .validationFailed)
        #expect(refusal?.detail.hasPrefix("revoke.message_id ") == true)
        #expect(refusal?.messageID == revoke.messageID)

        try await BadInputTests.sentinel(bus)
        let oct = try bus.journal("oct")
        #expect(try oct.count(messageId: message.envelope.messageID) == 1)
        #expect(try oct.entries().filter { $0.messageId.lowercased() == message.envelope.messageID }.count == 1)
        #expect(try bus.broker!.store.audit(messageId: message.envelope.messageID)?.entries.contains { $0.outcome == .revoked } == false)

        // The publishing node refuses it before it reaches the outbox.
        #expect(throws: BusError.self) { try bus.publish(shouted, from: "cted") }
    }

    @Test("A revocation reason over its bound is refused and nothing is revoked; an overlong agent is refused")
    func boundedRevokeReasonAndAgent() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw)
        let message = SampleMessages.recommendation()
        guard try await BadInputTests.publishAcknowledged(client, message) != nil else { return }

        var revoke = Revoke()
        revoke.messageID = message.envelope.messageID
        revoke.reason = String(repeating: "r", count: 3 * 1024 * 1024)
        try client.send(.revoke(revoke))
        let report = try await BadInputTests.expectError(client, .validationFailed)
        #expect(report?.detail == "revoke.reason is longer than \(WireLimits.revokeReasonBytes) bytes")
        #expect(report?.messageID == message.envelope.messageID)

        let atBound = try Revocation.signed(messageId: message.envelope.messageID, reason: String(repeating: "r", count: WireLimits.revokeReasonBytes),
                                            by: BadInputTests.raw, with: try bus.signingKey(of: BadInputTests.raw))
        // While the broker receives the 3 MiB above, no heartbeat can overtake it: on a loaded
        // machine that can outlast the bus's 1 s session timeout, so the session is opened again.
        try client.hello()
        guard case .welcome = try await client.receiveReply() else { Issue.record("no Welcome"); return }
        try client.send(.revoke(atBound.frame))
        let reply = try await client.receiveReply()
        guard case .revokeAck(let ack) = reply else { Issue.record("no RevokeAck at the bound: \(String(describing: reply))"); return }
        #expect(ack.recipientCount == 6)

        var hello = Hello()
        hello.protocolVersion = 3
        hello.agent = String(repeating: "a", count: WireLimits.agentBytes + 1)
        try client.send(.hello(hello))
        await #expect(try BadInputTests.expectError(client, .validationFailed)?.detail.hasPrefix("hello.agent ") == true)
    }

    @Test("A node may not originate a message marked above its own clearance, at the node and at the broker")
    func originatorClearance() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await BadInputTests.session(bus, as: Self.lowCleared)
        let message = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct"]))
        try client.publish(message)
        let report = try await BadInputTests.expectError(client, .notPermitted)
        #expect(report?.detail == "node cted-low is cleared to CONFIDENTIAL and may not originate a STRICTLY_CONFIDENTIAL message")
        #expect(report?.messageID == message.envelope.messageID)
        // At its own clearance it publishes.
        let fine = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential))
        guard try await BadInputTests.publishAcknowledged(client, fine) != nil else { return }

        try await BadInputTests.sentinel(bus)
        #expect(try bus.journal("oct").count(messageId: message.envelope.messageID) == 0)
        #expect(try bus.journal("oct").count(messageId: fine.envelope.messageID) == 1)
        // `ctbus publish` and Node.publish refuse it before the outbox.
        var mine = message
        mine.envelope.originator = Self.lowCleared
        #expect(throws: BusError(.notPermitted, report?.detail ?? "", messageId: message.envelope.messageID)) {
            try Publisher.enqueue(mine, into: try bus.journal(Self.lowCleared), clearance: .confidential, signingKey: try bus.signingKey(of: Self.lowCleared))
        }
        #expect(try bus.journal(Self.lowCleared).outbox.items().isEmpty)
    }
}

extension ProtocolRulesTests {
    @Test("A resend is acknowledged with the original recipient count after the registry grew; a conflicting duplicate is audited")
    func resentRecipientCount() async throws {
        let bus = try await Self.runningBus()
        defer { bus.shutdown() }
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw)
        let message = SampleMessages.recommendation()
        guard let first = try await BadInputTests.publishAcknowledged(client, message) else { return }
        #expect(first.recipientCount == 6)

        // A node joins the registry and the broker restarts: today's policy has one more recipient.
        try bus.addNode(.init("wg-new", role: .workingGroup, clearance: .confidential))
        bus.stopBroker()
        try bus.startBroker()
        let again = try await BadInputTests.session(bus, as: BadInputTests.raw)
        guard let resent = try await BadInputTests.publishAcknowledged(again, message) else { return }
        #expect(resent.recipientCount == first.recipientCount)

        var other = SampleMessages.recommendation(text: "Another text under the same id.")
        other.envelope.messageID = message.envelope.messageID
        try again.publish(other)
        _ = try await BadInputTests.expectError(again, .conflictingDuplicate)
        let trail = try #require(try bus.broker!.store.audit(messageId: message.envelope.messageID))
        #expect(trail.entries.filter { $0.outcome == .conflict }.map(\.nodeId) == [BadInputTests.raw])
        #expect(trail.entries.filter { $0.outcome == .conflict }.first?.rule == .conflictingDuplicate)
    }
}

/// PROTOCOL.md's limits table and `WireLimits` are the same table.
@Suite("Limits table", .busSlot)
struct LimitsTableTests {
    @Test("Every row of PROTOCOL.md section 5.6 is a row of WireLimits.table, and the other way round")
    func tableMatchesCode() async throws {
        let protocolText = try String(contentsOf: CommandLineTests.root.appendingPathComponent("Schemas/PROTOCOL.md"), encoding: .utf8)
        guard let start = protocolText.range(of: "<!-- limits table: generated rows, checked by LimitsTableTests -->"),
              let end = protocolText.range(of: "<!-- end of limits table -->", range: start.upperBound..<protocolText.endIndex) else {
            Issue.record("PROTOCOL.md has no limits table markers")
            return
        }
        let rows = protocolText[start.upperBound..<end.lowerBound].split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("| `") }
        #expect(rows == WireLimits.table.map(\.description))
    }
}
