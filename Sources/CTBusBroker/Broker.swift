import CTBusMetricNames
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Crypto
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
    /// The registry in force (a reload replaces it).
    public var registry: NodeRegistry { sharedRegistry.current }
    private let sharedRegistry: SharedRegistry
    public let store: BrokerStore
    /// The endpoint the broker listens on, with the port resolved when configured as ":*".
    public let endpoint: String
    /// The broker's CURVE public key, which nodes need.
    public let publicKey: String
    /// The sessions, as the loop last wrote them (for `ctbus status`).
    public let status: BrokerStatus

    private let context: ZMQContext
    private let zap: ZAPHandler
    private let compactor: Compactor
    /// Reloads refused because the file did not validate (the loop counts the others).
    private let refusedReloads: Counter
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
        refusedReloads = Counter(label: MetricName.brokerRegistryReloadsTotal.rawValue, dimensions: [("outcome", "refused")], factory: metrics)
        let retention = try configuration.retentionPolicy()
        let compactionInterval = try configuration.compactionInterval()
        let shared = SharedRegistry(registry)
        sharedRegistry = shared
        self.publicKey = keyPair.publicKey
        let status = BrokerStatus()
        self.status = status
        let context = try ZMQContext()
        self.context = context
        // Strangers reconnect again and again (and can change keys): one line per 10 s, then a summary.
        let refusals = SharedThrottledLogger(logger)
        // The User-Id of an admitted connection is its key: the loop looks it up in the registry in
        // force at every frame, so a reload that removes a key takes effect at the next frame.
        zap = try ZAPHandler(context: context) { request in
            guard let key = request.curvePublicKey, shared.current.entry(publicKey: key) != nil else {
                let prefix = "\(request.curvePublicKey?.prefix(8) ?? "none")"
                refusals.log("zap-refused", .warning, "refused a connection: key not in the registry",
                             metadata: ["key": "\(prefix)…", "peer": "\(request.address)"])
                return .deny(reason: "key not in the registry")
            }
            return .allow(userId: key)
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
        endpoint = started.endpoint
        store = started.store
        lock = started.lock
        compactor = Compactor(store: started.store, policy: retention, interval: compactionInterval,
                              registryNodes: { Set(shared.current.entries.map(\.profile.id)) }, logger: logger, metrics: metrics)
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
            origin = "\(path), sha256 " + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined().prefix(16) + "…"
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
        try compactor.runNow(now: now)
    }

    /// Whether the broker works: its socket is bound and its store open (both hold from the end
    /// of `init`), and it has not been told to stop.
    public var isRunning: Bool { !loop.isStopping }

    /// Stops accepting work, finishes the batch in hand and closes the sockets.
    public func stop() {
        compactor.stop()
        loop.stop()
        zap.stop()
        context.shutdown()
        lock.release()
    }

    deinit { stop() }
}
