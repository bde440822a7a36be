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

    init(factory: any MetricsFactory) {
        publishAck = CoreMetrics.Timer(label: MetricName.nodePublishAckSeconds.rawValue, factory: factory)
        journaled = Counter(label: MetricName.nodeDeliveriesJournaledTotal.rawValue, factory: factory)
        refused = Dictionary(uniqueKeysWithValues: DeliveryCheck.Reason.allCases.map { reason in
            (reason, Counter(label: MetricName.nodeDeliveriesRefusedTotal.rawValue, dimensions: [("reason", reason.rawValue)], factory: factory))
        })
    }

    func refused(_ reason: DeliveryCheck.Reason) {
        refused[reason]?.increment()
    }
}
