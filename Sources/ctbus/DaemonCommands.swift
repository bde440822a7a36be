import ArgumentParser
import CTBusBroker
import CTBusConsole
import CTBusMetrics
import CoreMetrics
import Logging
import CTBusNode
import Foundation
import ServiceLifecycle

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Run the broker until SIGINT or SIGTERM.")

    @Option(name: .long, help: "The broker configuration file (see deploy/broker.json).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() throws {
        try runDaemon(named: "broker") { fatal in
            let logger = makeLogger(label: "ctbus.broker", level: logLevel)
            let http = try BrokerConfiguration.load(path: config).http
            let endpoint = http.map { _ in MetricsEndpoint() }
            let broker = try Broker(configurationFile: config, logger: logger, metrics: endpoint?.factory ?? NOOPMetricsHandler.instance)
            guard let http, let endpoint else { return broker.stop }
            let server: BrokerMetricsServer
            do {
                server = try BrokerMetricsServer(endpoint: endpoint, host: http.bind ?? "127.0.0.1", port: http.port, logger: logger)
            } catch {
                broker.stop()
                throw error
            }
            let address = "http://\(server.host):\(server.port)/metrics"
            let background = BackgroundHTTP(address: address, announce: "ctbus: broker metrics at \(address)", logger: logger,
                                            fatal: fatal) { onRunning in server.application(broker: broker, onRunning: onRunning) }
            return {
                background.stop()
                broker.stop()
            }
        }
    }
}

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a node (outbox sender and journal) until SIGINT or SIGTERM.")

    @Option(name: .long, help: "The node configuration file (see deploy/nodes/).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() throws {
        try runDaemon(named: "node") { fatal in
            let node = try Node(configurationFile: config, logger: makeLogger(label: "ctbus.node", level: logLevel), onFatal: fatal)
            guard let http = node.configuration.http else { return node.stop }
            // The configuration's http section: the console beside the node, on the node's journal.
            let server: ConsoleServer
            do {
                let authentication = http.usersFile == nil && http.tokenFile == nil ? nil
                    : try ConsoleAuthentication.load(usersFile: http.usersFile, tokenFile: http.tokenFile)
                server = try ConsoleServer(nodeId: node.configuration.nodeId, clearance: node.configuration.clearanceLevel,
                                           journal: node.journal,
                                           registry: try node.configuration.loadRegistry(), host: http.bind ?? "127.0.0.1", port: http.port,
                                           authentication: authentication,
                                           logger: makeLogger(label: "ctbus.console", level: logLevel))
            } catch {
                node.stop()
                throw error
            }
            let console = BackgroundHTTP(server, fatal: fatal)
            return {
                console.stop()
                node.stop()
            }
        }
    }
}

/// Starts a daemon with SIGINT/SIGTERM blocked (so `sigwait` takes them), waits for one, and
/// stops it gracefully (exit 0). `start` returns the function that stops what it started; it is
/// given `fatal`, which a daemon that must stop on its own calls with the reason: the reason is
/// the process's last line and the exit status is 1.
func runDaemon(named name: String, start: (_ fatal: @escaping @Sendable (String) -> Void) throws -> () -> Void) throws {
    blockTerminationSignals()
    try runReportingErrors {
        let stop = try start { reason in
            FileHandle.standardError.write(Data("ctbus: \(reason)\n".utf8))
            kill(getpid(), SIGUSR1)
        }
        let signalNumber = waitForTerminationSignal()
        if signalNumber == SIGUSR1 {
            stop()
            throw ExitCode(1)
        }
        FileHandle.standardError.write(Data("ctbus: \(name) stopping (signal \(signalNumber))\n".utf8))
        stop()
    }
}

/// A console served on its own tasks, beside a daemon or the demo; `stop` shuts it down gracefully
/// and waits. Its service group hears no signal: the caller's thread takes them (`sigwait`).
/// An HTTP server run beside a daemon (the console, the broker's metrics) until `stop`.
final class BackgroundHTTP: Sendable {
    let address: String
    /// Whether the server was listening within 15 s of the start.
    let isListening: Bool
    private let group: ServiceGroup
    private let done = DispatchSemaphore(value: 0)

    /// Starts serving; `announce` is written on stderr once it listens. `fatal` is told when it cannot serve.
    init(address: String, announce: String?, logger: Logger, fatal: @escaping @Sendable (String) -> Void,
         _ makeService: (@escaping @Sendable () async -> Void) -> any Service) {
        let started = DispatchSemaphore(value: 0)
        self.address = address
        group = ServiceGroup(configuration: .init(services: [makeService { started.signal() }], gracefulShutdownSignals: [], logger: logger))
        let group = group
        let done = done
        Task {
            do {
                try await group.run()
            } catch {
                fatal("could not serve \(address): \(error)")
            }
            done.signal()
        }
        isListening = started.wait(timeout: .now() + 15) == .success
        if let announce, isListening { FileHandle.standardError.write(Data((announce + "\n").utf8)) }
    }

    /// The console of `server`.
    convenience init(_ server: ConsoleServer, announce: Bool = true, fatal: @escaping @Sendable (String) -> Void) {
        let address = "http://\(server.host == "::1" ? "[::1]" : server.host):\(server.port)/"
        self.init(address: address, announce: announce ? "ctbus: console of node \(server.nodeId) at \(address)" : nil,
                  logger: server.logger, fatal: fatal) { onRunning in server.application(onRunning: onRunning) }
    }

    func stop() {
        let group = group
        Task { await group.triggerGracefulShutdown() }
        done.wait()
    }
}
