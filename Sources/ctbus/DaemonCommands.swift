import ArgumentParser
import CTBusBroker
import CTBusNode
import Foundation

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Run the broker until SIGINT or SIGTERM.")

    @Option(name: .long, help: "The broker configuration file (see deploy/broker.json).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() throws {
        try runDaemon(named: "broker") {
            let broker = try Broker(configurationFile: config, logger: makeLogger(label: "ctbus.broker", level: logLevel))
            return broker.stop
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
        try runDaemon(named: "node") {
            let node = try Node(configurationFile: config, logger: makeLogger(label: "ctbus.node", level: logLevel))
            return node.stop
        }
    }
}

/// Starts a daemon with SIGINT/SIGTERM blocked (so `sigwait` takes them), waits for one, and
/// stops it gracefully. `start` returns the function that stops what it started.
func runDaemon(named name: String, start: () throws -> () -> Void) throws {
    blockTerminationSignals()
    try runReportingErrors {
        let stop = try start()
        let signalNumber = waitForTerminationSignal()
        FileHandle.standardError.write(Data("ctbus: \(name) stopping (signal \(signalNumber))\n".utf8))
        stop()
    }
}
