import CTBusJournal
import CTBusPolicy
import CoreMetrics
import Metrics
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// The broker's state and loop. Lives on the broker thread only: it owns the ROUTER socket.
final class BrokerLoop {
    let socket: ZMQSocket
    private let configuration: BrokerConfiguration
    /// The registry in force; replaced by `applyPendingReload` (BrokerLoop+Registry.swift).
    var registry: NodeRegistry
    let sharedRegistry: SharedRegistry
    /// Per node whose entitlement a reload changed: the last queue sequence waiting at that
    /// moment. Deliveries up to it were decided under the old entry and are judged again before
    /// they go out; the mark goes once the node acknowledges past it.
    var rejudgeThrough: [String: UInt64] = [:]
    let store: BrokerStore
    let logger: Logger
    /// Lines a peer or a lasting fault can repeat: once per kind and period, then summed up.
    var throttled: ThrottledLogger
    var sessions: [String: Session] = [:]
    /// The connection (routing id) whose Hello opened each node's latest session, kept after the
    /// session expires: a Hello on any other connection supersedes it.
    private var lastConnection: [String: [UInt8]] = [:]
    /// Connections a newer connection with the same key took over, the newest few per node. Every
    /// Frame from one of them, Hello included, is answered SESSION_REPLACED (PROTOCOL.md section 4):
    /// a process whose session expired while it was starved cannot take it back from the one that
    /// replaced it.
    private var superseded: [String: [[UInt8]]] = [:]
    private let supersededKept = 8
    /// Cumulative acknowledgements not yet written to the store, per node. Their credit is freed
    /// at once; the store deletes the entries with the next batch of publications (in the same
    /// transaction, so without an fsync of their own) or after 20 ms. Lost in a
    /// crash, they only cause redeliveries, which nodes recognise.
    private var acknowledgements: [String: UInt64] = [:]
    private var acknowledgementsSince: ContinuousClock.Instant?
    /// Nodes whose credit acknowledgements freed in the current batch.
    private var freed = Set<String>()
    private let acknowledgementDelayMilliseconds = 20
    /// Most frames handled per wake-up; publications among them share one store transaction.
    private let batchLimit = 512

    struct Session {
        var routingId: [UInt8]
        /// The CURVE key the connection authenticated with (one of the entry's keys).
        var publicKey: String
        var lastSeen: ContinuousClock.Instant
        /// Highest sequence sent (or skipped as expired) in this session.
        var sentThrough: UInt64 = 0
        /// Sequences sent and not acknowledged yet, ascending: the credit in use.
        var inFlight: [UInt64] = []
        /// A publication of this session could not be stored (INTERNAL): every later one is
        /// refused the same way until the node says Hello again and resends from its oldest, so
        /// nothing can overtake the failed one. Deliveries and heartbeats go on.
        var held = false
    }

