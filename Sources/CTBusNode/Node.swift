import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// A CTBus node: a DEALER socket with CURVE to the broker, and the node's journal. It sends
/// what waits in the outbox, journals what the broker delivers and then acknowledges it,
/// keeps its session alive with heartbeats and says Hello again after the broker was away.
///
/// A `Service`: `init` reads the configuration, keys and registry and takes the journal's lock,
/// and starts nothing; `run()` starts the node and stops it on graceful shutdown. In-process users
/// (the local bus, tests) call `start()` and `stop()` themselves.
public final class Node: Service, Sendable {
    public let configuration: NodeConfiguration
    public let journal: NodeJournal
    /// The node's signing and sealing keys (its configuration names the files; the node's
    /// console signs with them too).
    public let messageKeys: NodeMessageKeys
    /// The node's registry copy, read at start: who receives what, and the keys to seal to.
    let registry: NodeRegistry
    let state = SharedStatus()
    /// The journal's lock, held from `init` to `stop()`.
    private let lock: FileLock
    private let keyPair: CurveKeyPair
    private let brokerPublicKey: String
    private let logger: Logger
    private let metrics: any MetricsFactory
    /// What a started node holds; nil before `start()` and after `stop()`.
    private let running = Mutex<Running?>(nil)

    private struct Running: Sendable {
        let context: ZMQContext
        let loop: LoopThread
        let waker: Waker
    }

    /// A node on a journal that is already open; takes the journal's lock (a second node on the
    /// same journal, in this process or another, is refused).
    public convenience init(configuration: NodeConfiguration, keyPair: CurveKeyPair, brokerPublicKey: String,
                            journal: NodeJournal, logger: Logger = Logger(label: "ctbus.node"),
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        let lock = try FileLock(guarding: journal.path, owner: "node \(configuration.nodeId)")
        try self.init(configuration: configuration, keyPair: keyPair, brokerPublicKey: brokerPublicKey, journal: journal,
                      lock: lock, logger: logger, metrics: metrics)
    }

