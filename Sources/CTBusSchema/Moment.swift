import Foundation

/// A moment as the protocol cores see it: the monotonic instant times sessions, heartbeats and
/// back-offs; the wall date decides expiry and declassification and dates what is recorded. The
/// shells pass `now`; tests pass moments of their own.
public struct Moment: Sendable {
    public var instant: ContinuousClock.Instant
    public var date: Date

    public init(instant: ContinuousClock.Instant, date: Date) {
        self.instant = instant
        self.date = date
    }

    public static var now: Moment { Moment(instant: .now, date: Date()) }

    /// Moves both clocks on by `duration`.
    public mutating func advance(by duration: Duration) {
        instant += duration
        date += Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
