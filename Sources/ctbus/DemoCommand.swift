import ArgumentParser
import CTBusBroker
import CTBusConsole
import CTBusTrace
import CTBusJournal
import CTBusNode
import CTBusNotify
import CTBusMetrics
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusBrokerHTTP
import Foundation
import CoreMetrics
import Logging
import ServiceLifecycle

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a broker, OCT, CTED and three working groups on 127.0.0.1 with sample traffic, then print every journal.",
        discussion: "Keys, registry, store and journals go into a temporary folder that is removed at the end (unless --keep).")

    @Flag(help: "Keep the temporary folder (keys, registry, store, journals) and print its path.")
    var keep = false

    @Flag(help: "Keep the broker, the nodes and the consoles running until Ctrl-C (SIGINT) or SIGTERM.")
    var keepRunning = false

    @Option(help: "Log level of broker and nodes (to stderr): trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .critical

    func run() async throws {
        try await runReportingErrors { try await runDemo() }
    }

    static let nodes: [LocalBus.NodeSpec] = [
        .init("oct", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        .init("cted", role: .cted, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        .init("wg-border", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"], themes: ["border-security"]),
        .init("wg-cft", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"], themes: ["terrorist-financing"]),
        .init("wg-rights", role: .workingGroup, clearance: .unclassified, groups: ["compact-wg"]),
    ]

    private func runDemo() async throws {
        let bus = try LocalBus(nodes: Self.nodes, logger: makeLogger(label: "ctbus", level: logLevel))
        defer { bus.shutdown(removeFolder: !keep) }
        print("CTBus demo: broker on \(bus.endpoint), CURVE keys in \(bus.folder.path)")
        print("")
        print("Registry")
        for entry in bus.registry.entries {
            let profile = entry.profile
            let themes = profile.themes.isEmpty ? "all themes" : "themes: \(profile.themes.sorted().joined(separator: ", "))"
            print("  \(profile.id.padding(toLength: 10, withPad: " ", startingAt: 0)) \(profile.role.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) cleared \(profile.clearance.name.padding(toLength: 22, withPad: " ", startingAt: 0)) groups: \(profile.groups.sorted().joined(separator: ",")); \(themes)")
        }
        try bus.startBroker()
        try bus.startAllNodes()
        guard await bus.waitUntilConnected() else { throw ConfigurationError("the nodes did not connect to the broker within 15 s") }
        let published = try Self.publishSamples(on: bus)
        print("")
        print("Published")
        for item in published {
            print("  \(item.from.padding(toLength: 5, withPad: " ", startingAt: 0)) \(item.label)  (\(item.message.envelope.messageID))")
        }

        // What the policy entitles each node to; wait (bounded) until every journal holds it.
        let profiles = bus.registry.profiles
        var expected: [String: Set<String>] = [:]
        for item in published {
            for (node, decision) in ConfidentialityPolicy.decide(item.message.envelope, originator: item.from, among: profiles)
            where decision.isDelivered {
                expected[node.id, default: []].insert(item.message.envelope.messageID)
            }
        }
        let journals = try Dictionary(uniqueKeysWithValues: profiles.map { ($0.id, try bus.journal($0.id)) })
        let complete = try await Wait.until(seconds: 20) {
            try expected.allSatisfy { node, ids in
                let received = try journals[node]!.entries(matching: JournalFilter(direction: .received))
                return Set(received.map(\.messageId)).isSuperset(of: ids)
            }
        }
        guard complete else { throw ConfigurationError("not every delivery arrived within 20 s") }
        let acknowledged = try await Wait.until(seconds: 20) {
            try published.allSatisfy { item in
                try journals[item.from]!.outbox.status(messageId: item.message.envelope.messageID) == .acknowledged
            }
        }

        try Self.printJournals(journals, published: published, registry: bus.registry)
        print("")
        print(acknowledged ? "Every publication was acknowledged by the broker and every journal holds exactly what the policy allows."
                           : "Some publications were not acknowledged in time.")

        // What an operator sees: ctbus status, from the same report the broker's /status serves.
        if let broker = bus.broker {
            // Acknowledgements reach the store within 20 ms, the session snapshot within 250 ms.
            _ = await Wait.until(seconds: 5) {
                ((try? broker.store.queueFigures().isEmpty) ?? true) && broker.status.snapshot.values.allSatisfy { $0.inFlight == 0 }
            }
            print("")
            print("Broker status (ctbus status)")
            print("")
            print(StatusCommand.render(try BrokerStatusReport.make(broker: broker), now: Date(), width: 98)
                .split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n"),
                  terminator: "")
        }

        // Resolution 2395: which recommendations OCT's activities answer, as OCT's journal shows it.
        var messages: [Traceability.Message] = []
        for entry in try journals["oct"]!.entries() {
            let message = try entry.message()
            if let payload = message.payload { messages.append(Traceability.Message(envelope: message.envelope, payload: payload)) }
        }
        print("")
        print("Traceability (OCT's journal; ctbus trace)")
        print("")
        print(TraceCommand.table(Traceability.report(messages), width: 98).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n"), terminator: "")

        try await serveConsoles(bus: bus, journals: journals)
        if keep { print("Kept: \(bus.folder.path)") }
    }

    typealias Published = [(label: String, message: BusMessage, from: String)]

    /// CTED publishes the outcome of its visits; OCT answers with its activity matrix.
    private static func publishSamples(on bus: LocalBus) throws -> Published {
        var published: Published = []
        // CTED publishes the outcome of its visits; OCT answers with its activity matrix.
        func publish(_ label: String, _ message: BusMessage, from node: String) throws {
            try bus.publish(message, from: node)
            published.append((label, message, node))
        }
        let r1 = SampleMessages.recommendation(memberState: "KEN", handling: SampleMessages.handling(.unclassified))
        try publish("R1 recommendation, UNCLASSIFIED", r1, from: "cted")
        let r2 = SampleMessages.recommendation(
            memberState: "NGA", handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]),
            thematicArea: "terrorist-financing", text: "Extend the financial intelligence unit's access to beneficial ownership data.")
        try publish("R2 recommendation, CONFIDENTIAL, releasable to oct", r2, from: "cted")
        let r3 = SampleMessages.recommendation(
            memberState: "IDN", handling: SampleMessages.handling(.confidential, releasableTo: ["oct", "compact-wg"]))
        try publish("R3 recommendation, CONFIDENTIAL, releasable to oct and compact-wg", r3, from: "cted")
        var restricted = SampleMessages.handling(.unclassified)
        var restriction = MemberStateRestriction()
        restriction.state = "TUN"
        restriction.requestedOn = "2026-03-20"
        restriction.scope = .partial
        restriction.fieldPaths = ["recommendation_text", "technical_assistance_need"]
        restriction.allowedNodes = ["oct"]
        restricted.memberStateRestriction = restriction
        let r4 = SampleMessages.recommendation(memberState: "TUN", handling: restricted)
        try publish("R4 recommendation, UNCLASSIFIED, TUN asked to keep its text for oct only", r4, from: "cted")
        let m1 = SampleMessages.missionReport(memberState: "KEN", handling: SampleMessages.handling(.confidential),
                                              tags: ["border-security", "terrorist-financing"], reportsOn: r1.envelope.messageID)
        try publish("M1 mission report, CONFIDENTIAL", m1, from: "cted")
        let a1 = SampleMessages.activityMatrix(answering: [r1.envelope.messageID, r3.envelope.messageID])
        try publish("A1 activity matrix, UNCLASSIFIED, answers R1 and R3", a1, from: "oct")

        return published
    }

    /// Each journal as its node holds it, and why it does not hold the rest.
    private static func printJournals(_ journals: [String: NodeJournal], published: Published, registry: NodeRegistry) throws {
        let labels = Dictionary(uniqueKeysWithValues: published.map { ($0.message.envelope.messageID, String($0.label.prefix(2))) })
        print("")
        print("Journals")
        for profile in registry.profiles {
            print("")
            print("  \(profile.id) (cleared \(profile.clearance.name))")
            for entry in try journals[profile.id]!.entries() {
                let label = labels[entry.messageId] ?? "??"
                var line = "    \(entry.direction == .sent ? "sent    " : "received") \(label) \(entry.typeName) \(entry.classificationName) \(entry.subject)"
                if entry.direction == .received {
                    line += " from \(entry.originator)"
                    // Checked as `ctbus journal verify` checks it: the originator's key from the registry.
                    switch entry.signatureState(registry: registry) {
                    case .verified: line += ", signature verifies"
                    case .failed(let error): line += ", SIGNATURE FAILS (\(error.codeName))"
                    }
                }
                if !entry.redactedPaths.isEmpty { line += "  WITHHELD: \(entry.redactedPaths.joined(separator: ", ")) (the rest verifies)" }
                let message = try entry.message()
                if case .activityMatrix(let matrix) = message.payload {
                    let answered = matrix.activities.flatMap(\.recommendationIds).map { labels[$0] ?? $0 }
                    line += "  (answers \(answered.joined(separator: ", ")))"
                }
                print(line)
            }
            for item in published where item.from != profile.id {
                let decision = ConfidentialityPolicy.decide(item.message.envelope, originator: item.from, for: profile)
                if case .refuse(let rule, let reason) = decision {
                    print("    not received \(labels[item.message.envelope.messageID]!): \(rule.rawValue) rule: \(profile.id) \(reason)")
                }
            }
        }
    }

    /// Consoles for OCT and a working group: their addresses are printed; with --keep-running they
    /// serve until a signal, otherwise they stop at once with the demo.
    private func serveConsoles(bus: LocalBus, journals: [String: NodeJournal]) async throws {
        var servers: [ConsoleServer] = []
        for (node, preferred) in [("oct", 8470), ("wg-border", 8471)] {
            guard let profile = bus.registry.entry(id: node)?.profile else { continue }
            let port = Self.isFree(preferred) ? preferred : try LocalBus.freePortForTests()
            servers.append(try ConsoleServer(nodeId: node, clearance: profile.clearance, journal: journals[node]!,
                                             registry: bus.registry, messageKeys: try bus.messageKeys(of: node), port: port,
                                             logger: makeLogger(label: "ctbus.console", level: logLevel)))
        }
        let logger = makeLogger(label: "ctbus", level: logLevel)
        let (listening, listened) = AsyncStream.makeStream(of: String.self)
        var services: [any Service] = servers.map { server in server.application { listened.yield(server.nodeId) } }
        if keepRunning {
            // What people subscribe to in these consoles is sent: webhooks (no mail without a sender address).
            for server in servers {
                services.append(Notifier(nodeId: server.nodeId, journal: server.journal, settings: NotificationSettings(), consoleURL: server.address,
                                         wording: NotificationWords.wording, logger: makeLogger(label: "ctbus.notify", level: logLevel),
                                         metrics: NOOPMetricsHandler.instance))
            }
            services.append(SignalService(name: "demo", reload: nil, logger: logger))
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A console that cannot serve ends the group; it shows in the heading below.
                do { try await group.run() } catch { logger.error("a console stopped", metadata: ["error": "\(error)"]) }
                listened.finish()
            }
            var started = Set<String>()
            for await node in listening {
                started.insert(node)
                if started.count == servers.count { break }
            }
            print("")
            print(started.count == servers.count ? "Consoles" : "Consoles (not all of them started)")
            for server in servers { print("  \(server.nodeId.padding(toLength: 10, withPad: " ", startingAt: 0)) \(server.address)") }
            if keepRunning {
                print("")
                print("Broker, nodes and consoles keep running; Ctrl-C stops them.")
                fflush(nil) // what was printed reaches a pipe or file now, not at exit
            } else {
                await group.triggerGracefulShutdown()
            }
            try await tasks.waitForAll()
        }
    }

    /// Whether a TCP port on 127.0.0.1 can be bound now.
    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
