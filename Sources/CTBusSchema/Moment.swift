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

/// Dates in UTC without Foundation's formatters and calendars: on Linux those reach ICU
/// calendars and time zones, which are not safe to use from several threads at once (a lazily
/// created ISO8601DateFormatter can free memory it does not own: swift-corelibs-foundation
/// #5533; ICU time zones race: swift-foundation #1597), and the broker, the nodes and the
/// console write dates on many threads. The C library's `gmtime_r` keeps nothing shared.
public enum UTCTime {
    /// The UTC calendar fields of `date` (whole seconds, rounded down).
    public struct Fields: Sendable, Equatable {
        public let year, month, day, hour, minute, second: Int
    }

    public static func fields(_ date: Date) -> Fields {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return Fields(year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday),
                      hour: Int(parts.tm_hour), minute: Int(parts.tm_min), second: Int(parts.tm_sec))
    }

    /// "2026-12-06T02:43:44Z", as ISO8601DateFormatter writes a date by default.
    public static func iso8601(_ date: Date) -> String {
        let f = fields(date)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(f.year)-\(two(f.month))-\(two(f.day))T\(two(f.hour)):\(two(f.minute)):\(two(f.second))Z"
    }
}