    /// The broker's ROUTER socket, bound: the first thing a broker does, so that a taken port
    /// stops it before it writes anything.
    static func bind(context: ZMQContext, configuration: BrokerConfiguration, keyPair: CurveKeyPair) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .router)
        do {
            try socket.setRouterMandatory(true)
            try socket.makeCurveServer(secretKey: keyPair.secretKey)
            try socket.setZAPDomain("ctbus")
            // libzmq cuts off a peer whose message is far over the limit; up to that, the broker
            // reads it and answers MESSAGE_TOO_LARGE.
            try socket.setMaxMessageSize(Int64(configuration.maxMessageBytes) * 4 + 65_536)
            try socket.setHighWaterMarks(send: 100_000, receive: 100_000)
            try socket.bind(configuration.endpoint)
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    let metrics: BrokerMetrics
    let status: BrokerStatus
    private var lastSnapshot = ContinuousClock.now
    /// Nodes that acknowledged deliveries since the last snapshot.
    private var acknowledgedSinceSnapshot = Set<String>()


    init(socket: ZMQSocket, configuration: BrokerConfiguration, registry: SharedRegistry, store: BrokerStore, logger: Logger,
         metrics: any MetricsFactory, status: BrokerStatus) {
        self.socket = socket
        sharedRegistry = registry
        let registry = registry.current
        self.status = status
        self.metrics = BrokerMetrics(factory: metrics, nodes: registry.entries.map(\.profile.id))
        self.configuration = configuration
        self.registry = registry
        self.store = store
        self.logger = logger
        throttled = ThrottledLogger(logger)
    }

    func run(until thread: LoopThread) {
        let pollTimeout = min(50, configuration.heartbeatIntervalMilliseconds)
        while !thread.isStopping {
            do {
                let timeout = acknowledgementsSince == nil ? pollTimeout : acknowledgementDelayMilliseconds
                applyPendingReload()
                if try ZMQSocket.poll([socket], timeoutMilliseconds: timeout)[0] {
                    try drain()
                }
                if let since = acknowledgementsSince, ContinuousClock.now - since >= .milliseconds(acknowledgementDelayMilliseconds) {
                    recordAcknowledgements()
                }
                try expireSessions()
                if ContinuousClock.now - lastSnapshot >= .milliseconds(250) { snapshot() }
                throttled.flush()
            } catch let error as ZMQError where error.isTerminated {
                break
            } catch {
                logger.error("broker loop error", metadata: ["error": "\(error)"])
            }
        }
        if !acknowledgements.isEmpty { recordAcknowledgements() }
        socket.close()
        logger.info("broker stopped")
    }

    /// In-flight counts and acknowledgement times for `BrokerStatus` (session changes are
    /// written when they happen).
    private func snapshot() {
        lastSnapshot = .now
        let now = Date()
        for (node, session) in sessions {
            let acknowledged = acknowledgedSinceSnapshot.contains(node)
            status.update(node) { state in
                state.inFlight = session.inFlight.count
                if acknowledged { state.lastAcknowledgedAt = now }
            }
        }
        acknowledgedSinceSnapshot = []
    }

    // MARK: Reading frames

    private struct PendingPublish {
        let routingId: [UInt8]
        let nodeId: String
        let publish: Publish
        /// The frame's bytes: their SHA-256 names a refused publication whose id cannot be read.
        let frame: [UInt8]
        var size: Int { frame.count }
    }

    private func drain() throws {
        freed = []
        var publishes: [PendingPublish] = []
        var revokes: [(routingId: [UInt8], nodeId: String, revoke: Revoke)] = []
        for _ in 0..<batchLimit {
            guard let message = try socket.receive(dontWait: true) else { break }
            handle(message, publishes: &publishes, revokes: &revokes)
        }
        if !publishes.isEmpty { process(publishes) }
        for nodeId in freed { pump(nodeId) }
        // After the batch's publications, so a message published and revoked together is known.
        for item in revokes { revoke(item.revoke, by: item.nodeId, replyTo: item.routingId) }
    }

    private func handle(_ message: ReceivedMessage, publishes: inout [PendingPublish],
                        revokes: inout [(routingId: [UInt8], nodeId: String, revoke: Revoke)]) {
        guard message.frames.count >= 1 else { return }
        let routingId = message.frames[0]
        // The ZAP handler gave each connection its CURVE key as User-Id: looked up in the registry
        // in force at every frame, so a key a reload removed is refused from its next frame on.
        guard let key = message.userId, let entry = registry.entry(publicKey: key) else {
            throttled.log("unregistered-key", .warning, "a frame from a connection whose key is not in the registry (any more); refused",
                          metadata: ["key": "\(message.userId?.prefix(8) ?? "none")…"])
            send(error: BusError(.notAuthenticated, "this connection's key is not in the broker's registry"), to: routingId)
            return
        }
        let nodeId = entry.profile.id
        if superseded[nodeId]?.contains(routingId) == true {
            throttled.log("superseded:\(nodeId)", .warning, "a frame from a connection whose session a newer one took over; answered SESSION_REPLACED",
                          metadata: ["node": "\(nodeId)"])
            send(error: Self.sessionReplaced(nodeId), to: routingId)
            return
        }
        guard message.frames.count == 2, let kind = try? Admission.decodeFrame(message.frames[1]) else {
            throttled.log("malformed:\(nodeId)", .warning, "malformed frame", metadata: ["node": "\(nodeId)", "frames": "\(message.frames.count)"])
            send(error: malformed(message.frames), to: routingId)
            return
        }
        if case .hello(let hello) = kind {
            openSession(nodeId: nodeId, routingId: routingId, publicKey: key, hello: hello)
            return
        }
        // A session belongs to one connection: a second connection with the same key must say
        // Hello (and then takes the session over) before it may do anything.
        guard sessions[nodeId]?.routingId == routingId else {
            send(error: BusError(.noSession, "send Hello first"), to: routingId)
            return
        }
        sessions[nodeId]!.lastSeen = .now
        switch kind {
        case .publish(let publish):
            publishes.append(PendingPublish(routingId: routingId, nodeId: entry.profile.id, publish: publish,
                                            frame: message.frames[1]))
        case .deliveryAck(let ack):
            // Capped at what this session sent: a node cannot delete deliveries it never got.
            let through = min(ack.throughSequence, sessions[nodeId]?.sentThrough ?? 0)
            guard through > (acknowledgements[nodeId] ?? 0) else { break }
            acknowledgements[nodeId] = through
            acknowledgementsSince = acknowledgementsSince ?? .now
            sessions[nodeId]?.inFlight.removeAll { $0 <= through }
            if let mark = rejudgeThrough[nodeId], through >= mark { clearRejudge(nodeId, through: through) }
            metrics.inFlight(nodeId, sessions[nodeId]?.inFlight.count ?? 0)
            acknowledgedSinceSnapshot.insert(nodeId)
            freed.insert(nodeId)
        case .heartbeat:
            send(.heartbeat(Heartbeat()), to: routingId)
        case .revoke(let revoke):
            do {
                try MessageValidator.validate(revoke)
                revokes.append((routingId, nodeId, revoke))
            } catch {
                send(error: error, to: routingId)
            }
        case .hello, .welcome, .publishAck, .deliver, .error, .revokeAck:
            send(error: BusError(.malformedFrame, "a node does not send this command"), to: routingId)
        }
    }

    // MARK: Sessions

    private func openSession(nodeId: String, routingId: [UInt8], publicKey: String, hello: Hello) {
        guard hello.protocolVersion == 2 else {
            send(error: BusError(.unsupportedVersion, "protocol version \(hello.protocolVersion) unsupported; this broker speaks 2"),
                 to: routingId)
            return
        }
        do {
            try MessageValidator.validate(hello)
        } catch {
            send(error: error, to: routingId)
            return
        }
        let replaced = lastConnection[nodeId].map { $0 != routingId } ?? false
        if let previous = lastConnection[nodeId], previous != routingId {
            // The newer connection wins, whether the older session is open or expired; the older
            // connection is told why its session ended, and from now on gets nothing else.
            logger.warning("a newer connection took over the node's session; the older one was told SESSION_REPLACED",
                           metadata: ["node": "\(nodeId)"])
            send(error: Self.sessionReplaced(nodeId), to: previous)
            superseded[nodeId, default: []].append(previous)
            if superseded[nodeId]!.count > supersededKept { superseded[nodeId]!.removeFirst() }
        }
        lastConnection[nodeId] = routingId
        // What the node acknowledged leaves the store first, so the new session does not send it again.
        if acknowledgements[nodeId] != nil { recordAcknowledgements() }
        // A new Hello starts over: whatever was in flight is sent again (nodes deduplicate).
        sessions[nodeId] = Session(routingId: routingId, publicKey: publicKey, lastSeen: .now)
        metrics.session(replaced ? .replaced : .opened, node: nodeId, connected: sessions.count)
        status.update(nodeId) { state in
            state.connected = true
            state.since = Date()
            state.inFlight = 0
        }
        metrics.inFlight(nodeId, 0)
        var welcome = Welcome()
        welcome.protocolVersion = 2
        welcome.nodeID = nodeId
        welcome.maxMessageBytes = UInt32(configuration.maxMessageBytes)
        if hello.requestBacklog, let node = registry.entry(id: nodeId)?.profile {
            welcome.backlogQueued = UInt32(queueBacklog(for: node))
        }
        send(.welcome(welcome), to: routingId)
        logger.info("node connected", metadata: ["node": "\(nodeId)", "queued": "\((try? store.queueDepth(for: nodeId)) ?? -1)"])
        pump(nodeId)
    }

    /// Queues the retained messages a late-joining node is entitled to under today's policy.
    private func queueBacklog(for node: NodeProfile) -> Int {
        do {
            let queued = try store.queueBacklog(for: node.id) { envelopeBytes, payload in
                guard let envelope = try? Envelope(serializedBytes: envelopeBytes),
                      case .deliver(let paths) = ConfidentialityPolicy.decide(envelope, originator: envelope.originator, for: node)
                else { return nil }
                // A sealed message was sealed to its recipients when it was published: a node it
                // was not sealed to could never open it, so it is not part of its backlog.
                if envelope.handling.sealed {
                    guard let content = try? SealedContent(serializedBytes: payload),
                          content.payload.keys.contains(where: { $0.nodeID == node.id }) else { return nil }
                }
                return Publication.Recipient(nodeId: node.id, redactedPaths: paths)
            }
            logger.info("backlog queued for a late joiner", metadata: ["node": "\(node.id)", "messages": "\(queued)"])
            return queued
        } catch {
            logger.error("could not queue a backlog", metadata: ["node": "\(node.id)", "error": "\(error)"])
            return 0
        }
    }

    /// Ends the sessions of nodes silent for longer than the session timeout, but only once
    /// every frame that has arrived is read (PROTOCOL.md 4.4): one of them may be from the node.
    private func expireSessions() throws {
        let timeout = Duration.milliseconds(configuration.sessionTimeoutMilliseconds)
        let now = ContinuousClock.now
        guard sessions.values.contains(where: { now - $0.lastSeen > timeout }),
              try !ZMQSocket.poll([socket], timeoutMilliseconds: 0)[0] else { return }
        for (nodeId, session) in sessions where now - session.lastSeen > timeout {
            forgetSession(nodeId, .expired)
            logger.info("node away: no heartbeat", metadata: ["node": "\(nodeId)"])
        }
    }

    /// Drops a node's session and says so in the metrics and the status snapshot (the queue stays).
    /// Returns the session it dropped.
    @discardableResult
    func forgetSession(_ nodeId: String, _ change: BrokerMetrics.SessionChange) -> Session? {
        guard let session = sessions.removeValue(forKey: nodeId) else { return nil }
        metrics.session(change, node: nodeId, connected: sessions.count)
        metrics.inFlight(nodeId, 0)
        status.update(nodeId) { state in
            state.connected = false
            state.since = Date()
            state.inFlight = 0
        }
        return session
    }

    // MARK: Publications

    private func process(_ publishes: [PendingPublish]) {
        var accepted: [(PendingPublish, Publication)] = []
        for pending in publishes {
            if sessions[pending.nodeId]?.held == true {
                metrics.refused(.internal)
                send(error: BusError(.internal, "an earlier publication of this session could not be stored; say Hello, then resend from the oldest",
                                     messageId: Admission.messageId(of: pending.publish)), to: pending.routingId)
                continue
            }
            do {
                accepted.append((pending, try admit(pending)))
            } catch var error as BusError {
                if error.messageId == nil, error.frameSHA256 == nil {
                    error = BusError(error.code, error.detail, frameSHA256: Data(SHA256.hash(data: pending.frame)))
                }
                metrics.refused(error.code)
                throttled.log("refused:\(pending.nodeId):\(error.codeName)", .notice, "publication refused", metadata: [
                    "node": "\(pending.nodeId)", "message-id": "\(error.messageId ?? "-")", "code": "\(error.codeName)",
                ])
                send(error: error, to: pending.routingId)
            } catch {
                metrics.refused(.internal)
                send(error: BusError(.internal, "could not prepare the publication", messageId: Admission.messageId(of: pending.publish)),
                     to: pending.routingId)
            }
        }
        guard !accepted.isEmpty else { return }
        let outcomes: [BrokerStore.StoreOutcome]
        do {
            let started = ContinuousClock.now
            outcomes = try store.store(accepted.map(\.1), acknowledging: acknowledgements)
            metrics.transaction.record(duration: ContinuousClock.now - started)
            metrics.publicationsPerTransaction.record(accepted.count)
            acknowledgements = [:]
            acknowledgementsSince = nil
        } catch {
            for _ in accepted { metrics.refused(.internal) }
            throttled.log("store-failed", .error, "store failed; publications not accepted",
                          metadata: ["error": "\(error)", "count": "\(accepted.count)"])
            for (pending, publication) in accepted {
                send(error: BusError(.internal, "the broker could not store the publication; retry later",
                                     messageId: publication.messageId), to: pending.routingId)
                // The session is held, not ended: the publisher backs off, says Hello and resends
                // its outbox from the oldest entry, so a later publication can never be stored
                // before this one, and its deliveries meanwhile go on.
                sessions[pending.nodeId]?.held = true
            }
            return
        }
        var behind = Set<String>()
        for ((pending, publication), outcome) in zip(accepted, outcomes) {
            switch outcome {
            case .stored, .alreadyStored:
                var ack = PublishAck()
                ack.messageID = publication.messageId
                ack.originator = publication.originator
                if case .alreadyStored(let count) = outcome {
                    ack.recipientCount = UInt32(count) // as first stored, whatever the policy says today
                } else {
                    ack.recipientCount = UInt32(publication.recipients.count)
                }
                send(.publishAck(ack), to: pending.routingId)
                if case .stored(let sequences) = outcome {
                    metrics.accepted.increment()
                    for entry in publication.audit where entry.outcome == .refused { metrics.refused(node: entry.nodeId, rule: entry.rule) }
                    logger.info("publication stored", metadata: [
                        "node": "\(publication.originator)", "message-id": "\(publication.messageId)",
                        "type": "\(publication.typeName)", "classification": "\(publication.classificationName)",
                        "recipients": "\(publication.recipients.map(\.nodeId).joined(separator: ","))",
                    ])
                    for (recipient, sequence) in zip(publication.recipients, sequences)
                    where !deliverFresh(publication, to: recipient, sequence: sequence) {
                        behind.insert(recipient.nodeId)
                    }
                }
            case .conflict:
                metrics.refused(.conflictingDuplicate)
                // A client bug or an attack: the operator must see it (never the body).
                throttled.log("conflict:\(pending.nodeId)", .warning, "a different message under a stored id was refused", metadata: [
                    "node": "\(pending.nodeId)", "message-id": "\(publication.messageId)", "rule": "conflicting-duplicate",
                ])
                send(error: BusError(.conflictingDuplicate, "message id already used by a different message",
                                     messageId: publication.messageId), to: pending.routingId)
            }
        }
        for nodeId in behind where sessions[nodeId] != nil { pump(nodeId) }
    }

    /// Sends a delivery just stored straight from memory when it is next in line for a
    /// connected node with credit left. Otherwise (returns false) `pump` reads it from the store.
    private func deliverFresh(_ publication: Publication, to recipient: Publication.Recipient, sequence: UInt64) -> Bool {
        guard let session = sessions[recipient.nodeId], session.sentThrough == sequence - 1,
              session.inFlight.count < configuration.deliveryWindow,
              publication.expiresAt.map({ $0 > Date() }) ?? true else { return false }
        let frame = FrameBytes.deliver(sequence: sequence, envelope: publication.envelope, payload: publication.payload,
                                       redactedPaths: recipient.redactedPaths,
                                       proof: Self.proof(publication.proof, withholding: recipient.redactedPaths))
        return sendDelivery(frame, sequence: sequence, to: recipient.nodeId, over: session.routingId)
    }

    /// Checks one publication and decides its recipients. Throws the BusError to send back.
    private func admit(_ pending: PendingPublish) throws -> Publication {
        guard let publisher = registry.entry(id: pending.nodeId)?.profile else {
            throw BusError(.notAuthenticated, "node \(pending.nodeId) is not in the registry",
                           messageId: Admission.messageId(of: pending.publish))
        }
        let admitted = try Admission.admit(pending.publish, size: pending.size, from: publisher,
                                           signingKey: registry.signingKey(of: publisher.id),
                                           previousKey: registry.previousSigningKey(of:keyId:), among: registry.profiles,
                                           maxMessageBytes: configuration.maxMessageBytes)
        var recipients: [Publication.Recipient] = []
        var audit: [AuditEntry] = []
        for (node, decision) in admitted.decisions {
            switch decision {
            case .deliver(let paths) where paths.isEmpty:
                recipients.append(Publication.Recipient(nodeId: node.id))
                audit.append(AuditEntry(nodeId: node.id, outcome: .delivered, rule: nil, reason: "entitled"))
            case .deliver(let paths):
                recipients.append(Publication.Recipient(nodeId: node.id, redactedPaths: paths))
                audit.append(AuditEntry(nodeId: node.id, outcome: .redacted, rule: PolicyRule.memberStateRestriction.rawValue,
                                        reason: "removed \(paths.joined(separator: ", "))"))
            case .refuse(let rule, let reason):
                audit.append(AuditEntry(nodeId: node.id, outcome: .refused, rule: rule.rawValue, reason: reason))
            }
        }
        let proof: Data
        do {
            proof = try admitted.signed.proof.serializedData()
        } catch {
            throw BusError(.internal, "could not store the proof", messageId: admitted.envelope.messageID)
        }
        return Publication(envelope: admitted.envelope, signedEnvelope: admitted.signed.signedEnvelope, payload: admitted.signed.payload,
                           proof: proof, recipients: recipients, audit: audit)
    }

    /// Revokes a message for its originator, once its signature checks out with the originator's
    /// key, and queues the signed revocation to its recipients.
    private func revoke(_ revoke: Revoke, by nodeId: String, replyTo routingId: [UInt8]) {
        let id = revoke.messageID
        let statement = revoke.statement(by: nodeId)
        do {
            try statement.verify(signingKey: registry.signingKey(of:), previousKey: registry.previousSigningKey(of:keyId:))
        } catch {
            throttled.log("revoke-unsigned:\(nodeId)", .warning, "refused a revocation whose signature does not check out",
                          metadata: ["node": "\(nodeId)", "message-id": "\(id)", "code": "\(error.codeName)", "detail": "\(error.detail)"])
            send(error: error, to: routingId)
            return
        }
        let outcome: BrokerStore.RevokeOutcome
        do {
            outcome = try store.revoke(messageId: id, by: nodeId, reason: revoke.reason, revocation: try Canonical.encode(statement))
        } catch {
            throttled.log("revocation-failed", .error, "could not store a revocation", metadata: ["node": "\(nodeId)", "message-id": "\(id)", "error": "\(error)"])
            send(error: BusError(.internal, "the broker could not store the revocation; retry later", messageId: id), to: routingId)
            return
        }
        switch outcome {
        case .revoked, .alreadyRevoked:
            var ack = RevokeAck()
            ack.messageID = id
            if case .revoked(let count) = outcome {
                ack.recipientCount = UInt32(count)
                logger.info("message revoked", metadata: ["node": "\(nodeId)", "message-id": "\(id)", "recipients": "\(count)"])
            }
            send(.revokeAck(ack), to: routingId)
            for node in sessions.keys { pump(node) }
        case .notFound:
            send(error: BusError(.validationFailed, "revoke.message_id names no message in the broker's store", messageId: id), to: routingId)
        case .notOriginator:
            throttled.log("revoke-refused:\(nodeId)", .warning, "refused a revocation by a node that is not the originator", metadata: ["node": "\(nodeId)", "message-id": "\(id)"])
            send(error: BusError(.notPermitted, "only the originator may revoke a message", messageId: id), to: routingId)
        }
    }

    // MARK: Deliveries

    /// Writes the pending acknowledgements in a transaction of their own.
    private func recordAcknowledgements() {
        do {
            try store.acknowledge(acknowledgements)
            acknowledgements = [:]
            acknowledgementsSince = nil
        } catch {
            // Kept for the next attempt; meanwhile the store only holds more than it needs to.
            throttled.log("acknowledgements-failed", .error, "could not record acknowledgements", metadata: ["nodes": "\(acknowledgements.count)", "error": "\(error)"])
        }
    }

    /// Sends queued deliveries to a connected node while it has credit.
    func pump(_ nodeId: String) {
        guard let session = sessions[nodeId] else { return }
        let room = configuration.deliveryWindow - session.inFlight.count
        guard room > 0 else { return }
        let batch: [QueuedDelivery]
        do {
            batch = try store.pendingDeliveries(for: nodeId, after: session.sentThrough, limit: room)
        } catch {
            throttled.log("queue-read-failed:\(nodeId)", .error, "could not read a delivery queue", metadata: ["node": "\(nodeId)", "error": "\(error)"])
            return
        }
        for delivery in batch {
            var deliver = Deliver()
            deliver.sequence = delivery.sequence
            if let reason = delivery.revocationReason {
                // The signed statement as stored; a revocation stored before they were signed goes
                // unsigned, and nodes refuse it.
                var revocation = delivery.revocation.flatMap { try? Revocation(serializedBytes: $0) } ?? Revocation()
                if delivery.revocation == nil {
                    revocation.messageID = delivery.messageId
                    revocation.reason = reason
                    revocation.revokedBy = delivery.originator
                }
                deliver.revocation = revocation
                guard let frame = encode(.deliver(deliver)),
                      sendDelivery(frame, sequence: delivery.sequence, to: nodeId, over: session.routingId) else { break }
                continue
            }
            if let expiry = delivery.expiresAt, expiry <= Date() {
                // Expired while queued: it is not delivered any more, and leaves the queue.
                discardExpired(delivery, for: nodeId)
                sessions[nodeId]?.sentThrough = delivery.sequence
                continue
            }
            if let mark = rejudgeThrough[nodeId], delivery.sequence <= mark {
                switch judgeAgain(delivery, for: nodeId) {
                case .deliver: break
                case .withdrawn:
                    sessions[nodeId]?.sentThrough = delivery.sequence
                    continue
                case .failed: return
                }
            }
            // The stored envelope bytes go out as they are: no decoding on the hot path (the proof
            // is decoded only for a copy under a partial restriction, to leave disclosures out).
            let frame = FrameBytes.deliver(sequence: delivery.sequence, envelope: delivery.envelope, payload: delivery.payload,
                                           redactedPaths: delivery.redactedPaths,
                                           proof: Self.proof(delivery.proof, withholding: delivery.redactedPaths))
            guard sendDelivery(frame, sequence: delivery.sequence, to: nodeId, over: session.routingId) else { break }
        }
    }

    /// The proof a recipient gets: the stored one, without the disclosures of `paths` (the
    /// restricted fields this node may not see). Signature and digests stay as signed.
    static func proof(_ stored: Data?, withholding paths: [String]) -> Data? {
        guard let stored, !paths.isEmpty else { return stored }
        guard let proof = try? Proof(serializedBytes: stored) else { return Data() } // a recipient refuses it: nothing leaks
        return (try? proof.withholding(paths).serializedData()) ?? Data()
    }

    /// Sends one Deliver frame and counts it against the node's credit.
    private func sendDelivery(_ frame: [UInt8], sequence: UInt64, to nodeId: String, over routingId: [UInt8]) -> Bool {
        guard send(frame: frame, to: routingId) else { return false }
        sessions[nodeId]?.sentThrough = sequence
        sessions[nodeId]?.inFlight.append(sequence)
        metrics.delivered(to: nodeId)
        metrics.inFlight(nodeId, sessions[nodeId]?.inFlight.count ?? 0)
        return true
    }

    private func discardExpired(_ delivery: QueuedDelivery, for nodeId: String) {
        do {
            try store.discard(nodeId: nodeId, sequence: delivery.sequence, messageId: delivery.messageId,
                              audit: AuditEntry(nodeId: nodeId, outcome: .refused, rule: PolicyRule.expired.rawValue,
                                                reason: "expired before the node came to take it"))
        } catch {
            throttled.log("discard-failed:\(nodeId)", .error, "could not discard an expired delivery", metadata: ["node": "\(nodeId)", "error": "\(error)"])
        }
    }

    // MARK: Sending

    @discardableResult
    func send(_ kind: Frame.OneOf_Kind, to routingId: [UInt8]) -> Bool {
        guard let frame = encode(kind) else { return false }
        return send(frame: frame, to: routingId)
    }

    private func encode(_ kind: Frame.OneOf_Kind) -> [UInt8]? {
        var frame = Frame()
        frame.kind = kind
        do {
            return try frame.serializedBytes()
        } catch {
            logger.warning("could not encode a frame", metadata: ["error": "\(error)"])
            return nil
        }
    }

    @discardableResult
    private func send(frame bytes: [UInt8], to routingId: [UInt8]) -> Bool {
        do {
            try socket.send([routingId, bytes], dontWait: true)
            return true
        } catch where error.isHostUnreachable {
            if let nodeId = sessions.first(where: { $0.value.routingId == routingId })?.key {
                sessions[nodeId] = nil
                logger.info("node away: connection gone", metadata: ["node": "\(nodeId)"])
            }
        } catch {
            // Typically a peer that stopped reading (its queue is full): one line per period.
            let nodeId = sessions.first(where: { $0.value.routingId == routingId })?.key ?? "no session"
            throttled.log("send-failed:\(nodeId)", .warning, "frames to a node dropped: its connection does not take them",
                          metadata: ["node": "\(nodeId)", "error": "\(error)"])
        }
        return false
    }

    /// The answer to bytes that are not one Frame: with the id when one can be read from them,
    /// else with their SHA-256, so the client can tell which of its frames it was.
    private func malformed(_ frames: [[UInt8]]) -> BusError {
        let detail = "expected one protobuf Frame after the routing id"
        guard frames.count == 2 else { return BusError(.malformedFrame, detail) }
        if let id = FrameSalvage.messageId(in: frames[1]) {
            return BusError(.malformedFrame, "the Frame does not decode (a field is not valid protobuf or not UTF-8)", messageId: id)
        }
        return BusError(.malformedFrame, detail, frameSHA256: Data(SHA256.hash(data: frames[1])))
    }

    private static func sessionReplaced(_ nodeId: String) -> BusError {
        BusError(.sessionReplaced, "a newer connection said Hello as node \(nodeId); this session has ended")
    }

    func send(error: BusError, to routingId: [UInt8]) {
        send(.error(error.report), to: routingId)
    }
}
