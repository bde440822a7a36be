@testable import CTBusJournal
@testable import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf

/// A node core driven the way the shell drives it, with the test in the place of the journal
/// and the socket: every journal operation is answered from `journal`, and every frame the core
/// sends is recorded (or refused, when `socketTakes` is false).
struct NodeScene {
    var core: NodeCore
    var now = Moment(instant: .now, date: Date(timeIntervalSince1970: 1_790_000_000))
    var journal = Journal()
    /// Whether the socket takes frames (false: no connection yet, or the pipe is full).
    var socketTakes = true
    var requests: [NodeCore.Request] = []

    struct Journal {
        var outbox: [OutboxItem] = []
        var pendingRevocations: [(revocation: Revocation, lastSentAt: Date?)] = []
        var failDeliveries = false
        /// Every batch journaled, in order.
        var batches: [NodeCore.Batch] = []
    }

    static let settings = NodeCore.Settings(heartbeat: .seconds(1), brokerTimeout: .seconds(5), resendAfter: .seconds(3),
                                            outboxPoll: .milliseconds(100), storeBackoffFirst: .milliseconds(100))

    init(backlogWanted: Bool = false) {
        core = NodeCore(settings: Self.settings, backlogWanted: backlogWanted, at: now.instant, jitter: { 1.0 })
    }

    mutating func advance(_ duration: Duration) { now.advance(by: duration) }

    struct Outcome {
        var sent: [Frame.OneOf_Kind] = []
        var effects: [NodeCore.Effect] = []
        var names: [String] { sent.map(\.name) }

        var sessionOpen: Bool? {
            effects.reversed().compactMap { if case .session(let open, _) = $0 { open } else { nil } }.first
        }
    }

    mutating func tick(framesWaiting: Bool = false) -> Outcome { perform(core.tick(at: now, framesWaiting: framesWaiting)) }

    /// Frames of one read batch from the broker, then its end.
    mutating func receive(_ kinds: [Frame.OneOf_Kind]) -> Outcome {
        var outcome = Outcome()
        for kind in kinds {
            var frame = Frame()
            frame.kind = kind
            outcome.merge(perform(core.received([try! frame.serializedBytes()], at: now)))
        }
        outcome.merge(perform(core.drained(at: now)))
        return outcome
    }

    mutating func perform(_ first: NodeCore.Step) -> Outcome {
        var outcome = Outcome()
        var step = first
        while true {
            var blocked = false
            for effect in step.effects {
                outcome.effects.append(effect)
                guard case .send(let bytes, let purpose) = effect else { continue }
                if blocked || !socketTakes {
                    blocked = true
                    core.sendFailed(purpose, at: now)
                } else {
                    outcome.sent.append(try! Frame(serializedBytes: bytes).kind!)
                }
            }
            guard let request = step.request else { return outcome }
            requests.append(request)
            step = core.completed(answer(request), at: now)
        }
    }

    private mutating func answer(_ request: NodeCore.Request) -> NodeCore.Completion {
        switch request {
        case .readOutbox(let resend, let after, let limit):
            return .outboxRead(.success((resend ? journal.outbox : [], Array(journal.outbox.filter { $0.seq > after }.prefix(limit)))))
        case .readPendingRevocations:
            return .pendingRevocationsRead(.success(journal.pendingRevocations))
        case .journal(let batch):
            journal.batches.append(batch)
            var result = NodeCore.JournalResult()
            result.deliveries = journal.failDeliveries ? .failure(StoreError(.unavailable, "disk full")) : .success(batch.deliveries.count)
            for (id, _) in batch.publishAcks { journal.outbox.removeAll { $0.messageId == id } }
            return .journaled(result)
        case .recordRefusal(let error):
            journal.outbox.removeAll { $0.messageId == error.messageId }
            return .refusalRecorded(messageId: error.messageId)
        }
    }

    // MARK: Making the node's state

    /// Says Hello and gets the Welcome: the session is open.
    mutating func open() {
        _ = tick()
        _ = receive([Self.welcome()])
        _ = tick() // the new session's whole outbox goes
    }

    static func welcome() -> Frame.OneOf_Kind {
        var welcome = Welcome()
        welcome.protocolVersion = 3
        welcome.nodeID = "cted"
        welcome.maxMessageBytes = 1_048_576
        return .welcome(welcome)
    }

    static func error(_ code: ErrorCode, messageId: String? = nil) -> Frame.OneOf_Kind {
        .error(BusError(code, "test", messageId: messageId).report)
    }

    static func deliver(_ sequence: UInt64, revocation: Bool = false) -> Frame.OneOf_Kind {
        var deliver = Deliver()
        deliver.sequence = sequence
        if revocation {
            deliver.revocation.messageID = MessageID.generate()
        } else {
            deliver.signedEnvelope = Data([1])
        }
        return .deliver(deliver)
    }

    static func publishAck(_ messageId: String) -> Frame.OneOf_Kind {
        var ack = PublishAck()
        ack.messageID = messageId
        ack.originator = "cted"
        return .publishAck(ack)
    }

    mutating func queue(_ count: Int) {
        let first = (journal.outbox.last?.seq ?? 0) + 1
        for seq in first..<(first + Int64(count)) {
            journal.outbox.append(OutboxItem(seq: seq, messageId: "m\(seq)", envelope: Data("\(seq)".utf8), payload: Data([2]), proof: Data()))
        }
    }
}

extension NodeScene.Outcome {
    mutating func merge(_ other: Self) {
        sent += other.sent
        effects += other.effects
    }

    /// The outbox entries published, in order (a test entry's envelope bytes are its `seq`).
    var published: [Int64] {
        sent.compactMap { kind in
            guard case .publish(let publish) = kind else { return nil }
            return Int64(String(decoding: publish.signedEnvelope, as: UTF8.self))
        }
    }
}
