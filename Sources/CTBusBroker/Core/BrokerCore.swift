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
    static let protocolVersion: UInt32 = 2

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

    /// A moment as the core sees it: the monotonic instant times sessions and acknowledgements,
    /// the wall date decides expiry and declassification and dates the audit.
    struct Moment: Sendable {
        var instant: ContinuousClock.Instant
        var date: Date
        static var now: Moment { Moment(instant: .now, date: Date()) }
    }

    struct Session: Equatable {
        var connection: Connection
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

    // The state below is internal, not private, only because the core's extensions live in files
    // of their own; nothing outside the core writes it (the shell reads `sessions` for status).
    let limits: Limits
    /// The registry in force.
    var registry: NodeRegistry
    var sessions: [String: Session] = [:]
    /// The connection whose Hello opened each node's latest session, kept after the session
    /// ends: a Hello on any other connection supersedes it.
    private var lastConnection: [String: Connection] = [:]
    /// Connections a newer one with the same key took over, the newest few per node: every Frame
    /// from them, Hello included, is answered SESSION_REPLACED.
    var superseded: [String: [Connection]] = [:]
    /// Per node whose entitlement a registry change touched: the last sequence queued at that
    /// moment. Deliveries up to it are judged again before they go out (4.5).
    var rejudgeThrough: [String: UInt64]
    /// Cumulative acknowledgements not written yet: their credit is free at once; the store
    /// deletes the entries with the next transaction. Lost in a crash, they only cause redeliveries.
    var acknowledgements: [String: UInt64] = [:]
    var acknowledgementsSince: ContinuousClock.Instant?
    private var acknowledgedSinceSnapshot = Set<String>()
    private var lastSnapshot: ContinuousClock.Instant?

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
        self.registry = registry
        self.rejudgeThrough = rejudgeThrough
    }

    // MARK: What the shell performs

    struct Step {
        var effects: [Effect] = []
        /// At most one store operation, performed after the effects.
        var request: Request?

        mutating func send(_ kind: Frame.OneOf_Kind, to connection: Connection) {
            var frame = Frame()
            frame.kind = kind
            // Encoding a Frame built here cannot fail: every field is set from valid values.
            effects.append(.send((try? frame.serializedBytes()) ?? [], to: connection))
        }

        mutating func send(error: BusError, to connection: Connection) { send(.error(error.report), to: connection) }
        mutating func count(_ count: Count) { effects.append(.count(count)) }

        mutating func log(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:], throttle key: String? = nil) {
            effects.append(.log(LogLine(level: level, message: message, metadata: metadata, throttleKey: key)))
        }
    }

    enum Effect {
        case send([UInt8], to: Connection)
        /// A Deliver frame, counted against the node's credit; a send that fails is reported
        /// back with `sendFailed`, and nothing more goes to that connection in this step.
        case deliver([UInt8], to: Connection, node: String, sequence: UInt64, inFlight: Int)
        case count(Count)
        case log(LogLine)
        case status(node: String, StatusChange)
        /// A reload put this registry in force (the ZAP handler and the metrics follow it).
        case registryInForce(NodeRegistry)
        /// The answer to the reload in hand.
        case reloadFinished(Result<[RegistryChange], StoreError>)
    }

    enum Count: Equatable {
        case accepted
        case refused(ErrorCode)
        case policyRefusal(node: String, rule: String)
        case inFlight(node: String, Int)
        case session(BrokerMetrics.SessionChange, node: String, connected: Int)
        case reload(String)
    }

    struct LogLine: Equatable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
        /// Lines a peer or a lasting fault can repeat are written once per key and period.
        var throttleKey: String?
    }

    enum StatusChange: Equatable {
        case connected(since: Date)
        case disconnected(since: Date)
        case inFlight(Int, acknowledgedAt: Date?)
    }

    /// A store operation; its result comes back as the `Completion` of the same name.
    enum Request {
        case store([Publication], acknowledging: [String: UInt64])
        case recordAcknowledgements([String: UInt64])
        case queueBacklog(NodeProfile, at: Date)
        case readQueue(node: String, after: UInt64, limit: Int)
        /// Deliveries that leave a queue unsent (expired, or withdrawn after a registry change), each
        /// with its audit line; the shell tries each and reports each.
        case discard(node: String, [Removal])
        case revoke(messageId: String, by: String, reason: String, statement: Data)
        case clearRejudge(node: String, through: UInt64)
        case recordRegistry(RegistryRecord)
        case readRejudgeMarks
    }

    enum Completion {
        case stored(Result<[BrokerStore.StoreOutcome], StoreError>)
        case acknowledgementsRecorded(Result<Void, StoreError>)
        case backlogQueued(Result<Int, StoreError>)
        case queueRead(Result<[QueuedDelivery], StoreError>)
        case discarded([Result<Void, StoreError>])
        case revoked(Result<BrokerStore.RevokeOutcome, StoreError>)
        case rejudgeCleared(Result<Void, StoreError>)
        case registryRecorded(Result<Void, StoreError>)
        case rejudgeMarksRead(Result<[String: UInt64], StoreError>)
    }

    struct Removal: Equatable {
        enum Why: Equatable { case expired, withdrawn(PolicyRule) }
        let sequence: UInt64
        let messageId: String
        let why: Why
        let audit: AuditEntry
    }

    struct RegistryRecord {
        let source: String
        let outcome: RegistryAuditEntry.Outcome
        let detail: String
        let registry: Data?
        let changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)]
        let rejudge: [String]
        let at: Date
    }

    struct PendingPublish {
        let connection: Connection
        let nodeId: String
        let publish: Publish
        /// The frame's bytes: their SHA-256 names a refused publication whose id cannot be read.
        let frame: [UInt8]
    }

    struct PendingRevoke {
        let connection: Connection
        let nodeId: String
        let revoke: Revoke
    }

    enum Work {
        case recordAcknowledgements
        case welcome(node: String, connection: Connection, backlog: Bool)
        case pump(String)
        case revoke(PendingRevoke)
        case clearRejudge(node: String, through: UInt64)
    }

    enum Awaiting {
        case store([(PendingPublish, Publication)], acknowledging: [String: UInt64])
        case acknowledgements([String: UInt64])
        case backlog(node: String, connection: Connection)
        case queue(node: String, after: UInt64)
        case discard(node: String, [Removal])
        case revoke(PendingRevoke)
        case clearRejudge(node: String, through: UInt64)
        case registry(RegistryReload)
        case rejudgeMarks([RegistryChange])
    }

    struct RegistryReload {
        let registry: NodeRegistry
        let source: String
        let changes: [RegistryChange]
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
        let accepted = batch.compactMap { admitOrRefuse($0, at: now, &step) }
        if accepted.isEmpty {
            scheduleAfterBatch(behind: [])
        } else {
            awaiting = .store(accepted, acknowledging: acknowledgements)
            step.request = .store(accepted.map(\.1), acknowledging: acknowledgements)
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
        if let since = acknowledgementsSince, now.instant - since >= limits.acknowledgementDelay {
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
        sessions.values.contains { now.instant - $0.lastSeen > limits.sessionTimeout }
    }

    /// Whether acknowledgements wait to be written (the shell polls in shorter steps meanwhile).
    var acknowledgementsPending: Bool { acknowledgementsSince != nil }

    /// A send the shell could not perform, or a delivery it held back after one (`error` nil).
    /// `unreachable`: the connection is gone (the session ends). Otherwise the peer's queue is
    /// full: a delivery not sent is sent again later, after the ones before it.
    mutating func sendFailed(to connection: Connection, sequence: UInt64?, unreachable: Bool, error: String?) -> Step {
        var step = Step()
        let nodeId = sessions.first { $0.value.connection == connection }?.key
        if unreachable {
            if let nodeId {
                sessions[nodeId] = nil
                step.log(.info, "node away: connection gone", ["node": "\(nodeId)"])
            }
            return step
        }
        if let nodeId, let sequence, var session = sessions[nodeId] {
            session.sentThrough = min(session.sentThrough, sequence - 1)
            session.inFlight.removeAll { $0 >= sequence }
            sessions[nodeId] = session
            step.count(.inFlight(node: nodeId, session.inFlight.count))
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
                awaiting = .acknowledgements(acknowledgements)
                step.request = .recordAcknowledgements(acknowledgements)
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

    // MARK: Reading frames

    private mutating func handle(_ frames: [[UInt8]], userId: String?, at now: Moment, _ step: inout Step) {
        guard let connection = frames.first else { return }
        // The ZAP handler gave each connection its CURVE key as User-Id: looked up in the registry
        // in force at every frame, so a key a reload removed is refused from its next frame on.
        guard let key = userId, let entry = registry.entry(publicKey: key) else {
            step.log(.warning, "a frame from a connection whose key is not in the registry (any more); refused",
                     ["key": "\(userId?.prefix(8) ?? "none")…"], throttle: "unregistered-key")
            step.send(error: BusError(.notAuthenticated, "this connection's key is not in the broker's registry"), to: connection)
            return
        }
        let nodeId = entry.profile.id
        if superseded[nodeId]?.contains(connection) == true {
            step.log(.warning, "a frame from a connection whose session a newer one took over; answered SESSION_REPLACED",
                     ["node": "\(nodeId)"], throttle: "superseded:\(nodeId)")
            step.send(error: Self.sessionReplaced(nodeId), to: connection)
            return
        }
        guard frames.count == 2, let kind = try? Admission.decodeFrame(frames[1]) else {
            step.log(.warning, "malformed frame", ["node": "\(nodeId)", "frames": "\(frames.count - 1)"], throttle: "malformed:\(nodeId)")
            step.send(error: Self.malformed(Array(frames.dropFirst())), to: connection)
            return
        }
        if case .hello(let hello) = kind {
            openSession(nodeId, on: connection, publicKey: key, hello: hello, at: now, &step)
            return
        }
        // A session belongs to one connection: a second connection with the same key must say
        // Hello (and then takes the session over) before it may do anything.
        guard sessions[nodeId]?.connection == connection else {
            step.send(error: BusError(.noSession, "send Hello first"), to: connection)
            return
        }
        sessions[nodeId]!.lastSeen = now.instant
        switch kind {
        case .publish(let publish):
            publishes.append(PendingPublish(connection: connection, nodeId: nodeId, publish: publish, frame: frames[1]))
        case .deliveryAck(let ack):
            acknowledge(nodeId, through: ack.throughSequence, at: now, &step)
        case .heartbeat:
            step.send(.heartbeat(Heartbeat()), to: connection)
        case .revoke(let revoke):
            do {
                try MessageValidator.validate(revoke)
                revokes.append(PendingRevoke(connection: connection, nodeId: nodeId, revoke: revoke))
            } catch {
                step.send(error: error, to: connection)
            }
        case .hello, .welcome, .publishAck, .deliver, .error, .revokeAck:
            step.send(error: BusError(.malformedFrame, "a node does not send this command"), to: connection)
        }
    }

    /// The answer to bytes that are not one Frame: with the id when one can be read from them,
    /// else with their SHA-256, so the client can tell which of its frames it was.
    static func malformed(_ frames: [[UInt8]]) -> BusError {
        let detail = "expected one protobuf Frame after the routing id"
        guard frames.count == 1 else { return BusError(.malformedFrame, detail) }
        if let id = FrameSalvage.messageId(in: frames[0]) {
            return BusError(.malformedFrame, "the Frame does not decode (a field is not valid protobuf or not UTF-8)", messageId: id)
        }
        return BusError(.malformedFrame, detail, frameSHA256: Data(SHA256.hash(data: frames[0])))
    }

    static func sessionReplaced(_ nodeId: String) -> BusError {
        BusError(.sessionReplaced, "a newer connection said Hello as node \(nodeId); this session has ended")
    }

    // MARK: Sessions

    private mutating func openSession(_ nodeId: String, on connection: Connection, publicKey: String, hello: Hello,
                                      at now: Moment, _ step: inout Step) {
        guard hello.protocolVersion == Self.protocolVersion else {
            step.send(error: BusError(.unsupportedVersion, "protocol version \(hello.protocolVersion) unsupported; this broker speaks \(Self.protocolVersion)"),
                      to: connection)
            return
        }
        do {
            try MessageValidator.validate(hello)
        } catch {
            step.send(error: error, to: connection)
            return
        }
        let previous = lastConnection[nodeId]
        let replaced = previous.map { $0 != connection } ?? false
        if let previous, replaced {
            // The newer connection wins, whether the older session is open or expired; the older
            // connection is told why its session ended, and from now on gets nothing else.
            step.log(.warning, "a newer connection took over the node's session; the older one was told SESSION_REPLACED", ["node": "\(nodeId)"])
            step.send(error: Self.sessionReplaced(nodeId), to: previous)
            superseded[nodeId, default: []].append(previous)
            if superseded[nodeId]!.count > limits.supersededKept { superseded[nodeId]!.removeFirst() }
        }
        lastConnection[nodeId] = connection
        // What the node acknowledged leaves the store first, so the new session does not send it again.
        if acknowledgements[nodeId] != nil { agenda.append(.recordAcknowledgements) }
        // A new Hello starts over: whatever was in flight is sent again (nodes deduplicate).
        sessions[nodeId] = Session(connection: connection, publicKey: publicKey, lastSeen: now.instant)
        step.count(.session(replaced ? .replaced : .opened, node: nodeId, connected: sessions.count))
        step.count(.inFlight(node: nodeId, 0))
        step.effects.append(.status(node: nodeId, .connected(since: now.date)))
        agenda.append(.welcome(node: nodeId, connection: connection, backlog: hello.requestBacklog))
        agenda.append(.pump(nodeId))
    }

    /// Sends the Welcome, with how many messages of the backlog were queued when one was asked for.
    private mutating func welcome(_ nodeId: String, on connection: Connection, backlogQueued result: Result<Int, StoreError>?,
                                  _ step: inout Step) {
        var welcome = Welcome()
        welcome.protocolVersion = Self.protocolVersion
        welcome.nodeID = nodeId
        welcome.maxMessageBytes = UInt32(limits.maxMessageBytes)
        switch result {
        case .success(let queued)?:
            welcome.backlogQueued = UInt32(queued)
            step.log(.info, "backlog queued for a late joiner", ["node": "\(nodeId)", "messages": "\(queued)"])
        case .failure(let error)?:
            step.log(.error, "could not queue a backlog", ["node": "\(nodeId)", "error": "\(error)"])
        case nil:
            break
        }
        step.send(.welcome(welcome), to: connection)
        step.log(.info, "node connected", ["node": "\(nodeId)"])
    }

    /// Ends the sessions of nodes silent for longer than the session timeout.
    private mutating func expireSessions(at now: Moment, _ step: inout Step) {
        for (nodeId, session) in sessions where now.instant - session.lastSeen > limits.sessionTimeout {
            forgetSession(nodeId, .expired, at: now, &step)
            step.log(.info, "node away: no heartbeat", ["node": "\(nodeId)"])
        }
    }

    /// Drops a node's session and says so in the metrics and the status (the queue stays).
    @discardableResult
    mutating func forgetSession(_ nodeId: String, _ change: BrokerMetrics.SessionChange, at now: Moment, _ step: inout Step) -> Session? {
        guard let session = sessions.removeValue(forKey: nodeId) else { return nil }
        step.count(.session(change, node: nodeId, connected: sessions.count))
        step.count(.inFlight(node: nodeId, 0))
        step.effects.append(.status(node: nodeId, .disconnected(since: now.date)))
        return session
    }

    /// In-flight counts and acknowledgement times for the status (session changes go when they happen).
    private mutating func snapshot(at now: Moment, _ step: inout Step) {
        lastSnapshot = now.instant
        for (node, session) in sessions.sorted(by: { $0.key < $1.key }) {
            let acknowledged = acknowledgedSinceSnapshot.contains(node)
            step.effects.append(.status(node: node, .inFlight(session.inFlight.count, acknowledgedAt: acknowledged ? now.date : nil)))
        }
        acknowledgedSinceSnapshot = []
    }

    // MARK: Acknowledgements

    private mutating func acknowledge(_ nodeId: String, through sequence: UInt64, at now: Moment, _ step: inout Step) {
        guard var session = sessions[nodeId] else { return }
        // Capped at what this session sent: a node cannot delete deliveries it never got.
        let through = min(sequence, session.sentThrough)
        guard through > (acknowledgements[nodeId] ?? 0) else { return }
        acknowledgements[nodeId] = through
        acknowledgementsSince = acknowledgementsSince ?? now.instant
        session.inFlight.removeAll { $0 <= through }
        sessions[nodeId] = session
        if let mark = rejudgeThrough[nodeId], through >= mark { agenda.append(.clearRejudge(node: nodeId, through: through)) }
        step.count(.inFlight(node: nodeId, session.inFlight.count))
        acknowledgedSinceSnapshot.insert(nodeId)
        freed.insert(nodeId)
    }

    private mutating func acknowledgementsRecorded(_ written: [String: UInt64], _ result: Result<Void, StoreError>, _ step: inout Step) {
        switch result {
        case .success:
            acknowledgementsWritten(written)
        case .failure(let error):
            // Kept for the next attempt; meanwhile the store only holds more than it needs to.
            step.log(.error, "could not record acknowledgements", ["nodes": "\(acknowledgements.count)", "error": "\(error)"],
                     throttle: "acknowledgements-failed")
        }
    }

    /// Clears the acknowledgements a store transaction wrote (those that came after it was asked
    /// for stay for the next one).
    mutating func acknowledgementsWritten(_ written: [String: UInt64]) {
        for (node, through) in written where acknowledgements[node] == through { acknowledgements[node] = nil }
        if acknowledgements.isEmpty { acknowledgementsSince = nil }
    }
}
