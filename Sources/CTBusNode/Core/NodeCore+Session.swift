import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Logging

/// The session (PROTOCOL.md 4.1): Hello until a Welcome, heartbeats, silence, and what each
/// ErrorReport from the broker means for it.
extension NodeCore {
    // MARK: Entry points

    /// Time passed. `framesWaiting`: frames from the broker wait unread (the broker is judged
    /// silent only once everything it sent is read, PROTOCOL.md 4.4).
    mutating func tick(at now: Moment, framesWaiting: Bool) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a tick while a journal operation is in hand")
        var step = Step()
        if replaced.isPaused {
            guard replaced.ends(at: now.instant) else { return step } // replaced: silent until then
            step.effects.append(.reconnect)
            lastHello = nil
        }
        if welcomed, brokerSilent(at: now), !framesWaiting {
            step.log(.warning, "broker silent; saying Hello again")
            setWelcomed(false, at: now, &step)
            lastHello = nil // Hello at once (4.1)
        }
        if storeFailure.ends(at: now.instant) {
            setWelcomed(false, at: now, &step) // Hello now: a new session, the outbox from its oldest entry
            lastHello = nil
        }
        guard welcomed else {
            if lastHello.map({ now.instant - $0 >= settings.heartbeat }) ?? true {
                var hello = Hello()
                hello.protocolVersion = Self.protocolVersion
                hello.agent = Self.agent
                hello.requestBacklog = backlogWanted
                step.send(.hello(hello), .hello)
                lastHello = now.instant
            }
            return step
        }
        if now.instant - lastHeartbeat >= settings.heartbeat {
            step.send(.heartbeat(Heartbeat()), .heartbeat)
            lastHeartbeat = now.instant
        }
        guard !storeFailure.isPaused else { return step } // backing off after INTERNAL: heartbeats only
        if resendAll || outboxDue || lastOutboxCheck.map({ now.instant - $0 >= settings.outboxPoll }) ?? true {
            lastOutboxCheck = now.instant
            outboxDue = false
            let newSession = resendAll
            if newSession {
                window.newSession()
                resendAll = false
                lastResendCheck = now.instant
            }
            let resend = !newSession && now.instant - lastResendCheck >= settings.resendAfter
            if resend { lastResendCheck = now.instant }
            agenda.append(.readOutbox(resend: resend))
            agenda.append(.readPendingRevocations(all: newSession))
        }
        runAgenda(&step)
        return step
    }

    /// Whether the broker has been silent for longer than the broker timeout while a session is
    /// open (the shell then looks for unread frames before the tick).
    func brokerSilent(at now: Moment) -> Bool {
        welcomed && now.instant - lastHeard > settings.brokerTimeout
    }

    /// A connection just completed its CURVE handshake: say Hello now, not at the next retry.
    mutating func connectionReady() {
        if !welcomed { lastHello = nil }
    }

    /// A publication was queued in this process: send it at the next tick.
    mutating func outboxChanged() { outboxDue = true }

    /// One message read from the DEALER socket.
    mutating func received(_ frames: [[UInt8]], at now: Moment) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a frame fed while a journal operation is in hand")
        var step = Step()
        lastHeard = now.instant
        guard frames.count == 1, let kind = try? Admission.decodeFrame(frames[0]) else {
            step.log(.warning, "malformed frame from the broker", ["frames": "\(frames.count)"], throttle: "malformed")
            return step
        }
        switch kind {
        case .welcome(let welcome):
            step.log(.info, "session open", ["as": "\(welcome.nodeID)", "backlog": "\(welcome.backlogQueued)"])
            if backlogWanted {
                backlogWanted = false
                step.effects.append(.backlogRequested)
            }
            setWelcomed(true, at: now, &step)
            resendAll = true
        case .publishAck(let ack):
            batch.publishAcks.append((ack.messageID, ack.originator))
        case .revokeAck(let ack):
            batch.revokeAcks.append(ack.messageID)
        case .deliver(let deliver):
            // Before a Welcome a delivery is ignored and not acknowledged: it comes again after it.
            guard welcomed else { break }
            if deliver.hasRevocation { batch.revocations.append(deliver) } else { batch.deliveries.append(deliver) }
            batch.through = deliver.sequence
        case .error(let report):
            handle(BusError(report), at: now, &step)
        case .heartbeat:
            break
        case .hello, .publish, .deliveryAck, .revoke:
            step.log(.warning, "unexpected command from the broker", throttle: "unexpected")
        }
        runAgenda(&step)
        return step
    }

    /// The end of a read batch: journal what it brought, then acknowledge.
    mutating func drained(at now: Moment) -> Step {
        precondition(awaiting == nil && agenda.isEmpty, "a batch ended while a journal operation is in hand")
        var step = Step()
        guard !batch.isEmpty else { return step }
        awaiting = .journal(batch)
        step.request = .journal(batch)
        batch = Batch()
        return step
    }

    /// The node stops: the session is recorded as closed.
    mutating func stopping(at now: Moment) -> Step {
        var step = Step()
        if welcomed { setWelcomed(false, at: now, &step) }
        return step
    }

    /// A send the socket did not take (no connection yet, or the pipe is full).
    mutating func sendFailed(_ purpose: Purpose, at now: Moment) {
        switch purpose {
        case .hello, .deliveryAck:
            break // Hello is tried again each interval; a lost DeliveryAck is repeated by the next one
        case .heartbeat:
            lastHeartbeat = now.instant - settings.heartbeat // tried again at the next turn, not an interval later
        case .publish(let messageId, let seq, let previous, let first):
            window.notSent(messageId, seq: seq, previous: previous, first: first)
            outboxDue = false // the pipe is full: the next outbox poll goes on from here
        case .revoke(let messageId):
            unsentRevocations.insert(messageId)
        }
    }

    /// The result of the journal operation in hand.
    mutating func completed(_ completion: Completion, at now: Moment) -> Step {
        guard let awaiting else { preconditionFailure("a journal result without a journal operation in hand") }
        self.awaiting = nil
        var step = Step()
        switch (awaiting, completion) {
        case (.outbox, .outboxRead(let result)):
            outboxRead(result, at: now, &step)
        case (.revocations(let all), .pendingRevocationsRead(let result)):
            pendingRevocationsRead(result, all: all, at: now, &step)
        case (.journal(let batch), .journaled(let result)):
            journaled(batch, result, at: now, &step)
        case (.refusal, .refusalRecorded(let messageId)):
            if let messageId { window.refused(messageId) }
        default:
            preconditionFailure("a journal result of another kind than the operation in hand")
        }
        runAgenda(&step)
        return step
    }

    mutating func runAgenda(_ step: inout Step) {
        while step.request == nil, !agenda.isEmpty {
            switch agenda.removeFirst() {
            case .readOutbox(let resend):
                // At most `publishWindow` publications wait unacknowledged.
                awaiting = .outbox
                step.request = .readOutbox(resend: resend, after: window.sentThrough, limit: min(settings.outboxBatch, window.room))
            case .readPendingRevocations(let all):
                awaiting = .revocations(all: all)
                step.request = .readPendingRevocations
            }
        }
    }

    // MARK: Session state

    mutating func setWelcomed(_ value: Bool, at now: Moment, _ step: inout Step) {
        step.effects.append(.session(open: value, changed: value != welcomed))
        welcomed = value
        if value { lastHeard = now.instant }
    }

    /// What an ErrorReport from the broker means (PROTOCOL.md 4.1 and 8).
    mutating func handle(_ error: BusError, at now: Moment, _ step: inout Step) {
        step.effects.append(.brokerError(error))
        switch error.code {
        case .noSession:
            setWelcomed(false, at: now, &step)
            lastHello = nil
        case .sessionReplaced:
            // Another connection said Hello with this node's key: another process, or an answer
            // that is stale or forged. Stop sending, say so each time, and come back later.
            guard let (_, pause) = replaced.failed(at: now.instant, jitter: jitter) else { return } // one pause for a burst of answers
            setWelcomed(false, at: now, &step)
            step.effects.append(.sessionReplaced)
            step.log(.warning, "the broker gave this node's session to another connection with this node's key (another process running as this node, or a stale or forged answer); sending nothing, then saying Hello on a new connection",
                     ["broker": "\(settings.brokerEndpoint)", "detail": "\(error.detail)", "retry-after-ms": "\(Int(pause / .milliseconds(1)))"])
        case .notAuthenticated:
            // The broker's registry no longer holds this node or its key: the session is over.
            // Hello is tried again each heartbeat interval, so the node comes back by itself if
            // the operator registers it again.
            step.log(.error, "the broker does not accept this node's key (removed from its registry, or replaced)",
                     ["detail": "\(error.detail)"], throttle: "not-authenticated")
            if welcomed { setWelcomed(false, at: now, &step) }
            lastHello = now.instant
        case .internal:
            backOffAfterStoreFailure(at: now, &step)
        case .validationFailed, .notPermitted, .needToKnowRequired, .messageTooLarge, .conflictingDuplicate, .malformedFrame,
             .unknownSigningKey, .signatureInvalid, .disclosureMismatch, .sealedToMismatch, .sealInvalid, .nonCanonical:
            step.log(.error, "broker refused a publication", [
                "code": "\(error.codeName)", "message-id": "\(error.messageId ?? "-")", "detail": "\(error.detail)",
            ], throttle: "refused:\(error.codeName)")
            guard error.messageId != nil || error.frameSHA256 != nil else { return }
            awaiting = .refusal
            step.request = .recordRefusal(error)
        default:
            step.log(.warning, "broker error", ["code": "\(error.codeName)", "detail": "\(error.detail)"], throttle: "error:\(error.codeName)")
        }
    }

    /// The broker could not store: no publication for a while, then Hello and the outbox from the
    /// oldest entry (the broker holds the session's publications until then).
    mutating func backOffAfterStoreFailure(at now: Moment, _ step: inout Step) {
        // One back-off for all the refusals of a round.
        guard let (delay, _) = storeFailure.failed(at: now.instant, jitter: jitter) else { return }
        step.log(.warning, "the broker could not store a publication; resending later", ["after-ms": "\(Int(delay / .milliseconds(1)))"],
                 throttle: "store-backoff")
    }
}
