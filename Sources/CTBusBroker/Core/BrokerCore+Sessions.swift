import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf

/// Frames as they come (PROTOCOL.md 4.2), sessions and acknowledgements (6.1).
extension BrokerCore {
    // MARK: Reading frames

    mutating func handle(_ frames: [[UInt8]], userId: String?, at now: Moment, _ step: inout Step) {
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
        if sessions.isSuperseded(connection, for: nodeId) {
            step.log(.warning, "a frame from a connection whose session a newer one took over; answered SESSION_REPLACED",
                     ["node": "\(nodeId)"], throttle: "superseded:\(nodeId)")
            step.send(error: BrokerFrames.sessionReplaced(nodeId), to: connection)
            return
        }
        guard frames.count == 2, let kind = try? Admission.decodeFrame(frames[1]) else {
            step.log(.warning, "malformed frame", ["node": "\(nodeId)", "frames": "\(frames.count - 1)"], throttle: "malformed:\(nodeId)")
            step.send(error: BrokerFrames.malformed(Array(frames.dropFirst())), to: connection)
            return
        }
        if case .hello(let hello) = kind {
            openSession(nodeId, on: connection, publicKey: key, hello: hello, at: now, &step)
            return
        }
        // A session belongs to one connection: a second connection with the same key must say
        // Hello (and then takes the session over) before it may do anything.
        guard sessions.seen(nodeId, on: connection, at: now.instant) else {
            step.send(error: BusError(.noSession, "send Hello first"), to: connection)
            return
        }
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

    // MARK: Sessions

    mutating func openSession(_ nodeId: String, on connection: Connection, publicKey: String, hello: Hello,
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
        let previous = sessions.open(nodeId, on: connection, publicKey: publicKey, at: now.instant)
        if let previous {
            // The newer connection wins, whether the older session is open or expired; the older
            // connection is told why its session ended, and from now on gets nothing else.
            step.log(.warning, "a newer connection took over the node's session; the older one was told SESSION_REPLACED", ["node": "\(nodeId)"])
            step.send(error: BrokerFrames.sessionReplaced(nodeId), to: previous)
        }
        // What the node acknowledged leaves the store first, so the new session does not send it again.
        if acknowledgements[nodeId] != nil { agenda.append(.recordAcknowledgements) }
        step.count(.session(previous != nil ? .replaced : .opened, node: nodeId, connected: sessions.count))
        step.count(.inFlight(node: nodeId, 0))
        step.effects.append(.status(node: nodeId, .session(connected: true, since: now.date)))
        agenda.append(.welcome(node: nodeId, connection: connection, backlog: hello.requestBacklog))
        agenda.append(.pump(nodeId))
    }

    /// Sends the Welcome, with how many messages of the backlog were queued when one was asked for.
    mutating func welcome(_ nodeId: String, on connection: Connection, backlogQueued result: Result<Int, StoreError>?,
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
    mutating func expireSessions(at now: Moment, _ step: inout Step) {
        for nodeId in sessions.overdue(at: now.instant, timeout: limits.sessionTimeout) {
            forgetSession(nodeId, .expired, at: now, &step)
            step.log(.info, "node away: no heartbeat", ["node": "\(nodeId)"])
        }
    }

    /// Drops a node's session and says so in the metrics and the status (the queue stays).
    @discardableResult
    mutating func forgetSession(_ nodeId: String, _ change: BrokerMetrics.SessionChange, at now: Moment,
                                _ step: inout Step) -> SessionTable.Session? {
        guard let session = sessions.remove(nodeId) else { return nil }
        step.count(.session(change, node: nodeId, connected: sessions.count))
        step.count(.inFlight(node: nodeId, 0))
        step.effects.append(.status(node: nodeId, .session(connected: false, since: now.date)))
        return session
    }

    /// In-flight counts and acknowledgement times for the status (session changes go when they happen).
    mutating func snapshot(at now: Moment, _ step: inout Step) {
        lastSnapshot = now.instant
        for node in sessions.nodes {
            let acknowledged = acknowledgedSinceSnapshot.contains(node)
            step.effects.append(.status(node: node, .inFlight(sessions[node]?.inFlight.count ?? 0, acknowledgedAt: acknowledged ? now.date : nil)))
        }
        acknowledgedSinceSnapshot = []
    }

    // MARK: Acknowledgements

    mutating func acknowledge(_ nodeId: String, through sequence: UInt64, at now: Moment, _ step: inout Step) {
        // Capped at what this session sent: a node cannot delete deliveries it never got.
        guard let sent = sessions[nodeId]?.sentThrough else { return }
        let through = min(sequence, sent)
        guard acknowledgements.record(nodeId, through: through, at: now.instant) else { return }
        let inFlight = sessions.acknowledged(nodeId, through: through)
        if let mark = rejudgeThrough[nodeId], through >= mark { agenda.append(.clearRejudge(node: nodeId, through: through)) }
        step.count(.inFlight(node: nodeId, inFlight))
        acknowledgedSinceSnapshot.insert(nodeId)
        freed.insert(nodeId)
    }

    mutating func acknowledgementsRecorded(_ written: [String: UInt64], _ result: Result<Void, StoreError>, _ step: inout Step) {
        switch result {
        case .success:
            acknowledgements.written(written)
        case .failure(let error):
            // Kept for the next attempt; meanwhile the store only holds more than it needs to.
            step.log(.error, "could not record acknowledgements", ["nodes": "\(acknowledgements.count)", "error": "\(error)"],
                     throttle: "acknowledgements-failed")
        }
    }

}
