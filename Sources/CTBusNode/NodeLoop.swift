import CTBusJournal
import CTBusSchema
import Foundation
import Logging
import SwiftProtobuf
import ZeroMQ

/// The node's loop; lives on the node thread only (it owns the DEALER socket).
final class NodeLoop {
    private let socket: ZMQSocket
    private let configuration: NodeConfiguration
    private let journal: NodeJournal
    private let status: SharedStatus
    private let logger: Logger

    private var welcomed = false
    private var lastHeard = ContinuousClock.now
    private var lastHello: ContinuousClock.Instant?
    private var lastHeartbeat = ContinuousClock.now
    private var lastOutboxCheck: ContinuousClock.Instant?
    /// Resend every outbox entry at the next check (after a Welcome).
    private var resendAll = false

    init(context: ZMQContext, configuration: NodeConfiguration, keyPair: CurveKeyPair, brokerPublicKey: String,
         journal: NodeJournal, status: SharedStatus, logger: Logger) throws {
        self.configuration = configuration
        self.journal = journal
        self.status = status
        self.logger = logger
        socket = try ZMQSocket(context: context, type: .dealer)
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
                if try ZMQSocket.poll([socket], timeoutMilliseconds: pollTimeout)[0] {
                    try drain()
                }
                try tick()
            } catch let error as ZMQError where error.isTerminated {
                break
            } catch {
                logger.error("node loop error", metadata: ["error": "\(error)"])
            }
        }
        socket.close()
        setConnected(false)
    }

    // MARK: Timers

    private func tick() throws {
        let now = ContinuousClock.now
        let heartbeat = Duration.milliseconds(configuration.heartbeatIntervalMilliseconds)
        if welcomed, now - lastHeard > .milliseconds(configuration.brokerTimeoutMilliseconds) {
            logger.warning("broker silent; saying Hello again")
            setWelcomed(false)
        }
        if !welcomed {
            if lastHello.map({ now - $0 >= heartbeat }) ?? true {
                var hello = Hello()
                hello.protocolVersion = 1
                hello.agent = "ctbus-node/0.1"
                send(.hello(hello))
                lastHello = now
            }
            return
        }
        if now - lastHeartbeat >= heartbeat {
            send(.heartbeat(Heartbeat()))
            lastHeartbeat = now
        }
        if resendAll || lastOutboxCheck.map({ now - $0 >= .milliseconds(configuration.outboxPollMilliseconds) }) ?? true {
            lastOutboxCheck = now
            try sendOutbox()
        }
    }

    private func sendOutbox() throws {
        let resendAfter = Double(configuration.resendAfterMilliseconds) / 1000
        let now = Date()
        var sent: [String] = []
        for item in try journal.outbox(limit: 500) {
            if !resendAll, let last = item.lastSentAt, now.timeIntervalSince(last) < resendAfter { continue }
            var publish = Publish()
            publish.envelope = try Envelope(serializedBytes: item.envelope)
            publish.payload = item.payload
            guard send(.publish(publish)) else { break }
            sent.append(item.messageId)
        }
        resendAll = false
        if !sent.isEmpty { try journal.markSent(sent, at: now) }
    }

    // MARK: Frames from the broker

    private func drain() throws {
        var deliveredThrough: UInt64?
        defer {
            if let through = deliveredThrough {
                var ack = DeliveryAck()
                ack.throughSequence = through
                send(.deliveryAck(ack))
            }
        }
        for _ in 0..<512 {
            guard let message = try socket.receive(dontWait: true) else { break }
            lastHeard = .now
            guard message.frames.count == 1, let frame = try? Frame(serializedBytes: message.frames[0]),
                  let kind = frame.kind else {
                logger.warning("malformed frame from the broker", metadata: ["frames": "\(message.frames.count)"])
                continue
            }
            switch kind {
            case .welcome(let welcome):
                logger.info("session open", metadata: ["as": "\(welcome.nodeID)"])
                setWelcomed(true)
                resendAll = true
            case .publishAck(let ack):
                try journal.acknowledge(messageId: ack.messageID, originator: ack.originator)
                logger.debug("publication acknowledged", metadata: ["message-id": "\(ack.messageID)"])
            case .deliver(let deliver):
                guard welcomed else { continue }
                guard try accept(deliver) else {
                    // Not journaled: do not acknowledge it or anything after it; a new session resends.
                    setWelcomed(false)
                    return
                }
                deliveredThrough = deliver.sequence
            case .error(let report):
                handle(BusError(report))
            case .heartbeat:
                break
            case .hello, .publish, .deliveryAck:
                logger.warning("unexpected command from the broker")
            }
        }
    }

    /// Journals one delivery after re-checking it against this node's clearance. Returns false
    /// when it could not be journaled.
    private func accept(_ deliver: Deliver) throws -> Bool {
        let envelope = deliver.envelope
        let metadata: Logger.Metadata = ["message-id": "\(envelope.messageID)", "type": "\(envelope.type.name)",
                                         "classification": "\(envelope.handling.classification.name)"]
        if envelope.handling.classification.rawValue > configuration.clearanceLevel.rawValue {
            // Defence in depth: whatever the broker decided, this node does not hold it.
            logger.error("refused a delivery above this node's clearance", metadata: metadata)
            status.withLock { $0.refusedDeliveries += 1 }
            return true
        }
        do {
            let fresh = try journal.recordDelivery(envelope: envelope, payload: deliver.payload, sequence: deliver.sequence,
                                                   redactedPaths: deliver.redactedPaths)
            logger.debug(fresh ? "journaled" : "duplicate delivery ignored", metadata: metadata)
            return true
        } catch {
            logger.error("could not journal a delivery", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            return false
        }
    }

    private func handle(_ error: BusError) {
        status.withLock { $0.errors.append(error) }
        switch error.code {
        case .noSession:
            setWelcomed(false)
            lastHello = nil
        case .validationFailed, .notPermitted, .needToKnowRequired, .messageTooLarge, .conflictingDuplicate, .malformedFrame:
            logger.error("broker refused a publication", metadata: ["code": "\(error.codeName)", "message-id": "\(error.messageId ?? "-")",
                                                                     "detail": "\(error.detail)"])
            if let id = error.messageId {
                do {
                    try journal.refuse(messageId: id, code: error.codeName, detail: error.detail)
                } catch {
                    logger.error("could not record the refusal", metadata: ["error": "\(error)"])
                }
            }
        default:
            logger.warning("broker error", metadata: ["code": "\(error.codeName)", "detail": "\(error.detail)"])
        }
    }

    // MARK: Helpers

    @discardableResult
    private func send(_ kind: Frame.OneOf_Kind) -> Bool {
        var frame = Frame()
        frame.kind = kind
        do {
            let bytes: [UInt8] = try frame.serializedBytes()
            try socket.send([bytes], dontWait: true)
            return true
        } catch let error as ZMQError where error.isWouldBlock {
            return false // no connection yet, or the pipe is full: the outbox keeps it
        } catch {
            logger.warning("send failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func setWelcomed(_ value: Bool) {
        welcomed = value
        if value { lastHeard = .now }
        setConnected(value)
    }

    private func setConnected(_ value: Bool) {
        status.withLock { $0.connected = value }
    }
}
