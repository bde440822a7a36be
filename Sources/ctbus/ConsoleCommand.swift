import ArgumentParser
import CTBusConsole
import CTBusJournal
import CTBusNode
import CTBusSchema
import Foundation

struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve a node's console in the browser (journal, messages, traceability, compose, drafts, status) until SIGINT or SIGTERM.",
        discussion: """
            It reads the node's journal beside the running node daemon; what it publishes goes through the journal's \
            outbox, as with ctbus publish, and the node daemon sends it. The registry named by the configuration's \
            registryFile tells it which types the node may publish and to which nodes and groups. It binds to 127.0.0.1.
            """)

    @Option(name: .long, help: "The node configuration file; its journal is shown.")
    var nodeConfig: String

    @Option(help: "The port to listen on.")
    var port = 8470

    @Option(help: "The address to listen on (loopback only for now).")
    var bind = "127.0.0.1"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func run() throws {
        try runDaemon(named: "console") { fatal in
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            let journal = try NodeJournal(path: configuration.journalPath)
            let server = try ConsoleServer(nodeId: configuration.nodeId, clearance: configuration.clearanceLevel, journal: journal,
                                           registry: try configuration.loadRegistry(),
                                           host: bind, port: port, logger: makeLogger(label: "ctbus.console", level: logLevel))
            return BackgroundConsole(server, fatal: fatal).stop
        }
    }
}
