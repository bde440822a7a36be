import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf

/// The broker's side of the protocol (PROTOCOL.md 4.2, 5.2, 5.5, 6.1, 6.2, 4.5) as a state
/// machine with no socket, store, clock or logger. The shell (`BrokerLoop`) feeds it what
/// happened (a message read from a connection, the end of a read batch, a tick, the result of
/// a store operation) and performs the `Step` it returns: its effects in order (frames to send,
/// metrics, log lines), then at most one store operation, whose result it hands back with
/// `completed(_:at:)`.
///
/// Invariants: between two calls from the shell no store operation is outstanding and the
/// agenda is empty; a session belongs to the connection whose Hello opened it; a session's
/// `inFlight` holds the sequences sent and not acknowledged, never more than the delivery window.
struct BrokerCore {
    /// The protocol version this broker speaks (PROTOCOL.md 10).
    static let protocolVersion: UInt32 = 3

    /// A connection on the ROUTER socket: the routing id libzmq gave it (never reused on a socket).
    typealias Connection = [UInt8]

    struct Limits: Sendable {
        var deliveryWindow: Int
        var maxMessageBytes: Int
        var sessionTimeout: Duration
        /// How long an acknowledgement may wait to be written with the next store transaction.
        var acknowledgementDelay: Duration = .milliseconds(20)
        /// Superseded connections remembered per node (PROTOCOL.md 4).
        var supersededKept = 8
        /// How often the in-flight counts go to the status snapshot.
        var snapshotInterval: Duration = .milliseconds(250)

        init(deliveryWindow: Int, maxMessageBytes: Int, sessionTimeout: Duration) {
            self.deliveryWindow = deliveryWindow
            self.maxMessageBytes = maxMessageBytes
            self.sessionTimeout = sessionTimeout
        }

        init(_ configuration: BrokerConfiguration) {
            self.init(deliveryWindow: configuration.deliveryWindow, maxMessageBytes: configuration.maxMessageBytes,
                      sessionTimeout: .milliseconds(configuration.sessionTimeoutMilliseconds))
        }
    }

    // The state below is internal, not private, only because the core's extensions live in files
    // of their own; nothing outside the core writes it (the shell reads `sessions` for status).
    let limits: Limits
    /// The registry in force.
    var registry: NodeRegistry
    /// The batch roots verified so far: each is verified once, whichever publication of its batch
    /// comes first (PROTOCOL.md 7.2).
    let batchRoots = BatchRoots()
    var sessions: SessionTable
    /// Per node whose entitlement a registry change touched: the last sequence queued at that
    /// moment. Deliveries up to it are judged again before they go out (4.5).
    var rejudgeThrough: [String: UInt64]
    var acknowledgements = AcknowledgementLedger()
    var acknowledgedSinceSnapshot = Set<String>()
    var lastSnapshot: ContinuousClock.Instant?

    /// What the current read batch brought: publications share one store transaction; revocations
    /// follow them, so a message published and revoked in one batch is known.
    var publishes: [PendingPublish] = []
    var revokes: [PendingRevoke] = []
    /// Nodes whose credit acknowledgements freed in the current batch.
    var freed = Set<String>()
    /// Work waiting for the store operation in hand to finish, in order.
    var agenda: [Work] = []
    /// The store operation in hand, with what the core needs to resume.
    var awaiting: Awaiting?

    init(limits: Limits, registry: NodeRegistry, rejudgeThrough: [String: UInt64] = [:]) {
        self.limits = limits
        self.sessions = SessionTable(supersededKept: limits.supersededKept)
        self.registry = registry
        self.rejudgeThrough = rejudgeThrough
    }

    // MARK: Entry points

