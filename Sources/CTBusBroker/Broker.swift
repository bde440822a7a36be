import CTBusMetricNames
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import ServiceLifecycle
import Crypto
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// The CTBus broker: a ROUTER socket with CURVE, a ZAP handler that admits only registered
/// keys, the confidentiality policy, the durable store and the per-node delivery queues.
///
/// A `Service`: `init` checks and keeps the configuration and starts nothing; `run()` starts the
/// broker and stops it on graceful shutdown. In-process users (the local bus, tests, the
/// benchmark) call `start()` and `stop()` themselves.
public final class Broker: Service, Sendable {
    public let configuration: BrokerConfiguration
    /// The registry in force (a reload replaces it).
    public var registry: NodeRegistry { sharedRegistry.current }
    private let sharedRegistry: SharedRegistry
    /// The broker's CURVE public key, which nodes need.
    public let publicKey: String
    /// The sessions, as the loop last wrote them (for `ctbus status`).
    public let status: BrokerStatus
    private let keyPair: CurveKeyPair
    private let logger: Logger
    private let metrics: any MetricsFactory
    private let openStore: @Sendable () throws -> any BrokerStorage
    private let retention: RetentionPolicy
    private let compactionInterval: TimeInterval
    /// Reloads refused because the file did not validate (the loop counts the others).
    private let refusedReloads: Counter
    /// What a started broker holds; nil before `start()` and after `stop()`.
    private let running = Mutex<Running?>(nil)

    private struct Running: Sendable {
        let context: ZMQContext
        let zap: ZAPHandler
        let loop: LoopThread
        let compactor: Compactor
        /// The store's lock, held while the broker runs.
        let lock: FileLock
        let store: any BrokerStorage
        let endpoint: String
    }

    /// A broker on a store that is already open (tests, benchmark).
    public convenience init(configuration: BrokerConfiguration, registry: NodeRegistry, keyPair: CurveKeyPair,
                            store: any BrokerStorage, logger: Logger = Logger(label: "ctbus.broker"),
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        try self.init(configuration: configuration, registry: registry, keyPair: keyPair, logger: logger, metrics: metrics) { store }
    }

    /// A broker that opens its store with `openStore` when it starts. Throws when the
    /// configuration's retention does not read; starts nothing.
    public init(configuration: BrokerConfiguration, registry: NodeRegistry, keyPair: CurveKeyPair,
                logger: Logger = Logger(label: "ctbus.broker"), metrics: any MetricsFactory = NOOPMetricsHandler.instance,
                openStore: @escaping @Sendable () throws -> any BrokerStorage) throws {
        self.configuration = configuration
        refusedReloads = Counter(label: MetricName.brokerRegistryReloadsTotal.rawValue, dimensions: [("outcome", "refused")], factory: metrics)
        retention = try configuration.retentionPolicy()
        compactionInterval = try configuration.compactionInterval()
        sharedRegistry = SharedRegistry(registry)
        publicKey = keyPair.publicKey
        status = BrokerStatus()
        self.keyPair = keyPair
        self.logger = logger
        self.metrics = metrics
        self.openStore = openStore
    }

