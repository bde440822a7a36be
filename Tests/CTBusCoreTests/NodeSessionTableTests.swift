@testable import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import Testing

/// PROTOCOL.md 4.1, the node's state table, row by row against `NodeCore`: no socket, no
/// journal, no wait.
@Suite("Node state table (PROTOCOL.md 4.1)")
struct NodeSessionTableTests {
    @Test("DISCONNECTED | timer, Hello sent | HELLO_SENT, request_backlog as the journal needs it", arguments: [false, true])
    func hello(backlog: Bool) {
        var scene = NodeScene(backlogWanted: backlog)
        let outcome = scene.tick()
        guard case .hello(let hello)? = outcome.sent.first else { Issue.record("no Hello"); return }
        #expect(outcome.names == ["Hello"])
        #expect(hello.protocolVersion == 3 && hello.requestBacklog == backlog)
    }

    @Test("DISCONNECTED | timer, send fails | retried at the next interval, not before")
    func helloNotTaken() {
        var scene = NodeScene()
        scene.socketTakes = false
        #expect(scene.tick().sent.isEmpty)
        scene.socketTakes = true
        scene.advance(.milliseconds(999))
        #expect(scene.tick().sent.isEmpty)
        scene.advance(.milliseconds(1))
        #expect(scene.tick().names == ["Hello"])
    }

    @Test("HELLO_SENT | no Welcome within the heartbeat interval | Hello again")
    func helloAgain() {
        var scene = NodeScene()
        _ = scene.tick()
        scene.advance(.milliseconds(500))
        #expect(scene.tick().sent.isEmpty)
        scene.advance(.milliseconds(500))
        #expect(scene.tick().names == ["Hello"])
    }

    @Test("HELLO_SENT | Deliver | ignored and not acknowledged")
    func deliverBeforeWelcome() {
        var scene = NodeScene()
        _ = scene.tick()
        let outcome = scene.receive([NodeScene.deliver(1), NodeScene.deliver(2, revocation: true)])
        #expect(outcome.sent.isEmpty && scene.journal.batches.isEmpty)
    }

    @Test("HELLO_SENT | Welcome | OPEN; the backlog recorded as asked; the whole outbox, publications then revocations, sent again")
    func welcome() throws {
        var scene = NodeScene(backlogWanted: true)
        scene.queue(3)
        scene.journal.pendingRevocations = [(try Revocation.signed(messageId: "m0", reason: "r", by: "cted",
                                                                   with: BrokerScene.signingKey("cted")), Date())]
        _ = scene.tick()
        let welcomed = scene.receive([NodeScene.welcome()])
        #expect(welcomed.sessionOpen == true)
        #expect(welcomed.effects.contains { if case .backlogRequested = $0 { true } else { false } })
        let sent = scene.tick()
        #expect(sent.published == [1, 2, 3])
        #expect(sent.names.last == "Revoke", "after the Publishes of the same outbox, even though sent moments ago")
        // Asked once: the next Hello does not ask again.
        _ = scene.receive([NodeScene.error(.noSession)])
        guard case .hello(let hello)? = scene.tick().sent.first else { Issue.record("no Hello"); return }
        #expect(!hello.requestBacklog)
    }

    @Test("any | SESSION_REPLACED | nothing sent; after a pause doubling from 1 s up to 60 s, a new connection and Hello",
          arguments: [1, 2, 3, 8])
    func sessionReplaced(replacements: Int) {
        var scene = NodeScene()
        scene.open()
        var pause = Duration.seconds(1)
        for round in 1...replacements {
            let answered = scene.receive([NodeScene.error(.sessionReplaced)])
            #expect(answered.sessionOpen == false)
            scene.advance(pause - .milliseconds(1))
            #expect(scene.tick().sent.isEmpty, "round \(round): silent during the pause")
            scene.advance(.milliseconds(1))
            let resumed = scene.tick()
            #expect(resumed.effects.contains { if case .reconnect = $0 { true } else { false } })
            #expect(resumed.names == ["Hello"])
            pause = min(pause * 2, .seconds(60))
        }
    }

    @Test("any | NOT_AUTHENTICATED | the session is over; Hello each heartbeat interval")
    func notAuthenticated() {
        var scene = NodeScene()
        scene.open()
        let answered = scene.receive([NodeScene.error(.notAuthenticated)])
        #expect(answered.sessionOpen == false)
        #expect(scene.tick().sent.isEmpty)
        scene.advance(.seconds(1))
        #expect(scene.tick().names == ["Hello"])
    }

