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
import GRDB
import Testing

/// What a fault harness does to files: flipped bytes, write-protected copies,
/// readable modes, two daemons on one file, a taken port. Real SQLite files, real processes.
@Suite("Damaged and shared files", .serialized, .busSlot)
struct DamagedFilesTests {
    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    static func mode(_ path: String) -> Int? { PrivateFiles.mode(of: path).map(Int.init) }

    /// A closed journal (no -wal) with received entries, a sent one still in the outbox and a draft.
    static func smallJournal(_ path: String, entries: Int = 12) throws -> [String] {
        let ids = try JournalIntegrityTests.fill(path, count: entries, marker: "FUZZ")
        let journal = try NodeJournal(path: path)
        var sent = SampleMessages.missionReport()
        sent.envelope.originator = "cted"
        try journal.enqueue(sent)
        var draft = SampleMessages.recommendation()
        draft.envelope.originator = "cted"
        try journal.drafts.save(envelope: draft.envelope, payload: try draft.payload!.serialized())
        return ids
    }

    /// Checks 1,500 copies of a file, each with one byte flipped at a random place (seeded):
    /// returns the copies verify called intact that a reading command could not read, and how
    /// many copies verify found damaged.
    static func flipBytes(in original: String, isJournal: Bool, copy: String, seed: UInt64) throws -> (unreadable: [String], detected: Int) {
        var generator = SeededGenerator(seed: seed)
        var intactButUnreadable: [String] = []
        var detected = 0
        do {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: original))
            try bytes.write(to: URL(fileURLWithPath: copy))
            let file = try FileHandle(forWritingTo: URL(fileURLWithPath: copy))
            defer { try? file.close() }
            // One byte changed in the copy, and put back after the checks (they only read it).
            func put(_ byte: UInt8, at offset: Int) throws {
                try file.seek(toOffset: UInt64(offset))
                try file.write(contentsOf: [byte])
            }
            for _ in 0..<1_500 {
                let offset = Int.random(in: 0..<bytes.count, using: &generator)
                try put(bytes[offset] ^ UInt8.random(in: 1...255, using: &generator), at: offset)
                defer { try? put(bytes[offset], at: offset) }
                let intact: Bool
                do {
                    intact = isJournal ? try NodeJournal(path: copy, access: .readOnly).verify().isIntact
                        : try BrokerStore(path: copy, access: .readOnly).verify().isIntact
                } catch {
                    intact = false // refused to open: a clear error, not "intact"
                }
                guard intact else { detected += 1; continue }
                // Every other reading command must then work on the file.
                do {
                    if isJournal {
                        let journal = try NodeJournal(path: copy, access: .readOnly)
                        for entry in try journal.entries() { _ = try entry.message() }
                        _ = try journal.outbox.items()
                        _ = try journal.drafts.list()
                        _ = try journal.revocations.pending()
                    } else {
                        let store = try BrokerStore(path: copy, access: .readOnly)
                        _ = try store.messageCount()
                        for node in ["oct", "wg-border", "wg-cft", "wg-rights"] {
                            _ = try store.pendingDeliveries(for: node, after: 0, limit: 1_000)
                        }
                    }
                } catch {
                    intactButUnreadable.append("\(isJournal ? "journal" : "store") offset \(offset): \(error)")
                }
            }
        }
        return (intactButUnreadable, detected)
    }

    @Test("Single flipped bytes anywhere: verify never crashes and never says intact when a command cannot read the file")
    func flippedBytesEverywhere() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A small journal and a small broker store, both closed (their logs checkpointed away).
        let journalPath = folder.appendingPathComponent("node.journal.sqlite").path
        _ = try Self.smallJournal(journalPath)
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        for index in 0..<6 { try bus.publish(SampleMessages.recommendation(text: "store entry \(index)"), from: "cted") }
        #expect(try await Wait.until { try bus.broker!.store.messageCount() == 6 })
        bus.shutdown(removeFolder: false)
        let storePath = bus.brokerConfiguration.storePath
        #expect(!FileManager.default.fileExists(atPath: journalPath + "-wal"))

        // 1,500 damaged copies of each file: CPU work, each file on a thread of its own.
        let journalCopy = folder.appendingPathComponent("journal-copy.sqlite").path
        let storeCopy = folder.appendingPathComponent("store-copy.sqlite").path
        async let journalFlips = Wait.onOwnThread { try Self.flipBytes(in: journalPath, isJournal: true, copy: journalCopy, seed: 0x10_2026) }
        async let storeFlips = Wait.onOwnThread { try Self.flipBytes(in: storePath, isJournal: false, copy: storeCopy, seed: 0x20_2026) }
        let (journal, store) = try await (journalFlips, storeFlips)
        let intactButUnreadable = journal.unreadable + store.unreadable
        let detected = journal.detected + store.detected
        #expect(intactButUnreadable.isEmpty, "\(intactButUnreadable.prefix(5))")
        #expect(detected > 100) // the check found damage, it did not just pass everything
        try? FileManager.default.removeItem(at: bus.folder)
    }

    @Test("Inspection never writes: verify, list, export and show leave the file's SHA-256 as it was, and work for a user who cannot write")
    func inspectionIsReadOnly() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("evidence.sqlite").path
        let ids = try Self.smallJournal(path)
        let before = try Self.sha256(path)
        for arguments in [["verify"], ["list"], ["export"], ["show", ids[0]]] {
            let result = try await CommandLineTests.run(["journal"] + arguments + ["--journal", path])
            #expect(result.status == 0, "\(arguments): \(result.errors)")
        }
        #expect(try Self.sha256(path) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal") && !FileManager.default.fileExists(atPath: path + "-shm"))

        // A write-protected copy, checked by a user who may read it and write nothing there.
        let shelf = folder.appendingPathComponent("shelf")
        try FileManager.default.createDirectory(at: shelf, withIntermediateDirectories: true)
        let copy = shelf.appendingPathComponent("copy.sqlite").path
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        chmod(copy, 0o444)
        chmod(shelf.path, 0o555)
        chmod(folder.path, 0o755)
        defer { chmod(shelf.path, 0o755) }
        // A copy of the program beside it: the checkout may sit in a folder that user cannot enter.
        let program = folder.appendingPathComponent("ctbus").path
        try FileManager.default.copyItem(atPath: CommandLineTests.executable.path, toPath: program)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = ["-u", "nobody", "--", program, "journal", "verify", "--journal", copy]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("intact: 13 entries"), "\(text)")
    }

    @Test("Journals, stores, logs and locks are created for their owner alone; a daemon refuses a journal others can read")
    func privateFiles() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: id) == 1 })
        for path in [bus.journalPath("oct"), bus.journalPath("oct") + "-wal", bus.journalPath("oct") + "-shm",
                     bus.journalPath("oct") + ".lock", bus.brokerConfiguration.storePath, bus.brokerConfiguration.storePath + "-wal",
                     bus.brokerConfiguration.storePath + ".lock"] {
            #expect(Self.mode(path) == 0o600, "\(path): \(Self.mode(path).map { String($0, radix: 8) } ?? "missing")")
        }
        let nested = bus.folder.appendingPathComponent("deeper/still/node.sqlite").path
        _ = try NodeJournal(path: nested)
        #expect(Self.mode(bus.folder.appendingPathComponent("deeper").path) == 0o700)
        #expect(Self.mode(bus.folder.appendingPathComponent("deeper/still").path) == 0o700)

        // The daemon, on a journal made readable by others.
        bus.stopNode("oct")
        try bus.writeConfigurationFiles()
        chmod(bus.journalPath("oct"), 0o644)
        let result = try await CommandLineTests.run(["node", "--config", bus.nodeConfigurationPath("oct")])
        #expect(result.status == 1)
        #expect(result.errors.contains("can be read by other users (mode 644)") && result.errors.contains("chmod 600"), "\(result.errors)")
        #expect(result.errors.split(separator: "\n").count == 1)
    }

    @Test("One daemon per journal and per store: a second is refused naming the first; a broker whose port is taken writes nothing")
    func oneDaemonPerFile() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        // In this process: a second node on the same journal.
        #expect(throws: StoreError.self) { try bus.startNode("oct") }
        do {
            _ = try bus.startNode("oct")
        } catch let error as StoreError {
            #expect(error.kind == .inUse)
            #expect(error.description.hasPrefix("node oct is already running (pid \(getpid()))"))
        }
        // A second process: the node daemon on the running node's journal.
        try bus.writeConfigurationFiles()
        let second = try await CommandLineTests.run(["node", "--config", bus.nodeConfigurationPath("oct")])
        #expect(second.status == 1)
        #expect(second.errors.contains("node oct is already running (pid \(getpid()))"), "\(second.errors)")

        // A broker process on the same endpoint, with a store that does not exist yet: the port
        // is taken, and it leaves no file behind.
        let fresh = bus.folder.appendingPathComponent("fresh/broker.sqlite").path
        var configuration = bus.brokerConfiguration
        configuration.storePath = fresh
        let encoder = JSONEncoder()
        let file = bus.folder.appendingPathComponent("second-broker.json")
        try encoder.encode(configuration).write(to: file)
        let taken = try await CommandLineTests.run(["broker", "--config", file.path])
        #expect(taken.status == 1)
        #expect(!FileManager.default.fileExists(atPath: bus.folder.appendingPathComponent("fresh").path))
        // Another port, the running broker's store: refused by the lock.
        configuration = bus.brokerConfiguration
        configuration.endpoint = "tcp://127.0.0.1:\(try LocalBus.freePortForTests())"
        try encoder.encode(configuration).write(to: file)
        let shared = try await CommandLineTests.run(["broker", "--config", file.path])
        #expect(shared.status == 1)
        #expect(shared.errors.contains("a broker is already running (pid \(getpid()))"), "\(shared.errors)")
    }

    @Test("A damaged journal stops the daemon before it writes; salvage keeps what verifies; the backlog brings back the rest")
    func damagedJournalAndSalvage() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let marker = "SALVAGE-\(UUID().uuidString.prefix(8))"
        var ids: [String] = []
        for index in 0..<5 { ids.append(try bus.publish(SampleMessages.recommendation(text: "\(marker)-\(index)"), from: "cted")) }
        let path = bus.journalPath("oct")
        #expect(try await Wait.until { try bus.journal("oct").count() == 5 })
        bus.stopNode("oct")
        #expect(await Wait.until(seconds: 5) { !FileManager.default.fileExists(atPath: path + "-wal") })

        // The last entry's text damaged on disk.
        try JournalIntegrityTests.flipByte(in: path, at: "\(marker)-4")
        let damagedHash = try Self.sha256(path)
        try bus.writeConfigurationFiles()
        let start = try await CommandLineTests.run(["node", "--config", bus.nodeConfigurationPath("oct")])
        #expect(start.status == 1)
        #expect(start.errors.contains("journal \(path) is damaged: the hash chain is broken at position 5"), "\(start.errors)")
        #expect(start.errors.contains("ctbus journal salvage --journal \(path)"))
        #expect(try Self.sha256(path) == damagedHash) // nothing was written to it

        let salvage = try await CommandLineTests.run(["journal", "salvage", "--journal", path])
        #expect(salvage.status == 0, "\(salvage.errors)")
        #expect(salvage.output.contains("salvaged 4 entries"))
        #expect(salvage.output.contains("lost entry 5 (\(ids[4]), received): its content does not match its hash"), "\(salvage.output)")
        let aside = try #require(try FileManager.default.contentsOfDirectory(atPath: bus.folder.path)
            .first { $0.hasPrefix("oct.journal.sqlite.damaged-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") })
        #expect(try Self.sha256(bus.folder.appendingPathComponent(aside).path) == damagedHash)
        #expect(try NodeJournal(path: path, access: .readOnly).verify().isIntact)

        // Started again, the node asks for its backlog once and gets the lost message back.
        try bus.startNode("oct")
        let journal = try bus.journal("oct")
        #expect(try await Wait.until { try journal.count(messageId: ids[4]) == 1 })
        #expect(try journal.entries().map(\.messageId).sorted() == ids.sorted())
        #expect(try journal.verify().isIntact)
        #expect(try !journal.needsBacklog())
    }
}

