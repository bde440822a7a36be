import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The CTBus broker: a ROUTER socket with CURVE, a ZAP handler that admits only registered
/// keys, the confidentiality policy, the durable store and the per-node delivery queues.
///
/// `init` starts it on its own threads and returns once it listens; `stop()` shuts it down.
public final class Broker: Sendable {
    public let configuration: BrokerConfiguration
    public let registry: NodeRegistry
    public let store: BrokerStore
    /// The endpoint the broker listens on, with the port resolved when configured as ":*".
    public let endpoint: String
    /// The broker's CURVE public key, which nodes need.
    public let publicKey: String
    /// The sessions, as the loop last wrote them (for `ctbus status`).
    public let status: BrokerStatus

    private let context: ZMQContext
    private let zap: ZAPHandler
    private let loop = LoopThread()
    /// The store's lock, held while the broker runs.
    private let lock: FileLock

    /// Starts a broker on a store that is already open (tests, benchmark).
    public convenience init(configuration: BrokerConfiguration, registry: NodeRegistry, keyPair: CurveKeyPair,
                            store: BrokerStore, logger: Logger = Logger(label: "ctbus.broker"),
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        try self.init(configuration: configuration, registry: registry, keyPair: keyPair, logger: logger, metrics: metrics) { store }
    }

    /// Starts the broker in this order, so that a failed start leaves nothing behind: bind the
    /// socket (a port already taken fails here, before any file exists), take the store's lock
    /// (a second broker on the same store fails here), then `openStore`.
    public init(configuration: BrokerConfiguration, registry: NodeRegistry, keyPair: CurveKeyPair,
                logger: Logger = Logger(label: "ctbus.broker"), metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                openStore: @escaping @Sendable () throws -> BrokerStore) throws {
        self.configuration = configuration
        self.registry = registry
        self.publicKey = keyPair.publicKey
        let status = BrokerStatus()
        self.status = status
        let context = try ZMQContext()
        self.context = context
        // Strangers reconnect again and again (and can change keys): one line per 10 s, then a summary.
        let refusals = SharedThrottledLogger(logger)
        zap = try ZAPHandler(context: context) { request in
            guard let key = request.curvePublicKey, let entry = registry.entry(publicKey: key) else {
                let prefix = "\(request.curvePublicKey?.prefix(8) ?? "none")"
                refusals.log("zap-refused", .warning, "refused a connection: key not in the registry",
                             metadata: ["key": "\(prefix)…", "peer": "\(request.address)"])
                return .deny(reason: "key not in the registry")
            }
            return .allow(userId: entry.profile.id)
        }
        let opened = Mutex<(endpoint: String, store: BrokerStore, lock: FileLock)?>(nil)
        do {
            try loop.start(name: "broker") { thread in
                let state: BrokerLoop
                do {
                    let socket = try BrokerLoop.bind(context: context, configuration: configuration, keyPair: keyPair)
                    let lock: FileLock
                    let store: BrokerStore
                    do {
                        lock = try FileLock(guarding: configuration.storePath, owner: "a broker")
                        do {
                            store = try openStore()
                        } catch {
                            lock.discard()
                            throw error
                        }
                    } catch {
                        socket.close()
                        throw error
                    }
                    state = BrokerLoop(socket: socket, configuration: configuration, registry: registry, store: store, logger: logger,
                                       metrics: metrics, status: status)
                    opened.withLock { $0 = (socket.lastEndpoint, store, lock) }
                } catch {
                    thread.ready(.failure(error))
                    return
                }
                thread.ready(.success(()))
                state.run(until: thread)
            }
        } catch {
            zap.stop()
            context.shutdown()
            throw error
        }
        let started = opened.withLock { $0 }!
        endpoint = started.endpoint
        store = started.store
        lock = started.lock
        if let recovery = store.recovery { logger.warning("store recovered", metadata: ["detail": "\(recovery)"]) }
        logger.info("broker listening", metadata: ["endpoint": "\(endpoint)", "nodes": "\(registry.entries.count)"])
    }

    /// Loads everything a configuration file names (keys, registry) and starts on the store it
    /// names. Refuses a secret key or store that other users can read, and a damaged store.
    public convenience init(configurationFile path: String, logger: Logger = Logger(label: "ctbus.broker"),
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        let configuration = try BrokerConfiguration.load(path: path)
        try PrivateFiles.requirePrivate(configuration.secretKeyFile, what: "the broker's secret key file")
        try PrivateFiles.requirePrivate(configuration.storePath, what: "the broker store", withDatabaseFiles: true)
        let keyPair = try CurveKeyPair(secretKeyFile: configuration.secretKeyFile)
        let registry: NodeRegistry
        do {
            registry = try NodeRegistry(json: try ConfigurationFile.read(configuration.registryFile, what: "registry"))
        } catch let error as RegistryError {
            throw ConfigurationError("registry \(configuration.registryFile): \(error.description)")
        }
        let storePath = configuration.storePath
        try self.init(configuration: configuration, registry: registry, keyPair: keyPair, logger: logger, metrics: metrics) {
            // Checked read-only first: nothing is written to a damaged store.
            try BrokerStore.checkAtStart(path: storePath)
            return try BrokerStore(path: storePath)
        }
    }

    /// Whether the broker works: its socket is bound and its store open (both hold from the end
    /// of `init`), and it has not been told to stop.
    public var isRunning: Bool { !loop.isStopping }

    /// Stops accepting work, finishes the batch in hand and closes the sockets.
    public func stop() {
        loop.stop()
        zap.stop()
        context.shutdown()
        lock.release()
    }

    deinit { stop() }
}
