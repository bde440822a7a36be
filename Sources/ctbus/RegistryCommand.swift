import ArgumentParser
import CTBusBroker
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation

struct RegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Check the node registry, reload it into a running broker, see its history, finish a key rotation.",
        subcommands: [Check.self, Reload.self, History.self, FinishRotation.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a registry file (exit 1 with the reason when it does not validate).")

        @Argument(help: "The registry file.")
        var file: String

        func run() throws {
            try runReportingErrors {
                let registry = try Broker.loadRegistry(file)
                let rotating = registry.entries.filter { $0.nextPublicKey != nil }.map(\.profile.id)
                print("registry \(file): \(registry.entries.count) nodes, valid"
                      + (rotating.isEmpty ? "" : "; key rotation under way for \(rotating.joined(separator: ", "))"))
            }
        }
    }

    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the running broker apply its registry file now, without dropping a session.",
            discussion: """
                Validates the file named by the broker configuration first (a bad file changes nothing), \
                sends the broker SIGHUP, then waits for the broker to record the reload in its store and \
                prints what changed. Exit 1 when the file does not validate or the broker refused it.
                """)

        @Option(name: .long, help: "The broker configuration file.")
        var brokerConfig: String

        @Option(name: .long, help: "How long to wait for the broker, in seconds.")
        var timeout: Double = 30

        func run() throws {
            try runReportingErrors {
                let configuration = try BrokerConfiguration.load(path: brokerConfig)
                let registry = try Broker.loadRegistry(configuration.registryFile)
                guard let pid = FileLock.holder(of: configuration.storePath) else {
                    throw ConfigurationError("no broker is running on \(configuration.storePath); it reads \(configuration.registryFile) when it starts")
                }
                let store = try BrokerStore(path: configuration.storePath, access: .readOnly)
                let before = try store.lastRegistryAuditSeq()
                guard kill(pid_t(pid), SIGHUP) == 0 else {
                    throw ConfigurationError("could not signal the broker (pid \(pid)): \(String(cString: strerror(errno)))")
                }
                let deadline = Date().addingTimeInterval(timeout)
                var lines: [RegistryAuditEntry] = []
                while Date() < deadline {
                    lines = try store.registryAudit(after: before).filter { $0.source == "SIGHUP" }
                    if lines.contains(where: { $0.nodeId == nil }) { break }
                    Thread.sleep(forTimeInterval: 0.05)
                }
                guard let head = lines.first(where: { $0.nodeId == nil }) else {
                    throw ConfigurationError("the broker (pid \(pid)) did not record the reload within \(Int(timeout)) s; see its log")
                }
                let changes = lines.filter { $0.reload == head.reload && $0.nodeId != nil }
                switch head.outcome {
                case .refused:
                    throw ConfigurationError("the broker refused the registry: \(head.detail)")
                case .unchanged:
                    print("registry \(configuration.registryFile): no change (\(registry.entries.count) nodes)")
                default:
                    print("registry \(configuration.registryFile) applied: \(head.detail)")
                    for change in changes { print("  \(change.outcome.rawValue) \(change.nodeId ?? "")\(change.detail.isEmpty ? "" : ": \(change.detail)")") }
                }
            }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every registry the broker applied or refused, and what changed for which node, from its store.")

        @OptionGroup var location: BrokerStoreLocation

        func run() throws {
            try runReportingErrors {
                let path = try location.path()
                guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("broker store \(path) does not exist") }
                let time = ISO8601DateFormatter()
                let store = try BrokerStore(path: path, access: .readOnly)
                var after: Int64 = 0
                while true {
                    let page = try store.registryAudit(after: after, limit: 1_000)
                    for line in page {
                        if let node = line.nodeId {
                            print("    \(line.outcome.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(node)\(line.detail.isEmpty ? "" : ": \(line.detail)")")
                        } else {
                            print("\(time.string(from: line.recordedAt)) \(line.source): \(line.outcome.rawValue), \(line.detail)")
                        }
                    }
                    guard let last = page.last else { break }
                    after = last.seq
                }
            }
        }
    }

    struct FinishRotation: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finish-rotation",
            abstract: "Make a node's next key its only key in a registry file (then reload the broker).",
            discussion: "Run it once the node runs with its new secret key: after the reload, the old key is refused.")

        @Argument(help: "The node id.")
        var node: String

        @Option(name: .long, help: "The registry file to change.")
        var registry: String

        func run() throws {
            try runReportingErrors {
                let current = try Broker.loadRegistry(registry)
                guard let entry = current.entry(id: node) else { throw ConfigurationError("node \(node) is not in the registry \(registry)") }
                guard let next = entry.nextPublicKey else {
                    throw ConfigurationError("node \(node) has no nextPublicKey in \(registry): no rotation is under way")
                }
                let entries = current.entries.map { entry in
                    guard entry.profile.id == node else { return entry }
                    var finished = entry
                    finished.publicKey = next
                    finished.nextPublicKey = nil
                    return finished
                }
                try ConfigurationFile.replace(registry, with: try NodeRegistry(entries: entries).json())
                print("registry \(registry): node \(node) now has only its new key \(next)")
                print("next: ctbus registry reload --broker-config BROKER.json (the old key is refused from then on)")
            }
        }
    }
}
