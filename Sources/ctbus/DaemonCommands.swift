import ArgumentParser
import CTBusBroker
import CTBusConsole
import CTBusJournal
import CTBusBrokerHTTP
import CTBusMetrics
import CTBusNode
import CTBusNotify
import CTBusSchema
import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Run the broker until SIGINT or SIGTERM; SIGHUP reloads the registry file.")

    @Option(name: .long, help: "The broker configuration file (see deploy/broker.json).")
    var config: String

    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = log.logger(label: "ctbus.broker")
        try await runDaemon(named: "broker", log: logger) {
            let configuration = try BrokerConfiguration.load(path: config)
            let endpoint = configuration.http.map { _ in MetricsEndpoint() }
            let broker = try Broker(configurationFile: config, logger: logger, metrics: endpoint?.factory ?? NOOPMetricsHandler.instance)
            // SIGHUP (`ctbus registry reload` sends it): the registry file again, validated first.
            let reload: @Sendable () -> Void = {
                do {
                    let changes = try broker.reloadRegistry(file: configuration.registryFile, source: "SIGHUP")
                    logger.notice("registry reloaded", metadata: ["file": "\(configuration.registryFile)", "changes": "\(changes.count)"])
                } catch {
                    logger.error("registry reload refused; the registry in force stays", metadata: ["error": "\(error)"])
                }
            }
            // Started before anything serves: a port or store already taken stops the daemon here.
            try broker.start()
            var services: [any Service] = [broker]
            if let http = configuration.http, let endpoint {
                do {
                    let server = try BrokerMetricsServer(endpoint: endpoint, host: http.bind ?? "127.0.0.1", port: http.port, logger: logger)
                    let address = "http://\(server.host):\(server.port)/metrics"
                    services.append(server.application(broker: broker) { logger.notice("broker metrics at \(address)") })
                } catch {
                    broker.stop()
                    throw error
                }
            }
            return (services, reload)
        }
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a node (outbox sender and journal) until SIGINT or SIGTERM.")

    @Option(name: .long, help: "The node configuration file (see deploy/nodes/).")
    var config: String

    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = log.logger(label: "ctbus.node")
        try await runDaemon(named: "node", log: logger) {
            // With a console, the node's own figures (publish-to-acknowledge time, deliveries) join its /metrics.
            let endpoint = try NodeConfiguration.load(path: config).http.map { _ in MetricsEndpoint() }
            let node = try Node(configurationFile: config, logger: logger, metrics: endpoint?.factory ?? NOOPMetricsHandler.instance)
            var services: [any Service] = [node]
            if let http = node.configuration.http {
                // The configuration's http section: the console beside the node, on the node's journal.
                do {
                    let authentication = http.usersFile == nil && http.tokenFile == nil ? nil
                        : try ConsoleAuthentication.load(usersFile: http.usersFile, tokenFile: http.tokenFile)
                    let server = try ConsoleServer(nodeId: node.configuration.nodeId, clearance: node.configuration.clearanceLevel,
                                                   journal: node.journal, registry: try node.configuration.loadRegistry(),
                                                   messageKeys: node.messageKeys, registryFile: node.configuration.registryFile,
                                                   sendsMail: node.configuration.notifications?.mailFrom != nil,
                                                   host: http.bind ?? "127.0.0.1", port: http.port, allowedHosts: http.allowedHosts ?? [],
                                                   authentication: authentication, metrics: endpoint ?? MetricsEndpoint(),
                                                   logger: log.logger(label: "ctbus.console"))
                    services.append(server.announcedApplication())
                } catch {
                    node.stop() // releases the journal's lock
                    throw error
                }
            }
            do {
                services.append(try notifier(node, configurationFile: config, endpoint: endpoint, logger: log.logger(label: "ctbus.notify")))
            } catch {
                node.stop()
                throw error
            }
            try node.start()
            return (services, nil)
        }
    }
}

