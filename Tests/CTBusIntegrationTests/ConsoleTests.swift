import CTBusConsole
import CTBusJournal
import CTBusMetrics
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import Logging
import Hummingbird
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The node console over real HTTP on 127.0.0.1, on journals a real bus filled: what a person
/// opening the pages sees, and the headers and escaping that keep the pages safe.
@Suite("Console", .serialized, .busSlot)
struct ConsoleTests {
    /// A console serving `journal` until `body` returns.
    /// `messageKeys`: the node's keys (a bus's, for a console whose publications must reach its
    /// broker); by default a key no registry lists, enough for a console without a broker.
    static func serving<T>(_ journal: NodeJournal, node: String, clearance: Classification,
                           messageKeys: NodeMessageKeys = NodeMessageKeys(signing: NodeJournal.testSigningKey, sealing: .init()),
                           registry: NodeRegistry? = nil, sendsMail: Bool = false,
                           host: String = "127.0.0.1", allowedHosts: [String] = [], authentication: ConsoleAuthentication? = nil,
                           metrics: MetricsEndpoint = MetricsEndpoint(), logger: Logger = LocalBus.defaultLogger,
                           _ body: (URL) async throws -> T) async throws -> T {
        let port = try LocalBus.freePortForTests()
        let console = try ConsoleServer(nodeId: node, clearance: clearance, journal: journal, registry: registry,
                                        messageKeys: messageKeys, sendsMail: sendsMail, host: host, port: port, allowedHosts: allowedHosts,
                                        authentication: authentication, metrics: metrics, logger: logger)
        return try await serving(port: port, { onRunning in console.application(onRunning: onRunning) }, body)
    }

    /// Serves the application `make` builds (it calls its argument once it listens) on 127.0.0.1:`port`
    /// until `body` returns.
    static func serving<T>(port: Int, _ make: (@escaping @Sendable () async -> Void) -> some ApplicationProtocol,
                           _ body: (URL) async throws -> T) async throws -> T {
        let running = Mutex(false)
        let group = ServiceGroup(configuration: .init(services: [make { running.withLock { $0 = true } }],
                                                      gracefulShutdownSignals: [], logger: LocalBus.defaultLogger))
        let ended = Mutex<String?>(nil)
        let server = Task {
            do { try await group.run(); ended.withLock { $0 = "it stopped" } } catch { ended.withLock { $0 = "\(error)" } }
        }
        defer { server.cancel() }
        // Polled with Task.sleep: a blocking wait would hold one of the few threads the server's tasks run on.
        let deadline = ContinuousClock.now + .seconds(10)
        while !running.withLock({ $0 }), ended.withLock({ $0 }) == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(running.withLock { $0 }, "the server did not start: \(ended.withLock { $0 } ?? "not listening after 10 s")")
        let result = try await body(URL(string: "http://127.0.0.1:\(port)")!)
        await group.triggerGracefulShutdown()
        _ = await server.result
        return result
    }

    struct Page {
        let status: Int
        let headers: [String: String]
        let body: String
    }

