import CTBusBroker
import CTBusJournal
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import SwiftProtobuf
import Synchronization
import Testing

/// The hash chain of journals and of the broker store, on real SQLite files.
@Suite("Journal integrity", .busSlot)
struct JournalIntegrityTests {
    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-integrity-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `count` received entries whose payload text holds `marker` plus the entry number.
    static func fill(_ path: String, count: Int, marker: String) throws -> [String] {
        let journal = try NodeJournal(path: path)
        return try (0..<count).map { index in
            var message = SampleMessages.recommendation(text: "\(marker)-\(index)")
            message.envelope.originator = "cted"
            try journal.recordDelivery(message, sequence: UInt64(index + 1))
            return message.envelope.messageID
        }
    }

    /// Flips one byte of the first occurrence of `needle` in the file.
    static func flipByte(in path: String, at needle: String) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let range = try #require(bytes.range(of: Data(needle.utf8)))
        bytes[range.lowerBound + needle.utf8.count - 1] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    @Test("journal verify finds a flipped byte and names the first broken entry")
    func flippedByte() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("oct.journal.sqlite").path
        let marker = "FLIP-\(UUID().uuidString.prefix(8))"
        let ids = try Self.fill(path, count: 5, marker: marker) // the journal closes here: its WAL is checkpointed

        let before = try NodeJournal(path: path).verify()
        #expect(before.isIntact && before.entries == 5 && before.recovery == nil)
        try Self.flipByte(in: path, at: "\(marker)-2")

        let report = try NodeJournal(path: path).verify()
        #expect(report.firstBreak?.position == 3)
        #expect(report.firstBreak?.messageId == ids[2])
        let cli = try await CommandLineTests.run(["journal", "verify", "--journal", path])
        #expect(cli.status == 1)
        #expect(cli.output.contains("BROKEN at entry 3 (message \(ids[2]))"))
    }

    @Test("A journal whose last write was torn opens, keeps every complete entry and says so")
    func tornWrite() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let live = folder.appendingPathComponent("live.sqlite").path
        let crashed = folder.appendingPathComponent("crashed.sqlite").path
        let journal = try NodeJournal(path: live)
        var ids: [String] = []
        for index in 0..<4 {
            var message = SampleMessages.recommendation(text: "entry \(index)")
            message.envelope.originator = "cted"
            try journal.recordDelivery(message, sequence: UInt64(index + 1))
            ids.append(message.envelope.messageID)
        }
        // The files as a kill -9 leaves them (the journal is still open, its WAL not checkpointed),
        // with the last transaction's final frame cut short as a crash in mid-write would.
        try FileManager.default.copyItem(atPath: live, toPath: crashed)
        var wal = try Data(contentsOf: URL(fileURLWithPath: live + "-wal"))
        #expect(wal.count > 4096)
        wal.removeLast(1000)
        try wal.write(to: URL(fileURLWithPath: crashed + "-wal"))

        let recovered = try NodeJournal(path: crashed)
        #expect(recovered.recovery?.contains("incomplete") == true)
        let report = try recovered.verify()
        #expect(report.isIntact)
        #expect(report.entries == 3)
        #expect(try recovered.entries().map(\.messageId) == Array(ids.prefix(3)))
        _ = journal
    }

    @Test("The broker store has the same chain: a changed stored message is found")
    func brokerStoreChain() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        let marker = "STORE-\(UUID().uuidString.prefix(8))"
        var ids: [String] = []
        for index in 0..<3 {
            ids.append(try bus.publish(SampleMessages.recommendation(text: "\(marker)-\(index)"), from: "cted"))
        }
        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try ids.allSatisfy { try cted.outbox.status(messageId: $0) == .acknowledged } })
        #expect(try bus.broker!.store.verify().isIntact)
        bus.stopBroker()
        bus.stopNode("cted")

        let path = bus.brokerConfiguration.storePath
        try checkpoint(path)
        try Self.flipByte(in: path, at: "\(marker)-1")
        let report = try BrokerStore(path: path).verify()
        #expect(report.firstBreak?.messageId == ids[1])
        let cli = try await CommandLineTests.run(["journal", "verify", "--broker-store", path])
        #expect(cli.status == 1)
    }

    /// Opens and closes the store once so SQLite folds the WAL into the main file.
    func checkpoint(_ path: String) throws {
        _ = try BrokerStore(path: path).messageCount()
    }

    @Test("Several processes creating the same new journal at once all open it (daemon and ctbus publish)")
    func concurrentCreation() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Separate connections race exactly as separate processes do: SQLite's locks are the same.
        for round in 0..<30 {
            let path = folder.appendingPathComponent("race-\(round).sqlite").path
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 6) { _ in
                do {
                    _ = try NodeJournal(path: path).count()
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty, "round \(round)")
        }
    }

    @Test("The write-ahead log is copied into the database file in the background while the journal is open")
    func backgroundCheckpoint() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("node.journal.sqlite").path
        let journal = try NodeJournal(path: path)
        for index in 0..<300 { // one commit each, as deliveries arrive one by one at low rates
            var message = SampleMessages.recommendation(text: String(repeating: "x", count: 1_000) + "\(index)")
            message.envelope.originator = "cted"
            try journal.recordDelivery(message, sequence: UInt64(index + 1))
        }
        // No commit copies the log any more (that made commits slow); the checkpointer must.
        let databaseBytes = { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }
        #expect(await Wait.until(seconds: 10) { databaseBytes() >= 300 * 1_000 }, "database file: \(databaseBytes()) bytes")
        #expect(try journal.count() == 300)
    }
}

extension JournalIntegrityTests {
    @Test("Pages of a journal, newest first: each page continues where the last one ended, filters apply")
    func paging() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("oct.journal.sqlite").path
        let ids = try Self.fill(path, count: 7, marker: "PAGE")
        let journal = try NodeJournal(path: path, access: .readOnly)
        var seen: [String] = []
        var before: Int64?
        while true {
            let page = try journal.entries(matching: JournalFilter(newestFirst: true, before: before, limit: 3))
            guard let last = page.last else { break }
            seen += page.map(\.messageId)
            before = last.position
        }
        #expect(seen == ids.reversed())
        #expect(try journal.entries(matching: JournalFilter(subject: "NGA", newestFirst: true, limit: 3)).isEmpty)
    }
}
