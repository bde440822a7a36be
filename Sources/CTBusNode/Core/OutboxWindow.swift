/// The publications sent in the current session and not acknowledged yet (PROTOCOL.md 5.3):
/// how far the outbox has been read, when each was last sent, and when each was first sent (for
/// the publish-to-acknowledge time).
///
/// Invariants: every outbox entry up to `sentThrough` was sent in this session unless it is
/// acknowledged or refused; at most `limit` wait unacknowledged.
struct OutboxWindow {
    let limit: Int
    /// The highest outbox `seq` sent in this session: the next read starts after it.
    private(set) var sentThrough: Int64 = 0
    private var lastSent: [String: ContinuousClock.Instant] = [:]
    private var firstSent: [String: ContinuousClock.Instant] = [:]

    init(limit: Int) {
        self.limit = limit
    }

    /// How many more may be sent before the window is full.
    var room: Int { max(0, limit - lastSent.count) }

    /// A new session resends the whole outbox from its oldest entry.
    mutating func newSession() {
        sentThrough = 0
        lastSent = [:]
    }

    func lastSent(_ messageId: String) -> ContinuousClock.Instant? { lastSent[messageId] }

    /// Records the send of an entry read after `sentThrough`; returns whether it is the
    /// publication's first send.
    mutating func sent(_ messageId: String, seq: Int64, at now: ContinuousClock.Instant) -> Bool {
        lastSent[messageId] = now
        sentThrough = seq
        guard firstSent[messageId] == nil else { return false }
        firstSent[messageId] = now
        return true
    }

    /// Records the send again of an entry the broker has not acknowledged.
    mutating func resent(_ messageId: String, at now: ContinuousClock.Instant) {
        lastSent[messageId] = now
    }

    /// A send the socket did not take: `previous` is when it went before (nil: never in this
    /// session, so the outbox is read again from before it).
    mutating func notSent(_ messageId: String, seq: Int64, previous: ContinuousClock.Instant?, first: Bool) {
        lastSent[messageId] = previous
        if previous == nil { sentThrough = min(sentThrough, seq - 1) }
        if first { firstSent[messageId] = nil } // its time starts at the send that goes
    }

    /// The broker stored it; returns when it was first sent.
    mutating func acknowledged(_ messageId: String) -> ContinuousClock.Instant? {
        lastSent[messageId] = nil
        return firstSent.removeValue(forKey: messageId)
    }

    /// The broker refused it for good: it is not sent again.
    mutating func refused(_ messageId: String) {
        lastSent[messageId] = nil
        firstSent[messageId] = nil
    }
}