    /// GETs `path`, following up to five redirects, over `RawHTTP` on a dispatch thread (the
    /// console answers on the task threads). Not URLSession: FoundationNetworking's teardown
    /// races are a known source of heap corruption on Linux.
    static func get(_ base: URL, _ path: String) async throws -> Page {
        let port = try #require(base.port)
        var target = path
        for _ in 0..<6 {
            let asked = target
            let response = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RawHTTP.Response, any Error>) in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try RawHTTP.exchange(port: port, method: "GET", target: asked, headers: [:], body: nil) })
                }
            }
            if (300..<400).contains(response.status), let location = response.headers["location"] {
                target = location
                continue
            }
            return Page(status: response.status, headers: response.headers, body: String(decoding: response.body, as: UTF8.self))
        }
        throw RawHTTP.Failure(description: "more than five redirects from \(path)")
    }

    static func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test("Journal, message and traceability pages over a real bus: filters, banners, withheld parts, escaping, headers")
    func pages() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let script = "<script>alert(\"pwned\")</script>"
        let kenya = try bus.publish(SampleMessages.recommendation(memberState: "KEN", text: script), from: "cted")
        let nigeria = try bus.publish(SampleMessages.recommendation(memberState: "NGA", handling: SampleMessages.handling(.confidential)),
                                      from: "cted")
        let tunisia = try bus.publish(SampleMessages.restricted(SampleMessages.recommendation(memberState: "TUN"), state: "TUN",
                                                               fields: ["recommendation_text"], allowed: ["oct"]), from: "cted")
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until { try oct.count() == 3 && border.count() == 3 })

        try await Self.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct")) { base in
            let journal = try await Self.get(base, "/journal")
            #expect(journal.status == 200)
            #expect(journal.headers["content-security-policy"]?.hasPrefix("default-src 'none'") == true)
            #expect(journal.headers["x-frame-options"] == "DENY" && journal.headers["cache-control"] == "no-store")
            #expect(journal.headers["x-content-type-options"] == "nosniff")
            for id in [kenya, nigeria, tunisia] { #expect(journal.body.contains("/messages/\(id)")) }
            #expect(Self.occurrences("<div class=\"marking\">CONFIDENTIAL</div>", in: journal.body) == 2) // top and bottom
            #expect(journal.body.contains("<header><div class=\"marking\">CONFIDENTIAL</div>")
                    && journal.body.contains("<footer><div class=\"marking\">CONFIDENTIAL</div></footer>"), "the banners sit in landmarks")
            #expect(journal.body.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"))
            // Each row says what the message says: the recommendation's text, escaped.
            #expect(journal.body.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"))
            #expect(journal.body.contains(">Strengthen the use of advance passenger information at all international airports.</a>"))

            let filtered = try await Self.get(base, "/journal?member_state=KEN")
            #expect(filtered.body.contains(kenya) && !filtered.body.contains(nigeria))
            let wrongType = try await Self.get(base, "/journal?type=NOTHING")
            #expect(wrongType.status == 400)

            let message = try await Self.get(base, "/messages/\(kenya)")
            #expect(message.status == 200)
            #expect(!message.body.contains(script))
            #expect(message.body.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"))
            #expect(!message.body.lowercased().contains("<script"))

            let missing = try await Self.get(base, "/messages/\(MessageID.generate())")
            #expect(missing.status == 404 && missing.headers["content-security-policy"] != nil)
            let nowhere = try await Self.get(base, "/nowhere")
            #expect(nowhere.status == 404)

            // Every State name leads to its file: what is unanswered and for how long, its visits, reports and activities.
            #expect(journal.body.contains("<td><a href=\"/states/KEN\">KEN</a></td>"))
            let file = try await Self.get(base, "/states/ken")
            #expect(file.status == 200 && file.body.contains("<h1>Kenya (KEN)</h1>"))
            #expect(file.body.contains("1 recommendation from 1 visit: 0 answered by an ongoing or completed activity, 1 unanswered, the oldest for 0 days."),
                    "\(file.body)")
            #expect(file.body.contains("<h3 id=\"visit-0\">Visit CTED-VISIT-2026-KEN, from 9 March 2026</h3>"))
            #expect(file.body.contains("<a href=\"/messages/\(kenya)\">&lt;script&gt;") && !file.body.contains("<script>"))
            #expect(try await Self.get(base, "/states/XYZ").status == 404)
            let index = try await Self.get(base, "/states")
            #expect(index.body.contains("<a href=\"/states/NGA\">Nigeria (NGA)</a>") && index.body.contains("<a href=\"/states/TUN\">Tunisia (TUN)</a>"))
            #expect(index.body.contains("<div class=\"marking\">CONFIDENTIAL</div>"), "the Nigerian recommendation is CONFIDENTIAL")

            let trace = try await Self.get(base, "/trace")
            #expect(trace.body.contains("<svg") && trace.body.contains("0% of 1"))
            #expect(trace.body.contains("<svg class=\"chart\" role=\"img\" aria-labelledby=\"chart-0\"")
                    && trace.body.contains("<h2 id=\"chart-0\">By Member State</h2>"), "each chart is named by its heading")
            #expect(Self.occurrences("<caption>", in: trace.body) == 2, "each chart has its figures as a table")
            let kenyan = try await Self.get(base, "/trace?member_state=ken&sort=oldest")
            #expect(kenyan.status == 200 && kenyan.body.contains("/messages/\(kenya)") && !kenyan.body.contains("/messages/\(nigeria)"),
                    "the trace page keeps the Member State asked for")
            #expect(kenyan.body.contains("<option value=\"KEN\" selected>KEN</option>") && kenyan.body.contains("<option value=\"NGA\">"))
            #expect(try await Self.get(base, "/trace?sort=nonsense").status == 400)
            // Status: the node daemon's session and the journal's verify result, run by the console at start.
            var status = try await Self.get(base, "/status")
            let deadline = ContinuousClock.now + .seconds(30)
            while !status.body.contains("intact: 3 entries"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                status = try await Self.get(base, "/status")
            }
            #expect(status.body.contains("intact: 3 entries and their hash chain"), "\(status.body)")
            #expect(status.body.contains("connected to the broker since"))
            #expect(Self.occurrences("<div class=\"marking unclassified\">UNCLASSIFIED</div>", in: status.body) == 2,
                    "a page that shows nothing classified is marked UNCLASSIFIED")
        }

        // The redacted copy at wg-border: the part is shown as withheld, at the State's request,
        // and the page says who signed it and that it verifies for the fields it holds.
        let ctedKey = PublicationSignature.keyId(try bus.signingKey(of: "cted").publicKey)
        try await Self.serving(border, node: "wg-border", clearance: .confidential, messageKeys: try bus.messageKeys(of: "wg-border"),
                               registry: bus.registry) { base in
            let page = try await Self.get(base, "/messages/\(tunisia)")
            #expect(page.body.contains("Withheld from this node&#39;s copy at the request of TUN: Recommendation."))
            #expect(page.body.contains("<h2 id=\"c-text\">Recommendation</h2><p class=\"withheld\">withheld at the request of TUN</p>"),
                    "the withheld text is named where it would stand")
            let listing = try await Self.get(base, "/journal")
            #expect(listing.body.contains("Recommendation of visit CTED-VISIT-2026-TUN on border-security (text withheld at a Member State&#39;s request)"))
            #expect(!listing.body.contains("href=\"/compose\""), "a working group publishes nothing: no Compose in its navigation")
            #expect(page.body.contains("<dt>Signature</dt><dd>signed by cted with key \(ctedKey); verifies for the fields this copy holds "
                                       + "(recommendation_text withheld from this node)</dd>"), "\(page.body)")
            let whole = try await Self.get(base, "/messages/\(kenya)")
            #expect(whole.body.contains("<dt>Signature</dt><dd>signed by cted with key \(ctedKey); verifies</dd>"))
        }

        // Coverage changes once OCT's matrix arrives.
        let unseen = MessageID.generate()
        let matrix = try bus.publish(SampleMessages.activityMatrix(answering: [kenya, unseen]), from: "oct")
        let report = try bus.publish(SampleMessages.missionReport(), from: "cted")
        var linked = SampleMessages.missionReport(memberState: "NGA")
        linked.envelope.references = [Reference(to: nigeria, .reportsOn)]
        let linkedId = try bus.publish(linked, from: "cted")
        #expect(try await Wait.until { try border.count() == 6 })
        try await Self.serving(border, node: "wg-border", clearance: .confidential, messageKeys: try bus.messageKeys(of: "wg-border")) { base in
            let trace = try await Self.get(base, "/trace")
            #expect(trace.body.contains("100% of 1"), "\(trace.body)")
            // Both ways: the recommendation names the matrix that answers it.
            let recommendation = try await Self.get(base, "/messages/\(kenya)")
            #expect(recommendation.body.contains("answered by activity matrix from oct: <a href=\"/messages/\(matrix)\">1 activity"), "\(recommendation.body)")
            // The matrix names its recommendations by their text; one this node does not hold is said so, and links nowhere.
            let matrixPage = try await Self.get(base, "/messages/\(matrix)")
            #expect(matrixPage.body.contains("<a href=\"/messages/\(kenya)\">&lt;script&gt;"), "\(matrixPage.body)")
            #expect(matrixPage.body.contains("a recommendation not visible to this node") && !matrixPage.body.contains(unseen))
            let file = try await Self.get(base, "/states/KEN")
            #expect(file.body.contains("1 answered by an ongoing or completed activity, 0 unanswered"), "\(file.body)")
            #expect(file.body.contains("Every recommendation has an ongoing or completed activity answering it."))
            #expect(file.body.contains(">Border security and management: API/PNR capacity building</a></th><td>UNCCT-BSM-2026-014</td><td>ongoing</td>"
                                       + "<td>1 April to 31 December 2026</td><td>border-security</td><td>1 recommendation</td>"))
            #expect(file.body.contains("<a href=\"/messages/\(report)\">MISSION-2026-KEN-01: "), "the mission report about Kenya is listed")
            // An UNCLASSIFIED report that names a CONFIDENTIAL recommendation by its text is marked CONFIDENTIAL.
            let linkedPage = try await Self.get(base, "/messages/\(linkedId)")
            #expect(linkedPage.body.contains("<header><div class=\"marking\">CONFIDENTIAL</div>") && linkedPage.body.contains("reports on"),
                    "\(linkedPage.body)")
        }
    }

    @Test("Nothing above the node's clearance is shown, even if its journal holds it; the console binds to loopback only")
    func clearanceAndBinding() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = try NodeJournal(path: folder.appendingPathComponent("wg-rights.journal.sqlite").path)
        var secret = SampleMessages.recommendation(memberState: "YEM", handling: SampleMessages.handling(.confidential), thematicArea: "secret-theme")
        secret.envelope.originator = "cted"
        try journal.recordDelivery(secret, sequence: 1)
        try journal.search.index()
        try await Self.serving(journal, node: "wg-rights", clearance: .unclassified) { base in
            let listing = try await Self.get(base, "/journal")
            #expect(!listing.body.contains(secret.envelope.messageID))
            #expect(listing.body.contains("The journal holds no message yet."))
            // Not even the filters' choices name what the message is about.
            #expect(!listing.body.contains("YEM") && !listing.body.contains("secret-theme"))
            let shown = try await Self.get(base, "/messages/\(secret.envelope.messageID)")
            #expect(shown.status == 404)
            let states = try await Self.get(base, "/states")
            #expect(states.status == 200 && !states.body.contains("YEM"))
            let yemen = try await Self.get(base, "/states/YEM")
            #expect(yemen.status == 200 && !yemen.body.contains(secret.envelope.messageID) && yemen.body.contains("holds no recommendation about YEM"))
            #expect(yemen.body.contains("<div class=\"marking unclassified\">UNCLASSIFIED</div>"))
        }
        #expect(throws: ConfigurationError.self) {
            _ = try ConsoleServer(nodeId: "wg-rights", clearance: .unclassified, journal: journal, host: "0.0.0.0", port: 8470)
        }
    }
}

