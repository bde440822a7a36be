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
            "ctbus_broker_store_transaction_seconds": [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5]
                .map { Duration.nanoseconds(Int64($0 * 1e9)) },
            "ctbus_node_publish_ack_seconds": [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300]
                .map { Duration.nanoseconds(Int64($0 * 1e9)) },
        ]
        factory.valueHistogramBuckets = ["ctbus_broker_publications_per_transaction": [1, 2, 5, 10, 20, 50, 100, 200, 512]]
        self.factory = factory
    }

    /// Sets a gauge read on demand (at a scrape), such as a queue depth.
    public func set(_ name: String, _ labels: [(String, String)] = [], to value: Double) {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: ""), labels: labels).set(value)
    }

    /// What each metric means, written as `# HELP` before its `# TYPE` line (swift-metrics has no
    /// place for it, and Prometheus's lint asks for it). The closing list of the metrics, too.
    public static let help: [String: String] = [
        "ctbus_broker_publications_accepted_total": "Publications the broker stored (each once, resends not counted).",
        "ctbus_broker_publications_refused_total": "Publications the broker refused, by error code (PROTOCOL.md section 8).",
        "ctbus_broker_deliveries_total": "Deliver frames sent to a node (messages and revocations; sent again after a reconnection).",
        "ctbus_broker_policy_refusals_total": "Deliveries the policy withheld from a node, by rule, when a publication was stored.",
        "ctbus_broker_in_flight_deliveries": "Deliveries sent to a node and not acknowledged yet (its credit in use).",
        "ctbus_broker_node_connected": "1 while the node has a session with the broker, else 0.",
        "ctbus_broker_sessions_connected": "Nodes with a session now.",
        "ctbus_broker_registry_reloads_total": "Registry reloads: applied, unchanged, or refused (the file did not validate, or the store could not record it).",
        "ctbus_broker_retention_removed_total": "What retention removed: messages (with their audit), and queue entries of removed nodes.",
        "ctbus_broker_session_changes_total": "Sessions opened (Hello), replaced (a newer connection), expired (no word from the node) and ended (a registry reload removed the node or its key).",
        "ctbus_broker_store_transaction_seconds": "Time of each store transaction that stores publications (with its fsync).",
        "ctbus_broker_publications_per_transaction": "Publications stored together in one transaction.",
        "ctbus_broker_queue_depth": "Deliveries queued for a node and not acknowledged yet (read from the store at each scrape).",
        "ctbus_broker_queue_oldest_age_seconds": "Age of the oldest message queued for a node; 0 when its queue is empty.",
        "ctbus_broker_store_messages": "Publications the broker's store holds.",
        "ctbus_node_journal_entries": "Entries in the node's journal.",
        "ctbus_node_outbox_depth": "Publications in the node's outbox, not acknowledged by the broker yet.",
        "ctbus_node_outbox_refused": "Publications of the node the broker refused for good.",
        "ctbus_node_drafts": "Drafts kept in the node's journal.",
        "ctbus_node_search_unindexed_entries": "Newest journal entries the console's search index does not hold yet.",
        "ctbus_node_broker_session_open": "1 while the node daemon runs and has a session with the broker, else 0.",
        "ctbus_node_publish_ack_seconds": "Time from a publication's first sending to the broker's acknowledgement (node serving its console).",
        "ctbus_node_deliveries_journaled_total": "Deliveries the node journaled (duplicates not counted).",
        "ctbus_node_deliveries_refused_total": "Deliveries and revocations the node refused, by reason: unsigned, unknown_signing_key, signature_invalid, disclosure_mismatch, sealed_to_mismatch, seal_invalid, non_canonical, invalid, malformed, clearance, policy (releasability or a Member State restriction), revocation_invalid.",
        "ctbus_node_journal_verify_failures_total": "Journal verify runs (by the console: at start, hourly, on demand) that found damage or could not run.",
    ]

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
    public func addRoutes(to router: Router<some RequestContext>, refresh: @escaping @Sendable () -> Void,
                          ready: @escaping @Sendable () -> String?) {
        let registry = registry
        router.get("/metrics") { _, _ in
            refresh()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: Self.withHelp(registry.emitToString()))))
        }
        router.get("/health") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "alive\n")))
        }
        router.get("/ready") { _, _ in
            let problem = ready()
            return Response(status: problem == nil ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: (problem ?? "ready") + "\n")))
        }
    }
}
