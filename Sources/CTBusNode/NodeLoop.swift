import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import Metrics
import Crypto
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// The node's loop; lives on the node thread only (it owns the DEALER socket).
final class NodeLoop {
    private let socket: ZMQSocket
    /// The DEALER socket's connection events (TCP up, CURVE handshake done or refused).
    private let monitor: ZMQSocket
    private var watch: ConnectionWatch
    /// Woken by `Node.publish` in this process, so a new publication goes out at once instead
    /// of at the next outbox poll.
    private let wakeSocket: ZMQSocket
    private let configuration: NodeConfiguration
    private let journal: NodeJournal
    private let status: SharedStatus
    private let logger: Logger
    /// Lines the broker or a lasting fault can repeat: once per kind and period, then summed up.
    private var throttled: ThrottledLogger
    /// After SESSION_REPLACED, the node sends nothing until then, and then says Hello on a new
    /// connection: one second, doubling at each replacement up to a minute, with jitter. A stale
    /// or forged answer costs a pause, not the node; two processes with one key (on two journals)
    /// take turns, each replacement logged.
    private var rejoinAt: ContinuousClock.Instant?
    private var replacedBackoff: Duration?
    /// After INTERNAL (the broker could not store), the node waits until then before it says
    /// Hello and resends its outbox: exponential from `reconnectMilliseconds` to 500 ms, with jitter.
    private var resumeAt: ContinuousClock.Instant?
    private var storeBackoff: Duration?

    private var welcomed = false
    private var lastHeard = ContinuousClock.now
    private var lastHello: ContinuousClock.Instant?
    private var lastHeartbeat = ContinuousClock.now
    private var lastOutboxCheck: ContinuousClock.Instant?
    /// Send the outbox again from its oldest entry at the next check (after a Welcome).
    private var resendAll = false
    /// Something new is in the outbox (or more than one batch waits): send it at the next tick.
    private var outboxDue = false
    /// The highest outbox `seq` sent in this session: the next check reads only what follows.
    private var sentThrough: Int64 = 0
    /// When each unacknowledged publication was last sent in this session.
    private var lastSent: [String: ContinuousClock.Instant] = [:]
    /// When each publication in flight was first sent (for the publish-to-acknowledge time).
    private var firstSent: [String: ContinuousClock.Instant] = [:]
    private let metrics: NodeMetrics
    /// The originator's signature and this node's clearance, checked before a delivery is journaled.
    private let deliveryCheck: DeliveryCheck
    private var lastResendCheck = ContinuousClock.now
    /// Outbox entries read and sent per check.
    private let outboxBatch = 500
    /// Publications sent and not acknowledged in this session, at most.
    private let publishWindow = 5_000

    init(context: ZMQContext, configuration: NodeConfiguration, keyPair: CurveKeyPair, brokerPublicKey: String,
         journal: NodeJournal, registry: NodeRegistry, sealingKey: Curve25519.KeyAgreement.PrivateKey, status: SharedStatus,
         wakeEndpoint: String, logger: Logger, metrics: any MetricsFactory) throws {
        deliveryCheck = DeliveryCheck(registry: registry, registryFile: configuration.registryFile, clearance: configuration.clearanceLevel,
                                      nodeId: configuration.nodeId, sealingKey: sealingKey, logger: logger)
        self.metrics = NodeMetrics(factory: metrics)
        self.configuration = configuration
        self.journal = journal
        self.status = status
        self.logger = logger
        throttled = ThrottledLogger(logger)
        wakeSocket = try ZMQSocket(context: context, type: .pull)
        try wakeSocket.bind(wakeEndpoint)
        socket = try ZMQSocket(context: context, type: .dealer)
        monitor = try socket.monitor(context: context, endpoint: wakeEndpoint + "-monitor")
        watch = ConnectionWatch(endpoint: configuration.brokerEndpoint, timeout: .milliseconds(configuration.brokerTimeoutMilliseconds))
        try socket.makeCurveClient(serverPublicKey: brokerPublicKey, keyPair: keyPair)
        try socket.setReconnectInterval(initial: Int32(configuration.reconnectMilliseconds),
                                        maximum: Int32(configuration.reconnectMaxMilliseconds))
        try socket.setHeartbeat(intervalMilliseconds: Int32(configuration.heartbeatIntervalMilliseconds),
                                timeoutMilliseconds: Int32(configuration.brokerTimeoutMilliseconds))
        // Nothing is queued for a broker that is not there: the outbox is the queue.
        try socket.setImmediate(true)
        try socket.setHighWaterMarks(send: 10_000, receive: 10_000)
        try socket.connect(configuration.brokerEndpoint)
    }

