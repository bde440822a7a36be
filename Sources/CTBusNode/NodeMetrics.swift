import CTBusMetricNames
import CoreMetrics

/// What the node loop counts, through swift-metrics (Prometheus when `ctbus node` serves its
/// console, whose `/metrics` shows them; no-op otherwise). Handles made once.
final class NodeMetrics {
    /// From a publication's first sending to the broker's acknowledgement.
    let publishAck: CoreMetrics.Timer
    let journaled: Counter
    /// Deliveries the node refused to journal, by reason (`DeliveryCheck.Reason`: a signature
    /// or disclosure that does not verify, above its clearance).
    private let refused: [DeliveryCheck.Reason: Counter]
    private let rootsVerified: Counter
    private let rootsReused: Counter

    init(factory: any MetricsFactory) {
        publishAck = CoreMetrics.Timer(label: MetricName.nodePublishAckSeconds.rawValue, factory: factory)
        journaled = Counter(label: MetricName.nodeDeliveriesJournaledTotal.rawValue, factory: factory)
        rootsVerified = Counter(label: MetricName.nodeBatchRootsTotal.rawValue, dimensions: [("outcome", "verified")], factory: factory)
        rootsReused = Counter(label: MetricName.nodeBatchRootsTotal.rawValue, dimensions: [("outcome", "reused")], factory: factory)
        refused = Dictionary(uniqueKeysWithValues: DeliveryCheck.Reason.allCases.map { reason in
            (reason, Counter(label: MetricName.nodeDeliveriesRefusedTotal.rawValue, dimensions: [("reason", reason.rawValue)], factory: factory))
        })
    }

    func refused(_ reason: DeliveryCheck.Reason) {
        refused[reason]?.increment()
    }

    /// Batch roots verified with Ed25519, and claims taken from roots verified before.
    func batchRoots(verified: Int, reused: Int) {
        if verified > 0 { rootsVerified.increment(by: Int64(verified)) }
        if reused > 0 { rootsReused.increment(by: Int64(reused)) }
    }
}
