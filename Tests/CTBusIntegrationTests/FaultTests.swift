import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import GRDB
import InMemoryLogging
import Logging
import SwiftProtobuf
import Testing
import ZeroMQ

/// The faults that live on the wire: two processes with one key, frames the broker
/// cannot read, a peer that stops reading, a broker whose disk is full. Real broker, real CURVE.
@Suite("Faults", .serialized, .busSlot)
struct FaultTests {
    /// A bus whose logs (broker and nodes) are kept in memory, to count lines.
    static func loggedBus() throws -> (LocalBus, InMemoryLogHandler) {
        let handler = InMemoryLogHandler()
        var logger = Logger(label: "ctbus", factory: { _ in handler })
        logger.logLevel = .info
        let bus = try LocalBus(nodes: LocalBus.standardNodes + [.init(BadInputTests.raw, role: .cted, clearance: .strictlyConfidential)],
                               logger: logger)
        return (bus, handler)
    }

    static func lines(_ handler: InMemoryLogHandler, containing text: String) -> Int {
        handler.entries.filter { "\($0.message)".contains(text) }.count
    }

    @Test("Two processes with one key: a replaced node says why, pauses and comes back on a new connection instead of stopping; once the other is gone it is served alone")
    func sessionReplaced() async throws {
        let (bus, handler) = try Self.loggedBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        try bus.writeConfigurationFiles()
        let log = bus.folder.appendingPathComponent("oct-first.log")
        let first = try CommandLineTests.start(["node", "--config", bus.nodeConfigurationPath("oct")], log: log)
        defer { _ = CommandLineTests.terminate(first) }
        #expect(try await Wait.until { try bus.broker!.store.queueDepth(for: "oct") == 0 && Self.lines(handler, containing: "node connected") >= 2 })

        // The same key from another process (here, this one) with another journal.
        var configuration = bus.nodeConfiguration("oct")
        configuration.journalPath = bus.folder.appendingPathComponent("oct-second.journal.sqlite").path
        let second = try Node(configuration: configuration, keyPair: bus.nodeKeys["oct"]!, brokerPublicKey: bus.brokerKeys.publicKey,
                              journal: try NodeJournal(path: configuration.journalPath), logger: LocalBus.defaultLogger)
        try second.start()
        func firstLog() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        #expect(await Wait.until(seconds: 30) { firstLog().contains("gave this node's session to another connection") })
        // The two take turns: the first one comes back on a new connection and takes the session again.
        #expect(await Wait.until(seconds: 30) { second.sessionsReplaced >= 1 })
        #expect(first.isRunning, "\(firstLog())")
        let replacedLine = firstLog().split(separator: "\n").first { $0.contains("gave this node's session") }
        #expect(replacedLine?.contains(bus.endpoint) == true, "\(replacedLine ?? "")") // the connection it saw
        second.stop()

        // Alone again, the first one is served: what cted publishes reaches its journal.
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until(seconds: 60) {
            try bus.broker!.store.audit(messageId: id) != nil && bus.broker!.store.queueDepth(for: "oct") == 0
        }, "stored, and acknowledged by oct")
        #expect(first.isRunning)
        await #expect(CommandLineTests.stop(first) == 0)
        #expect(try NodeJournal(path: bus.nodeConfiguration("oct").journalPath).count(messageId: id) == 1)
    }

    @Test("A frame the broker cannot decode is answered with its id when the bytes hold one, else with its SHA-256")
    func undecodableFrames() async throws {
        let (bus, _) = try Self.loggedBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw)
        let message = SampleMessages.recommendation(memberState: "KEN")
        guard case .publish(let publish) = try client.publishFrame(message) else { return }
        /// The frame with `damage` done to its signed envelope's bytes.
        func damaged(_ original: [UInt8], _ replacement: [UInt8]) throws -> [UInt8] {
            var frame = Frame()
            frame.publish = publish
            frame.publish.signedEnvelope = Data(Self.replacing(original, with: replacement, in: Array(publish.signedEnvelope)))
            return try frame.serializedBytes()
        }

        // Invalid UTF-8 in envelope.subject: the envelope does not decode, the id is still readable.
        let broken = try damaged(Array("KEN".utf8), [0xFF, 0xFE, 0xFD])
        try client.send(raw: [broken])
        let report = try await BadInputTests.expectError(client, .malformedFrame)
        #expect(report?.messageID == message.envelope.messageID)
        #expect(report?.frameSha256.isEmpty == true)

        // Invalid UTF-8 in the id itself: no id, the SHA-256 of the bytes instead.
        let id = Array(message.envelope.messageID.utf8)
        let noId = try damaged(id, [0xFF] + id.dropFirst())
        try client.send(raw: [noId])
        let digest = try await BadInputTests.expectError(client, .malformedFrame)
        #expect(digest?.messageID == "")
        #expect(digest?.frameSha256 == Data(SHA256.hash(data: noId)))
    }

    @Test("The reference node marks a publication the broker could not decode refused for good, by id or by digest, and shows it")
    func nodeStopsResendingUndecodable() async throws {
        let (bus, _) = try Self.loggedBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        // Two publications whose stored bytes were damaged after validation: one in the subject,
        // one in the id.
        let journal = try bus.journal("cted")
        let byId = SampleMessages.recommendation(memberState: "KEN")
        let byDigest = SampleMessages.recommendation(memberState: "TUN")
        _ = try bus.publish(byId, from: "cted")
        _ = try bus.publish(byDigest, from: "cted")
        let queue = try DatabaseQueue(path: bus.journalPath("cted"))
        try await queue.write { db in
            for (message, damage) in [(byId, (Array("KEN".utf8), [UInt8]([0xFF, 0xFE, 0xFD]))),
                                      (byDigest, (Array(byDigest.envelope.messageID.utf8.prefix(4)), [UInt8]([0xFF, 0x30, 0x31, 0x32])))] {
                let envelope = try #require(try Data.fetchOne(db, sql: "SELECT envelope FROM entry WHERE message_id = ?",
                                                             arguments: [message.envelope.messageID]))
                try db.execute(sql: "UPDATE entry SET envelope = ? WHERE message_id = ?",
                               arguments: [Data(Self.replacing(damage.0, with: damage.1, in: Array(envelope))), message.envelope.messageID])
            }
        }
        let node = try bus.startNode("cted")
        for message in [byId, byDigest] {
            #expect(try await Wait.until {
                if case .refused(code: "MALFORMED_FRAME", detail: _) = try journal.outbox.status(messageId: message.envelope.messageID) { return true }
                return false
            }, "\(message.envelope.subject)")
        }
        #expect(try journal.outbox.items().isEmpty) // never sent again
        #expect(node.errorsReceived.filter { $0.code == .malformedFrame }.count == 2)
        let list = try await CommandLineTests.run(["journal", "list", "--journal", bus.journalPath("cted"), "--format", "json"])
        let rows = try JSONDecoder().decode([[String: String]].self, from: Data(list.output.utf8))
        #expect(rows.filter { $0["notes"]?.hasPrefix("REFUSED MALFORMED_FRAME") == true }.count == 2, "\(list.output)")
        _ = queue
    }

    @Test("A client that stops reading its socket gets its replies dropped with a few log lines, not one per reply")
    func peerThatStopsReading() async throws {
        let (bus, handler) = try Self.loggedBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        try bus.startNode("cted")
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw, keepAlive: false)
        // Heartbeats, none of whose replies is read, until the broker's queue to this client (100,000
        // frames, plus the sockets' buffers) overflows; then 100,000 more, each a dropped reply.
        let heartbeat: [UInt8] = [0x3A, 0x00]
        var sent = 0
        var overflowAt: Int?
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline, sent < (overflowAt ?? 3_000_000) + 100_000 {
            guard (try? client.send(raw: [heartbeat])) != nil else { continue }
            sent += 1
            if overflowAt == nil, sent % 10_000 == 0, Self.lines(handler, containing: "frames to a node dropped") > 0 { overflowAt = sent }
        }
        #expect(overflowAt != nil, "the broker's queue never overflowed after \(sent) frames")
        // The broker still serves everyone else.
        try await BadInputTests.sentinel(bus, receivers: ["oct"])
        #expect(Self.lines(handler, containing: "frames to a node dropped") <= 2)
        #expect(handler.entries.count < 100, "\(handler.entries.count) log lines")
    }

    @Test("A full disk: INTERNAL without a session change, the node backs off, a few log lines, and everything arrives in order once space returns")
    func fullDisk() async throws {
        let (bus, handler) = try Self.loggedBus()
        defer { bus.shutdown() }
        var disk: FullDiskStore?
        try bus.startBroker { store in
            disk = FullDiskStore(store)
            return disk!
        }
        let store = try #require(disk)
        try bus.startNode("oct")
        let cted = try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let warmup = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: warmup) == 1 })
        let connectedBefore = Self.lines(handler, containing: "node connected")

        store.full = true
        let ids = try (0..<30).map { index in
            try bus.publish(SampleMessages.recommendation(text: "Recommendation \(index): " + String(repeating: "text ", count: 400)), from: "cted")
        }
        // Several rounds of refusals.
        #expect(await Wait.until(seconds: 30) { cted.errorsReceived.filter { $0.code == .internal }.count >= 60 })
        let internals = cted.errorsReceived.filter { $0.code == .internal }.count
        #expect(Self.lines(handler, containing: "store failed") == 1)
        #expect(Self.lines(handler, containing: "could not store a publication; resending later") == 1)
        // A round is one Hello after a back-off, not one per refusal.
        let hellos = Self.lines(handler, containing: "node connected") - connectedBefore
        #expect(hellos < internals / 10, "\(hellos) sessions for \(internals) refusals")

        store.full = false
        let oct = try bus.journal("oct")
        #expect(try await Wait.until(seconds: 15) { try ids.allSatisfy { try oct.count(messageId: $0) == 1 } })
        let order = try oct.entries().map(\.messageId).filter { ids.contains($0) }
        #expect(order == ids) // CTED's order holds across the failures
        #expect(try bus.journal("cted").outbox.items().isEmpty)
    }

    /// `bytes` with the first occurrence of `needle` replaced (same length).
    static func replacing(_ needle: [UInt8], with replacement: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        precondition(needle.count == replacement.count)
        var result = bytes
        for start in 0...(bytes.count - needle.count) where Array(bytes[start..<start + needle.count]) == needle {
            result.replaceSubrange(start..<start + needle.count, with: replacement)
            return result
        }
        return result
    }
}

