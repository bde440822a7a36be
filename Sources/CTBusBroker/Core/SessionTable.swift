import Foundation

/// The broker's sessions (PROTOCOL.md 4.2, 6.1) and their delivery credit.
///
/// Invariants: at most one session per node, bound to the connection whose Hello opened it; a
/// connection another Hello with the same node superseded never gets a session again; a
/// session's `inFlight` is ascending, holds only sequences up to `sentThrough`, and is what the
/// delivery window is counted against.
struct SessionTable {
    struct Session: Equatable {
        var connection: BrokerCore.Connection
        /// The CURVE key the connection authenticated with (one of the entry's keys).
        var publicKey: String
        var lastSeen: ContinuousClock.Instant
        /// Highest sequence sent (or skipped as expired or withdrawn) in this session.
        var sentThrough: UInt64 = 0
        /// Sequences sent and not acknowledged yet, ascending: the credit in use.
        var inFlight: [UInt64] = []
        /// A publication of this session could not be stored (INTERNAL): every later one is
        /// refused the same way until the node says Hello again and resends from its oldest, so
        /// nothing can overtake the failed one. Deliveries and heartbeats go on.
        var held = false
    }

    private var sessions: [String: Session] = [:]
    /// The connection whose Hello opened each node's latest session, kept after the session
    /// ends: a Hello on any other connection supersedes it.
    private var lastConnection: [String: BrokerCore.Connection] = [:]
    /// Connections a newer one with the same key took over, the newest `supersededKept` per
    /// node: every Frame from them, Hello included, is answered SESSION_REPLACED.
    private var superseded: [String: [BrokerCore.Connection]] = [:]
    private let supersededKept: Int

    init(supersededKept: Int) {
        self.supersededKept = supersededKept
    }

    subscript(nodeId: String) -> Session? { sessions[nodeId] }
    var isEmpty: Bool { sessions.isEmpty }
    var count: Int { sessions.count }
    /// The nodes with a session, in id order (effects come out in a stable order).
    var nodes: [String] { sessions.keys.sorted() }

    func isSuperseded(_ connection: BrokerCore.Connection, for nodeId: String) -> Bool {
        superseded[nodeId]?.contains(connection) == true
    }

    /// The node whose session `connection` holds.
    func node(on connection: BrokerCore.Connection) -> String? {
        sessions.first { $0.value.connection == connection }?.key
    }

    /// Marks the node's session seen when `connection` holds it; false when it does not (a
    /// connection must say Hello before anything else).
    mutating func seen(_ nodeId: String, on connection: BrokerCore.Connection, at instant: ContinuousClock.Instant) -> Bool {
        guard sessions[nodeId]?.connection == connection else { return false }
        sessions[nodeId]!.lastSeen = instant
        return true
    }

    /// Opens a new session for `nodeId` on `connection`, with nothing in flight (a new Hello
    /// starts over: whatever was in flight is sent again, and nodes deduplicate). Returns the
    /// connection of the node's previous session when this one supersedes it.
    mutating func open(_ nodeId: String, on connection: BrokerCore.Connection, publicKey: String,
                       at instant: ContinuousClock.Instant) -> BrokerCore.Connection? {
        let previous = lastConnection[nodeId].flatMap { $0 == connection ? nil : $0 }
        if let previous {
            superseded[nodeId, default: []].append(previous)
            if superseded[nodeId]!.count > supersededKept { superseded[nodeId]!.removeFirst() }
        }
        lastConnection[nodeId] = connection
        sessions[nodeId] = Session(connection: connection, publicKey: publicKey, lastSeen: instant)
        return previous
    }

    /// Ends a node's session (its queue stays in the store).
    mutating func remove(_ nodeId: String) -> Session? {
        sessions.removeValue(forKey: nodeId)
    }

    /// The nodes silent for longer than `timeout`, in id order.
    func overdue(at instant: ContinuousClock.Instant, timeout: Duration) -> [String] {
        sessions.filter { instant - $0.value.lastSeen > timeout }.keys.sorted()
    }

    /// Refuses every later publication of the node's session until its next Hello.
    mutating func hold(_ nodeId: String) {
        sessions[nodeId]?.held = true
    }

    // MARK: Credit

    /// Where the node's next queue read starts and how many deliveries its credit allows; nil
    /// without a session or credit.
    func room(for nodeId: String, window: Int) -> (after: UInt64, limit: Int)? {
        guard let session = sessions[nodeId], session.inFlight.count < window else { return nil }
        return (session.sentThrough, window - session.inFlight.count)
    }

    /// Whether `sequence` is next in line for a node with credit left (a delivery just stored
    /// may then go straight from memory).
    func isNext(_ sequence: UInt64, for nodeId: String, window: Int) -> Bool {
        guard let session = sessions[nodeId] else { return false }
        return session.sentThrough == sequence - 1 && session.inFlight.count < window
    }

    /// Counts a delivery sent against the node's credit; returns its connection and how many
    /// are in flight now.
    mutating func sent(_ sequence: UInt64, to nodeId: String) -> (connection: BrokerCore.Connection, inFlight: Int)? {
        // Changed in place: a copy of the session would copy its in-flight list at every delivery.
        guard let index = sessions.index(forKey: nodeId) else { return nil }
        sessions.values[index].sentThrough = sequence
        sessions.values[index].inFlight.append(sequence)
        return (sessions.values[index].connection, sessions.values[index].inFlight.count)
    }

    /// Passes over a queue entry that leaves the queue unsent: it uses no credit.
    mutating func skipped(through sequence: UInt64, for nodeId: String) {
        sessions[nodeId]?.sentThrough = sequence
    }

    /// Frees the credit of the deliveries acknowledged through `sequence`; returns how many stay
    /// in flight.
    mutating func acknowledged(_ nodeId: String, through sequence: UInt64) -> Int {
        guard let index = sessions.index(forKey: nodeId) else { return 0 }
        sessions.values[index].inFlight.removeAll { $0 <= sequence } // in place, as in `sent`
        return sessions.values[index].inFlight.count
    }

    /// A delivery the connection did not take: it and everything after it count as not sent,
    /// so they go again in order. Returns how many stay in flight.
    mutating func unsent(from sequence: UInt64, for nodeId: String) -> Int? {
        guard var session = sessions[nodeId] else { return nil }
        session.sentThrough = min(session.sentThrough, sequence - 1)
        session.inFlight.removeAll { $0 >= sequence }
        sessions[nodeId] = session
        return session.inFlight.count
    }
}
