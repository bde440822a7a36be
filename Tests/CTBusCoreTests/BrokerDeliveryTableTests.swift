@testable import CTBusBroker
@testable import CTBusJournal
import CTBusLocal
import CTBusPolicy
import CTBusSchema
import Foundation
import Testing

/// PROTOCOL.md 6.1 (queues, credit, acknowledgement), 6.3 (revocation notices) and the re-judging
/// of 4.5, rule by rule against `BrokerCore`.
@Suite("Broker delivery rules (PROTOCOL.md 6.1, 6.3, 4.5)")
struct BrokerDeliveryTableTests {
    static let oct: BrokerCore.Connection = [0, 0, 0, 1]
    static let cted: BrokerCore.Connection = [0, 0, 0, 2]

    static func queue(_ count: Int) throws -> [QueuedDelivery] {
        try (1...count).map { try BrokerScene.queued(UInt64($0), SampleMessages.recommendation()) }
    }

    static func revocationNotice(_ sequence: UInt64) -> QueuedDelivery {
        QueuedDelivery(sequence: sequence, messageId: MessageID.generate(), envelope: Data(), payload: Data(), redactedPaths: [],
                       revocationReason: "withdrawn", originator: "cted", expiresAt: nil, proof: Data(), revocation: nil)
    }

    @Test("Credit: at most deliveryWindow unacknowledged; a DeliveryAck frees credit and more is sent in ascending order",
          arguments: [1, 3, 8])
    func credit(window: Int) throws {
        var scene = try BrokerScene(deliveryWindow: window)
        scene.store.queues["oct"] = try Self.queue(10)
        let opened = scene.open("oct", on: Self.oct)
        #expect(opened.delivered(to: Self.oct) == (1...UInt64(min(window, 10))).map { $0 })
        let more = scene.batch([(BrokerScene.ack(UInt64(window)), "oct", Self.oct)])
        #expect(more.delivered(to: Self.oct) == (UInt64(window + 1)...UInt64(min(2 * window, 10))).map { $0 })
        #expect(scene.core.sessions["oct"]?.inFlight.count == min(window, 10 - window))
    }

    @Test("DeliveryAck is capped at the highest sequence sent in this session; one not past the last changes nothing",
          arguments: [(3, 3), (2, 2), (100, 3)] as [(UInt64, UInt64)])
    func acknowledgementCap(through: UInt64, recorded: UInt64) throws {
        var scene = try BrokerScene(deliveryWindow: 3)
        scene.store.queues["oct"] = try Self.queue(5)
        scene.open("oct", on: Self.oct)
        _ = scene.receive(BrokerScene.ack(through), from: "oct", on: Self.oct)
        #expect(scene.core.acknowledgements["oct"] == recorded)
        _ = scene.receive(BrokerScene.ack(1), from: "oct", on: Self.oct)
        #expect(scene.core.acknowledgements["oct"] == recorded)
    }

    @Test("Acknowledgements are written within the delay, with the next publications' transaction, and before the node's next session")
    func acknowledgementsWritten() throws {
        var scene = try BrokerScene()
        scene.store.queues["oct"] = try Self.queue(2)
        scene.open("oct", on: Self.oct)
        scene.requests = []
        _ = scene.receive(BrokerScene.ack(2), from: "oct", on: Self.oct)
        _ = scene.tick()
        #expect(scene.requests.isEmpty, "not before the delay")
        scene.advance(.milliseconds(20))
        _ = scene.tick()
        guard case .recordAcknowledgements(let written)? = scene.requests.first else { Issue.record("no write"); return }
        #expect(written == ["oct": 2] && !scene.core.acknowledgementsPending)


    }

    @Test("Acknowledgements go with the next publications' transaction")
    func acknowledgementsWithPublications() throws {
        var scene = try BrokerScene()
        scene.store.queues["oct"] = try Self.queue(2)
        scene.open("oct", on: Self.oct)
        scene.open("cted", on: Self.cted)
        scene.requests = []
        _ = scene.batch([(BrokerScene.ack(2), "oct", Self.oct), (try BrokerScene.publish(SampleMessages.recommendation()), "cted", Self.cted)])
        guard case .store(_, let acknowledging)? = scene.requests.first else { Issue.record("no store"); return }
        #expect(acknowledging == ["oct": 2] && !scene.core.acknowledgementsPending)
    }

