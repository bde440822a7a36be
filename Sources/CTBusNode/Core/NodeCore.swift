import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Logging
import SwiftProtobuf

/// The node's side of the protocol (PROTOCOL.md 4.1, 5.3, 6.1) as a state machine with no
/// socket, journal, clock or logger: Hello and Welcome, heartbeats, the outbox's sending and
/// resend windows, the back-offs after INTERNAL and SESSION_REPLACED, and the cumulative
/// DeliveryAck sent only once a batch is journaled. The shell (`NodeLoop`) feeds it what
/// happened and performs the `Step` it returns: its effects in order, then at most one journal
/// operation, whose result it hands back with `completed(_:at:)`.
///
/// Invariants: between two calls from the shell no journal operation is outstanding and the
/// agenda is empty; deliveries are only journaled (and acknowledged) while a session is open;
/// a DeliveryAck never names a sequence whose batch was not journaled.
struct NodeCore {
    /// The protocol version this node speaks (PROTOCOL.md 10).
    static let protocolVersion: UInt32 = 3
    static let agent = "ctbus-node/0.1"

    struct Settings: Sendable {
        /// For the log lines that name the broker.
        var brokerEndpoint = ""
        var heartbeat: Duration
        var brokerTimeout: Duration
        var resendAfter: Duration
        var outboxPoll: Duration
        /// The first pause after INTERNAL; it doubles up to `storeBackoffLimit`.
        var storeBackoffFirst: Duration
        var storeBackoffLimit: Duration = .milliseconds(500)
        var replacedBackoffFirst: Duration = .seconds(1)
        var replacedBackoffLimit: Duration = .seconds(60)
        /// Outbox entries read and sent per check.
        var outboxBatch = 500
        /// Publications sent and not acknowledged in a session, at most: well below the socket's
        /// queue (10,000), so heartbeats and acknowledgements always find room behind them.
        var publishWindow = 5_000

        init(heartbeat: Duration, brokerTimeout: Duration, resendAfter: Duration, outboxPoll: Duration, storeBackoffFirst: Duration) {
            self.heartbeat = heartbeat
            self.brokerTimeout = brokerTimeout
            self.resendAfter = resendAfter
            self.outboxPoll = outboxPoll
            self.storeBackoffFirst = storeBackoffFirst
        }

        init(_ configuration: NodeConfiguration) {
            self.init(heartbeat: .milliseconds(configuration.heartbeatIntervalMilliseconds),
                      brokerTimeout: .milliseconds(configuration.brokerTimeoutMilliseconds),
                      resendAfter: .milliseconds(configuration.resendAfterMilliseconds),
                      outboxPoll: .milliseconds(configuration.outboxPollMilliseconds),
                      storeBackoffFirst: .milliseconds(max(10, configuration.reconnectMilliseconds)))
            brokerEndpoint = configuration.brokerEndpoint
        }
    }

    // The state below is internal, not private, only because the core's extensions live in files
    // of their own; nothing outside the core writes it.
    let settings: Settings
    /// A factor in 0.5...1 that spreads the back-offs of nodes that failed together.
    var jitter: () -> Double
    /// A session is open: a Welcome came and nothing ended it since.
    var welcomed = false
    var lastHeard: ContinuousClock.Instant
    var lastHello: ContinuousClock.Instant?
    var lastHeartbeat: ContinuousClock.Instant
    var lastOutboxCheck: ContinuousClock.Instant?
    var lastResendCheck: ContinuousClock.Instant
    /// Whether the next Hello asks for the backlog: the configuration allows it, the journal has
    /// received nothing and never asked (PROTOCOL.md 6.2); false once a Welcome answered it.
    var backlogWanted: Bool
    /// Send the outbox again from its oldest entry at the next check (after a Welcome).
    var resendAll = false
    /// Something new is in the outbox (or more than one batch waits): send it at the next tick.
    var outboxDue = false
    /// The publications sent in this session and not acknowledged yet.
    var window: OutboxWindow
    /// Revocations whose Revoke the socket did not take: due again at the next check.
    var unsentRevocations = Set<String>()
    /// After SESSION_REPLACED the node sends nothing until the pause is over, then says Hello on
    /// a new connection; the pause doubles at each replacement.
    var replaced: Backoff
    /// After INTERNAL the node sends no publication until the pause is over, then says Hello and
    /// resends its outbox from the oldest entry; the pause doubles, and a PublishAck resets it.
    var storeFailure: Backoff

