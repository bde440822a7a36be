import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import GRDB
import Testing

/// Issue 12, item 4: retention and compaction against a real broker and nodes; the broker's own
/// retention pass, given a clock advanced by days.
@Suite("Retention", .serialized, .busSlot)
struct RetentionTests {
    static let day: TimeInterval = 86_400

    static func publishAndWait(_ bus: LocalBus, _ messages: [BusMessage]) async throws -> [String] {
        let broker = try #require(bus.broker)
        let before = try broker.store.messageCount()
        let ids = try #require(bus.node("cted")).publish(messages)
        #expect(try await Wait.until(seconds: 60) { try broker.store.messageCount() == before + messages.count && broker.store.queueFigures().isEmpty },
                "stored, and every recipient acknowledged")
        return ids
    }

    @Test("Past its type's retention an acknowledged message leaves the store with its audit; the chain of what remains verifies; the store keeps its size cycle after cycle")
    func messagesLeave() async throws {
        let bus = try LocalBus(retention: .init(messages: ["MISSION_REPORT": "30d", "COUNTRY_VISIT_RECOMMENDATION": "forever"]))
        defer { bus.shutdown() }
        var broker = try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let reports = try await Self.publishAndWait(bus, (0..<200).map { _ in SampleMessages.missionReport(summaryBytes: 2_000) })
        let recommendations = try await Self.publishAndWait(bus, (0..<20).map { _ in SampleMessages.recommendation() })
        #expect(try broker.store.messageCount() == 220)

        #expect(try broker.applyRetention(now: Date() + 29 * Self.day).isEmpty, "nothing is due before 30 days")
        let report = try broker.applyRetention(now: Date() + 31 * Self.day)
        #expect(report.messagesRemoved == 200, "\(report)")
        #expect(try broker.store.messageCount() == 20 && broker.store.removedByRetention() == 200)
        #expect(try broker.store.audit(messageId: reports[0]) == nil)
        #expect(try broker.store.audit(messageId: recommendations[0]) != nil)
        let verified = try broker.store.verify()
        #expect(verified.isIntact && verified.entries == 20 && verified.removedByRetention == 200, "\(verified)")
        // The journals keep everything (retention is the broker's).
        #expect(try bus.journal("oct").count(messageId: reports[0]) == 1)

        // A message still queued for a node that is away stays, whatever its age, until delivered.
        bus.stopNode("wg-border")
        let held = try #require(bus.node("cted")).publish([SampleMessages.missionReport()])[0]
        #expect(try await Wait.until { try broker.store.queueDepth(for: "wg-border") == 1 })
        #expect(try broker.applyRetention(now: Date() + 31 * Self.day).messagesRemoved == 0)
        try bus.startNode("wg-border")
        #expect(try await Wait.until { try bus.journal("wg-border").count(messageId: held) == 1 && broker.store.queueFigures().isEmpty })
        // Now it may go, but it is the newest row (the next publication links to its hash): it waits for a newer one.
        #expect(try broker.applyRetention(now: Date() + 31 * Self.day).messagesRemoved == 0)
        #expect(try broker.store.messageCount() == 21)

        // Steady load: each cycle publishes 200 and lets them age out; the file does not grow after the first.
        var pages: [Int] = []
        for cycle in 1...4 {
            _ = try await Self.publishAndWait(bus, (0..<200).map { _ in SampleMessages.missionReport(summaryBytes: 2_000) })
            _ = try broker.applyRetention(now: Date() + Double(31 * cycle) * Self.day)
            pages.append(try broker.store.pageFigures().pages)
        }
        #expect(pages[3] <= pages[1] + pages[1] / 20, "pages per cycle: \(pages)")
        #expect(try broker.store.messageCount() == 21 && broker.store.removedByRetention() == 200 + 4 * 200)

        // A broker restarted on the compacted store checks it and starts; the chain verifies.
        bus.stopBroker()
        broker = try bus.startBroker()
        #expect(try broker.store.verify().isIntact)
        let after = try await Self.publishAndWait(bus, [SampleMessages.recommendation()])
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: after[0]) == 1 })
        #expect(try broker.store.verify().isIntact)

        // What retention records is not a licence: a link where no row is missing, or a row deleted
        // behind its back, breaks the chain.
        bus.stopBroker()
        let path = bus.brokerConfiguration.storePath
        let store = try DatabaseQueue(path: path)
        try await store.write { db in
            try db.execute(sql: """
                INSERT INTO chain_link (position, previous_hash) SELECT rowid, zeroblob(32) FROM message WHERE message_id = ?
                """, arguments: [recommendations[10]])
        }
        let forged = try BrokerStore(path: path, access: .readOnly).verify()
        #expect(forged.firstBreak?.messageId == recommendations[10] && forged.firstBreak?.reason.contains("no row before it is missing") == true,
                "\(forged)")
        try await store.write { db in
            try db.execute(sql: "DELETE FROM chain_link WHERE previous_hash = zeroblob(32)")
            try db.execute(sql: "DELETE FROM audit WHERE message_id = ?", arguments: [recommendations[5]])
            try db.execute(sql: "DELETE FROM message WHERE message_id = ?", arguments: [recommendations[5]])
        }
        let damaged = try BrokerStore(path: path, access: .readOnly).verify()
        #expect(damaged.firstBreak?.messageId == recommendations[6], "\(damaged)")
    }

    @Test("The queue of a node removed from the registry waits out its grace period, then goes, audited")
    func removedNodeQueue() async throws {
        let bus = try LocalBus(retention: .init(removedNodeQueues: "7d"))
        defer { bus.shutdown() }
        let broker = try bus.startBroker()
        for node in ["cted", "oct"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        let ids = try #require(bus.node("cted")).publish((0..<3).map { _ in SampleMessages.missionReport() })
        #expect(try await Wait.until { try broker.store.queueDepth(for: "wg-border") == 3 })
        try bus.changeRegistry { entries in entries.removeAll { $0.profile.id == "wg-border" } }
        try broker.reloadRegistry(file: bus.brokerConfiguration.registryFile, source: "test")

        #expect(try broker.applyRetention(now: Date() + 6 * Self.day).queueEntriesDropped == 0)
        #expect(try broker.store.queueDepth(for: "wg-border") == 3, "within the grace period the queue waits")
        #expect(try broker.applyRetention(now: Date() + 8 * Self.day).queueEntriesDropped == 3)
        #expect(try broker.store.queueDepth(for: "wg-border") == 0)
        let trail = try #require(try broker.store.audit(messageId: ids[0]))
        #expect(trail.entries.contains { $0.nodeId == "wg-border" && $0.rule == .nodeRemoved }, "\(trail.entries)")
        // wg-cft and wg-rights (still registered, away) keep theirs.
        #expect(try broker.store.queueDepth(for: "wg-cft") == 3)
    }

    @Test("Retention settings: a duration that does not read, an unknown type or a forever grace is refused, naming the field")
    func badSettings() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-retention-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases = [
            (#"{"messages": {"MISSION_REPORT": "5 years"}}"#, #"retention.messages.MISSION_REPORT: "5 years" is not a duration"#),
            (#"{"messages": {"MISSION_REPORTS": "5y"}}"#, "retention.messages: unknown message type MISSION_REPORTS"),
            (#"{"removedNodeQueues": "forever"}"#, "retention.removedNodeQueues: \"forever\" is not allowed"),
            (#"{"every": "0s"}"#, "retention.every must be a duration of at least 1s"),
        ]
        for (retention, expected) in cases {
            let path = folder.appendingPathComponent("broker.json").path
            try Data("""
                {"endpoint": "tcp://127.0.0.1:7470", "secretKeyFile": "broker.key", "registryFile": "registry.json",
                 "storePath": "broker.sqlite", "retention": \(retention)}
                """.utf8).write(to: URL(fileURLWithPath: path))
            do {
                _ = try BrokerConfiguration.load(path: path)
                Issue.record("accepted \(retention)")
            } catch {
                #expect(error.description.contains(path) && error.description.contains(expected), "\(error.description)")
            }
        }
    }
}

extension RetentionTests {
    @Test("The broker applies the retention on its own schedule (retention.every): a report past its retention leaves the store without anyone asking, and the broker stops cleanly between passes")
    func scheduledPasses() async throws {
        let bus = try LocalBus(retention: .init(messages: ["MISSION_REPORT": "1s"], every: "1s"))
        defer { bus.shutdown() }
        let broker = try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let report = try await Self.publishAndWait(bus, [SampleMessages.missionReport()])[0]
        // The newest row stays (the next one links to its hash): a recommendation comes after it,
        // and the report may go as soon as the recommendation is stored.
        let recommendation = try #require(bus.node("cted")).publish([SampleMessages.recommendation()])[0]
        #expect(try await Wait.until {
            try broker.store.audit(messageId: recommendation) != nil && broker.store.audit(messageId: report) == nil
                && broker.store.removedByRetention() == 1
        })
        #expect(try broker.store.messageCount() == 1)
        bus.stopBroker()
        #expect(!broker.isRunning)
    }
}
