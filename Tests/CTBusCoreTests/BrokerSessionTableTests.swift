@testable import CTBusBroker
import CTBusLocal
import CTBusPolicy
import CTBusSchema
import Foundation
import Testing
import ZeroMQ

/// PROTOCOL.md 4.2, the broker's state table, row by row against `BrokerCore`: no socket, no
/// store, no wait. Each row names the state, the event and what the broker must answer.
@Suite("Broker state table (PROTOCOL.md 4.2)")
struct BrokerSessionTableTests {
    static let first: BrokerCore.Connection = [0, 0, 0, 1]
    static let second: BrokerCore.Connection = [0, 0, 0, 2]

    /// A Frame other than Hello, as a node may send it.
    struct Command: CustomTestStringConvertible, Sendable {
        let name: String
        let kind: @Sendable () throws -> Frame.OneOf_Kind
        var testDescription: String { name }

        static let nodeCommands: [Command] = [
            Command(name: "Publish") { try BrokerScene.publish(SampleMessages.recommendation()) },
            Command(name: "Revoke") { try BrokerScene.revoke(MessageID.generate()) },
            Command(name: "DeliveryAck") { BrokerScene.ack(1) },
            Command(name: "Heartbeat") { .heartbeat(Heartbeat()) },
        ]
        static let brokerOnly: [Command] = [
            Command(name: "Welcome") { .welcome(Welcome()) },
            Command(name: "PublishAck") { .publishAck(PublishAck()) },
            Command(name: "Deliver") { .deliver(Deliver()) },
            Command(name: "ErrorReport") { .error(ErrorReport()) },
            Command(name: "RevokeAck") { .revokeAck(RevokeAck()) },
        ]
    }

    @Test("any state | a message without a registered User-Id | NOT_AUTHENTICATED, nothing else", arguments: [nil, "a key the registry does not hold"])
    func unregistered(userId: String?) throws {
        var scene = try BrokerScene()
        let outcome = scene.perform(scene.core.received([Self.first, [0x0a, 0x00]], userId: userId, at: scene.now))
        #expect(outcome.errors(to: Self.first) == [.notAuthenticated])
        #expect(scene.core.sessions.isEmpty && scene.requests.isEmpty)
    }

    @Test("NO SESSION | any Frame but Hello | NO_SESSION; nothing recorded or stored", arguments: Command.nodeCommands + Command.brokerOnly)
    func noSession(command: Command) throws {
        var scene = try BrokerScene()
        var outcome = scene.receive(try command.kind(), from: "cted", on: Self.first)
        outcome.merge(scene.perform(scene.core.drained(at: scene.now)))
        #expect(outcome.errors(to: Self.first) == [.noSession])
        #expect(scene.requests.isEmpty, "a Frame without a session is discarded: no store operation")
        #expect(scene.core.acknowledgements.isEmpty && scene.core.sessions.isEmpty)
    }

    @Test("NO SESSION | Hello, version 3 | session bound to the connection, Welcome, then the queue read within the credit")
    func hello() throws {
        var scene = try BrokerScene(deliveryWindow: 3)
        scene.store.queues["oct"] = try (1...5).map { try BrokerScene.queued($0, SampleMessages.recommendation()) }
        let outcome = scene.open("oct", on: Self.first)
        #expect(outcome.frames(to: Self.first).map(\.name) == ["Welcome", "Deliver", "Deliver", "Deliver"])
        #expect(outcome.delivered(to: Self.first) == [1, 2, 3])
        #expect(scene.core.sessions["oct"]?.connection == Self.first)
        guard case .welcome(let welcome)? = outcome.frames(to: Self.first).first else { return }
        #expect(welcome.nodeID == "oct" && welcome.protocolVersion == 3 && welcome.maxMessageBytes == 1_048_576)
    }