extension DamagedFilesTests {
    @Test("A daemon checks a small journal whole at start: a link broken in the middle or a column edited beside the hashed bytes stops it; salvage keeps every entry whose hashed bytes verify, writes their columns anew, and a second salvage changes nothing; a node that does not start leaves no journal")
    func wholeStartCheckAndSalvage() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.writeConfigurationFiles()
        let path = bus.journalPath("oct")
        let cted = try bus.signingKey(of: "cted")
        var ids: [String] = []
        do {
            let journal = try NodeJournal(path: path)
            for index in 0..<4 {
                let message = SampleMessages.recommendation(text: "MIDDLE-\(index)")
                try journal.recordDelivery(message, sequence: UInt64(index + 1), signedWith: cted)
                ids.append(message.envelope.messageID)
            }
        }
        // A column the lists filter on, edited on entry 2; the hashed bytes are intact.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE entry SET classification = 'STRICTLY_CONFIDENTIAL' WHERE position = 2")
        }
        let start = try await CommandLineTests.run(["node", "--config", bus.nodeConfigurationPath("oct")])
        #expect(start.status == 1)
        #expect(start.errors.contains("entry 2: its classification disagree with its envelope"), "\(start.errors)")

        let salvage = try await CommandLineTests.run(["journal", "salvage", "--journal", path])
        #expect(salvage.status == 0 && salvage.output.contains("salvaged 4 entries") && !salvage.output.contains("lost"), "\(salvage.output)")
        #expect(try NodeJournal(path: path, access: .readOnly).verify().isIntact)
        #expect(try NodeJournal(path: path, access: .readOnly).entry(messageId: ids[1])?.classificationName == "UNCLASSIFIED")
        let salvaged = try Self.sha256(path)
        let again = try await CommandLineTests.run(["journal", "salvage", "--journal", path])
        #expect(again.status == 0 && again.output.contains("verifies (4 entries): nothing to salvage"), "\(again.output)")
        #expect(try Self.sha256(path) == salvaged)

        // Entry 3 revoked, then its signed revocation damaged (bookkeeping beside the chain): salvage
        // keeps the entry, as not revoked, and says so.
        let revocation = try Revocation.signed(messageId: ids[2], reason: "superseded", by: "cted", with: cted)
        try NodeJournal(path: path).revocations.markRevoked([revocation])
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE entry SET revocation = x'00FF', classification = 'CONFIDENTIAL' WHERE position = 3")
        }
        let revoked = try await CommandLineTests.run(["journal", "salvage", "--journal", path])
        #expect(revoked.status == 0 && revoked.output.contains("salvaged 4 entries"), "\(revoked.output)")
        #expect(revoked.output.contains("revocation lost for \(ids[2]): its signed statement does not read"), "\(revoked.output)")
        #expect(try NodeJournal(path: path, access: .readOnly).entry(messageId: ids[2])?.revokedAt == nil)

        // A byte of entry 2's hashed payload: the link in the middle is broken, not the last one.
        try await DatabaseQueue(path: path).write { db in
            var payload = try #require(try Data.fetchOne(db, sql: "SELECT payload FROM entry WHERE position = 2"))
            payload[payload.count - 1] ^= 0x01
            try db.execute(sql: "UPDATE entry SET payload = ? WHERE position = 2", arguments: [payload])
        }
        let broken = try await CommandLineTests.run(["node", "--config", bus.nodeConfigurationPath("oct")])
        #expect(broken.status == 1 && broken.errors.contains("the hash chain is broken at position 2"), "\(broken.errors)")

        // A configuration that cannot start (its registry file is gone) creates no journal.
        var configuration = bus.nodeConfiguration("wg-border")
        configuration.registryFile = bus.folder.appendingPathComponent("no-such-registry.json").path
        let file = bus.folder.appendingPathComponent("wg-border-bad.json")
        let encoder = JSONEncoder()
        try encoder.encode(configuration).write(to: file)
        let refused = try await CommandLineTests.run(["node", "--config", file.path])
        #expect(refused.status == 1)
        #expect(!FileManager.default.fileExists(atPath: configuration.journalPath), "\(refused.errors)")
    }

    @Test("verify on a live store whose log ends in a transaction still being written says nothing of a crash")
    func verifyBesideAWriter() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker() // holds the store's lock, as a running broker does
        let path = bus.brokerConfiguration.storePath
        // A writer in the middle of a large transaction: its pages spill into the log before any commit.
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let writer = try DatabaseQueue(path: path, configuration: configuration)
        try await writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA cache_size = 2")
            try db.execute(sql: "BEGIN IMMEDIATE")
            for index in 0..<2_000 {
                try db.execute(sql: "INSERT INTO recipient (node_id, last_sequence) VALUES (?, 0)", arguments: ["spill-\(index)-" + String(repeating: "x", count: 200)])
            }
        }
        defer { try? writer.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") } }
        let result = try await CommandLineTests.run(["journal", "verify", "--broker-store", path])
        #expect(result.status == 0, "\(result.output) \(result.errors)")
        #expect(!result.output.contains("incomplete") && !result.output.contains("note:"), "\(result.output)")
        #expect(result.output.hasPrefix("intact: "))
    }
}

