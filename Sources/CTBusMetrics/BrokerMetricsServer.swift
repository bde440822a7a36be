import CTBusBroker
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Hummingbird
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
        let nodes = broker.registry.entries.map(\.profile.id)
        let store = broker.store
        let logger = logger
        let problems = SharedThrottledLogger(logger, period: .seconds(60))
        endpoint.addRoutes(to: router, refresh: {
            do {
                let figures = try store.queueFigures()
                let now = Date()
                for node in nodes {
                    let figure = figures[node]
                    endpoint.set("ctbus_broker_queue_depth", [("node", node)], to: Double(figure?.depth ?? 0))
                    endpoint.set("ctbus_broker_queue_oldest_age_seconds", [("node", node)],
                                 to: figure?.oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                }
                endpoint.set("ctbus_broker_store_messages", to: Double(try store.messageCount()))
            } catch {
                problems.log("figures", .warning, "metrics: could not read the store's queue figures: \(error)")
            }
        }, ready: {
            broker.isRunning ? nil : "the broker is stopping"
        })
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "ctbus-broker"),
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }
}
