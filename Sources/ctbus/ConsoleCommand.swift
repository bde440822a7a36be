import ArgumentParser
import CTBusConsole
import CTBusJournal
import CTBusNode
import CTBusSchema
import Foundation
import Hummingbird
import ServiceLifecycle
import Synchronization

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve a node's console in the browser (journal, messages, traceability, status) until SIGINT or SIGTERM.",
        discussion: "It reads the node's journal beside the running node daemon and writes nothing. It binds to 127.0.0.1.")

    @Option(name: .long, help: "The node configuration file; its journal is shown.")
    var nodeConfig: String

    @Option(help: "The port to listen on.")
    var port = 8470

    @Option(help: "The address to listen on (loopback only for now).")
    var bind = "127.0.0.1"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() throws {
        blockTerminationSignals()
        try runReportingErrors {
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            let journal = try NodeJournal(path: configuration.journalPath)
            let console = try ConsoleServer(nodeId: configuration.nodeId, clearance: configuration.clearanceLevel, journal: journal,
                                            host: bind, port: port, logger: makeLogger(label: "ctbus.console", level: logLevel))
            let address = "http://\(bind == "::1" ? "[::1]" : bind):\(port)/"
            let application = console.application {
                FileHandle.standardError.write(Data("ctbus: console of node \(configuration.nodeId) at \(address)\n".utf8))
            }
            // The signals are this thread's (sigwait); the service group only hears the shutdown we trigger.
            let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [],
                                                          logger: makeLogger(label: "ctbus.console", level: logLevel)))
            let failure = Mutex<(any Error)?>(nil)
            let done = DispatchSemaphore(value: 0)
            Task {
                do {
                    try await group.run()
                } catch {
                    failure.withLock { $0 = error }
                    kill(getpid(), SIGUSR1) // wake the signal wait: the server could not run
                }
                done.signal()
            }
            let signalNumber = waitForTerminationSignal()
            Task { await group.triggerGracefulShutdown() }
            done.wait()
            if let error = failure.withLock({ $0 }) { throw ConfigurationError("the console could not serve \(address): \(error)") }
            FileHandle.standardError.write(Data("ctbus: console stopping (signal \(signalNumber))\n".utf8))
        }
    }
}
