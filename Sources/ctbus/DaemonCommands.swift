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
        blockTerminationSignals()
        try runReportingErrors {
            let broker = try Broker(configurationFile: config, logger: makeLogger(label: "ctbus.broker", level: logLevel))
            let signalNumber = waitForTerminationSignal()
            FileHandle.standardError.write(Data("ctbus: broker stopping (signal \(signalNumber))\n".utf8))
            broker.stop()
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
        blockTerminationSignals()
        try runReportingErrors {
            let node = try Node(configurationFile: config, logger: makeLogger(label: "ctbus.node", level: logLevel))
            let signalNumber = waitForTerminationSignal()
            FileHandle.standardError.write(Data("ctbus: node stopping (signal \(signalNumber))\n".utf8))
            node.stop()
        }
    }
}