    @Test("Acknowledgements are written before the node's next session, so it is not sent what it acknowledged")
    func acknowledgementsBeforeHello() throws {
        var scene = try BrokerScene()
        scene.store.queues["oct"] = try Self.queue(2)
        scene.open("oct", on: Self.oct)
        _ = scene.receive(BrokerScene.ack(2), from: "oct", on: Self.oct)
        scene.requests = []
        scene.open("oct", on: Self.oct)
        let kinds = scene.requests.map { request -> String in
            switch request {
            case .recordAcknowledgements: "acknowledgements"
            case .readQueue: "read"
            default: "other"
            }
        }
        #expect(kinds == ["acknowledgements", "read"])
    }

    @Test("Expiry: an expired entry is removed with an audit line (refused, rule expired), never sent, and uses no credit; later ones go")
    func expiry() throws {
        var scene = try BrokerScene(deliveryWindow: 2)
        let expired = try BrokerScene.queued(1, SampleMessages.recommendation(), expiresAt: scene.now.date)
        scene.store.queues["oct"] = try [expired] + Self.queue(3).dropFirst()
        let outcome = scene.open("oct", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct) == [2, 3])
        let discard = scene.requests.first { if case .discard = $0 { true } else { false } }
        guard case .discard(let node, let removals)? = discard else { Issue.record("no removal"); return }
        #expect(node == "oct" && removals.map(\.sequence) == [1])
        #expect(removals.first?.audit.rule == .policy(.expired) && removals.first?.audit.outcome == .refused)
        #expect(scene.core.sessions["oct"]?.inFlight == [2, 3])
    }

    @Test("Expiry: when every entry read has expired, the queue is read again and what follows goes at once")
    func expiredWindow() throws {
        var scene = try BrokerScene(deliveryWindow: 2)
        let past = scene.now.date
        scene.store.queues["oct"] = try [BrokerScene.queued(1, SampleMessages.recommendation(), expiresAt: past),
                                         BrokerScene.queued(2, SampleMessages.recommendation(), expiresAt: past),
                                         BrokerScene.queued(3, SampleMessages.recommendation())]
        #expect(scene.open("oct", on: Self.oct).delivered(to: Self.oct) == [3])
    }

    @Test("Expiry: an entry whose removal fails is still skipped, and the failure logged")
    func expiryRemovalFails() throws {
        var scene = try BrokerScene()
        scene.store.failDiscard = true
        scene.store.queues["oct"] = try [BrokerScene.queued(1, SampleMessages.recommendation(), expiresAt: scene.now.date)] + Self.queue(2).dropFirst()
        let outcome = scene.open("oct", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct) == [2])
        #expect(outcome.logs.contains { $0.message == "could not discard an expired delivery" })
    }

    @Test("A revocation notice is delivered like a message: in sequence, using credit, never expiring")
    func revocationNotice() throws {
        var scene = try BrokerScene(deliveryWindow: 2)
        scene.store.queues["oct"] = try [Self.revocationNotice(1)] + Self.queue(3).dropFirst()
        let outcome = scene.open("oct", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct) == [1, 2])
        guard case .deliver(let first)? = outcome.frames(to: Self.oct).dropFirst().first else { return }
        #expect(first.hasRevocation && first.revocation.revokedBy == "cted" && first.signedEnvelope.isEmpty)
    }

    @Test("Redelivery: a new Hello restarts the session from the lowest unacknowledged sequence")
    func redelivery() throws {
        var scene = try BrokerScene(deliveryWindow: 8)
        scene.store.queues["oct"] = try Self.queue(3)
        #expect(scene.open("oct", on: Self.oct).delivered(to: Self.oct) == [1, 2, 3])
        #expect(scene.open("oct", on: Self.oct).delivered(to: Self.oct) == [1, 2, 3])
    }

    @Test("A send the connection does not take is sent again later, and nothing after it overtakes it")
    func sendFailure() throws {
        var scene = try BrokerScene(deliveryWindow: 8)
        scene.store.queues["oct"] = try Self.queue(4)
        scene.open("oct", on: Self.oct)
        // The connection refused 2: 3 and 4 were held back by the shell.
        _ = scene.perform(scene.core.sendFailed(to: Self.oct, sequence: 2, unreachable: false, error: "EAGAIN"))
        _ = scene.perform(scene.core.sendFailed(to: Self.oct, sequence: 3, unreachable: false, error: nil))
        _ = scene.perform(scene.core.sendFailed(to: Self.oct, sequence: 4, unreachable: false, error: nil))
        #expect(scene.core.sessions["oct"]?.sentThrough == 1 && scene.core.sessions["oct"]?.inFlight == [1])
        let resent = scene.batch([(BrokerScene.ack(1), "oct", Self.oct)])
        #expect(resent.delivered(to: Self.oct) == [2, 3, 4])
    }

    @Test("A publication committed for a connected node next in line with credit is delivered from memory, without a queue read")
    func freshDelivery() throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.oct)
        scene.open("cted", on: Self.cted)
        scene.requests = []
        let outcome = scene.batch([(try BrokerScene.publish(SampleMessages.recommendation()), "cted", Self.cted)])
        #expect(outcome.delivered(to: Self.oct) == [1])
        #expect(outcome.frames(to: Self.cted).map(\.name) == ["PublishAck"])
        #expect(!scene.requests.contains { if case .readQueue(node: "oct", _, _) = $0 { true } else { false } })
    }

    // MARK: Judging again after a registry change (4.5)

    /// A CONFIDENTIAL recommendation queued for wg-rights (cleared UNCLASSIFIED), as if queued
    /// before a reload lowered its clearance.
    static func aboveClearance(_ sequence: UInt64) throws -> QueuedDelivery {
        try BrokerScene.queued(sequence, SampleMessages.recommendation(handling: SampleMessages.handling(.confidential)))
    }

    @Test("Judged again: a queued delivery the node is no longer entitled to is withdrawn with its rule, and the queue goes on")
    func withdrawn() throws {
        var scene = try BrokerScene(rejudgeThrough: ["wg-rights": 2])
        scene.store.queues["wg-rights"] = try [Self.aboveClearance(1), BrokerScene.queued(2, SampleMessages.recommendation()),
                                               BrokerScene.queued(3, SampleMessages.recommendation())]
        let outcome = scene.open("wg-rights", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct) == [2, 3])
        #expect(outcome.counts.contains(.policyRefusal(node: "wg-rights", rule: .clearance)))
        guard case .discard(_, let removals)? = scene.requests.first(where: { if case .discard = $0 { true } else { false } }) else { return }
        #expect(removals.map(\.sequence) == [1] && removals.first?.audit.reason.hasPrefix("withdrawn before delivery after a registry change") == true)
    }

    @Test("Judged again: when the withdrawal cannot be recorded, nothing more is sent to the node for now")
    func withdrawalFails() throws {
        var scene = try BrokerScene(rejudgeThrough: ["wg-rights": 2])
        scene.store.failDiscard = true
        scene.store.queues["wg-rights"] = try [Self.aboveClearance(1), BrokerScene.queued(2, SampleMessages.recommendation())]
        let outcome = scene.open("wg-rights", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct).isEmpty)
        #expect(outcome.logs.contains { $0.message.hasPrefix("could not withdraw a queued delivery") })
    }

    @Test("Judged again: past the mark nothing is judged; revocation notices always go; acknowledging past the mark clears it")
    func mark() throws {
        var scene = try BrokerScene(rejudgeThrough: ["wg-rights": 1])
        scene.store.queues["wg-rights"] = try [Self.revocationNotice(1), Self.aboveClearance(2)]
        let outcome = scene.open("wg-rights", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct) == [1, 2], "queued after the change: decided under the new entry already")
        _ = scene.receive(BrokerScene.ack(1), from: "wg-rights", on: Self.oct)
        #expect(scene.core.rejudgeThrough["wg-rights"] == nil)
    }

    @Test("Judged again: a queued copy that withholds at least what the policy withholds now goes; one that holds more is withdrawn",
          arguments: [(["recommendation_text"], true), ([], false)] as [([String], Bool)])
    func restrictedCopy(queuedWithholding: [String], delivered: Bool) throws {
        var scene = try BrokerScene(rejudgeThrough: ["wg-border": 1])
        let message = SampleMessages.restricted(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential)),
                                                state: "KEN", fields: ["recommendation_text"], allowed: ["oct"])
        scene.store.queues["wg-border"] = try [BrokerScene.queued(1, message, redactedPaths: queuedWithholding)]
        let outcome = scene.open("wg-border", on: Self.oct)
        #expect(outcome.delivered(to: Self.oct) == (delivered ? [1] : []))
        #expect(outcome.counts.contains(.policyRefusal(node: "wg-border", rule: .memberStateRestriction)) == !delivered)
    }
}
