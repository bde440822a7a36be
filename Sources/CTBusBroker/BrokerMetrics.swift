import CTBusMetricNames
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
    private var deliveriesByNode: [String: Counter] = [:]
    private var policyRefusals: [String: [String: Counter]] = [:]
    private var inFlightByNode: [String: Gauge] = [:]
    private var connectedByNode: [String: Gauge] = [:]
    private let factory: any MetricsFactory
    let connected: Gauge
    private let sessionChanges: [String: Counter]
    /// Registry reloads by outcome: applied, unchanged, refused (a file that did not validate is
    /// refused before it reaches the loop: counted by `Broker`).
    private let reloads: [String: Counter]
    let transaction: CoreMetrics.Timer
    private let rootsVerified: Counter
    private let rootsReused: Counter
    let publicationsPerTransaction: Recorder

    /// Session changes counted: opened (Hello), replaced (a newer connection), expired (silent),
    /// ended (a registry reload removed the node or its key).
    enum SessionChange: String, CaseIterable { case opened, replaced, expired, ended }

    init(factory: any MetricsFactory, nodes: [String]) {
        accepted = Counter(label: MetricName.brokerPublicationsAcceptedTotal.rawValue, factory: factory)
        var refused: [ErrorCode: Counter] = [:]
        for code in ErrorCode.allCases where code != .unspecified {
            refused[code] = Counter(label: MetricName.brokerPublicationsRefusedTotal.rawValue, dimensions: [("code", code.name)], factory: factory)
        }
        refusedByCode = refused
        connected = Gauge(label: MetricName.brokerSessionsConnected.rawValue, factory: factory)
        sessionChanges = Dictionary(uniqueKeysWithValues: SessionChange.allCases.map {
            ($0.rawValue, Counter(label: MetricName.brokerSessionChangesTotal.rawValue, dimensions: [("change", $0.rawValue)], factory: factory))
        })
        reloads = Dictionary(uniqueKeysWithValues: ["applied", "unchanged", "refused"].map {
            ($0, Counter(label: MetricName.brokerRegistryReloadsTotal.rawValue, dimensions: [("outcome", $0)], factory: factory))
        })
        transaction = CoreMetrics.Timer(label: MetricName.brokerStoreTransactionSeconds.rawValue, factory: factory)
        rootsVerified = Counter(label: MetricName.brokerBatchRootsTotal.rawValue, dimensions: [("outcome", "verified")], factory: factory)
        rootsReused = Counter(label: MetricName.brokerBatchRootsTotal.rawValue, dimensions: [("outcome", "reused")], factory: factory)
        publicationsPerTransaction = Recorder(label: MetricName.brokerPublicationsPerTransaction.rawValue, aggregate: true, factory: factory)
        self.factory = factory
        connected.record(0)
        addNodes(nodes)
    }

    /// Makes the handles of nodes not counted yet (at start, and for nodes a reload added).
    func addNodes(_ nodes: [String]) {
        for node in nodes where deliveriesByNode[node] == nil {
            deliveriesByNode[node] = Counter(label: MetricName.brokerDeliveriesTotal.rawValue, dimensions: [("node", node)], factory: factory)
            policyRefusals[node] = Dictionary(uniqueKeysWithValues: PolicyRule.allCases.map { rule in
                (rule.rawValue, Counter(label: MetricName.brokerPolicyRefusalsTotal.rawValue, dimensions: [("node", node), ("rule", rule.rawValue)],
                                        factory: factory))
            })
            inFlightByNode[node] = Gauge(label: MetricName.brokerInFlightDeliveries.rawValue, dimensions: [("node", node)], factory: factory)
            connectedByNode[node] = Gauge(label: MetricName.brokerNodeConnected.rawValue, dimensions: [("node", node)], factory: factory)
            inFlightByNode[node]?.record(0)
            connectedByNode[node]?.record(0)
        }
    }

    func refused(_ code: ErrorCode) { refusedByCode[code]?.increment() }
    func reload(_ outcome: String) { reloads[outcome]?.increment() }
    func delivered(to node: String) { deliveriesByNode[node]?.increment() }
    func refused(node: String, rule: PolicyRule) { policyRefusals[node]?[rule.rawValue]?.increment() }
    func inFlight(_ node: String, _ count: Int) { inFlightByNode[node]?.record(count) }
    func session(_ change: SessionChange, node: String, connected count: Int) {
        sessionChanges[change.rawValue]?.increment()
        connectedByNode[node]?.record(change == .expired || change == .ended ? 0 : 1)
        connected.record(count)
    }

    func apply(_ count: BrokerCore.Count) {
        switch count {
        case .accepted: accepted.increment()
        case .refused(let code): refused(code)
        case .policyRefusal(let node, let rule): refused(node: node, rule: rule)
        case .inFlight(let node, let value): inFlight(node, value)
        case .session(let change, let node, let connected): session(change, node: node, connected: connected)
        case .reload(let outcome): reload(outcome)
        case .batchRoots(let verified, let reused):
            rootsVerified.increment(by: Int64(verified))
            rootsReused.increment(by: Int64(reused))
        }
    }
}
