import CTBusBroker
import CTBusJournal
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import Synchronization
import Testing

/// Online backups with `ctbus backup` and `ctbus journal backup`, taken by a separate process
/// while the bus runs and publishes, restored, and verified.
@Suite("Backup", .serialized, .busSlot)
struct BackupTests {
    @Test("A broker store backed up under load holds every message acknowledged before the backup, verifies, and a broker restored from it serves on")
    func brokerStore() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let cted = try bus.journal("cted")
        // Publications keep coming while the backup runs.
        let stop = Mutex(false)
        let published = Mutex<[String]>([])
        let finished = Mutex(false)
        OwnThread.start {
            defer { finished.withLock { $0 = true } }
            while !stop.withLock({ $0 }) {
                guard let id = try? bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted") else { break }
                published.withLock { $0.append(id) }
                Thread.sleep(forTimeInterval: 0.002)
            }
        }
        defer { stop.withLock { $0 = true } }
        #expect(try await Wait.until { try published.withLock { $0 }.prefix(100).allSatisfy { try cted.outbox.status(messageId: $0) == .acknowledged }
            && published.withLock { $0.count } >= 100 })
        let acknowledged = try published.withLock { $0 }.filter { try cted.outbox.status(messageId: $0) == .acknowledged }

        let copy = bus.folder.appendingPathComponent("broker-backup.sqlite").path
        let store = bus.brokerConfiguration.storePath
        let backup = try await CommandLineTests.run(["backup", "--store", store, "--out", copy])
        #expect(backup.status == 0 && backup.output.contains("hash chain intact"), "\(backup.output) \(backup.errors)")
        #expect(PrivateFiles.mode(of: copy) == 0o600)
        let again = try await CommandLineTests.run(["backup", "--store", store, "--out", copy])
        #expect(again.status != 0 && again.errors.contains("exists already"), "a backup never overwrites a file")
        stop.withLock { $0 = true }
        #expect(await Wait.until { finished.withLock { $0 } })

        let restored = try BrokerStore(path: copy, access: .readOnly)
        #expect(try restored.verify().isIntact)
        let missing = try acknowledged.filter { try restored.audit(messageId: $0) == nil }
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged messages missing from the backup")

        // Restore: the broker stops, the backup takes the store's place, the broker starts on it.
        bus.stopBroker()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store + suffix) }
        try FileManager.default.copyItem(atPath: copy, toPath: store)
        try bus.startBroker()
        #expect(await bus.waitUntilConnected())
        let after = try bus.publish(SampleMessages.recommendation(memberState: "NGA"), from: "cted")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.entry(messageId: after) != nil }, "the restored broker delivers")
        #expect(try bus.broker!.store.verify().isIntact)
    }

    @Test("ctbus journal backup copies a live journal and verifies the copy; bad destinations are refused with one line")
    func journal() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        for state in ["KEN", "NGA", "TUN"] { _ = try bus.publish(SampleMessages.recommendation(memberState: state), from: "cted") }
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count() == 3 })
        let copy = bus.folder.appendingPathComponent("oct-backup.sqlite").path
        let backup = try await CommandLineTests.run(["journal", "backup", "--journal", bus.journalPath("oct"), "--out", copy])
        #expect(backup.status == 0 && backup.output.contains("3 entries, hash chain intact"), "\(backup.output) \(backup.errors)")
        let restored = try NodeJournal(path: copy, access: .readOnly)
        #expect(try restored.count() == 3 && restored.verify().isIntact)
        let nowhere = try await CommandLineTests.run(["journal", "backup", "--journal", bus.journalPath("oct"), "--out", "/nonexistent/folder/x.sqlite"])
        #expect(nowhere.status != 0 && nowhere.errors.contains("does not exist") && nowhere.errors.split(separator: "\n").count == 1, "\(nowhere.errors)")
        let noJournal = try await CommandLineTests.run(["journal", "backup", "--journal", bus.folder.appendingPathComponent("none.sqlite").path,
                                                  "--out", bus.folder.appendingPathComponent("y.sqlite").path])
        #expect(noJournal.status != 0 && noJournal.errors.contains("does not exist"), "\(noJournal.errors)")
    }
}