    @Test("OPEN | INTERNAL | no publications; after a back-off doubling from 100 ms to 500 ms, Hello and the outbox from its oldest entry; a PublishAck resets it")
    func internalError() {
        var scene = NodeScene()
        scene.open()
        scene.queue(2)
        _ = scene.tick()
        var expected: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(500)]
        for delay in expected {
            _ = scene.receive([NodeScene.error(.internal, messageId: "m1")])
            scene.advance(delay - .milliseconds(1))
            let waiting = scene.tick()
            #expect(waiting.published.isEmpty && !waiting.names.contains("Hello"))
            scene.advance(.milliseconds(1))
            #expect(scene.tick().names == ["Hello"])
            _ = scene.receive([NodeScene.welcome()])
            #expect(scene.tick().published == [1, 2])
        }
        _ = scene.receive([NodeScene.publishAck("m1")])
        expected = [.milliseconds(100)]
        _ = scene.receive([NodeScene.error(.internal, messageId: "m2")])
        scene.advance(expected[0])
        #expect(scene.tick().names == ["Hello"])
    }

    @Test("OPEN | heartbeat interval elapsed | Heartbeat; one not taken is tried at the next turn")
    func heartbeat() {
        var scene = NodeScene()
        scene.open()
        scene.advance(.seconds(1))
        scene.socketTakes = false
        _ = scene.tick()
        scene.socketTakes = true
        #expect(scene.tick().names == ["Heartbeat"])
        #expect(scene.tick().sent.isEmpty)
    }

    @Test("OPEN | outbox has new or overdue publications | Publish; resent after resendAfter; a PublishAck ends it")
    func outbox() {
        var scene = NodeScene()
        scene.open()
        scene.queue(2)
        scene.advance(.milliseconds(100))
        #expect(scene.tick().published == [1, 2])
        _ = scene.receive([NodeScene.publishAck("m1")])
        scene.advance(.seconds(3))
        #expect(scene.tick().published == [2])
    }

    @Test("OPEN | a Publish the socket does not take | nothing after it overtakes it; it goes first at the next check")
    func publishNotTaken() {
        var scene = NodeScene()
        scene.open()
        scene.queue(3)
        scene.socketTakes = false
        scene.advance(.milliseconds(100))
        #expect(scene.tick().published.isEmpty)
        scene.socketTakes = true
        scene.advance(.milliseconds(100))
        #expect(scene.tick().published == [1, 2, 3])
    }

    @Test("OPEN | ErrorReport for a publication | recorded as refused in the journal, not resent",
          arguments: [ErrorCode.validationFailed, .notPermitted, .signatureInvalid, .conflictingDuplicate, .messageTooLarge])
    func refusal(code: ErrorCode) {
        var scene = NodeScene()
        scene.open()
        scene.queue(1)
        scene.advance(.milliseconds(100))
        _ = scene.tick()
        _ = scene.receive([NodeScene.error(code, messageId: "m1")])
        #expect(scene.requests.contains { if case .recordRefusal(let error) = $0 { error.code == code } else { false } })
        scene.advance(.seconds(3))
        #expect(scene.tick().published.isEmpty)
    }

    @Test("OPEN | Deliver | journaled in one batch, then one DeliveryAck through the batch's last sequence")
    func deliver() {
        var scene = NodeScene()
        scene.open()
        let outcome = scene.receive([NodeScene.deliver(4), NodeScene.deliver(6, revocation: true), NodeScene.deliver(7)])
        #expect(scene.journal.batches.last.map { ($0.deliveries.count, $0.revocations.count, $0.through) } ?? (0, 0, nil) == (2, 1, 7))
        guard case .deliveryAck(let ack)? = outcome.sent.last else { Issue.record("no DeliveryAck"); return }
        #expect(outcome.names == ["DeliveryAck"] && ack.throughSequence == 7)
    }

    @Test("OPEN | journaling a Deliver fails | nothing acknowledged; Hello again")
    func journalFails() {
        var scene = NodeScene()
        scene.open()
        scene.journal.failDeliveries = true
        let outcome = scene.receive([NodeScene.deliver(1)])
        #expect(outcome.sent.isEmpty && outcome.sessionOpen == false)
        #expect(scene.tick().names == ["Hello"])
    }

    @Test("OPEN | NO_SESSION | Hello at once")
    func noSession() {
        var scene = NodeScene()
        scene.open()
        _ = scene.receive([NodeScene.error(.noSession)])
        #expect(scene.tick().names == ["Hello"])
    }

    @Test("OPEN | nothing heard for brokerTimeout | Hello, but not while frames from the broker wait unread (4.4)")
    func brokerSilence() {
        var scene = NodeScene()
        scene.open()
        scene.advance(.seconds(5) + .milliseconds(1))
        #expect(scene.core.brokerSilent(at: scene.now))
        #expect(!scene.tick(framesWaiting: true).names.contains("Hello"))
        let outcome = scene.tick()
        #expect(outcome.sessionOpen == false && outcome.names == ["Hello"])
    }

    @Test("OPEN | RevokeAck | the revocation confirmed in the journal with the batch")
    func revokeAck() {
        var scene = NodeScene()
        scene.open()
        var ack = RevokeAck()
        ack.messageID = "m9"
        _ = scene.receive([.revokeAck(ack)])
        #expect(scene.journal.batches.last?.revokeAcks == ["m9"])
    }
}