/// The notifier of `node`, once the configuration's subscriptions are checked and in the
/// journal (a subscription naming an unknown State, type or theme stops the daemon here).
private func notifier(_ node: Node, configurationFile: String, endpoint: MetricsEndpoint?, logger: Logger) throws -> Notifier {
    let configuration = node.configuration
    let settings = configuration.notifications ?? NotificationSettings()
    let themes = NotificationWords.knownThemes(registry: try configuration.loadRegistry(), journal: node.journal,
                                               atMost: configuration.clearanceLevel)
    let configured = try settings.checked(knownThemes: themes, configurationFile: configurationFile)
    try node.journal.notifications.replaceConfigured(configured)
    logger.notice("notifications", metadata: ["configured": "\(configured.count)",
                                              "mail": "\(settings.mailFrom == nil ? "off (no mailFrom)" : settings.sendmail.joined(separator: " "))"])
    let console = configuration.http.map { "http://\($0.bind ?? "127.0.0.1"):\($0.port)" } ?? "http://127.0.0.1"
    return Notifier(nodeId: configuration.nodeId, journal: node.journal, settings: settings, consoleURL: console,
                    wording: NotificationWords.wording, logger: logger, metrics: endpoint?.factory ?? NOOPMetricsHandler.instance)
}

/// Runs a daemon: `makeServices` builds (and starts what must fail early) its services; they
/// run in one `ServiceGroup` beside `SignalService`, which turns SIGINT and SIGTERM into a
/// graceful shutdown (exit 0) and SIGHUP into `reload`. A service that fails shuts the group
/// down; its error is the process's last line and the exit status is 1.
func runDaemon(named name: String, log: Logger,
               makeServices: () async throws -> (services: [any Service], reload: (@Sendable () -> Void)?)) async throws {
    try await runReportingErrors {
        let (services, reload) = try await makeServices()
        let signals = SignalService(name: name, reload: reload, logger: log)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: (services + [signals]).map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [], cancellationSignals: [], logger: log))
        try await group.run()
    }
}

/// Waits for SIGINT, SIGTERM and SIGHUP with `sigwait` on a thread of its own, and returns on
/// the first two, which shuts the daemon's group down gracefully. The signals are blocked in
/// every thread from the first instruction of the process (`CTBusCommand.main`), so the kernel
/// never delivers them to a thread that calls libzmq (where a call would fail with EINTR) and
/// they wait until `sigwait` takes them, whatever mask the parent gave the process. Swift Service
/// Lifecycle's own signal handling (`UnixSignalsSequence`) instead sets the signals to be ignored
/// and watches them through Dispatch, which leaves them unblocked in the threads that take them.
/// One thread escapes the mask: the main thread, parked by the async runtime in a `sigsuspend`
/// that unblocks every signal; `forwardSignals` hands what it catches on to the signal thread.
/// SIGHUP runs `reload` on the signal thread: a reload may wait for the broker's loop, and must
/// not hold a pool thread.
struct SignalService: Service {
    let name: String
    let reload: (@Sendable () -> Void)?
    let logger: Logger

    func run() async throws {
        let (terminations, continuation) = AsyncStream.makeStream(of: Int32.self)
        let (name, reload, logger) = (name, reload, logger)
        OwnThread.start(name: "ctbus-signals") {
            var pending = becomeSignalThread()
            while true {
                let signal = pending ?? waitForTerminationSignal()
                pending = nil
                guard signal == SIGHUP else {
                    continuation.yield(signal)
                    break
                }
                if let reload { reload() } else { say(logger, .notice, "SIGHUP: a \(name) has nothing to reload; ignored") }
            }
            continuation.finish()
        }
        for await signal in terminations.cancelOnGracefulShutdown() {
            say(logger, .notice, "\(name) stopping (signal \(signal))")
            return
        }
    }
}

/// A line about the daemon itself: a log entry with --log-format json; in text, the plain line people know.
func say(_ logger: Logger, _ level: Logger.Level, _ line: String) {
    if logger.handler is JSONLogHandler { logger.log(level: level, "\(line)") } else {
        FileHandle.standardError.write(Data("ctbus: \(line)\n".utf8))
    }
}
