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

    /// The date of an RFC 3339 time ("2026-12-06T02:43:44Z", "2026-12-06T04:43:44+02:00",
    /// fractions of a second allowed), or nil.
    public static func parse(_ text: String) -> Date? {
        let scalars = Array(text.utf8)
        guard scalars.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[range] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19),
              scalars[4] == 45, scalars[7] == 45, [84, 116].contains(scalars[10]), scalars[13] == 58, scalars[16] == 58,
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var index = 19
        var fraction = 0.0
        if scalars[index] == 46 {
            var scale = 0.1
            index += 1
            let start = index
            while index < scalars.count, (48...57).contains(scalars[index]) {
                fraction += Double(scalars[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < scalars.count else { return nil }
        var offset = 0
        switch scalars[index] {
        case 90, 122:
            guard index == scalars.count - 1 else { return nil }
        case 43, 45:
            guard index + 6 == scalars.count, scalars[index + 3] == 58, let hours = number(index + 1..<index + 3), let minutes = number(index + 4..<index + 6), hours < 24, minutes < 60 else { return nil }
            offset = (scalars[index] == 43 ? 1 : -1) * (hours * 3_600 + minutes * 60)
        default: return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        // timegm normalises a day past the month's end: such a date is not a date.
        guard parts.tm_mday == Int32(day) else { return nil }
        return Date(timeIntervalSince1970: Double(seconds - offset) + fraction)
    }
}

extension JSONEncoder.DateEncodingStrategy {
    /// RFC 3339 in UTC, whole seconds ("2026-12-06T02:43:44Z"), written by `UTCTime` on any thread.
    public static var utcTime: Self {
        .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(UTCTime.iso8601(date))
        }
    }
}

extension JSONDecoder.DateDecodingStrategy {
    /// RFC 3339 (`UTCTime.parse`), read on any thread.
    public static var utcTime: Self {
        .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = UTCTime.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a time such as 2026-12-06T02:43:44Z")
            }
            return date
        }
    }
}