/// A node that cannot get a session says why, within its broker timeout.
@Suite("Connection reports", .serialized, .busSlot)
struct ConnectionReportTests {
    static func node(_ bus: LocalBus, _ id: String, keys: CurveKeyPair, brokerKey: String, handler: InMemoryLogHandler) throws -> Node {
        var logger = Logger(label: "ctbus", factory: { _ in handler })
        logger.logLevel = .info
        var configuration = bus.nodeConfiguration(id)
        configuration.brokerPublicKey = brokerKey
        let node = try Node(configuration: configuration, keyPair: keys, brokerPublicKey: brokerKey,
                            journal: try bus.journal(id), logger: logger)
        try node.start()
        return node
    }

    @Test("A wrong broker key, an unregistered node key, no broker: one clear line each within the broker timeout, not a flood")
    func handshakeReports() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let refused = "refused the handshake: check brokerPublicKey (or brokerPublicKeyFile) and that this node's key is in the registry"

        // No broker yet.
        let away = InMemoryLogHandler()
        let early = try Self.node(bus, "oct", keys: bus.nodeKeys["oct"]!, brokerKey: bus.brokerKeys.publicKey, handler: away)
        #expect(await Wait.until { away.entries.contains { "\($0.message)".contains("cannot reach the broker at \(bus.endpoint)") } })
        early.stop()
        #expect(away.entries.contains { "\($0.message)" == "connecting to the broker" && $0.metadata["endpoint"] == "\(bus.endpoint)" })

