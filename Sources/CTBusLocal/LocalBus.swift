import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Crypto
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// A real bus on 127.0.0.1 in a temporary folder: generated CURVE keys, a registry, a broker
/// with its SQLite store and nodes with their journals. The demo, the tests and the benchmark
/// all start the bus this way. Broker and nodes can be stopped and started again on the same
/// endpoint, store and journals.
/// Ports already given to a bus in this process.
private let handedOutPorts = Mutex<Set<Int>>([])

public final class LocalBus: Sendable {
    /// One node to put in the registry.
    public struct NodeSpec: Sendable {
        public let id: String
        public let role: Role
        public let clearance: Classification
        public let groups: Set<String>
        public let themes: Set<String>

        public init(_ id: String, role: Role, clearance: Classification, groups: Set<String> = [], themes: Set<String> = []) {
            self.id = id
            self.role = role
            self.clearance = clearance
            self.groups = groups
            self.themes = themes
        }
    }

    /// OCT, CTED and three Compact working groups of different clearances and groups.
    public static let standardNodes: [NodeSpec] = [
        NodeSpec("oct", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        NodeSpec("cted", role: .cted, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        NodeSpec("wg-border", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"]),
        NodeSpec("wg-cft", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"]),
        NodeSpec("wg-rights", role: .workingGroup, clearance: .unclassified, groups: ["compact-wg"]),
    ]

    /// Silent, unless CTBUS_LOG is set in the environment (to a level such as "debug").
    public static var defaultLogger: Logger {
        guard let level = ProcessInfo.processInfo.environment["CTBUS_LOG"] else {
            return Logger(label: "ctbus", factory: { _ in SwiftLogNoOpLogHandler() })
        }
        var logger = Logger(label: "ctbus", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }

    public let folder: URL
    /// The registry as it is now (`addNode` extends it; a running broker sees it after a restart).
    public var registry: NodeRegistry { membership.withLock { $0.registry } }
    /// Every node's key pair.
    public var nodeKeys: [String: CurveKeyPair] { membership.withLock { $0.keys } }
    private let membership: Mutex<Membership>

    private struct Membership {
        var registry: NodeRegistry
        var keys: [String: CurveKeyPair]
    }
    public let brokerKeys: CurveKeyPair
    public let brokerConfiguration: BrokerConfiguration
    private let logger: Logger
    private let running = Mutex(Running())

    private struct Running {
        var broker: Broker?
        var nodes: [String: Node] = [:]
    }

    /// Makes the folder, keys and registry; starts nothing. Intervals are short, for tests.
    public init(nodes: [NodeSpec] = LocalBus.standardNodes, maxMessageBytes: Int = BrokerConfiguration.defaultMaxMessageBytes,
                deliveryWindow: Int = 256, retention: BrokerConfiguration.RetentionSettings? = nil,
                logger: Logger = LocalBus.defaultLogger) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-\(UUID().uuidString.prefix(8))")
        // Keys, store and journals: for this user alone (the demo's folder too).
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.logger = logger
        brokerKeys = try CurveKeyPair.generate()
        _ = try brokerKeys.write(toFolder: folder.path, name: "broker")
        membership = Mutex(Membership(registry: try NodeRegistry(entries: []), keys: [:]))
        var broker = BrokerConfiguration(
            endpoint: "tcp://127.0.0.1:\(try Self.freePort())",
            secretKeyFile: folder.appendingPathComponent("broker.key").path,
            registryFile: folder.appendingPathComponent("registry.json").path,
            storePath: folder.appendingPathComponent("broker.sqlite").path,
            maxMessageBytes: maxMessageBytes, heartbeatIntervalMilliseconds: 100, sessionTimeoutMilliseconds: 1_000,
            deliveryWindow: deliveryWindow)
        broker.retention = retention
        brokerConfiguration = broker
        for spec in nodes { try addNode(spec) }
    }

    /// Adds a node to the registry with a new key pair and rewrites registry.json. A running
    /// broker learns of it when it starts again.
    public func addNode(_ spec: NodeSpec) throws {
        let pair = try CurveKeyPair.generate()
        _ = try pair.write(toFolder: folder.path, name: spec.id)
        let signing = MessageKeys.newSigningKey()
        let sealing = MessageKeys.newSealingKey()
        _ = try KeyFiles.writePair(folder: folder.path, name: "\(spec.id).sign", secret: signing.secret, public: signing.public)
        _ = try KeyFiles.writePair(folder: folder.path, name: "\(spec.id).seal", secret: sealing.secret, public: sealing.public)
        let profile = NodeProfile(id: spec.id, role: spec.role, clearance: spec.clearance, groups: spec.groups, themes: spec.themes)
        let entry = NodeRegistry.Entry(profile: profile, publicKey: pair.publicKey, signingKey: signing.public, sealingKey: sealing.public)
        let registry = try membership.withLock { state throws -> NodeRegistry in
            state.registry = try NodeRegistry(entries: state.registry.entries + [entry])
            state.keys[spec.id] = pair
            return state.registry
        }
        try registry.json().write(to: folder.appendingPathComponent("registry.json"))
    }

    /// Rewrites the registry (and registry.json) with `change` applied to its entries; a running
    /// broker sees it after `Broker.reloadRegistry` or a restart. Returns the new registry.
    @discardableResult
    public func changeRegistry(_ change: (inout [NodeRegistry.Entry]) throws -> Void) throws -> NodeRegistry {
        let registry = try membership.withLock { state throws -> NodeRegistry in
            var entries = state.registry.entries
            try change(&entries)
            state.registry = try NodeRegistry(entries: entries)
            return state.registry
        }
        try registry.json().write(to: folder.appendingPathComponent("registry.json"))
        return registry
    }

    /// Gives `node` a new key pair (written over its key files), registered in place of the old
    /// one (`asNext`: beside it, as during a rotation). Returns the old pair.
    @discardableResult
    public func replaceKey(of node: String, asNext: Bool = false) throws -> CurveKeyPair {
        let pair = try CurveKeyPair.generate()
        guard let old = nodeKeys[node] else { throw ConfigurationError("node \(node) is not in this bus's registry") }
        try changeRegistry { entries in
            for index in entries.indices where entries[index].profile.id == node {
                if asNext { entries[index].nextPublicKey = pair.publicKey } else { entries[index].publicKey = pair.publicKey }
            }
        }
        for suffix in ["key", "pub"] { try FileManager.default.removeItem(atPath: folder.appendingPathComponent("\(node).\(suffix)").path) }
        _ = try pair.write(toFolder: folder.path, name: node)
        membership.withLock { $0.keys[node] = pair }
        return old
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (the broker binds it by number, so
    /// nodes can be configured before the broker starts). It is drawn below Linux's ephemeral
    /// range (32768-60999): a port from that range can be taken as the local end of some
    /// outgoing connection while a broker is restarting, and the broker could not bind again.
    static func freePort() throws -> Int {
        let context = try ZMQContext()
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            // Never hand the same port to two buses of this process (tests run in parallel, and a
            // bus whose broker is stopped for a while still counts on its port).
            guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
            let socket = try ZMQSocket(context: context, type: .router)
            defer { socket.close() }
            if (try? socket.bind("tcp://127.0.0.1:\(port)")) != nil { return port }
        }
        throw ConfigurationError("could not find a free port on 127.0.0.1 between 20000 and 32000")
    }

    /// A free TCP port on 127.0.0.1, for tests that run their own processes.
    public static func freePortForTests() throws -> Int { try freePort() }

    public var endpoint: String { brokerConfiguration.endpoint }

    // MARK: Broker

    /// Starts the broker (again) on the bus's endpoint and store.
    @discardableResult
    /// `store` puts something between the broker and its SQLite store (a fault test's full disk).
    public func startBroker(metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                            store wrap: (BrokerStore) -> any BrokerStorage = { $0 }) throws -> Broker {
        let broker = try Broker(configuration: brokerConfiguration, registry: registry, keyPair: brokerKeys,
                                store: wrap(try BrokerStore(path: brokerConfiguration.storePath)), logger: logger, metrics: metrics)
        try broker.start()
        running.withLock { $0.broker = broker }
        return broker
    }

    public var broker: Broker? { running.withLock { $0.broker } }

    public func stopBroker() {
        let broker = running.withLock { state in defer { state.broker = nil }; return state.broker }
        broker?.stop()
    }

    // MARK: Nodes

    public func journalPath(_ id: String) -> String { folder.appendingPathComponent("\(id).journal.sqlite").path }

    /// The configuration a node of this bus runs with.
    public func nodeConfiguration(_ id: String) -> NodeConfiguration {
        let clearance = registry.entry(id: id)?.profile.clearance ?? .unclassified
        var configuration = NodeConfiguration(nodeId: id, brokerEndpoint: endpoint, brokerPublicKey: brokerKeys.publicKey,
                                              secretKeyFile: folder.appendingPathComponent("\(id).key").path,
                                              journalPath: journalPath(id), clearance: clearance.name,
                                              heartbeatIntervalMilliseconds: 100, brokerTimeoutMilliseconds: 1_000,
                                              resendAfterMilliseconds: 1_000, outboxPollMilliseconds: 20,
                                              reconnectMilliseconds: 50, reconnectMaxMilliseconds: 500)
        configuration.registryFile = brokerConfiguration.registryFile
        return configuration
    }

    /// Starts a node (again) with its journal.
    @discardableResult
    public func startNode(_ id: String, metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws -> Node {
        guard let keys = nodeKeys[id] else { throw ConfigurationError("node \(id) is not in this bus's registry") }
        let node = try Node(configuration: nodeConfiguration(id), keyPair: keys, brokerPublicKey: brokerKeys.publicKey,
                            journal: try journal(id), logger: logger, metrics: metrics)
        do {
            try node.start()
        } catch {
            node.stop()
            throw error
        }
        running.withLock { $0.nodes[id] = node }
        return node
    }

    /// Starts every node of the registry.
    public func startAllNodes() throws {
        for entry in registry.entries { try startNode(entry.profile.id) }
    }

    public func node(_ id: String) -> Node? { running.withLock { $0.nodes[id] } }

    public func stopNode(_ id: String) {
        let node = running.withLock { state in state.nodes.removeValue(forKey: id) }
        node?.stop()
    }

    /// A node's journal, opened on its own (as `ctbus publish` and `ctbus journal` do).
    public func journal(_ id: String) throws -> NodeJournal { try NodeJournal(path: journalPath(id)) }

    /// Validates a message and queues it in the outbox of node `id`, as `ctbus publish` does.
    @discardableResult
    public func publish(_ message: BusMessage, from id: String) throws -> String {
        try publish([message], from: id)[0]
    }

    /// Validates messages and queues them together in the outbox of node `id`, signed with one
    /// signature per batch, as `ctbus publish` does with several files.
    @discardableResult
    public func publish(_ messages: [BusMessage], from id: String) throws -> [String] {
        let messages = messages.map { message in
            var message = message
            message.envelope.originator = id
            return message
        }
        return try Publisher.enqueue(messages, into: try journal(id), clearance: registry.entry(id: id)?.profile.clearance ?? .unclassified,
                                     signingKey: try signingKey(of: id), registry: registry)
    }

    /// Queues node `id`'s signed revocation of `messageId`, as `ctbus revoke` does.
    public func revoke(_ messageId: String, from id: String, reason: String) throws {
        try journal(id).revocations.queue(try Revocation.signed(messageId: messageId, reason: reason, by: id, with: try signingKey(of: id)))
    }

    /// The secret signing key of node `id`, read from its key file (as `ctbus publish` reads it).
    public func signingKey(of id: String) throws -> Curve25519.Signing.PrivateKey {
        try messageKeys(of: id).signing
    }

    /// The signing and sealing keys of node `id`, read from its key files.
    public func messageKeys(of id: String) throws -> NodeMessageKeys {
        try NodeMessageKeys(configuration: nodeConfiguration(id))
    }

    /// Waits (bounded) until every node that is running says it is connected.
    @discardableResult
    public func waitUntilConnected(seconds: Double = 15) async -> Bool {
        await Wait.until(seconds: seconds) { allConnected }
    }

    /// Whether every node that is running says it is connected.
    public var allConnected: Bool {
        running.withLock { Array($0.nodes.values) }.allSatisfy(\.isConnected)
    }

    // MARK: Files for separate processes

    /// Writes broker.json and NAME.node.json into the folder, for running `ctbus broker` and
    /// `ctbus node` as processes on this bus. Returns the broker configuration's path.
    @discardableResult
    public func writeConfigurationFiles() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for entry in registry.entries {
            try encoder.encode(nodeConfiguration(entry.profile.id)).write(to: URL(fileURLWithPath: nodeConfigurationPath(entry.profile.id)))
        }
        let brokerPath = folder.appendingPathComponent("broker.json")
        try encoder.encode(brokerConfiguration).write(to: brokerPath)
        return brokerPath.path
    }

    public func nodeConfigurationPath(_ id: String) -> String { folder.appendingPathComponent("\(id).node.json").path }

    /// Stops everything and removes the folder.
    public func shutdown(removeFolder: Bool = true) {
        let (broker, nodes) = running.withLock { state in
            defer { state = Running() }
            return (state.broker, Array(state.nodes.values))
        }
        nodes.forEach { $0.stop() }
        broker?.stop()
        // CTBUS_KEEP_FOLDERS keeps keys, stores, journals and process logs for a post-mortem.
        if removeFolder, ProcessInfo.processInfo.environment["CTBUS_KEEP_FOLDERS"] == nil {
            try? FileManager.default.removeItem(at: folder)
        }
    }
}
