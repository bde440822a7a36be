import ArgumentParser
import CTBusConsole
import CTBusJournal
import CTBusNode
import CTBusNotify
import CTBusSchema
import Foundation
import Logging
import ServiceLifecycle

struct ConsoleCommand: AsyncParsableCommand {
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

    @Option(help: "The port to listen on (default: the configuration's http.port, else 8470).")
    var port: Int?

    @Option(help: "The address to listen on (default: the configuration's http.bind, else 127.0.0.1). Any other than loopback needs --users-file or --token-file.")
    var bind: String?

    @Option(help: "People who may sign in: NAME:BCRYPT-HASH lines, mode 0600 (ctbus console-user writes them).")
    var usersFile: String?

    @Option(help: "Bearer tokens for other systems, one a line (at least 32 characters), mode 0600.")
    var tokenFile: String?

    @Option(name: .customLong("allowed-host"),
            help: "A name people reach the console by, beside localhost, the loopback addresses and --bind (repeatable; default: the configuration's http.allowedHosts). Requests for other names are refused (421).")
    var allowedHosts: [String] = []

    @OptionGroup var log: LogOptions

    func run() async throws {
        let logger = log.logger(label: "ctbus.console")
        try await runDaemon(named: "console", log: logger) {
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            let journal = try NodeJournal(path: configuration.journalPath)
            let http = configuration.http
            let users = usersFile ?? http?.usersFile
            let tokens = tokenFile ?? http?.tokenFile
            let authentication = users == nil && tokens == nil ? nil : try ConsoleAuthentication.load(usersFile: users, tokenFile: tokens)
            let registry = try configuration.loadRegistry()
            // What the console publishes is signed with the node's key, checked against the registry.
            let keys = try NodeMessageKeys(configuration: configuration, registry: registry)
            let server = try ConsoleServer(nodeId: configuration.nodeId, clearance: configuration.clearanceLevel, journal: journal,
                                           registry: registry, messageKeys: keys, registryFile: configuration.registryFile,
                                           sendsMail: configuration.notifications?.mailFrom != nil,
                                           host: bind ?? http?.bind ?? "127.0.0.1",
                                           port: port ?? http?.port ?? 8470,
                                           allowedHosts: allowedHosts.isEmpty ? http?.allowedHosts ?? [] : allowedHosts,
                                           authentication: authentication, logger: logger)
            return ([server.announcedApplication()], nil)
        }
    }
}

extension ConsoleServer {
    /// The address people open, with an IPv6 host in brackets.
    var address: String { "http://\(host == "::1" ? "[::1]" : host):\(port)/" }

    /// The console as a service that logs its address (notice) once it listens.
    func announcedApplication(onRunning: @escaping @Sendable () async -> Void = {}) -> some Service {
        let (logger, line) = (logger, "console of node \(nodeId) at \(address)")
        return application {
            logger.notice("\(line)")
            await onRunning()
        }
    }
}

/// `ctbus console-user NAME --users-file FILE`: adds a person to a console's users file, or gives
/// them a new password; the password is read from standard input, never from the command line.
struct ConsoleUserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console-user",
        abstract: "Add a user to a console's users file, or change their password (read from standard input).",
        discussion: """
            The file is created with mode 0600 when missing; other users' lines are kept. The password (12 to 72 \
            bytes) is asked for twice on a terminal, or read as one line from a pipe; only its bcrypt hash is written.
            """)

    @Option(help: "The users file (the node configuration's http.usersFile, or ctbus console --users-file).")
    var usersFile: String

    @Flag(help: "Remove the user instead.")
    var remove = false

    @Argument(help: "The user name (a-z, 0-9, '.', '_', '-').")
    var name: String

    func run() throws {
        try runReportingErrors {
            var lines: [String] = []
            if FileManager.default.fileExists(atPath: usersFile) {
                try PrivateFiles.requirePrivate(usersFile, what: "the console users file")
                lines = String(decoding: try ConfigurationFile.read(usersFile, what: "console users file"), as: UTF8.self)
                    .split(separator: "\n").map(String.init)
            }
            let kept = lines.filter { !$0.hasPrefix(name + ":") }
            if remove {
                guard kept.count < lines.count else { throw ConfigurationError("\(usersFile) has no user \(name)") }
                try write(kept)
                print("removed \(name)")
                return
            }
            let password = try readPassword()
            try write(kept + [try ConsoleAuthentication.userLine(name: name, password: password)])
            print(kept.count < lines.count ? "changed the password of \(name)" : "added \(name)")
        }
    }

    func readPassword() throws -> String {
        guard isatty(STDIN_FILENO) != 0 else {
            guard let line = readLine(strippingNewline: true) else { throw ConfigurationError("no password on standard input") }
            return line
        }
        guard let first = getpass("Password for \(name): ").map({ String(cString: $0) }),
              let second = getpass("Again: ").map({ String(cString: $0) }) else {
            throw ConfigurationError("no password read")
        }
        guard first == second else { throw ConfigurationError("the two passwords differ; nothing was changed") }
        return first
    }

    func write(_ lines: [String]) throws {
        let text = lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
        let temporary = usersFile + ".new"
        unlink(temporary) // a leftover of an interrupted run, whatever its mode
        try PrivateFiles.createFile(temporary)
        guard let handle = FileHandle(forWritingAtPath: temporary) else { throw ConfigurationError("cannot write \(temporary)") }
        try handle.write(contentsOf: Data(text.utf8))
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, usersFile) == 0 else { throw ConfigurationError("\(usersFile): cannot replace it (\(String(cString: strerror(errno))))") }
    }
}