/// The console in a real headless browser (Debian's chromium and chromedriver, driven by
/// Selenium from Debian's python3-selenium): Tests/browser/console_browser.py does what a person
/// does and checks what the page shows. `CTBUS_SCREENSHOTS=DIR` keeps its screenshots (docs/console.md's).
@Suite("Console in a browser", .serialized, .busSlot)
struct ConsoleBrowserTests {
    /// Runs one step of the browser script; returns its exit status and what it printed.
    static func browser(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [CommandLineTests.root.appendingPathComponent("Tests/browser/console_browser.py").path] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        // Awaited, not waited for: the console answering the browser runs on this process's task threads.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            process.terminationHandler = { _ in continuation.resume() }
            do { try process.run() } catch { continuation.resume() }
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }

    @Test("A person's path: the journal with its banner, a Member State filter, a message shown as text, a withheld part; coverage changing after OCT uploads its matrix")
    func browse() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let kenya = try bus.publish(SampleMessages.recommendation(memberState: "KEN", text: "<script>window.pwned = true</script> Train the border police."),
                                    from: "cted")
        _ = try bus.publish(SampleMessages.recommendation(memberState: "NGA", handling: SampleMessages.handling(.confidential)), from: "cted")
        let tunisia = try bus.publish(SampleMessages.restricted(SampleMessages.recommendation(memberState: "TUN"), state: "TUN",
                                                               fields: ["recommendation_text"], allowed: ["oct"]), from: "cted")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until { try border.count() == 3 })

        let oct = try bus.journal("oct")
        let csv = bus.folder.appendingPathComponent("matrix.csv")
        try Data("""
            project_id,title,member_states,pillars,thematic_area,status,recommendation_ids
            OCT-BSM-2026-01,Advance passenger information for Kenya,KEN,II;III,border-security,ONGOING,\(kenya)

            """.utf8).write(to: csv)
        try await ConsoleTests.serving(border, node: "wg-border", clearance: .confidential, messageKeys: try bus.messageKeys(of: "wg-border")) { base in
            let first = try await Self.browser(["journal", base.absoluteString, kenya, tunisia])
            #expect(first.status == 0, "\(first.output)")
            // OCT uploads its matrix in its own console; the working group's coverage follows.
            try await ConsoleTests.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct"), registry: bus.registry) { octBase in
                let upload = try await Self.browser(["matrix", octBase.absoluteString, csv.path])
                #expect(upload.status == 0, "\(upload.output)")
            }
            let second = try await Self.browser(["coverage", base.absoluteString, "100%"])
            #expect(second.status == 0, "\(second.output)")
        }
    }
}

