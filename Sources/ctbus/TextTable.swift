import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A table for the terminal: columns separated by two spaces, fitted to a width by shortening
/// the widest columns with an ellipsis (never below `minimumWidth`); CSV and JSON give the full
/// values.
struct TextTable {
    let columns: [String]
    let rows: [[String]]
    /// Columns are never shortened below this or their header; the first two (the id and the time, the keys
    /// people copy) are never shortened at all.
    var minimumWidth = 3
    var fixedColumns = 2

    init(columns: [String], rows: [[String]], fixedColumns: Int = 2) {
        self.columns = columns
        self.rows = rows
        self.fixedColumns = fixedColumns
    }

    /// The terminal's width when standard output is one, else 100.
    static func outputWidth() -> Int {
        var size = winsize()
        if isatty(STDOUT_FILENO) != 0, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 100
    }

    func render(width: Int) -> String {
        let headers = columns.map { $0.uppercased() }
        var widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        let separator = 2
        // Shorten the widest shortenable column a step at a time until the table fits.
        while widths.reduce(0, +) + separator * (widths.count - 1) > width {
            let candidates = widths.indices.filter { $0 >= fixedColumns && widths[$0] > max(minimumWidth, headers[$0].count) }
            guard let widest = candidates.max(by: { widths[$0] < widths[$1] }) else { break }
            widths[widest] -= 1
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (index, cell) in cells.enumerated() {
                let fitted = cell.count > widths[index] ? String(cell.prefix(widths[index] - 1)) + "…" : cell
                text += index == cells.count - 1 ? fitted : fitted.padding(toLength: widths[index] + separator, withPad: " ", startingAt: 0)
            }
            while text.last == " " { text.removeLast() }
            return text + "\n"
        }
        return ([headers] + rows).map(line).joined()
    }

    /// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
    static func csv(columns: [String], rows: [[String]]) -> String {
        func field(_ value: String) -> String {
            guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
            return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return ([columns] + rows).map { $0.map(field).joined(separator: ",") + "\r\n" }.joined()
    }

    /// An array of objects keyed by column name.
    static func json(columns: [String], rows: [[String]]) throws -> String {
        let objects = rows.map { Dictionary(uniqueKeysWithValues: zip(columns, $0)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(objects), as: UTF8.self)
    }
}
