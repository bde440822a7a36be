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
import ZeroMQ

@Suite("Audit", .busSlot)
struct AuditTests {
    @Test("The broker records who received a message and who was refused by which rule; ctbus audit prints it without content")
    func auditTrail() async throws {
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
        #expect(try await Wait.until { try cted.outbox.status(messageId: id) == .acknowledged })

        let trail = try #require(try bus.broker!.store.audit(messageId: id))
        let byNode = Dictionary(uniqueKeysWithValues: trail.entries.map { ($0.nodeId, $0) })
        #expect(byNode["oct"]?.outcome == .delivered)
        #expect(byNode["wg-border"]?.outcome == .redacted)
        #expect(byNode["wg-cft"]?.outcome == .redacted)
        #expect(byNode["wg-rights"]?.outcome == .refused)
        #expect(byNode["wg-rights"]?.rule == .policy(.clearance))
        #expect(byNode["cted"]?.rule == .policy(.originator))
        #expect(trail.originator == "cted")

        let cli = try await CommandLineTests.run(["audit", "--store", bus.brokerConfiguration.storePath, id])
        #expect(cli.status == 0)
        #expect(cli.output.contains("wg-rights    refused    [clearance]"))
        #expect(!cli.output.contains(marker))
        let missing = try await CommandLineTests.run(["audit", "--store", bus.brokerConfiguration.storePath, MessageID.generate()])
        #expect(missing.status == 1)
    }

    @Test("A message that expires while a node is away is not delivered to it, and the audit says why")
    func expiredWhileAway() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        var message = SampleMessages.recommendation()
        let expiry = Date().addingTimeInterval(1)
        message.envelope.expiresAt = .init(date: expiry)
        let id = try bus.publish(message, from: "cted")
        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try cted.outbox.status(messageId: id) == .acknowledged })
        #expect(await Wait.until { Date() > expiry }) // OCT comes back after the expiry
        try bus.startNode("oct")
        let sentinel = try bus.publish(SampleMessages.recommendation(), from: "cted")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count(messageId: sentinel) == 1 })
        #expect(try oct.count(messageId: id) == 0)
        let trail = try #require(try bus.broker!.store.audit(messageId: id))
        #expect(trail.entries.contains { $0.nodeId == "oct" && $0.rule == .policy(.expired) })
        #expect(try await Wait.until { try bus.broker!.store.queueDepth(for: "oct") == 0 })
    }

    @Test("A draft never leaves the node that wrote it; released, it goes out like any publication")
    func drafts() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let cted = try bus.journal("cted")
        let draft = SampleMessages.recommendation()
        let id = try Publisher.saveDraft(draft, into: cted, clearance: .strictlyConfidential)
        #expect(try cted.drafts.list().map(\.messageId) == [id])
        let sentinel = try bus.publish(SampleMessages.recommendation(), from: "cted")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count(messageId: sentinel) == 1 })
        #expect(try oct.count(messageId: id) == 0)
        #expect(try bus.broker!.store.audit(messageId: id) == nil) // the broker never saw it

        let key = try bus.signingKey(of: "cted")
        try Publisher.releaseDraft(id, from: cted, clearance: .strictlyConfidential, signingKey: key)
        #expect(try cted.drafts.list().isEmpty)
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 })
        #expect(try await Wait.until { try cted.outbox.status(messageId: id) == .acknowledged })
        #expect(throws: StoreError.self) { try Publisher.releaseDraft(id, from: cted, clearance: .strictlyConfidential, signingKey: key) } // released once
    }

    @Test("Revocation: every node that received the message marks it revoked; only the originator may revoke")
    func revocation() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        for node in ["cted", "oct", "wg-border", "wg-rights"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        let id = try bus.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct", "compact-wg"])),
                                 from: "cted")
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 && border.count(messageId: id) == 1 })

        // A working group cannot revoke CTED's message.
        let attacker = try RawClient(endpoint: bus.endpoint, brokerPublicKey: bus.brokerKeys.publicKey, keyPair: bus.nodeKeys["wg-cft"]!)
        try attacker.hello(keepAlive: true)
        guard case .welcome = try await attacker.receiveCommand() else { Issue.record("no Welcome"); return }
        // Unsigned, the revocation is refused as such; signed with its own key, it is not the originator's.
        var unsigned = Revoke()
        unsigned.messageID = id
        try attacker.send(.revoke(unsigned))
        guard case .error(let unsignedReport) = try await attacker.receiveReply() else { Issue.record("no error"); return }
        #expect(unsignedReport.code == .signatureInvalid && unsignedReport.messageID == id)
        let forged = try Revocation.signed(messageId: id, reason: "forged", by: "wg-cft", with: try bus.signingKey(of: "wg-cft"))
        try attacker.send(.revoke(forged.frame))
        guard case .error(let report) = try await attacker.receiveReply() else { Issue.record("no error"); return }
        #expect(report.code == .notPermitted)

        let cted = try bus.journal("cted")
        try bus.revoke(id, from: "cted", reason: "superseded by a corrected assessment")
        #expect(try await Wait.until { try oct.entry(messageId: id)?.revokedAt != nil && border.entry(messageId: id)?.revokedAt != nil })
        #expect(try oct.entry(messageId: id)?.revokeReason == "superseded by a corrected assessment")
        #expect(try await Wait.until { try cted.entry(messageId: id)?.revokedAt != nil && cted.revocations.pending().isEmpty })
        #expect(try bus.journal("wg-rights").count(messageId: id) == 0) // never had it, gets no revocation either
        #expect(try oct.verify().isIntact) // revocation is bookkeeping outside the hash chain
        let trail = try #require(try bus.broker!.store.audit(messageId: id))
        #expect(Set(trail.entries.filter { $0.outcome == .revoked }.map(\.nodeId)) == ["oct", "wg-border", "wg-cft"])

        let list = try await CommandLineTests.run(["journal", "list", "--journal", bus.journalPath("oct")])
        #expect(!list.output.contains(id))
        #expect(list.errors.contains("1 revoked not shown"))
        let all = try await CommandLineTests.run(["journal", "list", "--journal", bus.journalPath("oct"), "--include-revoked", "--format", "json"])
        let rows = try JSONDecoder().decode([[String: String]].self, from: Data(all.output.utf8))
        #expect(rows.first { $0["id"] == id }?["notes"] == "revoked: superseded by a corrected assessment")
    }
}
