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
        try runDaemon(named: "broker") { _ in
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
        try runDaemon(named: "node") { fatal in
            let node = try Node(configurationFile: config, logger: makeLogger(label: "ctbus.node", level: logLevel), onFatal: fatal)
            return node.stop
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
