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

/// The node's loop: the shell around `NodeCore`. It owns the DEALER socket and lives on the
/// node thread only. It polls, reads, feeds the core, and performs what the core returns:
/// frames to send, log lines, metrics and status, and one journal operation at a time, whose
/// result goes back to the core. The checks of a delivery before it is journaled
/// (`DeliveryCheck`: signature, disclosures, sealing, this node's own policy) run here, where the
/// registry file can be read again.
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
    private let metrics: NodeMetrics
    /// The originator's signature and this node's clearance, checked before a delivery is journaled.
    private let deliveryCheck: DeliveryCheck
    private var core: NodeCore
    /// Frames read per wake-up; their deliveries are journaled in one transaction.
    private let batchLimit = 512

    init(context: ZMQContext, configuration: NodeConfiguration, keyPair: CurveKeyPair, brokerPublicKey: String,
         journal: NodeJournal, registry: NodeRegistry, sealingKey: Curve25519.KeyAgreement.PrivateKey, status: SharedStatus,
         wakeEndpoint: String, logger: Logger, metrics: any MetricsFactory) throws {
        deliveryCheck = DeliveryCheck(registry: registry, registryFile: configuration.registryFile, clearance: configuration.clearanceLevel,
                                      nodeId: configuration.nodeId, sealingKey: sealingKey, logger: logger)
        self.metrics = NodeMetrics(factory: metrics)
        self.configuration = configuration
        core = NodeCore(settings: NodeCore.Settings(configuration),
                        backlogWanted: try configuration.requestBacklog && journal.needsBacklog())
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
                let busy = core.outboxDue && core.welcomed
                let readable = try ZMQSocket.poll([socket, wakeSocket, monitor], timeoutMilliseconds: busy ? 0 : pollTimeout)
                if readable[0] { try drain(until: thread) }
                if readable[1] {
                    while try wakeSocket.receive(dontWait: true) != nil {}
                    core.outboxChanged()
                }
                if readable[2] {
                    while let event = try monitor.readMonitorEvent() {
                        watch.note(event.kind)
                        if case .handshakeSucceeded = event.kind { core.connectionReady() }
                    }
                }
                if let line = watch.check() { logger.warning("\(line)") }
                let now = Moment.now
                // Silent only once everything the broker sent is read (PROTOCOL.md 4.4): the time
                // this node spent journaling is not the broker's silence.
                let waiting = try core.brokerSilent(at: now) && ZMQSocket.poll([socket], timeoutMilliseconds: 0)[0]
                perform(core.tick(at: now, framesWaiting: waiting))
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
        perform(core.stopping(at: .now)) // recorded as closed: the daemon stops
        status.withLock { $0.connected = false }
    }

    /// Reads what the broker sent, up to a batch; the core journals the batch's deliveries and
    /// acknowledgements at its end, and only then sends the cumulative DeliveryAck.
    private func drain(until thread: LoopThread) throws {
        for _ in 0..<batchLimit where !thread.isStopping {
            guard let message = try socket.receive(dontWait: true) else { break }
            perform(core.received(message.frames, at: .now))
        }
        perform(core.drained(at: .now))
    }

    // MARK: Performing a step

    private func perform(_ first: NodeCore.Step) {
        var step = first
        while true {
            // After a send the socket did not take, nothing more goes in this step: the pipe is
            // full or there is no connection, and a later publication must not overtake it.
            var blocked = false
            for effect in step.effects { apply(effect, blocked: &blocked) }
            guard let request = step.request else { return }
            step = core.completed(execute(request), at: .now)
        }
    }

    private func apply(_ effect: NodeCore.Effect, blocked: inout Bool) {
        switch effect {
        case .send(let bytes, let purpose):
            if blocked || !send(bytes) {
                blocked = true
                core.sendFailed(purpose, at: .now)
            }
        case .log(let line):
            throttled.write(line)
        case .session(let open, let changed):
            if open { watch.sessionOpened() } else { watch.sessionLost() }
            if changed {
                // For the console's status page; a journal that cannot take it now loses only that line.
                do { try journal.recordSession(open: open) } catch {
                    throttled.log("session-record", .warning, "could not record the session state in the journal", metadata: ["error": "\(error)"])
                }
            }
            status.withLock { $0.connected = open }
        case .reconnect:
            do {
                try socket.disconnect(configuration.brokerEndpoint)
                try socket.connect(configuration.brokerEndpoint)
            } catch {
                throttled.log("reconnect-failed", .error, "could not connect again", metadata: ["error": "\(error)"])
            }
        case .brokerError(let error):
            status.withLock { $0.errors.append(error) }
        case .sessionReplaced:
            status.withLock { $0.sessionsReplaced += 1 }
        case .publishAcknowledged(let duration):
            metrics.publishAck.record(duration: duration)
        case .journaled(let fresh):
            metrics.journaled.increment(by: Int64(fresh))
        case .backlogRequested:
            do { try journal.markBacklogRequested() } catch {
                throttled.log("backlog-record", .warning, "could not record that the backlog was asked for", metadata: ["error": "\(error)"])
            }
        case .revocationsSent(let ids, let date):
            do {
                for id in ids { try journal.revocations.markSent(id, at: date) }
            } catch {
                throttled.log("revocation-record", .warning, "could not record when a revocation was sent", metadata: ["error": "\(error)"])
            }
        }
    }

    private func send(_ bytes: [UInt8]) -> Bool {
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

    // MARK: Journal operations

    private func execute(_ request: NodeCore.Request) -> NodeCore.Completion {
        switch request {
        case .readOutbox(let resend, let after, let limit):
            return .outboxRead(Result { () throws(StoreError) in
                (resend ? try journal.outbox.items(limit: core.settings.outboxBatch) : [],
                 limit > 0 ? try journal.outbox.items(after: after, limit: limit) : [])
            })
        case .readPendingRevocations:
            return .pendingRevocationsRead(Result { () throws(StoreError) in try journal.revocations.pending() })
        case .journal(let batch):
            return .journaled(journal(batch))
        case .recordRefusal(let error):
            return .refusalRecorded(messageId: recordRefusal(error))
        }
    }

    /// Records a batch: acknowledgements first, then the deliveries that pass their checks, then
    /// the revocations (a revocation may concern a message of the same batch).
    private func journal(_ batch: NodeCore.Batch) -> NodeCore.JournalResult {
        var result = NodeCore.JournalResult()
        result.acknowledgements = Result { () throws(StoreError) in
            if !batch.publishAcks.isEmpty { _ = try journal.outbox.acknowledge(batch.publishAcks) }
            if !batch.revokeAcks.isEmpty { try journal.revocations.confirm(batch.revokeAcks) }
        }
        guard batch.through != nil else { return result }
        let (deliveries, verified, reused) = deliveryCheck.batchRoots.counting {
            let checked = deliveryCheck.verifyConcurrently(batch.deliveries)
            return zip(batch.deliveries, checked).compactMap { admitted($0, prechecked: $1) }
        }
        metrics.batchRoots(verified: verified, reused: reused)
        let revocations = batch.revocations.compactMap(checkedRevocation)
        result.deliveries = Result { () throws(StoreError) in
            let fresh = try journal.recordDeliveries(deliveries)
            let notOriginators = revocations.isEmpty ? [] : try journal.revocations.markRevoked(revocations)
            for revocation in notOriginators {
                refuse(BusError(.notPermitted, "a revocation signed by \(revocation.revokedBy), who is not the message's originator",
                                messageId: revocation.messageID), reason: .revocationInvalid, sequence: nil)
            }
            // The reason stays out of the log: it is the originator's free text.
            for revocation in revocations where !notOriginators.contains(revocation) {
                logger.info("message revoked by its originator", metadata: ["message-id": "\(revocation.messageID)", "by": "\(revocation.revokedBy)"])
            }
            logger.debug("journaled deliveries", metadata: ["new": "\(fresh)", "duplicates": "\(deliveries.count - fresh)"])
            return fresh
        }
        return result
    }

    /// The delivery to journal, once `DeliveryCheck` found the originator's signature and the
    /// disclosures good and the message within this node's clearance. A refused delivery is
    /// logged (once per reason and period: a broker can repeat it), counted and acknowledged, so
    /// it is not sent again; nothing of it is journaled, and the next deliveries go on.
    private func admitted(_ deliver: Deliver, prechecked: DeliveryCheck.Prechecked?) -> IncomingDelivery? {
        do {
            return try deliveryCheck.check(deliver, prechecked: prechecked)
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

    /// Records the broker's refusal of an outbox entry (or revocation): by its id, or by the
    /// SHA-256 of its frame when the broker could not read one (PROTOCOL.md section 8).
    private func recordRefusal(_ error: BusError) -> String? {
        guard let id = error.messageId ?? refusedFrame(error.frameSHA256) else { return nil }
        do {
            try journal.outbox.refuse(messageId: id, code: error.codeName, detail: error.detail)
        } catch {
            throttled.log("refusal-not-recorded", .error, "could not record the refusal", metadata: ["error": "\(error)"])
        }
        return id
    }

    /// The outbox entry (or pending revocation) whose frame has this SHA-256.
    private func refusedFrame(_ digest: Data?) -> String? {
        guard let digest else { return nil }
        do {
            for item in try journal.outbox.items(limit: Int.max)
            where Data(SHA256.hash(data: NodeCore.publishFrame(item))) == digest {
                return item.messageId
            }
            for (revocation, _) in try journal.revocations.pending() {
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
}