    func run(until thread: LoopThread) {
        let pollTimeout = min(50, configuration.outboxPollMilliseconds)
        while !thread.isStopping {
            do {
                // While more of the outbox waits, the loop only looks at the sockets in passing.
                let readable = try ZMQSocket.poll([socket, wakeSocket, monitor], timeoutMilliseconds: outboxDue && welcomed ? 0 : pollTimeout)
                if readable[0] { try drain(until: thread) }
                if readable[1] {
                    while try wakeSocket.receive(dontWait: true) != nil {}
                    outboxDue = true
                }
                if readable[2] {
                    while let event = try monitor.readMonitorEvent() {
                        watch.note(event.kind)
                        // A connection just became usable: say Hello now, not at the next retry.
                        if case .handshakeSucceeded = event.kind, !welcomed { lastHello = nil }
                    }
                }
                if let line = watch.check() { logger.warning("\(line)") }
                try tick()
                throttled.flush()
            } catch let error as ZMQError where error.isTerminated {
                break
            } catch {
                throttled.log("loop-error", .error, "node loop error", metadata: ["error": "\(error)"])
            }
        }
        socket.close()
        monitor.close()
        wakeSocket.close()
        if welcomed { setWelcomed(false) } // recorded as closed: the daemon stops
        setConnected(false)
    }

    // MARK: Timers

    private func tick() throws {
        let now = ContinuousClock.now
        if let rejoin = rejoinAt {
            guard now >= rejoin else { return } // replaced: silent until then
            rejoinAt = nil
            // The broker refuses the replaced connection for good: Hello goes on a new one.
            try socket.disconnect(configuration.brokerEndpoint)
            try socket.connect(configuration.brokerEndpoint)
            lastHello = nil
        }
        let heartbeat = Duration.milliseconds(configuration.heartbeatIntervalMilliseconds)
        // Silent only once everything the broker sent is read (PROTOCOL.md 4.4): the time this
        // node spent journaling is not the broker's silence.
        if welcomed, now - lastHeard > .milliseconds(configuration.brokerTimeoutMilliseconds),
           try !ZMQSocket.poll([socket], timeoutMilliseconds: 0)[0] {
            logger.warning("broker silent; saying Hello again")
            setWelcomed(false)
        }
        if let resume = resumeAt, now >= resume {
            resumeAt = nil
            setWelcomed(false) // Hello now: a new session, the outbox from its oldest entry
            lastHello = nil
        }
        if !welcomed {
            if lastHello.map({ now - $0 >= heartbeat }) ?? true {
                var hello = Hello()
                hello.protocolVersion = 2
                hello.agent = "ctbus-node/0.1"
                hello.requestBacklog = try configuration.requestBacklog && journal.needsBacklog()
                send(.hello(hello))
                lastHello = now
            }
            return
        }
        if now - lastHeartbeat >= heartbeat {
            // A heartbeat that does not fit now is tried again at the next turn, not an interval later.
            if send(.heartbeat(Heartbeat())) { lastHeartbeat = now }
        }
        guard resumeAt == nil else { return } // backing off after INTERNAL: heartbeats only
        if resendAll || outboxDue || lastOutboxCheck.map({ now - $0 >= .milliseconds(configuration.outboxPollMilliseconds) }) ?? true {
            lastOutboxCheck = now
            outboxDue = false
            try sendOutbox()
        }
    }

    /// Sends what was queued since the last check, oldest first, and every `resendAfter` sends
    /// again what the broker has not acknowledged in that time (a safety net: within a session
    /// ZeroMQ loses nothing, and a new session resends the whole outbox from the oldest entry).
    private func sendOutbox() throws {
        let now = ContinuousClock.now
        let resendAfter = Duration.milliseconds(configuration.resendAfterMilliseconds)
        let newSession = resendAll
        if newSession {
            sentThrough = 0
            lastSent = [:]
            resendAll = false
            lastResendCheck = now
        } else if now - lastResendCheck >= resendAfter {
            lastResendCheck = now
            for item in try journal.outbox(limit: outboxBatch) where item.seq <= sentThrough {
                guard let last = lastSent[item.messageId], now - last >= resendAfter else { continue }
                guard send(item, at: now) else { break }
            }
        }
        // At most `publishWindow` publications wait unacknowledged, well below the socket's
        // queue (10,000): heartbeats and acknowledgements always find room behind them.
        let room = publishWindow - lastSent.count
        let fresh = room > 0 ? try journal.outbox(after: sentThrough, limit: min(outboxBatch, room)) : []
        var sentAll = room > 0
        for item in fresh {
            guard send(item, at: now) else {
                sentAll = false // the pipe is full: the next outbox poll goes on from here
                break
            }
            sentThrough = item.seq
        }
        outboxDue = sentAll && fresh.count == outboxBatch
        try sendRevocations(all: newSession)
    }

