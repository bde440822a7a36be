import ArgumentParser
import CTBusBroker
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import ZeroMQ

struct RegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Check the node registry, add or remove a node, reload it into a running broker, see its history, finish a key rotation.",
        subcommands: [Check.self, Add.self, Remove.self, Reload.self, History.self, FinishRotation.self])

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

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a node to a registry file, with new key pairs (then copy the registry to the nodes and reload the broker).",
            discussion: """
                Writes NODE.key/.pub (CURVE), NODE.sign.key/.pub (Ed25519) and NODE.seal.key/.pub (X25519) into --keys-out \
                (secrets 0600; nothing is written if any exists) and adds the entry with their public keys. The registry \
                is checked whole before anything is written. deploy/README.md shows the whole path of adding a node.
                """)

        @Argument(help: "The new node's id (a-z, 0-9 and '-').")
        var node: String

        @Option(name: .long, help: "The registry file to change.")
        var registry: String

        @Option(name: .long, help: "oct, cted, working-group or compact-entity.")
        var role: String

        @Option(name: .long, help: "UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL.")
        var clearance: String

        @Option(name: .long, parsing: .upToNextOption, help: "Groups the node belongs to (releasability lists may name them).")
        var groups: [String] = []

        @Option(name: .long, parsing: .upToNextOption, help: "Types it may publish (default: all its role may).")
        var mayPublish: [String] = []

        @Option(name: .long, parsing: .upToNextOption, help: "Types it receives (default: all).")
        var subscriptions: [String] = []

        @Option(name: .long, parsing: .upToNextOption, help: "Themes it follows (default: all).")
        var themes: [String] = []

        @Option(name: .long, help: "The folder to write the node's key files into.")
        var keysOut: String

        func run() throws {
            try runReportingErrors {
                let current = try Broker.loadRegistry(registry)
                guard current.entry(id: node) == nil else { throw ConfigurationError("node \(node) is in the registry \(registry) already") }
                guard let role = Role(rawValue: role) else {
                    throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                guard let level = Classification(name: clearance) else {
                    throw ValidationError("--clearance must be UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL")
                }
                func types(_ names: [String], _ option: String) throws -> Set<MessageType>? {
                    guard !names.isEmpty else { return nil }
                    return Set(try names.map { name in
                        guard let type = MessageType(name: name) else { throw ValidationError("--\(option): unknown type \(name)") }
                        return type
                    })
                }
                let profile = NodeProfile(id: node, role: role, clearance: level, groups: Set(groups),
                                          mayPublish: try types(mayPublish, "may-publish"), subscriptions: try types(subscriptions, "subscriptions"),
                                          themes: Set(themes))
                let pair = try CurveKeyPair.generate()
                // Checked whole (the message keys stood in for) before a key file is written, so a
                // mistake leaves nothing behind.
                _ = try NodeRegistry(entries: current.entries + [NodeRegistry.Entry(
                    profile: profile, publicKey: pair.publicKey,
                    signingKey: MessageKeys.newSigningKey().public, sealingKey: MessageKeys.newSealingKey().public)])
                try KeygenCommand.requireNew([node, "\(node).sign", "\(node).seal"], in: keysOut)
                let files = try pair.write(toFolder: keysOut, name: node)
                print("transport (CURVE) secret key: \(files.secretKeyFile)")
                print("transport (CURVE) public key: \(files.publicKeyFile) \(pair.publicKey)")
                let keys = try KeygenCommand.writeMessageKeys(folder: keysOut, name: node)
                let entry = NodeRegistry.Entry(profile: profile, publicKey: pair.publicKey, signingKey: keys.signing, sealingKey: keys.sealing)
                try ConfigurationFile.replace(registry, with: try NodeRegistry(entries: current.entries + [entry]).json())
                print("registry \(registry): node \(node) added (\(role.rawValue), \(level.name))")
                print("next: copy the registry to every node, ctbus registry reload --broker-config BROKER.json, "
                      + "then start the node with a configuration naming these keys (deploy/README.md)")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a node from a registry file (then reload the broker: its session ends, its queue is dropped).")

        @OptionGroup var target: NodeInRegistry

        func run() throws {
            try runReportingErrors {
                let (node, registry) = (target.node, target.registry)
                let (current, _) = try target.load()
                try ConfigurationFile.replace(registry, with: try NodeRegistry(entries: current.entries.filter { $0.profile.id != node }).json())
                print("registry \(registry): node \(node) removed")
                print("next: ctbus registry reload --broker-config BROKER.json, and copy the registry to every node; "
                      + "what the node signed stays verifiable only while some registry copy keeps its key")
            }
        }
    }

    struct FinishRotation: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finish-rotation",
            abstract: "Make a node's next key its only key in a registry file (then reload the broker).",
            discussion: "Run it once the node runs with its new secret key: after the reload, the old key is refused.")

        @OptionGroup var target: NodeInRegistry

        func run() throws {
            try runReportingErrors {
                let (node, registry) = (target.node, target.registry)
                let (current, entry) = try target.load()
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

/// A node of a registry file that a command changes.
struct NodeInRegistry: ParsableArguments {
    @Argument(help: "The node id.")
    var node: String

    @Option(name: .long, help: "The registry file to change.")
    var registry: String

    /// The registry and the node's entry; an error naming both when the node is not there.
    func load() throws -> (NodeRegistry, NodeRegistry.Entry) {
        let current = try Broker.loadRegistry(registry)
        guard let entry = current.entry(id: node) else { throw ConfigurationError("node \(node) is not in the registry \(registry)") }
        return (current, entry)
    }
}