    /// What the current read batch brought, journaled together at its end.
    var batch = Batch()
    var agenda: [Work] = []
    var awaiting: Awaiting?

    init(settings: Settings, backlogWanted: Bool, at now: ContinuousClock.Instant = .now,
         jitter: @escaping () -> Double = { Double.random(in: 0.5...1.0) }) {
        self.settings = settings
        self.backlogWanted = backlogWanted
        self.jitter = jitter
        window = OutboxWindow(limit: settings.publishWindow)
        replaced = Backoff(first: settings.replacedBackoffFirst, limit: settings.replacedBackoffLimit)
        storeFailure = Backoff(first: settings.storeBackoffFirst, limit: settings.storeBackoffLimit)
        lastHeard = now
        lastHeartbeat = now
        lastResendCheck = now
    }

    // MARK: What the shell performs

    struct Step {
        var effects: [Effect] = []
        var request: Request?

        mutating func send(_ kind: Frame.OneOf_Kind, _ purpose: Purpose) {
            var frame = Frame()
            frame.kind = kind
            // Encoding a Frame built here cannot fail: every field is set from valid values.
            effects.append(.send((try? frame.serializedBytes()) ?? [], purpose))
        }

        mutating func log(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:], throttle key: String? = nil) {
            effects.append(.log(LogLine(level: level, message: message, metadata: metadata, throttleKey: key)))
        }
    }

    /// Why a frame is sent: a send the socket does not take is reported back with it.
    enum Purpose: Equatable {
        case hello, heartbeat, deliveryAck
        /// An outbox entry; `previous` is when it was last sent before (nil: first time in the
        /// session); `first`: this is its first send ever, which starts its publish-to-acknowledge time.
        case publish(messageId: String, seq: Int64, previous: ContinuousClock.Instant?, first: Bool)
        case revoke(messageId: String)
    }

    enum Effect {
        case send([UInt8], Purpose)
        case log(LogLine)
        /// The session opened or ended (`changed`: it was the other way before).
        case session(open: Bool, changed: Bool)
        /// The broker refused the replaced connection for good: connect again before the next Hello.
        case reconnect
        /// An ErrorReport from the broker, kept for `ctbus status` and the console.
        case brokerError(BusError)
        case sessionReplaced
        case publishAcknowledged(after: Duration)
        case journaled(fresh: Int)
        case backlogRequested
        case revocationsSent([String], at: Date)
    }


    /// A journal operation; its result comes back as the `Completion` of the same name.
    enum Request {
        /// The outbox entries to consider: those already sent in this session that may be due
        /// again (when `resend`), and up to `limit` after `after`.
        case readOutbox(resend: Bool, after: Int64, limit: Int)
        case readPendingRevocations
        /// The batch: PublishAcks and RevokeAcks recorded, deliveries checked and journaled,
        /// revocations checked and applied after them.
        case journal(Batch)
        /// A publication (or revocation) the broker refused for good: find it (by id, or by the
        /// SHA-256 of its frame) and record the refusal.
        case recordRefusal(BusError)
    }

    enum Completion {
        case outboxRead(Result<(resend: [OutboxItem], fresh: [OutboxItem]), StoreError>)
        case pendingRevocationsRead(Result<[(revocation: Revocation, lastSentAt: Date?)], StoreError>)
        case journaled(JournalResult)
        case refusalRecorded(messageId: String?)
    }

    struct Batch {
        var deliveries: [Deliver] = []
        var revocations: [Deliver] = []
        var publishAcks: [(messageId: String, originator: String)] = []
        var revokeAcks: [String] = []
        /// The highest sequence of the batch's deliveries: the DeliveryAck once they are journaled.
        var through: UInt64?
        var isEmpty: Bool { publishAcks.isEmpty && revokeAcks.isEmpty && through == nil }
    }

    struct JournalResult {
        /// The PublishAcks and RevokeAcks recorded (their entries are done), or the error that kept them.
        var acknowledgements: Result<Void, StoreError> = .success(())
        /// The deliveries and revocations journaled (refused ones count as handled), or the error.
        var deliveries: Result<Int, StoreError> = .success(0)
    }

    enum Work {
        case readOutbox(resend: Bool)
        case readPendingRevocations(all: Bool)
    }

    enum Awaiting {
        case outbox
        case revocations(all: Bool)
        case journal(Batch)
        case refusal
    }
}