    /// The Publish frame of an outbox entry: its signed bytes and proof as stored (an entry queued
    /// before signatures goes without a proof, and the broker refuses it for good: SIGNATURE_INVALID).
    static func publishFrame(_ item: OutboxItem) -> [UInt8] {
        FrameBytes.publish(signedEnvelope: item.envelope, payload: item.payload, proof: item.proof)
    }

    /// Sends one publication from the outbox, as its stored bytes, and notes when.
    private func send(_ item: OutboxItem, at now: ContinuousClock.Instant) -> Bool {
        guard send(frame: Self.publishFrame(item)) else { return false }
        lastSent[item.messageId] = now
        if firstSent[item.messageId] == nil { firstSent[item.messageId] = now }
        return true
    }

    /// Sends the revocations not confirmed yet: all of them in a new session, else those sent
    /// longer than `resendAfter` ago (or never).
    private func sendRevocations(all: Bool) throws {
        let now = Date()
        let resendAfter = Double(configuration.resendAfterMilliseconds) / 1000
        for (revocation, lastSentAt) in try journal.pendingRevocations() {
            if !all, let last = lastSentAt, now.timeIntervalSince(last) < resendAfter { continue }
            guard send(.revoke(revocation.frame)) else { break }
            try journal.markRevocationSent(revocation.messageID, at: now)
        }
    }

    // MARK: Frames from the broker

    /// Reads what the broker sent, up to a batch. Deliveries and acknowledgements of the batch
    /// are journaled in one transaction each (one fsync), and only then is the cumulative
    /// DeliveryAck sent.
    private func drain(until thread: LoopThread) throws {
        var deliveries: [IncomingDelivery] = []
        var handledThrough: UInt64?
        var acknowledgements: [(messageId: String, originator: String)] = []
        var revocations: [Revocation] = []
        var revokesAcknowledged: [String] = []
        for _ in 0..<512 where !thread.isStopping {
            guard let message = try socket.receive(dontWait: true) else { break }
            lastHeard = .now
            guard message.frames.count == 1, let kind = try? Admission.decodeFrame(message.frames[0]) else {
                throttled.log("malformed", .warning, "malformed frame from the broker", metadata: ["frames": "\(message.frames.count)"])
                continue
            }
            switch kind {
            case .welcome(let welcome):
                logger.info("session open", metadata: ["as": "\(welcome.nodeID)", "backlog": "\(welcome.backlogQueued)"])
                if configuration.requestBacklog, try journal.needsBacklog() { try journal.markBacklogRequested() }
                setWelcomed(true)
                resendAll = true
            case .publishAck(let ack):
                acknowledgements.append((ack.messageID, ack.originator))
            case .deliver(let deliver) where deliver.hasRevocation:
                guard welcomed else { continue }
                if let revocation = checkedRevocation(deliver) { revocations.append(revocation) }
                handledThrough = deliver.sequence
            case .revokeAck(let ack):
                revokesAcknowledged.append(ack.messageID)
            case .deliver(let deliver):
                guard welcomed else { continue }
                if let delivery = admitted(deliver) { deliveries.append(delivery) }
                handledThrough = deliver.sequence
            case .error(let report):
                handle(BusError(report))
            case .heartbeat:
                break
            case .hello, .publish, .deliveryAck, .revoke:
                throttled.log("unexpected", .warning, "unexpected command from the broker")
            }
        }
        if !acknowledgements.isEmpty {
            try journal.acknowledge(acknowledgements)
            let now = ContinuousClock.now
            for (messageId, _) in acknowledgements {
                lastSent[messageId] = nil
                if let first = firstSent.removeValue(forKey: messageId) { metrics.publishAck.record(duration: now - first) }
            }
            storeBackoff = nil // the broker stores again
            logger.debug("publications acknowledged", metadata: ["count": "\(acknowledgements.count)"])
        }
        if !revokesAcknowledged.isEmpty { try journal.confirmRevocations(revokesAcknowledged) }
        guard let through = handledThrough else { return }
        do {
            let fresh = try journal.recordDeliveries(deliveries)
            metrics.journaled.increment(by: Int64(fresh))
            // After the deliveries: a revocation may concern a message of the same batch.
            let notOriginators = revocations.isEmpty ? [] : try journal.markRevoked(revocations)
            for revocation in notOriginators {
                refuse(BusError(.notPermitted, "a revocation signed by \(revocation.revokedBy), who is not the message's originator",
                                messageId: revocation.messageID), reason: .revocationInvalid, sequence: nil)
            }
            // The reason stays out of the log: it is the originator's free text.
            for revocation in revocations where !notOriginators.contains(revocation) {
                logger.info("message revoked by its originator", metadata: [
                    "message-id": "\(revocation.messageID)", "by": "\(revocation.revokedBy)"])
            }
            logger.debug("journaled deliveries", metadata: ["new": "\(fresh)", "duplicates": "\(deliveries.count - fresh)"])
        } catch {
            // Not journaled: acknowledge nothing; a new session sends it all again.
            throttled.log("journal-failed", .error, "could not journal deliveries", metadata: ["error": "\(error)", "count": "\(deliveries.count)"])
            setWelcomed(false)
            return
        }
        var ack = DeliveryAck()
        ack.throughSequence = through
        send(.deliveryAck(ack))
    }

