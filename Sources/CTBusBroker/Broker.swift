import CTBusJournal
import CTBusPolicy
import CTBusSchema
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

    private let context: ZMQContext
    private let zap: ZAPHandler
    private let loop = LoopThread()

    public init(configuration: BrokerConfiguration, registry: NodeRegistry, keyPair: CurveKeyPair,
                store: BrokerStore, logger: Logger = Logger(label: "ctbus.broker")) throws {
        self.configuration = configuration
        self.registry = registry
        self.store = store
        self.publicKey = keyPair.publicKey
        let context = try ZMQContext()
        self.context = context
        zap = try ZAPHandler(context: context) { request in
            guard let key = request.curvePublicKey, let entry = registry.entry(publicKey: key) else {
                var logger = logger
                logger[metadataKey: "peer"] = "\(request.address)"
                logger.warning("refused a connection: key not in the registry",
                               metadata: ["key": "\(request.curvePublicKey?.prefix(8) ?? "none")…"])
                return .deny(reason: "key not in the registry")
            }
            return .allow(userId: entry.profile.id)
        }
        let bound = Mutex<String>("")
        do {
            try loop.start(name: "broker") { thread in
                let state: BrokerLoop
                do {
                    state = try BrokerLoop(context: context, configuration: configuration, registry: registry,
                                           keyPair: keyPair, store: store, logger: logger)
                    bound.withLock { $0 = state.socket.lastEndpoint }
                } catch {
                    thread.ready(.failure(error))
                    return
                }
                thread.ready(.success(()))
                state.run(until: thread)
            }
        } catch {
            zap.stop()
            throw error
        }
        endpoint = bound.withLock { $0 }
        if let recovery = store.recovery { logger.warning("store recovered", metadata: ["detail": "\(recovery)"]) }
        logger.info("broker listening", metadata: ["endpoint": "\(endpoint)", "nodes": "\(registry.entries.count)"])
    }

    /// Loads everything a configuration file names (keys, registry, store) and starts.
    public convenience init(configurationFile path: String, logger: Logger = Logger(label: "ctbus.broker")) throws {
        let configuration = try BrokerConfiguration.load(path: path)
        let keyPair = try CurveKeyPair(secretKeyFile: configuration.secretKeyFile)
        let registry: NodeRegistry
        do {
            registry = try NodeRegistry(json: try ConfigurationFile.read(configuration.registryFile, what: "registry"))
        } catch let error as RegistryError {
            throw ConfigurationError("registry \(configuration.registryFile): \(error.description)")
        }
        let store = try BrokerStore(path: configuration.storePath)
        try self.init(configuration: configuration, registry: registry, keyPair: keyPair, store: store, logger: logger)
    }

    /// Stops accepting work, finishes the batch in hand and closes the sockets.
    public func stop() {
        loop.stop()
        zap.stop()
        context.shutdown()
    }

    deinit { stop() }
}