    /// Starts the broker in this order, so that a failed start leaves nothing behind: bind the
    /// socket (a port already taken fails here, before any file exists), take the store's lock
    /// (a second broker on the same store fails here), then open the store; the loop thread and
    /// the retention timer start last. Returns once the broker listens.
    public func start() throws {
        precondition(running.withLock { $0 == nil }, "the broker was started already")
        let configuration = configuration
        let shared = sharedRegistry
        let context = try ZMQContext()
        // Strangers reconnect again and again (and can change keys): one line per 10 s, then a summary.
        let refusals = SharedThrottledLogger(logger)
        // The User-Id of an admitted connection is its key: the loop looks it up in the registry in
        // force at every frame, so a reload that removes a key takes effect at the next frame.
        let zap: ZAPHandler
        do {
            zap = try ZAPHandler(context: context) { request in
                guard let key = request.curvePublicKey, shared.current.entry(publicKey: key) != nil else {
                    let prefix = "\(request.curvePublicKey?.prefix(8) ?? "none")"
                    refusals.log("zap-refused", .warning, "refused a connection: key not in the registry",
                                 metadata: ["key": "\(prefix)…", "peer": "\(request.address)"])
                    return .deny(reason: "key not in the registry")
                }
                return .allow(userId: key)
            }
        } catch {
            context.shutdown()
            throw error
        }
        let opened = Mutex<(endpoint: String, store: any BrokerStorage, lock: FileLock)?>(nil)
        let loop = LoopThread()
        let (keyPair, logger, metrics, openStore, status) = (keyPair, logger, metrics, openStore, status)
        do {
            try loop.start(name: "broker") { thread in
                let state: BrokerLoop
                do {
                    let socket = try BrokerLoop.bind(context: context, configuration: configuration, keyPair: keyPair)
                    let lock: FileLock
                    let store: any BrokerStorage
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
                    state = BrokerLoop(socket: socket, configuration: configuration, registry: shared, store: store, logger: logger,
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
        let compactor = Compactor(store: started.store, policy: retention, interval: compactionInterval,
                                  registryNodes: { Set(shared.current.entries.map(\.profile.id)) }, logger: logger, metrics: metrics)
        compactor.start()
        running.withLock {
            $0 = Running(context: context, zap: zap, loop: loop, compactor: compactor, lock: started.lock, store: started.store,
                         endpoint: started.endpoint)
        }
        if let recovery = started.store.recovery { logger.warning("store recovered", metadata: ["detail": "\(recovery)"]) }
        logger.info("broker listening", metadata: ["endpoint": "\(started.endpoint)", "nodes": "\(registry.entries.count)"])
    }

    /// Runs the broker as a service until graceful shutdown (or cancellation), then stops it.
    /// Starts it first unless `start()` did (a daemon starts it before anything serves, so a
    /// failed start ends the process before the group runs).
    public func run() async throws {
        if running.withLock({ $0 == nil }) { try start() }
        try? await gracefulShutdown()
        stop()
    }

    private var started: Running {
        guard let running = running.withLock({ $0 }) else { preconditionFailure("the broker is not started") }
        return running
    }

    /// The broker's store (once started).
    public var store: any BrokerStorage { started.store }

    /// The endpoint the broker listens on (once started), with the port resolved when configured as ":*".
    public var endpoint: String { started.endpoint }

    /// Loads everything a configuration file names (keys, registry) and starts on the store it
    /// names. Refuses a secret key or store that other users can read, and a damaged store.
    public convenience init(configurationFile path: String, logger: Logger = Logger(label: "ctbus.broker"),
                            metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        let configuration = try BrokerConfiguration.load(path: path)
        try PrivateFiles.requirePrivate(configuration.secretKeyFile, what: "the broker's secret key file")
        try PrivateFiles.requirePrivate(configuration.storePath, what: "the broker store", withDatabaseFiles: true)
        let keyPair = try CurveKeyPair(secretKeyFile: configuration.secretKeyFile)
        let registry = try Self.loadRegistry(configuration.registryFile)
        let storePath = configuration.storePath
        try self.init(configuration: configuration, registry: registry, keyPair: keyPair, logger: logger, metrics: metrics) {
            // Checked read-only first: nothing is written to a damaged store.
            if let skipped = try BrokerStore.checkAtStart(path: storePath) {
                logger.notice("store checked at start, in part", metadata: ["store": "\(storePath)", "skipped": "\(skipped)"])
            }
            return try BrokerStore(path: storePath)
        }
    }

    /// Puts `registry` in force without dropping a session: recorded in the store's registry
    /// audit first, then applied by the loop before it reads the next frame (sessions of removed
    /// nodes and keys end, queued deliveries of nodes whose entitlement changed are judged again).
    /// Returns what changed. `registry` is valid by construction; a file is read by
    /// `reloadRegistry(file:source:)`.
    @discardableResult
    public func reloadRegistry(_ registry: NodeRegistry, source: String, origin: String? = nil) throws -> [RegistryChange] {
        guard isRunning else { throw ConfigurationError("the broker is stopping; the registry was not reloaded") }
        let request = ReloadRequest(registry: registry, source: source, origin: origin)
        sharedRegistry.ask(request)
        switch request.wait(seconds: 30) {
        case .success(let changes)?: return changes
        case .failure(let error)?: throw error
        case nil: throw ConfigurationError("the broker did not apply the registry within 30 s (it may still do so; see its log)")
        }
    }

    /// Reads and validates the registry file, then reloads it: a file that does not validate
    /// changes nothing and the error names the file, the node and the field.
    @discardableResult
    public func reloadRegistry(file path: String, source: String) throws -> [RegistryChange] {
        let registry: NodeRegistry
        let origin: String
        do {
            // The file's digest goes into the audit, to match it with the version an operator deployed.
            let data = try ConfigurationFile.read(path, what: "registry")
            origin = "\(path), sha256 " + SHA256.hash(data: data).hex.prefix(16) + "…"
            registry = try Self.parseRegistry(data, path: path) // the very bytes hashed
        } catch {
            // The refusal is part of the registry's history too (`ctbus registry reload` reads it there).
            _ = try? store.recordRegistry(source: source, outcome: .refused, detail: "\(error)", registry: nil, changes: [])
            refusedReloads.increment()
            throw error
        }
        return try reloadRegistry(registry, source: source, origin: origin)
    }

    /// The registry in `path`, or an error naming the file, the node and the field.
    public static func loadRegistry(_ path: String) throws -> NodeRegistry {
        try parseRegistry(try ConfigurationFile.read(path, what: "registry"), path: path)
    }

    static func parseRegistry(_ data: Data, path: String) throws -> NodeRegistry {
        do {
            return try NodeRegistry(json: data)
        } catch {
            throw ConfigurationError("registry \(path): \(error.description)")
        }
    }

    /// Applies the retention now, as the broker does every `retention.every`, taking `now` as
    /// the date (tests advance it by years). Returns what went.
    @discardableResult
    public func applyRetention(now: Date = Date()) throws -> CompactionReport {
        try started.compactor.runNow(now: now)
    }

    /// Whether the broker works: it was started (its socket is bound and its store open) and
    /// has not been told to stop.
    public var isRunning: Bool { running.withLock { $0.map { !$0.loop.isStopping } ?? false } }

    /// Stops accepting work, finishes the batch in hand and closes the sockets. Does nothing
    /// when the broker is not running.
    public func stop() {
        guard let running = running.withLock({ state in defer { state = nil }; return state }) else { return }
        running.compactor.stop()
        running.loop.stop()
        running.zap.stop()
        running.context.shutdown()
        running.lock.release()
    }
}