    /// The delivery to journal, once `DeliveryCheck` found the originator's signature and the
    /// disclosures good and the message within this node's clearance. A refused delivery is
    /// logged (once per reason and period: a broker can repeat it), counted and acknowledged, so
    /// it is not sent again; nothing of it is journaled, and the next deliveries go on.
    private func admitted(_ deliver: Deliver) -> IncomingDelivery? {
        do {
            return try deliveryCheck.check(deliver)
        } catch {
            refuse(error.error, reason: error.reason, sequence: deliver.sequence)
            return nil
        }
    }

    /// The revocation a delivery carries, once its originator's signature checks out with this
    /// node's registry copy (the journal then checks that it names the message's originator).
    private func checkedRevocation(_ deliver: Deliver) -> Revocation? {
        do {
            return try deliveryCheck.check(deliver.revocation)
        } catch {
            refuse(error.error, reason: error.reason, sequence: deliver.sequence)
            return nil
        }
    }

    /// A refused delivery or revocation: logged (once per reason and period), kept for tools and
    /// counted; nothing of it is journaled or applied.
    private func refuse(_ error: BusError, reason: DeliveryCheck.Reason, sequence: UInt64?) {
        throttled.log("delivery-refused:\(reason.rawValue)", .error, "refused a delivery", metadata: [
            "message-id": "\(error.messageId ?? "-")", "sequence": "\(sequence.map(String.init) ?? "-")", "code": "\(error.codeName)",
            "reason": "\(error.detail)",
        ])
        status.withLock { state in
            state.refusedDeliveries += 1
            state.refusals.append(error)
            if state.refusals.count > 100 { state.refusals.removeFirst() }
        }
        metrics.refused(reason)
    }

