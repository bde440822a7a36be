import CTBusSchema
import Foundation
import Logging
import Synchronization

/// One JSON object a line on standard error, for journald and log shippers (`--log-format
/// json`): `ts` (UTC, milliseconds), `level`, `label`, `message`, and every metadata entry as a
/// field of its own, with `-` in its name written `_` (`message_id`, `node`, `rule`). What the
/// text format would write, no more: the code never puts a message body in a log line.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    private static let output = Mutex(())

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: Any] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            fields[key.replacingOccurrences(of: "-", with: "_")] = Self.plain(value)
        }
        fields["ts"] = Self.timestamp(Date())
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = event.message.description
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        Self.output.withLock { _ in FileHandle.standardError.write(data) }
    }

    static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let item): item.description
        case .array(let items): items.map(plain)
        case .dictionary(let entries): entries.mapValues(plain)
        }
    }

    /// "2026-12-06T02:43:44.123Z". Written with `UTCTime`: a daemon logs from many threads, and
    /// Foundation's date formatting is not safe to share between them on Linux.
    static func timestamp(_ date: Date) -> String {
        let whole = date.timeIntervalSince1970.rounded(.down)
        let milliseconds = min(999, Int(((date.timeIntervalSince1970 - whole) * 1_000).rounded(.down)))
        let fraction = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return String(UTCTime.iso8601(Date(timeIntervalSince1970: whole)).dropLast()) + ".\(fraction)Z"
    }
}
