import ArgumentParser
import CTBusBroker
import CTBusConsole
import CTBusBrokerHTTP
import CTBusMetrics
import CTBusNode
import CTBusSchema
import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Run the broker until SIGINT or SIGTERM.")

    @Option(name: .long, help: "The broker configuration file (see deploy/broker.json).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    @Option(name: .long, help: "Log format: text, or json (one object a line, for journald and log shippers).")
    var logFormat: LogFormat = .text

    func run() throws {
        let logger = makeLogger(label: "ctbus.broker", level: logLevel, format: logFormat)
        try runDaemon(named: "broker", log: logger, reloadable: { fatal in
            let configuration = try BrokerConfiguration.load(path: config)
            let http = configuration.http
            let endpoint = http.map { _ in MetricsEndpoint() }
            let broker = try Broker(configurationFile: config, logger: logger, metrics: endpoint?.factory ?? NOOPMetricsHandler.instance)
            // SIGHUP (`ctbus registry reload` sends it): the registry file again, validated first.
            let reload = {
                do {
                    let changes = try broker.reloadRegistry(file: configuration.registryFile, source: "SIGHUP")
                    logger.notice("registry reloaded", metadata: ["file": "\(configuration.registryFile)", "changes": "\(changes.count)"])
                } catch {
                    logger.error("registry reload refused; the registry in force stays", metadata: ["error": "\(error)"])
                }
            }
            guard let http, let endpoint else { return (broker.stop, reload) }
            let server: BrokerMetricsServer
            do {
                server = try BrokerMetricsServer(endpoint: endpoint, host: http.bind ?? "127.0.0.1", port: http.port, logger: logger)
            } catch {
                broker.stop()
                throw error
            }
            let address = "http://\(server.host):\(server.port)/metrics"
            let background = BackgroundHTTP(address: address, announce: "broker metrics at \(address)", logger: logger,
                                            fatal: fatal) { onRunning in server.application(broker: broker, onRunning: onRunning) }
            return ({
                background.stop()
                broker.stop()
            }, reload)
        })
    }
}

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a node (outbox sender and journal) until SIGINT or SIGTERM.")

    @Option(name: .long, help: "The node configuration file (see deploy/nodes/).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    @Option(name: .long, help: "Log format: text, or json (one object a line, for journald and log shippers).")
    var logFormat: LogFormat = .text

    func run() throws {
        let logger = makeLogger(label: "ctbus.node", level: logLevel, format: logFormat)
        try runDaemon(named: "node", log: logger) { fatal in
            // With a console, the node's own figures (publish-to-acknowledge time, deliveries) join its /metrics.
            let endpoint = try NodeConfiguration.load(path: config).http.map { _ in MetricsEndpoint() }
            let node = try Node(configurationFile: config, logger: logger, metrics: endpoint?.factory ?? NOOPMetricsHandler.instance)
            guard let http = node.configuration.http else { return node.stop }
            // The configuration's http section: the console beside the node, on the node's journal.
            let server: ConsoleServer
            do {
                let authentication = http.usersFile == nil && http.tokenFile == nil ? nil
                    : try ConsoleAuthentication.load(usersFile: http.usersFile, tokenFile: http.tokenFile)
                server = try ConsoleServer(nodeId: node.configuration.nodeId, clearance: node.configuration.clearanceLevel,
                                           journal: node.journal, registry: try node.configuration.loadRegistry(),
                                           messageKeys: node.messageKeys, registryFile: node.configuration.registryFile,
                                           host: http.bind ?? "127.0.0.1", port: http.port, allowedHosts: http.allowedHosts ?? [],
                                           authentication: authentication, metrics: endpoint ?? MetricsEndpoint(),
                                           logger: makeLogger(label: "ctbus.console", level: logLevel, format: logFormat))
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
func runDaemon(named name: String, log: Logger? = nil,
               start: (_ fatal: @escaping @Sendable (String) -> Void) throws -> () -> Void) throws {
    try runDaemon(named: name, log: log, reloadable: { fatal in (try start(fatal), nil) })
}

/// `runDaemon` for a daemon that reloads on SIGHUP: `start` returns its stop and reload functions.
func runDaemon(named name: String, log: Logger? = nil,
               reloadable start: (_ fatal: @escaping @Sendable (String) -> Void) throws -> (stop: () -> Void, reload: (() -> Void)?)) throws {
    blockTerminationSignals()
    // With --log-format json these lines are log entries like the others; in text, the plain lines people know.
    let say: @Sendable (Logger.Level, String) -> Void = { level, line in
        if let log, log.handler is JSONLogHandler { log.log(level: level, "\(line)") } else {
            FileHandle.standardError.write(Data("ctbus: \(line)\n".utf8))
        }
    }
    try runReportingErrors {
        let (stop, reload) = try start { reason in
            say(.critical, reason)
            kill(getpid(), SIGUSR1)
        }
        var signalNumber = waitForTerminationSignal()
        while signalNumber == SIGHUP {
            if let reload { reload() } else { say(.notice, "SIGHUP: a \(name) has nothing to reload; ignored") }
            signalNumber = waitForTerminationSignal()
        }
        if signalNumber == SIGUSR1 {
            stop()
            throw ExitCode(1)
        }
        say(.notice, "\(name) stopping (signal \(signalNumber))")
        stop()
    }
}

/// An HTTP server run beside a daemon (the console, the broker's metrics) until `stop`.
final class BackgroundHTTP: Sendable {
    let address: String
    /// Whether the server was listening within 15 s of the start.
    let isListening: Bool
    private let group: ServiceGroup
    private let done = DispatchSemaphore(value: 0)

    /// Starts serving; `announce` is logged (notice) once it listens. `fatal` is told when it cannot serve.
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
        if let announce, isListening { logger.notice("\(announce)") }
    }

    /// The console of `server`.
    convenience init(_ server: ConsoleServer, announce: Bool = true, fatal: @escaping @Sendable (String) -> Void) {
        let address = "http://\(server.host == "::1" ? "[::1]" : server.host):\(server.port)/"
        self.init(address: address, announce: announce ? "console of node \(server.nodeId) at \(address)" : nil,
                  logger: server.logger, fatal: fatal) { onRunning in server.application(onRunning: onRunning) }
    }

    func stop() {
        let group = group
        Task { await group.triggerGracefulShutdown() }
        done.wait()
    }
}
