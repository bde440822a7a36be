import Foundation

/// Cumulative acknowledgements not written to the store yet (PROTOCOL.md 6.1): their credit is
/// free at once, and the store deletes the entries with its next transaction. Lost in a crash,
/// they only cause redeliveries, which nodes deduplicate.
///
/// Invariant: each node's pending sequence only grows until a transaction that wrote it clears it.
struct AcknowledgementLedger {
    private(set) var pending: [String: UInt64] = [:]
    /// When the oldest pending acknowledgement came.
    private var since: ContinuousClock.Instant?

    subscript(nodeId: String) -> UInt64? { pending[nodeId] }
    var isEmpty: Bool { pending.isEmpty }
    var count: Int { pending.count }
    /// Whether acknowledgements wait to be written.
    var isPending: Bool { since != nil }

    /// Records an acknowledgement through `sequence`; false when it adds nothing.
    mutating func record(_ nodeId: String, through sequence: UInt64, at instant: ContinuousClock.Instant) -> Bool {
        guard sequence > (pending[nodeId] ?? 0) else { return false }
        pending[nodeId] = sequence
        since = since ?? instant
        return true
    }

    /// Whether the oldest pending acknowledgement has waited `delay`.
    func isDue(at instant: ContinuousClock.Instant, after delay: Duration) -> Bool {
        since.map { instant - $0 >= delay } ?? false
    }

    /// Clears what a store transaction wrote (acknowledgements that came after it was asked for
    /// stay for the next one).
    mutating func written(_ written: [String: UInt64]) {
        for (node, through) in written where pending[node] == through { pending[node] = nil }
        if pending.isEmpty { since = nil }
    }
}