extension ConsoleBrowserTests {
    @Test("Compose in the browser: an empty form shows its errors by the fields; a mission report published at OCT arrives in a working group's console")
    func composeAndArrive() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        try await ConsoleTests.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct"), registry: bus.registry) { octBase in
            try await ConsoleTests.serving(border, node: "wg-border", clearance: .confidential, messageKeys: try bus.messageKeys(of: "wg-border")) { borderBase in
                let run = try await Self.browser(["compose", octBase.absoluteString, borderBase.absoluteString])
                #expect(run.status == 0, "\(run.output)")
            }
        }
        #expect(try border.entries(matching: JournalFilter(type: .missionReport)).count == 1)
    }

    @Test("Every page holds at 1280 px and on a 390 px phone (a 1,200-character word included), carries its banner in the header and footer, and axe-core finds no critical, serious or moderate violation; a subscription is added in the browser, its mistakes shown by the fields")
    func layoutAndAccessibility() async throws {
        let axe = "/usr/local/share/ctbus-tests/axe.min.js"
        try #require(FileManager.default.fileExists(atPath: axe), "axe-core is missing: run ./deploy/install-deps.sh --tests")
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let word = String(repeating: "border", count: 200)
        let long = try bus.publish(SampleMessages.recommendation(memberState: "KEN", text: "Train \(word) police."), from: "cted")
        let restricted = try bus.publish(SampleMessages.restricted(SampleMessages.recommendation(memberState: "TUN"), state: "TUN",
                                                                  fields: ["recommendation_text"], allowed: ["cted"]), from: "cted")
        let matrix = try bus.publish(SampleMessages.activityMatrix(answering: [long, MessageID.generate()]), from: "oct")
        let report = try bus.publish(SampleMessages.missionReport(), from: "cted")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count() == 4 })
        try await ConsoleTests.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct"),
                                       registry: bus.registry, sendsMail: true) { base in
            let subscribed = try await Self.browser(["subscribe", base.absoluteString])
            #expect(subscribed.status == 0, "\(subscribed.output)")
            #expect(try oct.notifications.subscriptions().map(\.name) == ["Kenya desk"])
            let paths = ["/journal", "/journal?q=train+border", "/messages/\(long)", "/messages/\(restricted)", "/messages/\(matrix)",
                         "/messages/\(report)", "/states", "/states/KEN", "/trace", "/trace?member_state=KEN&sort=open", "/compose",
                         "/compose/mission-report", "/compose/activity-matrix", "/drafts", "/notifications", "/status"]
            let layout = try await Self.browser(["layout", base.absoluteString] + paths)
            #expect(layout.status == 0, "\(layout.output)")
            let checked = try await Self.browser(["axe", base.absoluteString, axe] + paths)
            #expect(checked.status == 0, "\(checked.output)")
        }
    }

    @Test("ctbus demo --keep-running serves consoles for OCT and a working group until Ctrl-C, then exits 0")
    func demoConsoles() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-demo-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let demo = try CommandLineTests.start(["demo", "--keep-running"], log: log)
        defer { if demo.isRunning { kill(demo.processIdentifier, SIGKILL) } }
        let deadline = ContinuousClock.now + .seconds(60)
        var output = ""
        while !output.contains("Ctrl-C stops them"), demo.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        }
        let addresses = output.split(separator: "\n").compactMap { line in line.split(separator: " ").last.flatMap { $0.hasPrefix("http://") ? String($0) : nil } }
        #expect(addresses.count == 2, "\(output)")
        for address in addresses {
            let page = try await ConsoleTests.get(URL(string: address)!, "/trace")
            #expect(page.status == 200 && page.body.contains("<svg"))
        }
        kill(demo.processIdentifier, SIGINT)
        while demo.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!demo.isRunning && demo.terminationStatus == 0)
    }
}

