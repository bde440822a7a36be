import CTBusConsole
import CTBusJournal
import CTBusLocal
import CTBusMetrics
import CTBusNode
import CTBusNotify
import CTBusSchema
import CTBusTesting
import CoreMetrics
import Foundation
import Logging
import Prometheus
import Testing

/// Notifications over a real bus to real receivers on loopback: Debian's aiosmtpd behind
/// msmtp (the host's sendmail), and a webhook receiver that checks Standard Webhooks
/// signatures with Python's own HMAC (Tests/python/notification_receivers.py).
@Suite("Notifications", .serialized, .busSlot)
struct NotificationTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    @Test("Each filter gets what it asks for, by mail and by signed webhook; nothing above UNCLASSIFIED, sealed, or withheld at a Member State's request is in any of them; a digest lists a day's messages in one mail")
    func eachFilterAndTheContentRule() async throws {
        let smtp = try await Receiver.start(.smtp)
        defer { smtp.stop() }
        let hook = try await Receiver.start(.webhook(Self.secret))
        defer { hook.stop() }
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let journal = try bus.journal("oct")
        let settings = try Self.settings(smtp: smtp, bus: bus, subscriptions: """
            {"name": "kenya-recommendations", "email": "kenya@oct.example", "types": ["country-visit-recommendation"], "memberStates": ["ken"]},
            {"name": "confidential", "email": "cleared@oct.example", "classifications": ["CONFIDENTIAL"]},
            {"name": "border", "webhook": "http://127.0.0.1:\(hook.port)/hooks", "secretFile": "\(hook.secretFile)", "themes": ["Border-Security"]},
            {"name": "missions", "email": "missions@oct.example", "types": ["MISSION_REPORT"]},
            {"name": "daily", "email": "daily@oct.example", "memberStates": ["KEN"], "mode": "daily", "digestHour": 6}
            """)
        try journal.notifications.replaceConfigured(try settings.checked(knownThemes: ["border-security", "financing"],
                                                                         configurationFile: bus.folder.appendingPathComponent("oct.json").path))
        let open = SampleMessages.recommendation(text: "OPEN-MARKER: strengthen advance passenger information.")
        let confidential = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential), text: "CONFIDENTIAL-MARKER text")
        let withheld = SampleMessages.restricted(SampleMessages.recommendation(text: "WITHHELD-MARKER text"), state: "KEN",
                                                 fields: ["recommendation_text"], allowed: ["cted"])
        let sealed = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct"]),
                                                   text: "SEALED-MARKER text")
        var mission = SampleMessages.missionReport(memberState: "NGA", tags: ["financing"])
        mission.missionReport.summary = "MISSION-MARKER summary"
        var ids: [String: String] = [:]
        for (name, message) in [("open", open), ("confidential", confidential), ("withheld", withheld), ("sealed", sealed), ("mission", mission)] {
            ids[name] = try bus.publish(message, from: "cted")
        }
        #expect(try await Wait.until { try journal.count() == 5 })

        let notifier = Self.notifier(bus: bus, journal: journal, settings: settings, queueTime: { Date().addingTimeInterval(86_400 + 60) })
        let running = Self.run(notifier)
        defer { running.cancel() }
        // kenya: 4 recommendations; confidential: 1; missions: 1; daily: one digest of the 4 about KEN.
        #expect(try await Wait.until(seconds: 30) { try smtp.mails().count == 7 })
        #expect(try await Wait.until(seconds: 30) { try hook.requests().count == 4 })
        // As received (msmtp ends lines with CRLF), with each run of white space as one space.
        let received = try smtp.mails()
        func mails(to address: String) -> [String] { received.filter { $0.recipients == [address] }.map(\.text) }

        let kenya = mails(to: "kenya@oct.example")
        #expect(kenya.count == 4)
        let told = kenya.filter { $0.contains(ids["open"]!) }
        #expect(told.count == 1 && told[0].contains("OPEN-MARKER") && told[0].contains("About Kenya (KEN)")
                && told[0].contains("Subject: [CTBus oct] Country visit recommendation (KEN), UNCLASSIFIED"), "\(told)")
        for name in ["confidential", "withheld", "sealed"] {
            let mail = try #require(kenya.first { $0.contains(ids[name]!) }, "\(name)")
            #expect(!mail.contains("Kenya") && !mail.contains("(KEN)") && !mail.contains("MARKER"), "\(name): \(mail)")
            #expect(mail.contains("http://127.0.0.1:8470/messages/\(ids[name]!)"))
        }
        #expect(mails(to: "cleared@oct.example").count == 1 && mails(to: "cleared@oct.example")[0].contains(ids["confidential"]!))
        #expect(mails(to: "cleared@oct.example")[0].contains("CONFIDENTIAL") && !mails(to: "cleared@oct.example")[0].contains("MARKER"))
        let missions = mails(to: "missions@oct.example")
        #expect(missions.count == 1 && missions[0].contains("MISSION-MARKER") && missions[0].contains("Nigeria (NGA)"))
        let digest = try #require(mails(to: "daily@oct.example").first)
        #expect(digest.contains("Subject: [CTBus oct] Daily digest: 4 messages") && Self.words(digest).contains("4 country visit recommendations"))
        #expect(digest.contains("OPEN-MARKER") && !digest.contains("CONFIDENTIAL-MARKER") && !digest.contains("SEALED-MARKER"))
        for mail in received.map(\.text) {
            #expect(mail.contains("Auto-Submitted: auto-generated") && mail.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        }

        // The webhook: every request verified by the receiver; what each says.
        let requests = try hook.requests()
        #expect(try hook.rejected().isEmpty)
        let bodies = try requests.map { try JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any] ?? [:] }
        let told2 = bodies.compactMap { ($0["data"] as? [String: Any])?["messages"] as? [[String: Any]] }.flatMap { $0 }
        #expect(Set(told2.compactMap { $0["message_id"] as? String }) == Set(["open", "confidential", "withheld", "sealed"].map { ids[$0]! }))
        for item in told2 where item["message_id"] as? String != ids["open"] {
            #expect(item["summary"] == nil && item["member_state"] == nil, "\(item)")
        }
        #expect(told2.first { $0["message_id"] as? String == ids["open"] }?["member_state"] as? String == "KEN")
        for request in requests {
            #expect(!request.body.contains("CONFIDENTIAL-MARKER") && !request.body.contains("SEALED-MARKER"))
            #expect(request.headers["webhook-id"]?.hasPrefix("oct-notification-") == true && request.headers["content-type"] == "application/json")
        }
        // The journal records a sending once the receiver took it: a moment after it arrived.
        #expect(try await Wait.until { try journal.notifications.counts() == (0, 0) })
        let status = try journal.notifications.status()
        #expect(status.allSatisfy { $0.waiting == 0 && $0.failed == 0 && $0.lastError == nil })
        #expect(Dictionary(uniqueKeysWithValues: status.map { ($0.subscription.name, $0.sent) })
                == ["kenya-recommendations": 4, "confidential": 1, "border": 4, "missions": 1, "daily": 4])
    }

    @Test("A relay that refuses and a webhook that answers 503 are retried with back-off and shown as failing; once they take it, each sending arrives once, under the same id across a restart; a receiver that never answers is given up and counted")
    func retriesRestartAndGivingUp() async throws {
        let smtp = try await Receiver.start(.smtp)
        defer { smtp.stop() }
        let hook = try await Receiver.start(.webhook(Self.secret))
        defer { hook.stop() }
        try smtp.refuse(true)
        try hook.answer(503)
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("oct")
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let journal = try bus.journal("oct")
        let closed = try LocalBus.freePortForTests()
        var settings = try Self.settings(smtp: smtp, bus: bus, subscriptions: """
            {"name": "mail", "email": "desk@oct.example"},
            {"name": "hook", "webhook": "http://127.0.0.1:\(hook.port)/", "secretFile": "\(hook.secretFile)"},
            {"name": "nowhere", "webhook": "http://127.0.0.1:\(closed)/", "secretFile": "\(hook.secretFile)"}
            """)
        settings.retryFirstMilliseconds = 20
        settings.retryMaxMilliseconds = 100
        settings.attempts = 1_000
        settings.timeoutMilliseconds = 500 // a connection refused is retried until this passes
        try journal.notifications.replaceConfigured(try settings.checked(knownThemes: [], configurationFile: bus.folder.path + "/oct.json"))
        let first = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try journal.count() == 1 })

        let metrics = MetricsEndpoint()
        var running = Self.run(Self.notifier(bus: bus, journal: journal, settings: settings, metrics: metrics.factory))
        func status() throws -> [String: SubscriptionStatus] {
            Dictionary(uniqueKeysWithValues: try journal.notifications.status().map { ($0.subscription.name, $0) })
        }
        #expect(try await Wait.until(seconds: 30) { try status().values.allSatisfy { $0.attempts >= 3 } })
        let failing = try status()
        #expect(failing["mail"]?.lastError?.contains("/usr/sbin/sendmail exited with 69") == true, "\(String(describing: failing["mail"]?.lastError))")
        #expect(failing["hook"]?.lastError == "the webhook answered 503")
        #expect(failing["nowhere"]?.lastError?.contains("could not be reached") == true, "\(String(describing: failing["nowhere"]?.lastError))")
        #expect(failing.values.allSatisfy { $0.waiting == 1 && $0.failed == 0 && $0.sent == 0 })
        let samples = MetricsTests.parse(metrics.registry.emitToString())
        #expect(MetricsTests.value(samples, "ctbus_node_notification_attempts_failed_total", ["channel": "mail"]) ?? 0 >= 3)
        running.cancel()
        _ = await running.result

        // The relay and the webhook take mail again; a new notifier sends what was left, once.
        try smtp.refuse(false)
        try hook.answer(nil)
        running = Self.run(Self.notifier(bus: bus, journal: journal, settings: settings))
        #expect(try await Wait.until(seconds: 30) { try smtp.mails().count == 1 && hook.requests().count == 1 })
        let id = try #require(try hook.requests().first?.headers["webhook-id"])
        running.cancel()
        _ = await running.result
        running = Self.run(Self.notifier(bus: bus, journal: journal, settings: settings))
        defer { running.cancel() }
        let second = try bus.publish(SampleMessages.recommendation(text: "The second."), from: "cted")
        #expect(try await Wait.until(seconds: 30) { try smtp.mails().count == 2 && hook.requests().count == 2 })
        #expect(try smtp.mails().filter { $0.text.contains(first) }.count == 1)
        #expect(try smtp.mails()[1].text.contains(second))
        #expect(try hook.requests().map { $0.headers["webhook-id"] }.filter { $0 == id }.count == 1)

        // Attempts used up: given up, shown, counted; nothing else touched.
        running.cancel()
        _ = await running.result
        settings.attempts = 2
        running = Self.run(Self.notifier(bus: bus, journal: journal, settings: settings))
        #expect(try await Wait.until(seconds: 30) { try status()["nowhere"]?.failed == 2 })
        let final = try status()
        #expect(final.mapValues(\.sent) == ["mail": 2, "hook": 2, "nowhere": 0] && final.values.allSatisfy { $0.waiting == 0 })
        #expect(try journal.notifications.counts() == (0, 2))
    }

    @Test("ctbus node with a notifications section: a subscription naming an unknown State stops it, naming the subscription and the field; put right, the daemon mails what arrives through the host's sendmail and stops on SIGTERM")
    func daemonNotifies() async throws {
        let smtp = try await Receiver.start(.smtp)
        defer { smtp.stop() }
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        try bus.writeConfigurationFiles()
        let path = bus.nodeConfigurationPath("oct")
        func configure(state: String) throws {
            var configuration = bus.nodeConfiguration("oct")
            configuration.notifications = try Self.settings(smtp: smtp, bus: bus, subscriptions: """
                {"name": "desk", "email": "desk@oct.example", "memberStates": ["\(state)"]}
                """)
            try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: path))
        }
        try configure(state: "Kenya")
        let refused = try await CommandLineTests.run(["node", "--config", path])
        #expect(refused.status == 1)
        #expect(refused.errors.contains("notifications subscription \"desk\": memberStates: \"Kenya\" is unknown"), "\(refused.errors)")

        try configure(state: "KEN")
        let log = bus.folder.appendingPathComponent("oct.log")
        let node = try CommandLineTests.start(["node", "--config", path], log: log)
        defer { if node.isRunning { kill(node.processIdentifier, SIGKILL) } }
        let journal = try bus.journal("oct")
        #expect(try await Wait.until(seconds: 30) { try journal.notifications.subscriptions().map(\.id) == ["config:desk"] })
        let id = try bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted")
        _ = try bus.publish(SampleMessages.recommendation(memberState: "NGA"), from: "cted")
        #expect(try await Wait.until(seconds: 30) { try smtp.mails().count == 1 })
        #expect(try smtp.mails().first?.text.contains("http://127.0.0.1:8470/messages/\(id)") == true)
        #expect(await CommandLineTests.stop(node) == 0, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    @Test("Salvage carries the subscriptions and what they had still to send about the entries it keeps, under the same sending ids; sending ids are never reused by another journal")
    func salvageKeepsTheQueue() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-salvage-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("oct.journal.sqlite").path
        let mine = Subscription(id: "console:1", name: "desk", owner: "alice", channel: .mail("desk@oct.example"),
                                filter: NotificationFilter(memberStates: ["KEN"]), mode: .immediate)
        var sendings: [String] = []
        do {
            let journal = try NodeJournal(path: path)
            try journal.notifications.add(mine)
            for (index, state) in ["KEN", "NGA", "KEN", "KEN"].enumerated() {
                _ = try journal.recordDelivery(SampleMessages.recommendation(memberState: state), sequence: UInt64(index + 1))
            }
            sendings = try journal.notifications.due().map(\.id)
            #expect(sendings.count == 3 && Set(sendings).count == 3)
            try journal.notifications.sent(sendings[0])
            try journal.notifications.failed(sendings[1], error: "the relay said 451", retryAt: Date().addingTimeInterval(60))
        }
        let salvaged = folder.appendingPathComponent("new.sqlite").path
        let report = try JournalSalvage.salvage(from: path, into: salvaged)
        #expect(report.kept == 4 && report.lost.isEmpty)
        let journal = try NodeJournal(path: salvaged)
        #expect(try journal.notifications.subscriptions() == [mine])
        let status = try #require(try journal.notifications.status().first)
        #expect(status.waiting == 2 && status.sent == 0 && status.lastError == "the relay said 451" && status.attempts == 1)
        // The one retried keeps its id; the one not tried yet gets a new one, like no other.
        let due = try journal.notifications.due(now: Date().addingTimeInterval(120)).map(\.id)
        #expect(due.count == 2 && due.contains(sendings[1]) && !due.contains(sendings[0]))
    }

    // MARK: Support

    static func settings(smtp: Receiver, bus: LocalBus, subscriptions: String) throws -> NotificationSettings {
        let config = bus.folder.appendingPathComponent("msmtp.conf")
        try "account default\nhost 127.0.0.1\nport \(smtp.port)\nauth off\ntls off\nfrom oct@ctbus.test\nlogfile -\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let json = """
            {"consoleURL": "http://127.0.0.1:8470", "mailFrom": "oct@ctbus.test", "sendmail": ["/usr/sbin/sendmail", "-C", "\(config.path)", "-t", "-i"],
             "timeoutMilliseconds": 5000, "subscriptions": [\(subscriptions)]}
            """
        return try JSONDecoder().decode(NotificationSettings.self, from: Data(json.utf8))
    }

    static func words(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }

    static func run(_ notifier: Notifier) -> Task<Void, any Error> {
        Task { try await notifier.run() }
    }

    static func notifier(bus: LocalBus, journal: NodeJournal, settings: NotificationSettings, metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                         queueTime: @escaping @Sendable () -> Date = { Date() }) -> Notifier {
        Notifier(nodeId: "oct", journal: journal, settings: settings, consoleURL: "http://127.0.0.1:8470", wording: NotificationWords.wording,
                 logger: LocalBus.defaultLogger, metrics: metrics, poll: .milliseconds(20), queueTime: queueTime)
    }

    /// A receiver process of Tests/python/notification_receivers.py, in a folder of its own.
    final class Receiver: Sendable {
        enum Kind { case smtp, webhook(String) }

        struct Mail { let recipients: [String]; let text: String }
        struct Request { let headers: [String: String]; let body: String }

        let folder: URL
        let port: Int
        let secretFile: String
        let process: Process

        private init(folder: URL, port: Int, secretFile: String, process: Process) {
            self.folder = folder
            self.port = port
            self.secretFile = secretFile
            self.process = process
        }

        static func start(_ kind: Kind) async throws -> Receiver {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-receiver-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("python/notification_receivers.py").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            var secretFile = ""
            switch kind {
            case .smtp:
                process.arguments = [script, "smtp", folder.path]
            case .webhook(let secret):
                process.arguments = [script, "webhook", folder.path, secret]
                secretFile = folder.appendingPathComponent("secret").path
                try secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
            }
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let portFile = folder.appendingPathComponent("port").path
            guard await Wait.until(seconds: 15, { FileManager.default.fileExists(atPath: portFile) || !process.isRunning }),
                  let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) else {
                process.terminate()
                throw ConfigurationError("the \(kind) receiver did not start")
            }
            return Receiver(folder: folder, port: port, secretFile: secretFile, process: process)
        }

        /// SIGKILL: the test process blocks SIGTERM (libdispatch watches signals), and its
        /// children inherit the mask.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: folder)
        }

        private func files(_ suffix: String, prefix: String = "0") throws -> [URL] {
            try FileManager.default.contentsOfDirectory(atPath: folder.path)
                .filter { $0.hasSuffix(suffix) && $0.hasPrefix(prefix) }.sorted().map { folder.appendingPathComponent($0) }
        }

        func mails() throws -> [Mail] {
            try files(".eml").map { file in
                let envelope = try JSONSerialization.jsonObject(with: Data(contentsOf: file.deletingPathExtension().appendingPathExtension("json"))) as? [String: Any]
                return Mail(recipients: envelope?["rcpt_tos"] as? [String] ?? [], text: String(decoding: try Data(contentsOf: file), as: UTF8.self))
            }
        }

        func requests() throws -> [Request] { try requests(in: files(".json")) }
        func rejected() throws -> [Request] { try requests(in: files(".json", prefix: "rejected-")) }

        private func requests(in files: [URL]) throws -> [Request] {
            try files.map { file in
                let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any]
                return Request(headers: object?["headers"] as? [String: String] ?? [:], body: object?["body"] as? String ?? "")
            }
        }

        /// While true, the SMTP server answers 451 to DATA.
        func refuse(_ refusing: Bool) throws {
            let flag = folder.appendingPathComponent("refuse")
            if refusing { try Data().write(to: flag) } else { try? FileManager.default.removeItem(at: flag) }
        }

        /// The status the webhook answers instead of checking (nil: check and answer).
        func answer(_ status: Int?) throws {
            let file = folder.appendingPathComponent("status")
            if let status { try "\(status)".write(to: file, atomically: true, encoding: .utf8) } else { try? FileManager.default.removeItem(at: file) }
        }
    }
}
