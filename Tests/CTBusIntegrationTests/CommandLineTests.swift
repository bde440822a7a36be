import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import SwiftProtobuf
import Testing

/// The `ctbus` program as people run it: real processes, the deploy/ example configuration,
/// keys from `ctbus keygen`, signals to stop.
@Suite("Command line", .serialized, .busSlot)
struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The ctbus executable that `swift build` put beside this test bundle.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ctbus")
    }

    struct Result {
        let status: Int32
        let output: String
        let errors: String
    }

    /// Runs `ctbus` to its end on a thread of its own (the task waits without holding a thread
    /// of the cooperative pool).
    static func run(_ arguments: [String], executable: URL = executable, input: String? = nil) async throws -> Result {
        try await Wait.onOwnThread { try runBlocking(arguments, executable: executable, input: input) }
    }

    private static func runBlocking(_ arguments: [String], executable: URL, input: String?) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let input {
            let pipe = Pipe()
            process.standardInput = pipe
            pipe.fileHandleForWriting.write(Data(input.utf8))
            try pipe.fileHandleForWriting.close()
        }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self),
                      errors: String(decoding: err, as: UTF8.self))
    }

    static func start(_ arguments: [String], log: URL) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        return process
    }

    /// Sends SIGTERM and waits (bounded) for the end; nil when the process had to be killed.
    static func stop(_ process: Process) async -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        guard await Wait.until(seconds: 10, { !process.isRunning }) else { return killStuck(process) }
        return process.terminationStatus
    }

    /// `stop` for `defer`, which cannot await: blocking, and brief, since a CTBus process ends
    /// within milliseconds of SIGTERM.
    static func terminate(_ process: Process) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        guard Wait.blocking(seconds: 10, { !process.isRunning }) else { return killStuck(process) }
        return process.terminationStatus
    }

    private static func killStuck(_ process: Process) -> Int32? {
        // CTBUS_DEBUG_HANG=FILE: write the stuck process's stacks there (gdb) before killing it.
        if let file = ProcessInfo.processInfo.environment["CTBUS_DEBUG_HANG"] {
            let gdb = Process()
            gdb.executableURL = URL(fileURLWithPath: "/usr/bin/gdb")
            gdb.arguments = ["-p", "\(process.processIdentifier)", "-batch", "-ex", "thread apply all bt 12"]
            _ = FileManager.default.createFile(atPath: file, contents: nil)
            gdb.standardOutput = FileHandle(forWritingAtPath: file)
            try? gdb.run()
            gdb.waitUntilExit()
        }
        kill(process.processIdentifier, SIGKILL)
        return nil
    }

    /// A copy of deploy/ in a temporary folder, with keys made by `ctbus keygen` and the
    /// broker on a free port.
    static func deployCopy() async throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.copyItem(at: root.appendingPathComponent("deploy"), to: folder)
        let port = try LocalBus.freePortForTests()
        func rewrite(_ file: URL, _ change: (inout [String: Any]) -> Void) throws {
            var object = try JSONSerialization.jsonObject(with: try Data(contentsOf: file)) as! [String: Any]
            change(&object)
            try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted]).write(to: file)
        }
        try rewrite(folder.appendingPathComponent("broker.json")) { $0["endpoint"] = "tcp://127.0.0.1:\(port)" }
        for node in ["oct", "cted", "wg-border", "wg-cft", "wg-rights"] {
            try rewrite(folder.appendingPathComponent("nodes/\(node).json")) {
                $0["brokerEndpoint"] = "tcp://127.0.0.1:\(port)"
                $0["heartbeatIntervalMilliseconds"] = 100
                $0["outboxPollMilliseconds"] = 20
            }
            let keygen = try await run(["keygen", "--out", folder.appendingPathComponent("keys").path,
                                  "--register-in", folder.appendingPathComponent("registry.json").path, node])
            #expect(keygen.status == 0, "\(keygen.errors)")
        }
        #expect(try await run(["keygen", "--out", folder.appendingPathComponent("keys").path, "--transport-only", "broker"]).status == 0)
        return folder
    }

    @Test("The deploy/ example runs for real: broker and node processes, ctbus publish, ctbus journal, SIGTERM exits 0")
    func realProcesses() async throws {
        let folder = try await Self.deployCopy()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = { (name: String) in folder.appendingPathComponent(name).path }

        // Publish before anything runs: the message waits in CTED's outbox.
        let published = try await Self.run(["publish", "--node-config", config("nodes/cted.json"),
                                      Self.root.appendingPathComponent("Schemas/examples/country-visit-recommendation.json").path])
        #expect(published.status == 0, "\(published.errors)")
        let id = published.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id == "019a5a2e-4c00-7a3b-8f21-3d4e5f607182")

        let broker = try Self.start(["broker", "--config", config("broker.json")], log: folder.appendingPathComponent("broker.log"))
        let nodes = try ["cted", "oct", "wg-border", "wg-rights"].map { node in
            try Self.start(["node", "--config", config("nodes/\(node).json")], log: folder.appendingPathComponent("\(node).log"))
        }
        defer { (nodes + [broker]).forEach { _ = Self.terminate($0) } }

        let oct = try NodeJournal(path: config("data/oct.journal.sqlite"))
        let border = try NodeJournal(path: config("data/wg-border.journal.sqlite"))
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 && border.count(messageId: id) == 1 })
        #expect(try border.entry(messageId: id)?.redactedPaths == ["technical_assistance_need"])

        let list = try await Self.run(["journal", "list", "--node-config", config("nodes/oct.json"), "--type", "COUNTRY_VISIT_RECOMMENDATION",
                                 "--format", "csv"])
        #expect(list.status == 0)
        #expect(list.output.split(separator: "\r\n").contains { $0.hasPrefix("\(id),") && $0.contains(",COUNTRY_VISIT_RECOMMENDATION,") && $0.contains(",cted,") },
                "\(list.output)")
        let show = try await Self.run(["journal", "show", "--node-config", config("nodes/oct.json"), id])
        #expect(show.status == 0)
        let shown = try BusMessage(jsonUTF8Data: Data(show.output.utf8))
        #expect(shown.envelope.originator == "cted")
        #expect(!shown.countryVisitRecommendation.technicalAssistanceNeed.isEmpty) // OCT is allowed to see it

        for process in nodes + [broker] {
            await #expect(Self.stop(process) == 0, "a daemon did not exit cleanly on SIGTERM")
        }
        // Nothing the UNCLASSIFIED working group may not see reached its journal.
        #expect(try NodeJournal(path: config("data/wg-rights.journal.sqlite")).count(messageId: id) == 0)
    }

    @Test("Bad input on the command line: one line on stderr and a non-zero exit", arguments: [
        (["broker", "--config", "/nonexistent/broker.json"], "configuration error: broker configuration /nonexistent/broker.json does not exist"),
        (["node", "--config", "/nonexistent/node.json"], "configuration error: node configuration /nonexistent/node.json does not exist"),
        (["validate", "/nonexistent/message.json"], "message file /nonexistent/message.json does not exist"),
    ])
    func badInput(arguments: [String], expected: String) async throws {
        let result = try await Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.errors.contains(expected), "\(result.errors)")
        #expect(result.errors.split(separator: "\n").count == 1)
    }

    @Test("A log level that is not one is refused before anything starts, with the levels there are")
    func badLogLevel() async throws {
        let result = try await Self.run(["broker", "--config", "/nonexistent/broker.json", "--log-level", "verbose"])
        #expect(result.status != 0)
        #expect(result.errors.contains("The value 'verbose' is invalid for '--log-level <log-level>'"), "\(result.errors)")
        #expect(result.errors.contains("notice") && !result.errors.contains("configuration error"), "\(result.errors)")
    }

    @Test("journal list: a table that fits 100 columns with a separator between columns; csv and json give full values")
    func journalListFormats() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("oct.journal.sqlite").path
        let journal = try NodeJournal(path: path)
        var message = SampleMessages.recommendation(memberState: "KEN", handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct"]))
        message.envelope.subject = "CENTRAL_ASIA"
        message.envelope.originator = "cted-regional-office-for-central-asia"
        message.envelope.handling.tlp = .tlpAmberStrict
        try journal.recordDelivery(message, sequence: 1, redactedPaths: ["priority"])
        let id = message.envelope.messageID

        let table = try await Self.run(["journal", "list", "--journal", path])
        #expect(table.status == 0)
        let lines = table.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { $0.count <= 100 }, "\(lines)")
        #expect(lines[0].hasPrefix("ID ") && lines[0].contains("  SUBJECT"), "\(lines)")
        #expect(lines[1].hasPrefix(id + "  ")) // the id is never cut
        #expect(lines[1].contains("…")) // what does not fit is cut with an ellipsis, not run together
        let subjectColumn = try #require(lines[0].range(of: "SUBJECT")).lowerBound.utf16Offset(in: lines[0])
        let row = Array(lines[1])
        #expect(row[subjectColumn - 1] == " " && row[subjectColumn - 2] == " ")

        let csv = try await Self.run(["journal", "list", "--journal", path, "--format", "csv"])
        #expect(csv.output.hasSuffix(",COUNTRY_VISIT_RECOMMENDATION,STRICTLY_CONFIDENTIAL,CENTRAL_ASIA,cted-regional-office-for-central-asia,"
                                     + "TLP:AMBER+STRICT; redacted: priority\r\n"), "\(csv.output)")
        let json = try await Self.run(["journal", "list", "--journal", path, "--format", "json"])
        let rows = try JSONDecoder().decode([[String: String]].self, from: Data(json.output.utf8))
        #expect(rows == [["id": id, "created": UTCTime.iso8601(message.envelope.createdAt.date), "direction": "received",
                          "type": "COUNTRY_VISIT_RECOMMENDATION", "classification": "STRICTLY_CONFIDENTIAL", "subject": "CENTRAL_ASIA",
                          "from": "cted-regional-office-for-central-asia", "notes": "TLP:AMBER+STRICT; redacted: priority"]])
    }

    @Test("ctbus publish refuses an invalid message, names the field, and queues nothing")
    func publishInvalid() async throws {
        let folder = try await Self.deployCopy()
        defer { try? FileManager.default.removeItem(at: folder) }
        var json = try String(contentsOf: Self.root.appendingPathComponent("Schemas/examples/mission-report.json"), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"member_state\": \"KEN\"", with: "\"member_state\": \"Kenya\"")
        let file = folder.appendingPathComponent("bad.json")
        try json.write(to: file, atomically: true, encoding: .utf8)
        let result = try await Self.run(["publish", "--node-config", folder.appendingPathComponent("nodes/cted.json").path, file.path])
        #expect(result.status == 1)
        #expect(result.errors == "ctbus: error VALIDATION_FAILED: mission_report.member_state must be an ISO 3166-1 alpha-3 code\n")
        let journal = try NodeJournal(path: folder.appendingPathComponent("data/cted.journal.sqlite").path)
        #expect(try journal.count() == 0)

        // A file that names another originator: refused, not rewritten to this node.
        let foreign = try String(contentsOf: Self.root.appendingPathComponent("Schemas/examples/mission-report.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"envelope\": {", with: "\"envelope\": {\"originator\": \"oct\",")
        #expect(foreign.contains("\"originator\": \"oct\""))
        try foreign.write(to: file, atomically: true, encoding: .utf8)
        let asOther = try await Self.run(["publish", "--node-config", folder.appendingPathComponent("nodes/cted.json").path, file.path])
        #expect(asOther.status == 1)
        #expect(asOther.errors.contains("NOT_PERMITTED: envelope.originator is oct, but this node is cted"), "\(asOther.errors)")
        #expect(try journal.count() == 0)
        await #expect(try Self.run(["validate", file.path]).status == 0, "validation alone takes any originator")

        try "{ not json".write(to: file, atomically: true, encoding: .utf8)
        let garbage = try await Self.run(["validate", file.path])
        #expect(garbage.status == 1)
        #expect(garbage.errors.hasPrefix("ctbus: error VALIDATION_FAILED: \(file.path): not a CTBus message in protobuf JSON"))
    }

    @Test("ctbus publish with several files: all checked first (a bad one queues none, and is named), then queued with one signature over a batch; each exported entry verifies alone in an independent script, and a bent path does not")
    func publishSeveral() async throws {
        let folder = try await Self.deployCopy()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("nodes/cted.json").path
        // Without its message id, each file gets a new one.
        let example = try String(contentsOf: Self.root.appendingPathComponent("Schemas/examples/mission-report.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"message_id\": \"019a5a2f-1e40-7c11-9a02-6b7c8d9e0f11\",", with: "")
        let files = (0..<3).map { folder.appendingPathComponent("report-\($0).json").path }
        for file in files { try example.write(toFile: file, atomically: true, encoding: .utf8) }
        let bad = folder.appendingPathComponent("bad.json").path
        try example.replacingOccurrences(of: "\"member_state\": \"KEN\"", with: "\"member_state\": \"Kenya\"").write(toFile: bad, atomically: true, encoding: .utf8)
        let journal = try NodeJournal(path: folder.appendingPathComponent("data/cted.journal.sqlite").path)

        let refused = try await Self.run(["publish", "--node-config", config, files[0], bad, files[1]])
        #expect(refused.status == 1)
        #expect(refused.errors == "ctbus: error VALIDATION_FAILED: \(bad): mission_report.member_state must be an ISO 3166-1 alpha-3 code\n")
        #expect(try journal.count() == 0, "all or none")

        // The example as it is, twice: one message id for two messages.
        let same = folder.appendingPathComponent("same.json").path
        try String(contentsOf: Self.root.appendingPathComponent("Schemas/examples/mission-report.json"), encoding: .utf8)
            .write(toFile: same, atomically: true, encoding: .utf8)
        let twice = try await Self.run(["publish", "--node-config", config, same, same])
        #expect(twice.status == 1)
        #expect(twice.errors.contains("VALIDATION_FAILED: message id 019a5a2f-1e40-7c11-9a02-6b7c8d9e0f11 is given twice"), "\(twice.errors)")
        #expect(try journal.count() == 0)

        let published = try await Self.run(["publish", "--node-config", config] + files)
        #expect(published.status == 0, "\(published.errors)")
        let ids = published.output.split(separator: "\n").map(String.init)
        #expect(ids.count == 3 && Set(ids).count == 3)
        let proofs = try ids.map { try #require(try journal.entry(messageId: $0)).signed().proof }
        #expect(proofs.allSatisfy { $0.hasBatch && $0.batch.leafCount == 3 } && Set(proofs.map(\.signature)).count == 1)
        #expect(proofs.map(\.batch.index) == [0, 1, 2])

        let export = try await Self.run(["journal", "export", "--node-config", config])
        #expect(export.status == 0, "\(export.errors)")
        let registry = folder.appendingPathComponent("registry.json").path
        let checked = try await SignatureEndToEndTests.verifyExport(export.output, registry: registry)
        #expect(checked.status == 0, "\(checked.output)\(checked.errors)")
        #expect(ids.allSatisfy { id in checked.output.contains(" \(id)\n") && !checked.output.contains("FAIL") }, "\(checked.output)")
        let lines = export.output.split(separator: "\n").map(String.init)
        func bent(_ line: String, _ change: (inout [String: Any]) -> Void) throws -> String {
            var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var proof = try #require(object["proof"] as? [String: Any])
            var batch = try #require(proof["batch"] as? [String: Any])
            change(&batch)
            proof["batch"] = batch
            object["proof"] = proof
            return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        }
        let tampered = [
            try bent(lines[0]) { $0["index"] = 1 },
            try bent(lines[1]) { $0["path"] = Array(($0["path"] as? [String] ?? []).dropLast()) },
        ]
        let failed = try await SignatureEndToEndTests.verifyExport(tampered.joined(separator: "\n") + "\n", registry: registry)
        #expect(failed.status == 1)
        #expect(failed.output.contains("FAIL 1 \(ids[0]): the signature does not verify"), "\(failed.output)")
        #expect(failed.output.contains("FAIL 2 \(ids[1]): the batch path has the wrong shape"), "\(failed.output)")
    }

    @Test("A corrupted journal gets a clear error, not a crash")
    func corruptedJournal() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString).sqlite")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(repeating: 0x42, count: 8192).write(to: file)
        let result = try await Self.run(["journal", "list", "--journal", file.path])
        #expect(result.status == 1)
        #expect(result.errors.contains("store error (corrupted)"))
        #expect(throws: StoreError.self) { try NodeJournal(path: file.path) }
    }
}