    @Test("any state | Hello with protocol_version != 3 | UNSUPPORTED_VERSION; an existing session is kept as it was", arguments: [0, 1, 2, 4] as [UInt32])
    func unsupportedVersion(version: UInt32) throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        let before = scene.core.sessions["oct"]
        let outcome = scene.receive(BrokerScene.hello(version: version), from: "oct", on: Self.second)
        #expect(outcome.errors(to: Self.second) == [.unsupportedVersion])
        #expect(outcome.frames(to: Self.first).isEmpty)
        #expect(scene.core.sessions["oct"] == before)
    }

    @Test("any state | not two parts, not a Frame, a Frame without a kind | MALFORMED_FRAME, with the frame's SHA-256 when no id can be read",
          arguments: [(0, [0xff, 0xff] as [UInt8]), (0, []), (1, [0x0a, 0x00])])
    func malformed(extraFrames: Int, bytes: [UInt8]) throws {
        var scene = try BrokerScene()
        let outcome = scene.receive(bytes, from: "oct", on: Self.first, extraFrames: extraFrames)
        #expect(outcome.errors(to: Self.first) == [.malformedFrame])
        guard case .error(let report)? = outcome.frames(to: Self.first).first else { return }
        #expect(report.frameSha256.count == (extraFrames == 0 ? 32 : 0))
    }

    @Test("OPEN | Hello on another connection | SESSION_REPLACED to the old one; new session, nothing in flight, hold cleared; the old connection gets SESSION_REPLACED for good")
    func replaced() throws {
        var scene = try BrokerScene()
        scene.store.queues["cted"] = try [BrokerScene.queued(1, SampleMessages.recommendation())]
        scene.open("cted", on: Self.first)
        #expect(scene.core.sessions["cted"]?.inFlight == [1])
        scene.store.failStore = true
        _ = scene.batch([(try BrokerScene.publish(SampleMessages.recommendation()), "cted", Self.first)])
        #expect(scene.core.sessions["cted"]?.held == true)

        let outcome = scene.open("cted", on: Self.second)
        #expect(outcome.errors(to: Self.first) == [.sessionReplaced])
        #expect(outcome.delivered(to: Self.second) == [1], "what was in flight is sent again from the lowest sequence")
        #expect(scene.core.sessions["cted"]?.held == false && scene.core.sessions["cted"]?.connection == Self.second)
        #expect(outcome.counts.contains(.session(.replaced, node: "cted", connected: 1)))

        for command in [BrokerScene.hello(), .heartbeat(Heartbeat())] {
            #expect(scene.receive(command, from: "cted", on: Self.first).errors(to: Self.first) == [.sessionReplaced])
        }
        #expect(scene.core.sessions["cted"]?.connection == Self.second)
    }

    @Test("OPEN | an expired session's node says Hello on another connection | the old connection is superseded all the same")
    func replacedAfterExpiry() throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        scene.advance(.seconds(6))
        _ = scene.tick()
        #expect(scene.core.sessions["oct"] == nil)
        let outcome = scene.open("oct", on: Self.second)
        #expect(outcome.errors(to: Self.first) == [.sessionReplaced])
        #expect(outcome.logs.filter { $0.message.hasPrefix("a newer connection took over") }.count == 1)
        // The old connection wakes up and says Hello again, as a node does after NO_SESSION: refused, for good.
        for command in [BrokerScene.hello(), .heartbeat(Heartbeat())] {
            let refused = scene.receive(command, from: "oct", on: Self.first)
            #expect(refused.errors(to: Self.first) == [.sessionReplaced])
            #expect(refused.logs.allSatisfy { $0.throttleKey != nil }, "a repeated refusal is logged once per period")
        }
        #expect(scene.core.sessions["oct"]?.connection == Self.second)
    }

    @Test("OPEN | any other Frame on a connection that is not the session's | NO_SESSION; the session is unchanged", arguments: Command.nodeCommands)
    func otherConnection(command: Command) throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.first)
        let before = scene.core.sessions["cted"]
        var outcome = scene.receive(try command.kind(), from: "cted", on: Self.second)
        outcome.merge(scene.perform(scene.core.drained(at: scene.now)))
        #expect(outcome.errors(to: Self.second) == [.noSession])
        #expect(scene.core.sessions["cted"] == before)
    }

    @Test("OPEN | a broker-only kind | MALFORMED_FRAME; the session stays and is refreshed", arguments: Command.brokerOnly)
    func brokerOnly(command: Command) throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        scene.advance(.seconds(3))
        let outcome = scene.receive(try command.kind(), from: "oct", on: Self.first)
        #expect(outcome.errors(to: Self.first) == [.malformedFrame])
        #expect(scene.core.sessions["oct"]?.lastSeen == scene.now.instant)
    }

    @Test("OPEN | Heartbeat | one Heartbeat back")
    func heartbeat() throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        #expect(scene.receive(.heartbeat(Heartbeat()), from: "oct", on: Self.first).frames(to: Self.first).map(\.name) == ["Heartbeat"])
    }

    @Test("OPEN | silent for longer than the session timeout | forgotten, nothing sent; kept while a frame waits unread (4.4)")
    func silence() throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        scene.advance(.seconds(5))
        #expect(scene.tick().sent.isEmpty && scene.core.sessions["oct"] != nil, "not longer than the timeout yet")
        scene.advance(.milliseconds(1))
        #expect(scene.core.hasOverdueSession(at: scene.now))
        _ = scene.tick(framesWaiting: true)
        #expect(scene.core.sessions["oct"] != nil, "a frame waiting unread may be from the node")
        let outcome = scene.tick()
        #expect(outcome.sent.isEmpty && scene.core.sessions["oct"] == nil)
        #expect(outcome.counts.contains(.session(.expired, node: "oct", connected: 0)))
    }

    @Test("OPEN | sending fails with host unreachable | the session is forgotten")
    func unreachable() throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        _ = scene.perform(scene.core.sendFailed(to: Self.first, sequence: nil, unreachable: true, error: "EHOSTUNREACH"))
        #expect(scene.core.sessions["oct"] == nil)
    }

    @Test("OPEN | a reload removes the node or the key of its connection | NOT_AUTHENTICATED to that connection, session forgotten; others untouched",
          arguments: ["removed", "key replaced"])
    func reloadEndsSession(change: String) throws {
        var scene = try BrokerScene()
        scene.open("wg-rights", on: Self.first)
        scene.open("oct", on: Self.second)
        var entries = scene.registry.entries
        if change == "removed" {
            entries.removeAll { $0.profile.id == "wg-rights" }
        } else {
            let index = entries.firstIndex { $0.profile.id == "wg-rights" }!
            entries[index].publicKey = try CurveKeyPair.generate().publicKey
        }
        let outcome = scene.reload(try NodeRegistry(entries: entries))
        #expect(outcome.errors(to: Self.first) == [.notAuthenticated])
        #expect(scene.core.sessions["wg-rights"] == nil && scene.core.sessions["oct"] != nil)
        #expect(outcome.counts.contains(.session(.ended, node: "wg-rights", connected: 1)))
        guard case .success(let changes)? = outcome.reload else { Issue.record("the reload was not answered"); return }
        #expect(changes.map(\.nodeId) == ["wg-rights"])
        // Its next frame is judged under the new registry: the old key is in it no more.
        let next = scene.receive(.heartbeat(Heartbeat()), from: "wg-rights", on: Self.first)
        #expect(next.errors(to: Self.first) == [.notAuthenticated])
    }

    @Test("Every accepted Frame on the session's connection and every valid Hello refresh the session; refused ones do not")
    func refresh() throws {
        var scene = try BrokerScene()
        scene.open("oct", on: Self.first)
        let opened = scene.now.instant
        scene.advance(.seconds(4))
        _ = scene.receive([0xff], from: "oct", on: Self.first)
        _ = scene.receive(.heartbeat(Heartbeat()), from: "oct", on: Self.second)
        _ = scene.receive(BrokerScene.hello(version: 1), from: "oct", on: Self.first)
        #expect(scene.core.sessions["oct"]?.lastSeen == opened)
        _ = scene.receive(BrokerScene.ack(0), from: "oct", on: Self.first)
        #expect(scene.core.sessions["oct"]?.lastSeen == scene.now.instant)
    }
}
