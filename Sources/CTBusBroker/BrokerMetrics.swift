import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Foundation

/// What the broker counts, through swift-metrics: a factory given to the broker (Prometheus in
/// `ctbus broker` with an http section; no-op otherwise). Every handle is made once, here, for
/// the node ids of the registry and the codes and rules of the schema: the loop only
/// increments (an atomic add each), and no label ever takes a value from the wire.
final class BrokerMetrics {
    let accepted: Counter
    private let refusedByCode: [ErrorCode: Counter]
    private let deliveriesByNode: [String: Counter]
    private let policyRefusals: [String: [String: Counter]]
    private let inFlightByNode: [String: Gauge]
    private let connectedByNode: [String: Gauge]
    let connected: Gauge
    private let sessionChanges: [String: Counter]
    let transaction: CoreMetrics.Timer
    let publicationsPerTransaction: Recorder

    /// Session changes counted: opened (Hello), replaced (a newer connection), expired (silent).
    enum SessionChange: String, CaseIterable { case opened, replaced, expired }

    init(factory: any MetricsFactory, nodes: [String]) {
        accepted = Counter(label: "ctbus_broker_publications_accepted_total", factory: factory)
        var refused: [ErrorCode: Counter] = [:]
        for code in ErrorCode.allCases where code != .unspecified {
            refused[code] = Counter(label: "ctbus_broker_publications_refused_total", dimensions: [("code", code.name)], factory: factory)
        }
        refusedByCode = refused
        deliveriesByNode = Dictionary(uniqueKeysWithValues: nodes.map {
            ($0, Counter(label: "ctbus_broker_deliveries_total", dimensions: [("node", $0)], factory: factory))
        })
        policyRefusals = Dictionary(uniqueKeysWithValues: nodes.map { node in
            (node, Dictionary(uniqueKeysWithValues: PolicyRule.allCases.map { rule in
                (rule.rawValue, Counter(label: "ctbus_broker_policy_refusals_total", dimensions: [("node", node), ("rule", rule.rawValue)],
                                        factory: factory))
            }))
        })
        inFlightByNode = Dictionary(uniqueKeysWithValues: nodes.map {
            ($0, Gauge(label: "ctbus_broker_in_flight_deliveries", dimensions: [("node", $0)], factory: factory))
        })
        connectedByNode = Dictionary(uniqueKeysWithValues: nodes.map {
            ($0, Gauge(label: "ctbus_broker_node_connected", dimensions: [("node", $0)], factory: factory))
        })
        connected = Gauge(label: "ctbus_broker_sessions_connected", factory: factory)
        sessionChanges = Dictionary(uniqueKeysWithValues: SessionChange.allCases.map {
            ($0.rawValue, Counter(label: "ctbus_broker_session_changes_total", dimensions: [("change", $0.rawValue)], factory: factory))
        })
        transaction = CoreMetrics.Timer(label: "ctbus_broker_store_transaction_seconds", factory: factory)
        publicationsPerTransaction = Recorder(label: "ctbus_broker_publications_per_transaction", aggregate: true, factory: factory)
        for gauge in inFlightByNode.values { gauge.record(0) }
        for gauge in connectedByNode.values { gauge.record(0) }
        connected.record(0)
    }

    func refused(_ code: ErrorCode) { refusedByCode[code]?.increment() }
    func delivered(to node: String) { deliveriesByNode[node]?.increment() }
    func refused(node: String, rule: String?) { rule.flatMap { policyRefusals[node]?[$0] }?.increment() }
    func inFlight(_ node: String, _ count: Int) { inFlightByNode[node]?.record(count) }
    func session(_ change: SessionChange, node: String, connected count: Int) {
        sessionChanges[change.rawValue]?.increment()
        connectedByNode[node]?.record(change == .expired ? 0 : 1)
        connected.record(count)
    }
}