extension DamagedFilesTests {
    @Test("A file of another kind or schema version is refused, never altered: a store opened as a journal, a journal from a newer build, one from before schema versions; the daemon, publish, verify and salvage each refuse it and say which", arguments: [
        "store", "newer", "unversioned",
    ])
    func otherSchemas(case name: String) async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let path = bus.journalPath("oct")
        switch name {
        case "store":
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            _ = try BrokerStore(path: path).messageCount()
        case "newer":
            _ = try Self.smallJournal(path)
            try await DatabaseQueue(path: path).write { db in try db.execute(sql: "PRAGMA user_version = 4") }
        default:
            try await DatabaseQueue(path: path).write { db in
                try db.execute(sql: "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY); CREATE TABLE entry (position INTEGER)")
            }
            chmod(path, 0o600)
        }
        let expected = switch name {
        case "store": "\(path) is a broker store, not a node journal"
        case "newer": "\(path) holds node journal schema 4, newer than this build's 3: use the CTBus build that wrote it, or a newer one"
        default: "\(path) is not a node journal of this build: it is another SQLite file, or a CTBus file written before files carried a schema version"
        }
        let before = try Self.sha256(path)
        do {
            _ = try NodeJournal(path: path)
            Issue.record("opened")
        } catch {
            #expect(error.kind == .schema && error.description.hasPrefix(expected), "\(error)")
        }
        try bus.writeConfigurationFiles()
        let config = bus.nodeConfigurationPath("oct")
        let example = CommandLineTests.root.appendingPathComponent("Schemas/examples/mission-report.json").path
        for command in [["node", "--config", config], ["publish", "--node-config", config, example],
                        ["journal", "verify", "--journal", path], ["journal", "salvage", "--journal", path]] {
            let result = try await CommandLineTests.run(command)
            #expect(result.status != 0, "\(command)")
            #expect(result.errors.contains(expected), "\(command): \(result.errors)")
        }
        #expect(try Self.sha256(path) == before, "the file was altered")
        #expect(try FileManager.default.contentsOfDirectory(atPath: bus.folder.path).allSatisfy { !$0.contains(".damaged-") })
    }

    @Test("A journal of schema 1 (a contentless search index) is read as it stands by verify, and upgraded by its owner through schema 2 to 3: the search indexes fill again from the entries and show snippets, the notification tables start empty")
    func upgradeFromSchema1() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-upgrade-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("oct.journal.sqlite").path
        _ = try Self.smallJournal(path, entries: 5)
        // What a build of schema 1 wrote: the same entries, the old search index, version 1.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: """
                DROP TABLE notification; DROP TABLE subscription;
                DROP VIEW entry_search; DROP TABLE entry_text; DROP TABLE entry_theme; DROP TABLE entry_facet; DELETE FROM entry_reference;
                DELETE FROM meta WHERE key = 'search-indexed-through';
                CREATE VIRTUAL TABLE entry_text USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2');
                PRAGMA user_version = 1;
                """)
        }
        let before = try Self.sha256(path)
        let verified = try await CommandLineTests.run(["journal", "verify", "--journal", path])
        #expect(verified.status == 0 && verified.output.hasPrefix("intact: "), "\(verified.output) \(verified.errors)")
        #expect(try Self.sha256(path) == before, "read-only access changes nothing")

        let journal = try NodeJournal(path: path)
        #expect(try await DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") } == 3)
        #expect(try journal.search.status().indexedThrough == 0, "the indexes start again")
        #expect(try journal.notifications.subscriptions().isEmpty && journal.notifications.counts() == (0, 0))
        try journal.search.index()
        let words = try #require(JournalSearch.query("FUZZ"))
        var filter = JournalFilter()
        filter.words = words
        let found = try journal.entries(matching: filter)
        #expect(found.count == 5)
        let snippets = try journal.search.snippets(words: words, positions: found.map(\.position), open: "[", close: "]")
        #expect(snippets.count == 5 && snippets.values.allSatisfy { $0.contains("[FUZZ") }, "\(snippets)")
        #expect(try journal.verify().isIntact, "the upgraded file holds exactly this build's schema")
    }
}
