import Foundation
import Logging

/// Keeps a line that a peer or a lasting fault can trigger over and over (a client that stops
/// reading, a full disk) from filling the disk with logs. The first line of a kind is written at
/// once; more of the same kind within `period` are only counted, and when the period ends one
/// summary says how many there were ("N more in the last 10 s"). A kind that stays quiet for a
/// whole period starts afresh. Pure bookkeeping: the caller writes the lines it is told to.
/// Used by one thread at a time (the broker's or a node's loop).
public struct LogThrottle<Line> {
    public let period: Duration
    private var windows: [String: Window] = [:]

    private struct Window {
        var opened: ContinuousClock.Instant
        var suppressed: Int
        var line: Line
    }

    /// A summary to write: `suppressed` lines of `key` were held back in the last period;
    /// `line` is the latest of them.
    public struct Summary {
        public let key: String
        public let suppressed: Int
        public let line: Line
    }

    public init(period: Duration = .seconds(10)) {
        self.period = period
    }

    /// Whether to write `line` of kind `key` now; when false it was counted for the summary.
    public mutating func shouldWrite(_ key: String, _ line: Line, now: ContinuousClock.Instant = .now) -> Bool {
        if var window = windows[key], now - window.opened < period {
            window.suppressed += 1
            window.line = line
            windows[key] = window
            return false
        }
        windows[key] = Window(opened: now, suppressed: 0, line: line)
        return true
    }

    /// The summaries whose period has ended. A kind with lines held back keeps counting in a new
    /// period (so a lasting storm writes one summary per period); a quiet one is forgotten.
    public mutating func due(now: ContinuousClock.Instant = .now) -> [Summary] {
        guard !windows.isEmpty else { return [] }
        var summaries: [Summary] = []
        for (key, window) in windows where now - window.opened >= period {
            if window.suppressed > 0 {
                summaries.append(Summary(key: key, suppressed: window.suppressed, line: window.line))
                windows[key] = Window(opened: now, suppressed: 0, line: window.line)
            } else {
                windows[key] = nil
            }
        }
        return summaries
    }
}

/// A logger for the lines a peer or a lasting fault can repeat: each kind (`key`, built from
/// names the registry bounds, never from the wire) is written once per period, then summed up.
public struct ThrottledLogger {
    public typealias Line = (level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata)

    public let logger: Logger
    private var throttle: LogThrottle<Line>

    public init(_ logger: Logger, period: Duration = .seconds(10)) {
        self.logger = logger
        throttle = LogThrottle(period: period)
    }

    /// Writes the line unless one of the same kind was written within the period.
    public mutating func log(_ key: String, _ level: Logger.Level, _ message: Logger.Message, metadata: Logger.Metadata = [:]) {
        if throttle.shouldWrite(key, (level, message, metadata)) {
            logger.log(level: level, message, metadata: metadata)
        }
    }

    /// Writes the summaries that are due; call it from the loop now and then.
    public mutating func flush() {
        for summary in throttle.due() {
            var metadata = summary.line.metadata
            metadata["suppressed"] = "\(summary.suppressed)"
            logger.log(level: summary.line.level,
                       "\(summary.suppressed) more in the last \(throttle.period): \(summary.line.message)", metadata: metadata)
        }
    }
}

/// A `ThrottledLogger` several threads share (the broker's ZAP handler). Summaries are written
/// when the next line of any kind comes after its period.
public final class SharedThrottledLogger: @unchecked Sendable {
    private let lock = NSLock()
    private var throttled: ThrottledLogger

    public init(_ logger: Logger, period: Duration = .seconds(10)) {
        throttled = ThrottledLogger(logger, period: period)
    }

    public func log(_ key: String, _ level: Logger.Level, _ message: Logger.Message, metadata: Logger.Metadata = [:]) {
        lock.withLock {
            throttled.flush()
            throttled.log(key, level, message, metadata: metadata)
        }
    }
}

/// A log line a pure state machine asks its shell to write (the protocol cores have no logger).
public struct LogLine: Equatable, Sendable {
    public var level: Logger.Level
    public var message: String
    public var metadata: Logger.Metadata
    /// Lines a peer or a lasting fault can repeat are written once per key and period.
    public var throttleKey: String?

    public init(level: Logger.Level, message: String, metadata: Logger.Metadata = [:], throttleKey: String? = nil) {
        self.level = level
        self.message = message
        self.metadata = metadata
        self.throttleKey = throttleKey
    }
}

extension ThrottledLogger {
    /// Writes `line`: once per key and period when it has a throttle key, else always.
    public mutating func write(_ line: LogLine) {
        if let key = line.throttleKey {
            log(key, line.level, "\(line.message)", metadata: line.metadata)
        } else {
            logger.log(level: line.level, "\(line.message)", metadata: line.metadata)
        }
    }
}