    private func handle(_ error: BusError) {
        status.withLock { $0.errors.append(error) }
        switch error.code {
        case .noSession:
            setWelcomed(false)
            lastHello = nil
        case .sessionReplaced:
            // Another connection said Hello with this node's key: another process (a second
            // process on this journal is refused by the journal's lock at start), or an answer
            // that is stale or forged. Stop sending, say so each time, and come back later.
            guard rejoinAt == nil else { return } // one pause for a burst of answers
            let delay = min(replacedBackoff.map { $0 * 2 } ?? .seconds(1), .seconds(60))
            replacedBackoff = delay
            let pause = delay * Double.random(in: 0.5...1.0)
            rejoinAt = .now + pause
            setWelcomed(false)
            status.withLock { $0.sessionsReplaced += 1 }
            logger.warning("the broker gave this node's session to another connection with this node's key (another process running as this node, or a stale or forged answer); sending nothing, then saying Hello on a new connection", metadata: [
                "broker": "\(configuration.brokerEndpoint)", "detail": "\(error.detail)",
                "retry-after-ms": "\(Int(pause / .milliseconds(1)))"])
        case .notAuthenticated:
            // The broker's registry no longer holds this node or its key (a reload removed it):
            // the session is over. Hello is tried again each heartbeat interval, so the node comes
            // back by itself if the operator registers it again; the line is throttled.
            throttled.log("not-authenticated", .error, "the broker does not accept this node's key (removed from its registry, or replaced)",
                          metadata: ["detail": "\(error.detail)"])
            if welcomed { setWelcomed(false) }
            lastHello = .now
        case .internal:
            backOffAfterStoreFailure()
        case .validationFailed, .notPermitted, .needToKnowRequired, .messageTooLarge, .conflictingDuplicate, .malformedFrame,
             .unknownSigningKey, .signatureInvalid, .disclosureMismatch, .sealedToMismatch, .sealInvalid, .nonCanonical:
            throttled.log("refused:\(error.codeName)", .error, "broker refused a publication", metadata: [
                "code": "\(error.codeName)", "message-id": "\(error.messageId ?? "-")", "detail": "\(error.detail)"])
            guard let id = error.messageId ?? refusedFrame(error.frameSHA256) else { return }
            lastSent[id] = nil
            firstSent[id] = nil
            do {
                try journal.refuse(messageId: id, code: error.codeName, detail: error.detail)
            } catch {
                throttled.log("refusal-not-recorded", .error, "could not record the refusal", metadata: ["error": "\(error)"])
            }
        default:
            throttled.log("error:\(error.codeName)", .warning, "broker error", metadata: ["code": "\(error.codeName)", "detail": "\(error.detail)"])
        }
    }

    /// The broker could not store: stop sending publications for a while, then say Hello and
    /// resend from the oldest (the broker holds the session's publications until then).
    private func backOffAfterStoreFailure() {
        guard resumeAt == nil else { return } // one back-off for all the refusals of a round
        let first = Duration.milliseconds(max(10, configuration.reconnectMilliseconds))
        let delay = min(storeBackoff.map { $0 * 2 } ?? first, .milliseconds(500))
        storeBackoff = delay
        resumeAt = .now + delay * Double.random(in: 0.5...1.0)
        throttled.log("store-backoff", .warning, "the broker could not store a publication; resending later",
                      metadata: ["after-ms": "\(Int(delay / .milliseconds(1)))"])
    }

    /// The outbox entry (or pending revocation) whose frame has this SHA-256: the broker refused
    /// bytes it could not read an id from (PROTOCOL.md section 8).
    private func refusedFrame(_ digest: Data?) -> String? {
        guard let digest else { return nil }
        do {
            for item in try journal.outbox(limit: Int.max)
            where Data(SHA256.hash(data: Self.publishFrame(item))) == digest {
                return item.messageId
            }
            for (revocation, _) in try journal.pendingRevocations() {
                var frame = Frame()
                frame.kind = .revoke(revocation.frame)
                let bytes: [UInt8] = try frame.serializedBytes()
                if Data(SHA256.hash(data: bytes)) == digest { return revocation.messageID }
            }
        } catch {
            throttled.log("digest-lookup-failed", .error, "could not look up a refused frame", metadata: ["error": "\(error)"])
        }
        return nil
    }

    // MARK: Helpers

    @discardableResult
    private func send(_ kind: Frame.OneOf_Kind) -> Bool {
        var frame = Frame()
        frame.kind = kind
        do {
            return send(frame: try frame.serializedBytes())
        } catch {
            throttled.log("encode-failed", .warning, "could not encode a frame", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func send(frame bytes: [UInt8]) -> Bool {
        do {
            try socket.send([bytes], dontWait: true)
            return true
        } catch where error.isWouldBlock {
            return false // no connection yet, or the pipe is full: the outbox keeps it
        } catch {
            throttled.log("send-failed", .warning, "send failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func setWelcomed(_ value: Bool) {
        if value { watch.sessionOpened() } else { watch.sessionLost() }
        if value != welcomed {
            // For the console's status page; a journal that cannot take it now loses only that line.
            do { try journal.recordSession(open: value) } catch {
                throttled.log("session-record", .warning, "could not record the session state in the journal", metadata: ["error": "\(error)"])
            }
        }
        welcomed = value
        if value { lastHeard = .now }
        setConnected(value)
    }

    private func setConnected(_ value: Bool) {
        status.withLock { $0.connected = value }
    }
}
