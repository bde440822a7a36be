import CTBusMetricNames
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus

/// A process's metrics in the Prometheus text format, with `/health` and `/ready`: one
/// collector registry (its own, never swift-metrics' global one, so that several brokers and
/// nodes in one test process keep their figures apart), the swift-metrics factory that fills
/// it, and the routes that serve it. Serving reads atomics and a snapshot: it never waits for
/// the broker or node loop.
public final class MetricsEndpoint: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Give this to the broker or node: what they count lands in `registry`.
    public let factory: PrometheusMetricsFactory

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Store transactions take from 0.1 ms (one small batch, no fsync wait) to seconds (a
        // full disk, a stalled device); publish-to-acknowledge from 1 ms to minutes (a broker away).
        factory.durationHistogramBuckets = [
            MetricName.brokerStoreTransactionSeconds.rawValue: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5]
                .map { Duration.nanoseconds(Int64($0 * 1e9)) },
            MetricName.nodePublishAckSeconds.rawValue: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300]
                .map { Duration.nanoseconds(Int64($0 * 1e9)) },
        ]
        factory.valueHistogramBuckets = [MetricName.brokerPublicationsPerTransaction.rawValue: [1, 2, 5, 10, 20, 50, 100, 200, 512]]
        self.factory = factory
    }

    /// Sets a gauge read on demand (at a scrape), such as a queue depth.
    public func set(_ name: MetricName, _ labels: [(String, String)] = [], to value: Double) {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name.rawValue, unitName: "", helpText: ""), labels: labels).set(value)
    }

    /// What each metric means, written as `# HELP` before its `# TYPE` line.
    public static let help: [String: String] = Dictionary(uniqueKeysWithValues: MetricName.allCases.map { ($0.rawValue, $0.help) })

    /// The registry's text with a `# HELP` line before each `# TYPE` line this module knows.
    static func withHelp(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count + 4_096)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first, let help = help[String(name)] {
                result += "# HELP \(name) \(help)\n"
            }
            result += line
            result += "\n"
        }
        if result.hasSuffix("\n\n") { result.removeLast() }
        return result
    }

    /// `/metrics` (after `refresh` sets the figures read on demand, such as queue depths),
    /// `/health` (the process answers) and `/ready` (`ready` says whether it can work, and if
    /// not, why: 503).
    public func addRoutes(to router: Router<some RequestContext>, refresh: @escaping @Sendable () async -> Void,
                          ready: @escaping @Sendable () async -> String?) {
        let registry = registry
        router.get("/metrics") { _, _ in
            await refresh()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: Self.withHelp(registry.emitToString()))))
        }
        router.get("/health") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "alive\n")))
        }
        router.get("/ready") { _, _ in
            let problem = await ready()
            return Response(status: problem == nil ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: (problem ?? "ready") + "\n")))
        }
    }
}
