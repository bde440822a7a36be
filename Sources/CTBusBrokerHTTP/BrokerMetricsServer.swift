import CTBusMetricNames
import CTBusBroker
import CTBusMetrics
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import Logging
import Prometheus

/// The broker's HTTP side (`http` in its configuration): `/metrics`, `/health`, `/ready`. The
/// loop's counters arrive through `endpoint.factory`; queue depth and the age of the oldest
/// queued message per node are read from the store at each scrape, in a read transaction
/// (WAL: it neither waits for the broker's writes nor delays them). Node ids come from the
/// registry, never from the wire.
public struct BrokerMetricsServer: Sendable {
    public let endpoint: MetricsEndpoint
    public let host: String
    public let port: Int
    let logger: Logger

    public init(endpoint: MetricsEndpoint, host: String = "127.0.0.1", port: Int, logger: Logger) throws(ConfigurationError) {
        guard (1...65_535).contains(port) else { throw ConfigurationError("the broker's http port must be 1 to 65535") }
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// The application serving `broker`'s figures; `onRunning` is told once it listens.
    public func application(broker: Broker, onRunning: @escaping @Sendable () async -> Void = {}) -> some ApplicationProtocol {
        let router = Router()
        let endpoint = endpoint
        let store = broker.store
        let logger = logger
        let problems = SharedThrottledLogger(logger, period: .seconds(60))
        endpoint.addRoutes(to: router, refresh: {
            // Store reads run on NIO's thread pool: a scrape never holds a cooperative thread.
            try? await NIOThreadPool.singleton.runIfActive {
                do {
                    let figures = try store.queueFigures()
                    let now = Date()
                    // The registry in force (a reload may have added nodes), and removed nodes whose
                    // queues still wait out their grace period.
                    for node in Set(broker.registry.entries.map(\.profile.id)).union(figures.keys).sorted() {
                        let figure = figures[node]
                        endpoint.set(.brokerQueueDepth, [("node", node)], to: Double(figure?.depth ?? 0))
                        endpoint.set(.brokerQueueOldestAgeSeconds, [("node", node)],
                                     to: figure?.oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                    }
                    endpoint.set(.brokerStoreMessages, to: Double(try store.messageCount()))
                } catch {
                    problems.log("figures", .warning, "metrics: could not read the store's queue figures: \(error)")
                }
            }
        }, ready: {
            broker.isRunning ? nil : "the broker is stopping"
        })
        router.get("/status") { _, _ in
            let body = try await NIOThreadPool.singleton.runIfActive { try BrokerStatusReport.make(broker: broker).json() }
            return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "ctbus-broker"),
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }
}

/// What `ctbus status` shows: a line per registered node and the broker's own figures, from the
/// loop's snapshot and a read transaction on the store.
public struct BrokerStatusReport: Codable, Sendable {
    public struct Node: Codable, Sendable {
        public let node: String
        public let role: String
        public let clearance: String
        public let connected: Bool
        public let since: Date?
        public let queueDepth: Int
        public let oldestQueuedAt: Date?
        public let inFlight: Int
        public let lastAcknowledgedAt: Date?
    }

    public let startedAt: Date
    public let sessionsConnected: Int
    public let storeMessages: Int
    /// Messages the retention removed from the store, in all.
    public let removedByRetention: Int?
    /// When the registry in force was applied (at start, or by the last reload that changed it).
    public let registryAppliedAt: Date?
    public let nodes: [Node]

    public static func make(broker: Broker) throws -> BrokerStatusReport {
        let sessions = broker.status.snapshot
        let queues = try broker.store.queueFigures()
        let nodes = broker.registry.entries.map { entry in
            let id = entry.profile.id
            let session = sessions[id]
            return Node(node: id, role: entry.profile.role.rawValue, clearance: entry.profile.clearance.name,
                        connected: session?.connected ?? false, since: session?.since, queueDepth: queues[id]?.depth ?? 0,
                        oldestQueuedAt: queues[id]?.oldest, inFlight: session?.inFlight ?? 0,
                        lastAcknowledgedAt: session?.lastAcknowledgedAt)
        }
        return BrokerStatusReport(startedAt: broker.status.startedAt, sessionsConnected: nodes.filter(\.connected).count,
                                  storeMessages: try broker.store.messageCount(), removedByRetention: try broker.store.removedByRetention(),
                                  registryAppliedAt: try broker.store.registryAppliedAt(), nodes: nodes)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .utcTime
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .utcTime
        return decoder
    }()

    public func json() throws -> Data { try Self.encoder.encode(self) }
}