        try bus.startBroker()
        let wrongKey = InMemoryLogHandler()
        let first = try Self.node(bus, "cted", keys: bus.nodeKeys["cted"]!, brokerKey: try CurveKeyPair.generate().publicKey, handler: wrongKey)
        let stranger = InMemoryLogHandler()
        let second = try Self.node(bus, "wg-border", keys: try CurveKeyPair.generate(), brokerKey: bus.brokerKeys.publicKey, handler: stranger)
        defer { first.stop(); second.stop() }
        for handler in [wrongKey, stranger] {
            #expect(await Wait.until { handler.entries.contains { "\($0.message)".hasSuffix(refused) } })
        }
        // A few broker timeouts later: one line per doubling back-off (after 1, 2 and 4 timeouts), no flood.
        let node = try bus.startNode("oct")
        #expect(await Wait.until { node.isConnected })
        let later = ContinuousClock.now + .seconds(3)
        #expect(await Wait.until(seconds: 10) { ContinuousClock.now >= later })
        for handler in [wrongKey, stranger] {
            #expect(handler.entries.filter { "\($0.message)".hasSuffix(refused) }.count <= 3)
        }
        #expect(!first.isConnected && !second.isConnected)
    }

    @Test("The broker key is given in one of two unmistakable forms; a path is never taken for a key")
    func brokerKeyForms() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let keyFile = folder.appendingPathComponent("bbbbbbbbbbbbbbbbbb.pub") // the path is 40 characters or so: it must not matter
        let key = try CurveKeyPair.generate().publicKey
        try (key + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        func load(_ fields: [String: String]) throws -> NodeConfiguration {
            var object: [String: String] = ["nodeId": "oct", "brokerEndpoint": "tcp://127.0.0.1:7470", "secretKeyFile": "oct.key",
                                            "journalPath": "oct.sqlite", "clearance": "CONFIDENTIAL"]
            object.merge(fields) { $1 }
            let file = folder.appendingPathComponent("node.json")
            try JSONSerialization.data(withJSONObject: object).write(to: file)
            return try NodeConfiguration.load(path: file.path)
        }
        #expect(try load(["brokerPublicKeyFile": keyFile.lastPathComponent]).resolvedBrokerPublicKey() == key)
        #expect(try load(["brokerPublicKey": key]).resolvedBrokerPublicKey() == key)
        #expect(throws: ConfigurationError.self) { try load(["brokerPublicKey": keyFile.path]) }
        #expect(throws: ConfigurationError.self) { try load(["brokerPublicKey": keyFile.lastPathComponent]) }
        #expect(throws: ConfigurationError.self) { try load(["brokerPublicKey": key, "brokerPublicKeyFile": keyFile.path]) }
        #expect(throws: ConfigurationError.self) { try load([:]) }
        #expect(throws: KeyFileError.self) { try load(["brokerPublicKeyFile": "missing.pub"]).resolvedBrokerPublicKey() }
    }
}

extension FaultTests {
    @Test("A broker that could not read for a while (its store stalled) keeps the sessions whose frames wait in its queue")
    func stalledBrokerKeepsSessions() async throws {
        let (bus, handler) = try Self.loggedBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        // Another connection holds the store's write lock for three session timeouts while CTED
        // publishes: the broker waits on its disk, the nodes' heartbeats pile up unread.
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true // the transaction spans two accesses: that is the point
        let holder = try DatabaseQueue(path: bus.brokerConfiguration.storePath, configuration: configuration)
        try await holder.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        try await Task.sleep(for: .milliseconds(3 * bus.brokerConfiguration.sessionTimeoutMilliseconds)) // the stall itself
        try await holder.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: id) == 1 })
        #expect(Self.lines(handler, containing: "node away: no heartbeat") == 0)
    }
}