extension ConsoleBrowserTests {
    @Test("A node configuration with an http section: ctbus node serves the console beside the node, and stops it on SIGTERM")
    func nodeServesConsole() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        try bus.writeConfigurationFiles()
        var configuration = bus.nodeConfiguration("oct")
        let port = try LocalBus.freePortForTests()
        configuration.http = .init(port: port)
        try JSONEncoder().encode(configuration).write(to: URL(fileURLWithPath: bus.nodeConfigurationPath("oct")))
        let log = bus.folder.appendingPathComponent("oct.log")
        let node = try CommandLineTests.start(["node", "--config", bus.nodeConfigurationPath("oct")], log: log)
        defer { if node.isRunning { kill(node.processIdentifier, SIGKILL) } }
        let deadline = ContinuousClock.now + .seconds(30)
        while !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("console of node oct at http://"), node.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        var page = try await ConsoleTests.get(URL(string: "http://127.0.0.1:\(port)")!, "/journal")
        while !page.body.contains(id), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            page = try await ConsoleTests.get(URL(string: "http://127.0.0.1:\(port)")!, "/journal")
        }
        #expect(page.status == 200 && page.body.contains(id))
        kill(node.processIdentifier, SIGTERM)
        while node.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!node.isRunning && node.terminationStatus == 0, "\((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }
}

