import CTBusJournal
import CTBusSchema
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// A CTBus node: a DEALER socket with CURVE to the broker, and the node's journal. It sends
/// what waits in the outbox, journals what the broker delivers and then acknowledges it,
/// keeps its session alive with heartbeats and says Hello again after the broker was away.
///
/// `init` starts it on its own thread; `stop()` ends it.
public final class Node: Sendable {
    public let configuration: NodeConfiguration
    public let journal: NodeJournal
    private let context: ZMQContext
    private let loop = LoopThread()
    let state = SharedStatus()

    public init(configuration: NodeConfiguration, keyPair: CurveKeyPair, brokerPublicKey: String,
                journal: NodeJournal, logger: Logger = Logger(label: "ctbus.node")) throws {
        self.configuration = configuration
        self.journal = journal
        let context = try ZMQContext()
        self.context = context
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.nodeId)"
        let status = state
        if let recovery = journal.recovery { logger.warning("journal recovered", metadata: ["detail": "\(recovery)"]) }
        try loop.start(name: "node-\(configuration.nodeId)") { [logger] thread in
            let nodeLoop: NodeLoop
            do {
                nodeLoop = try NodeLoop(context: context, configuration: configuration, keyPair: keyPair,
                                        brokerPublicKey: brokerPublicKey, journal: journal, status: status, logger: logger)
            } catch {
                thread.ready(.failure(error))
                return
            }
            thread.ready(.success(()))
            nodeLoop.run(until: thread)
        }
    }

    /// Loads the configuration file, keys and journal, and starts.
    public convenience init(configurationFile path: String, logger: Logger = Logger(label: "ctbus.node")) throws {
        let configuration = try NodeConfiguration.load(path: path)
        let keyPair = try CurveKeyPair(secretKeyFile: configuration.secretKeyFile)
        let brokerKey = try CurveKeyPair.publicKey(fromFileOrValue: configuration.brokerPublicKey)
        let journal = try NodeJournal(path: configuration.journalPath)
        try self.init(configuration: configuration, keyPair: keyPair, brokerPublicKey: brokerKey, journal: journal, logger: logger)
    }

    /// Whether the broker welcomed this node and has not gone silent since.
    public var isConnected: Bool { state.withLock { $0.connected } }

    /// Errors the broker sent this node, oldest first (for tools and tests).
    public var errorsReceived: [BusError] { state.withLock { $0.errors } }

    /// Deliveries this node refused to journal because they were above its clearance.
    public var refusedDeliveries: Int { state.withLock { $0.refusedDeliveries } }

    /// Stops the loop (the journal holds everything acknowledged) and closes the socket.
    public func stop() {
        loop.stop()
        context.shutdown()
    }

    deinit { stop() }
}

/// What the node loop shares with the outside, under a lock.
struct NodeStatus {
    var connected = false
    var errors: [BusError] = []
    var refusedDeliveries = 0
}

final class SharedStatus: Sendable {
    private let mutex = Mutex(NodeStatus())

    func withLock<T>(_ body: (inout NodeStatus) -> T) -> T {
        mutex.withLock { body(&$0) }
    }
}