    /// One message read from the ROUTER socket: its frames after nothing (the routing id first)
    /// and the User-Id the ZAP handler gave the connection (its CURVE key).
    mutating func received(_ frames: [[UInt8]], userId: String?, at now: Moment) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a message fed while a store operation is in hand")
        var step = Step()
        handle(frames, userId: userId, at: now, &step)
        runAgenda(&step, at: now)
        return step
    }

    /// The end of a read batch: admits its publications (one store transaction for all), then
    /// sends what acknowledgements freed credit for, then handles its revocations.
    mutating func drained(at now: Moment) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a batch ended while a store operation is in hand")
        var step = Step()
        let batch = publishes
        publishes = []
        let (admissions, verified, reused) = batchRoots.counting { admit(batch, at: now) }
        if verified + reused > 0 { step.count(.batchRoots(verified: verified, reused: reused)) }
        let accepted = zip(batch, admissions).compactMap { admitOrRefuse($0, $1, at: now, &step) }
        if accepted.isEmpty {
            scheduleAfterBatch(behind: [])
        } else {
            awaiting = .store(accepted, acknowledging: acknowledgements.pending)
            step.request = .store(accepted.map(\.1), acknowledging: acknowledgements.pending)
        }
        runAgenda(&step, at: now)
        return step
    }

    /// Time passed: writes acknowledgements that waited long enough, ends sessions silent for
    /// longer than the timeout (only when no frame waits unread, PROTOCOL.md 4.4), and refreshes
    /// the status snapshot.
    mutating func tick(at now: Moment, framesWaiting: Bool) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a tick while a store operation is in hand")
        var step = Step()
        if acknowledgements.isDue(at: now.instant, after: limits.acknowledgementDelay) {
            agenda.append(.recordAcknowledgements)
        }
        if !framesWaiting { expireSessions(at: now, &step) }
        if lastSnapshot.map({ now.instant - $0 >= limits.snapshotInterval }) ?? true { snapshot(at: now, &step) }
        runAgenda(&step, at: now)
        return step
    }

    /// The broker stops: what is acknowledged is written.
    mutating func stopping(at now: Moment) -> Step {
        var step = Step()
        if !acknowledgements.isEmpty { agenda.append(.recordAcknowledgements) }
        runAgenda(&step, at: now)
        return step
    }

    /// Whether a session has been silent for longer than the timeout (the shell then looks for
    /// unread frames before the tick).
    func hasOverdueSession(at now: Moment) -> Bool {
        !sessions.overdue(at: now.instant, timeout: limits.sessionTimeout).isEmpty
    }

    /// Whether acknowledgements wait to be written (the shell polls in shorter steps meanwhile).
    var acknowledgementsPending: Bool { acknowledgements.isPending }

    /// A send the shell could not perform, or a delivery it held back after one (`error` nil).
    /// `unreachable`: the connection is gone (the session ends). Otherwise the peer's queue is
    /// full: a delivery not sent is sent again later, after the ones before it.
    mutating func sendFailed(to connection: Connection, sequence: UInt64?, unreachable: Bool, error: String?) -> Step {
        var step = Step()
        let nodeId = sessions.node(on: connection)
        if unreachable {
            if let nodeId {
                _ = sessions.remove(nodeId)
                step.log(.info, "node away: connection gone", ["node": "\(nodeId)"])
            }
            return step
        }
        if let nodeId, let sequence, let inFlight = sessions.unsent(from: sequence, for: nodeId) {
            step.count(.inFlight(node: nodeId, inFlight))
        }
        // Typically a peer that stopped reading (its queue is full): one line per period. A
        // delivery held back after an earlier failure to the same connection says nothing more.
        guard let error else { return step }
        let name = nodeId ?? "no session"
        step.log(.warning, "frames to a node dropped: its connection does not take them", ["node": "\(name)", "error": "\(error)"],
                 throttle: "send-failed:\(name)")
        return step
    }

    /// The result of the store operation in hand.
    mutating func completed(_ completion: Completion, at now: Moment) -> Step {
        guard let awaiting else { preconditionFailure("a store result without a store operation in hand") }
        self.awaiting = nil
        var step = Step()
        switch (awaiting, completion) {
        case (.store(let accepted, let acknowledged), .stored(let result)):
            stored(accepted, acknowledged: acknowledged, result, at: now, &step)
        case (.acknowledgements(let written), .acknowledgementsRecorded(let result)):
            acknowledgementsRecorded(written, result, &step)
        case (.backlog(let node, let connection), .backlogQueued(let result)):
            welcome(node, on: connection, backlogQueued: result, &step)
        case (.queue(let node, let after), .queueRead(let result)):
            queueRead(node, after: after, result, at: now, &step)
        case (.discard(let node, let removals), .discarded(let results)):
            discarded(node, removals, results, &step)
        case (.revoke(let pending), .revoked(let result)):
            revoked(pending, result, &step)
        case (.clearRejudge(let node, let through), .rejudgeCleared(let result)):
            rejudgeCleared(node, through: through, result, &step)
        case (.registry(let reload), .registryRecorded(let result)):
            registryRecorded(reload, result, at: now, &step)
        case (.rejudgeMarks(let changes), .rejudgeMarksRead(let result)):
            rejudgeMarksRead(changes, result, &step)
        default:
            preconditionFailure("a store result of another kind than the operation in hand")
        }
        runAgenda(&step, at: now)
        return step
    }

    /// Runs the agenda until a store operation is needed or nothing is left.
    private mutating func runAgenda(_ step: inout Step, at now: Moment) {
        while step.request == nil, !agenda.isEmpty {
            switch agenda.removeFirst() {
            case .recordAcknowledgements:
                guard !acknowledgements.isEmpty else { continue }
                awaiting = .acknowledgements(acknowledgements.pending)
                step.request = .recordAcknowledgements(acknowledgements.pending)
            case .welcome(let node, let connection, let backlog):
                if backlog, let profile = registry.entry(id: node)?.profile {
                    awaiting = .backlog(node: node, connection: connection)
                    step.request = .queueBacklog(profile, at: now.date)
                } else {
                    welcome(node, on: connection, backlogQueued: nil, &step)
                }
            case .pump(let node):
                pump(node, &step)
            case .revoke(let pending):
                revoke(pending, at: now, &step)
            case .clearRejudge(let node, let through):
                awaiting = .clearRejudge(node: node, through: through)
                step.request = .clearRejudge(node: node, through: through)
            }
        }
    }

}