extension ConsoleTests {
    @Test("Full-text search: words of any text field find the message; a withheld field is never found where it was withheld; the index fills in the background")
    func search() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let kenya = try bus.publish(SampleMessages.recommendation(memberState: "KEN", text: "Train the Mombasa port police in passenger screening."),
                                    from: "cted")
        let nigeria = try bus.publish(SampleMessages.recommendation(memberState: "NGA", text: "Adopt a national terrorist-financing risk assessment."),
                                      from: "cted")
        let tunisia = try bus.publish(SampleMessages.restricted(SampleMessages.recommendation(memberState: "TUN", text: "Sfax harbour biometric gates."),
                                                               state: "TUN", fields: ["recommendation_text"], allowed: ["oct"]), from: "cted")
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until { try oct.count() == 3 && border.count() == 3 })

        try await Self.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct")) { base in
            // Nobody searched yet: the console's indexer catches up by itself.
            let deadline = ContinuousClock.now + .seconds(30)
            while try oct.search.status().indexedThrough < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try oct.search.status().indexedThrough == 3)
            let port = try await Self.get(base, "/journal?q=mombasa+police")
            #expect(port.status == 200 && port.body.contains(kenya) && !port.body.contains(nigeria))
            // Why it matched: FTS5's snippet of the text, the matched words marked; and how many matched.
            #expect(port.body.contains("Train the <mark>Mombasa</mark> port <mark>police</mark> in passenger screening."), "\(port.body)")
            #expect(port.body.contains("1 message matches \u{201C}mombasa police\u{201D}."))
            let all = try await Self.get(base, "/journal")
            #expect(all.body.contains(">3 messages.</p>"))
            // Themes and dates: the choices list what the journal holds; a day range keeps what was created in it.
            #expect(all.body.contains("<option value=\"border-security\">border-security</option>")
                    && all.body.contains("<option value=\"KEN\">KEN</option>"))
            let themed = try await Self.get(base, "/journal?theme=border-security&member_state=ken")
            #expect(themed.body.contains(kenya) && !themed.body.contains(nigeria) && themed.body.contains("1 message matches these filters."))
            let today = String(UTCTime.iso8601(Date()).prefix(10))
            let todays = try await Self.get(base, "/journal?from=\(today)&to=\(today)&sort=oldest")
            #expect(todays.body.contains("3 messages match these filters.") && todays.body.range(of: kenya)!.lowerBound < todays.body.range(of: tunisia)!.lowerBound,
                    "oldest first")
            #expect(try await Self.get(base, "/journal?from=2026-13-01").status == 400)
            #expect(try await Self.get(base, "/journal?from=2026-11-02&to=2026-11-01").status == 400)
            let prefix = try await Self.get(base, "/journal?q=financ")
            #expect(prefix.body.contains(nigeria) && !prefix.body.contains(kenya))
            let withheldHere = try await Self.get(base, "/journal?q=sfax")
            #expect(withheldHere.body.contains(tunisia), "OCT may see the restricted text, so it finds it")
            let combined = try await Self.get(base, "/journal?q=police&member_state=NGA")
            #expect(!combined.body.contains(kenya) && combined.body.contains("0 messages match \u{201C}police\u{201D} with these filters."))
            for query in ["%22NEAR(", "*", "a%20OR%20b%20NOT", String(repeating: "x", count: 600)] {
                let page = try await Self.get(base, "/journal?q=\(query)")
                #expect(page.status == 200 || page.status == 400, "q=\(query.prefix(20)) answers \(page.status)")
            }
        }
        // At wg-border the restricted text never arrived: nothing to find.
        try await Self.serving(border, node: "wg-border", clearance: .confidential, messageKeys: try bus.messageKeys(of: "wg-border")) { base in
            let withheld = try await Self.get(base, "/journal?q=sfax")
            #expect(!withheld.body.contains(tunisia))
            let stillThere = try await Self.get(base, "/journal?q=\(tunisia.prefix(0))TUN")
            #expect(stillThere.body.contains(tunisia), "the message itself is found by what it does hold")
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: bus.journalPath("wg-border")))
        #expect(file.range(of: Data("Sfax".utf8)) == nil, "the withheld words are nowhere in wg-border's journal, index included")
    }
}
