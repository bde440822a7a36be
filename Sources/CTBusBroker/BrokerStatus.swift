import Foundation
import Synchronization

/// The broker's sessions as `ctbus status` and the `/status` page show them: a snapshot the
/// loop writes every quarter of a second (and at each session change), read by the HTTP side
/// without ever waiting for the loop.
public final class BrokerStatus: Sendable {
    public struct Node: Codable, Sendable, Equatable {
        public var connected: Bool
        /// When the session opened, or when the node went away; nil if it never connected
        /// since the broker started.
        public var since: Date?
        /// Deliveries sent and not acknowledged yet.
        public var inFlight: Int
        /// When the node last acknowledged a delivery (since the broker started).
        public var lastAcknowledgedAt: Date?
    }

    public let startedAt = Date()
    private let nodes = Mutex<[String: Node]>([:])

    public init() {}

    public var snapshot: [String: Node] { nodes.withLock { $0 } }

    func update(_ node: String, _ change: (inout Node) -> Void) {
        nodes.withLock { nodes in
            var state = nodes[node] ?? Node(connected: false, since: nil, inFlight: 0, lastAcknowledgedAt: nil)
            change(&state)
            nodes[node] = state
        }
    }
}