    init(configuration: NodeConfiguration, keyPair: CurveKeyPair, brokerPublicKey: String,
         journal: NodeJournal, lock: FileLock, logger: Logger, metrics: any MetricsFactory) throws {
        self.lock = lock
        self.configuration = configuration
        self.journal = journal
        // The registry is this node's own copy of every originator's signing key: deliveries are
        // checked against it, never against anything the broker says.
        guard let registry = try configuration.loadRegistry() else {
            throw ConfigurationError("node \(configuration.nodeId): registryFile is required: the node checks the signature of every message it receives against the keys the registry lists")
        }
        let keys = try NodeMessageKeys(configuration: configuration, registry: registry)
        messageKeys = keys
        self.registry = registry
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeId)"
        self.logger = logger
        self.keyPair = keyPair
        self.brokerPublicKey = brokerPublicKey
        self.metrics = metrics
    }

    /// Starts the node's loop thread; returns once its socket is connecting to the broker.
    public func start() throws {
        precondition(running.withLock { $0 == nil }, "the node was started already")
        let (configuration, journal, registry, keyPair, brokerPublicKey, logger, metrics, status, keys) =
            (configuration, journal, registry, keyPair, brokerPublicKey, logger, metrics, state, messageKeys)
        let context = try ZMQContext()
        let wakeEndpoint = "inproc://ctbus-node-wake-\(UUID().uuidString)"
        if let recovery = journal.recovery { logger.warning("journal recovered", metadata: ["detail": "\(recovery)"]) }
        logger.info("connecting to the broker", metadata: [
            "endpoint": "\(configuration.brokerEndpoint)", "broker-key": "\(brokerPublicKey.prefix(8))…", "journal": "\(journal.path)"])
        let loop = LoopThread()
        do {
            try loop.start(name: "node-\(configuration.nodeId)") { thread in
                let nodeLoop: NodeLoop
                do {
                    nodeLoop = try NodeLoop(context: context, configuration: configuration, keyPair: keyPair,
                                            brokerPublicKey: brokerPublicKey, journal: journal, registry: registry,
                                            sealingKey: keys.sealing, status: status,
                                            wakeEndpoint: wakeEndpoint, logger: logger, metrics: metrics)
                } catch {
                    thread.ready(.failure(error))
                    return
                }
                thread.ready(.success(()))
                nodeLoop.run(until: thread)
            }
            let waker = try Waker(context: context, endpoint: wakeEndpoint)
            running.withLock { $0 = Running(context: context, loop: loop, waker: waker) }
        } catch {
            loop.stop()
            context.shutdown()
            throw error
        }
    }

    /// Runs the node as a service until graceful shutdown (or cancellation), then stops it.
    /// Starts it first unless `start()` did (a daemon starts it before anything serves, so a
    /// failed start ends the process before the group runs).
    public func run() async throws {
        if running.withLock({ $0 == nil }) { try start() }
        try? await gracefulShutdown()
        stop()
    }

    /// Validates, signs and queues messages in this node's outbox in one transaction, and wakes the
    /// node so they go out at once (for publishers in this process; `ctbus publish` from another
    /// process is picked up at the next outbox poll). Returns the message ids.
    @discardableResult
    public func publish(_ messages: [BusMessage]) throws -> [String] {
        // Published and signed as this node, whatever originator the message named.
        let messages = messages.map { message in
            var message = message
            message.envelope.originator = configuration.nodeId
            return message
        }
        // The registry as it is now (read only for sealed messages): a sealed message is sealed to
        // the recipients the broker, which may have reloaded its registry since this node
        // started, will decide. A file that does not read is an error, not the copy read at start.
        let ids = try Publisher.enqueue(messages, into: journal, clearance: configuration.clearanceLevel, signingKey: messageKeys.signing,
                                        registry: try configuration.loadRegistry() ?? registry)
        running.withLock { $0?.waker.wake() }
        return ids
    }

    /// Loads the configuration file, keys and journal: the daemon's way. Refuses a
    /// secret key or journal that other users can read, a journal another process runs, and a
    /// damaged journal (checked read-only, before anything is written to it).
    public convenience init(configurationFile path: String, logger: Logger = Logger(label: "ctbus.node"),
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        let configuration = try NodeConfiguration.load(path: path)
        let journalPath = configuration.journalPath
        try PrivateFiles.requirePrivate(configuration.secretKeyFile, what: "the node's secret key file")
        try PrivateFiles.requirePrivate(journalPath, what: "the journal", withDatabaseFiles: true)
        let keyPair = try CurveKeyPair(secretKeyFile: configuration.secretKeyFile)
        let brokerKey = try configuration.resolvedBrokerPublicKey()
        let lock = try FileLock(guarding: journalPath, owner: "node \(configuration.nodeId)")
        let existed = FileManager.default.fileExists(atPath: journalPath)
        do {
            if let skipped = try NodeJournal.checkAtStart(path: journalPath) {
                logger.notice("journal checked at start, in part", metadata: ["journal": "\(journalPath)", "skipped": "\(skipped)"])
            }
            let journal = try NodeJournal(path: journalPath)
            try self.init(configuration: configuration, keyPair: keyPair, brokerPublicKey: brokerKey, journal: journal,
                          lock: lock, logger: logger, metrics: metrics)
        } catch {
            lock.discard()
            // A node that does not start leaves no empty journal behind (a later start with the
            // configuration fixed creates it as new).
            if !existed {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: journalPath + suffix) }
            }
            throw error
        }
    }

    /// Whether the broker welcomed this node and has not gone silent since.
    public var isConnected: Bool { state.withLock { $0.connected } }

    /// Errors the broker sent this node, oldest first (for tools and tests).
    public var errorsReceived: [BusError] { state.withLock { $0.errors } }

    /// How often the broker gave this node's session to another connection (SESSION_REPLACED).
    public var sessionsReplaced: Int { state.withLock { $0.sessionsReplaced } }

    /// Deliveries this node refused to journal: a signature or disclosure that does not verify,
    /// or a message above its clearance.
    public var refusedDeliveries: Int { state.withLock { $0.refusedDeliveries } }

    /// Why, for the latest 100 refused deliveries (for tools and tests).
    public var deliveryRefusals: [BusError] { state.withLock { $0.refusals } }

    /// Stops the loop (the journal holds everything acknowledged) and closes the socket.
    public func stop() {
        if let running = running.withLock({ state in defer { state = nil }; return state }) {
            running.loop.stop()
            running.waker.close()
            running.context.shutdown()
        }
        lock.release()
    }
}

/// What the node loop shares with the outside, under a lock.
struct NodeStatus {
    var connected = false
    var errors: [BusError] = []
    var refusedDeliveries = 0
    var refusals: [BusError] = []
    var sessionsReplaced = 0
}

final class SharedStatus: Sendable {
    private let mutex = Mutex(NodeStatus())

    func withLock<T>(_ body: (inout NodeStatus) -> T) -> T {
        mutex.withLock { body(&$0) }
    }
}

/// The sending end of the node loop's wake-up pipe. A ZeroMQ socket is not thread-safe, so
/// callers from any thread take turns under a lock.
final class Waker: @unchecked Sendable {
    private let lock = NSLock()
    private var socket: ZMQSocket?

    init(context: ZMQContext, endpoint: String) throws {
        let socket = try ZMQSocket(context: context, type: .push)
        try socket.setHighWaterMarks(send: 1, receive: 1)
        try socket.connect(endpoint)
        self.socket = socket
    }

    /// Nudges the loop; a full pipe means a wake-up is already pending, which is enough.
    func wake() {
        lock.withLock { _ = try? socket?.send([[1]], dontWait: true) }
    }

    func close() {
        lock.withLock {
            socket?.close()
            socket = nil
        }
    }
}
