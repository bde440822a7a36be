/// A pause after a failure that doubles at each failure in a row up to a limit, spread by a
/// jitter factor (so that nodes that failed together do not come back together), and starts
/// from the first length again once `succeeded` is called.
///
/// Invariant: one pause at a time; a failure during a pause does not lengthen it.
struct Backoff {
    let first: Duration
    let limit: Duration
    /// The length of the last pause before jitter, while failures come in a row.
    private var last: Duration?
    /// The end of the pause under way.
    private(set) var until: ContinuousClock.Instant?

    init(first: Duration, limit: Duration) {
        self.first = first
        self.limit = limit
    }

    var isPaused: Bool { until != nil }

    /// Starts a pause unless one is under way; returns its length before and after jitter.
    mutating func failed(at now: ContinuousClock.Instant, jitter: () -> Double) -> (delay: Duration, pause: Duration)? {
        guard until == nil else { return nil }
        let delay = min(last.map { $0 * 2 } ?? first, limit)
        last = delay
        let pause = delay * jitter()
        until = now + pause
        return (delay, pause)
    }

    /// Ends the pause once it is over; true when it ended now.
    mutating func ends(at now: ContinuousClock.Instant) -> Bool {
        guard let until, now >= until else { return false }
        self.until = nil
        return true
    }

    /// The next failure pauses for the first length again.
    mutating func succeeded() {
        last = nil
    }
}
