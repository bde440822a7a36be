import Crypto
import Foundation
import GRDB

/// The tamper-evident chain of journal entries (and of the broker's stored messages): every
/// entry's hash is SHA-256 over the previous entry's hash and the entry's own fields, each with
/// its length, so changing, removing or reordering an entry breaks every link after it.
public enum HashChain {
    /// The "previous hash" of the first entry.
    public static let genesis = Data(repeating: 0, count: 32)

    public static func link(previous: Data, fields: [Data]) -> Data {
        var hasher = SHA256()
        hasher.update(data: previous)
        for field in fields {
            var length = UInt64(field.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: field)
        }
        return Data(hasher.finalize())
    }
}

extension Date {
    /// Whether a time column says `signed`, the time in hashed or signed bytes it was written
    /// from: equal but for the rounding of a Date's conversions (well under a millisecond).
    public func isStoredTime(of signed: Date) -> Bool {
        abs(timeIntervalSince1970 - signed.timeIntervalSince1970) < 0.001
    }
}

/// What `verify` found.
public struct ChainReport: Sendable, Equatable {
    public struct Break: Sendable, Equatable {
        /// The entry's position in the journal (or row in the store), from 1.
        public let position: Int64
        /// Empty when the entry is too damaged to tell.
        public let messageId: String
        public let reason: String
    }

    /// Entries checked.
    public let entries: Int
    /// The first broken link, nil when the whole chain holds.
    public let firstBreak: Break?
    /// What SQLite's own `integrity_check` reported (empty when it says "ok"): damage below the
    /// rows, which the chain alone may not show.
    public let damage: [String]
    /// Said when opening found the torn end of an interrupted write.
    public let recovery: String?
    /// Broker store: messages retention removed (the rows after them record the hashes they link to).
    public var removedByRetention = 0

    public var isIntact: Bool { firstBreak == nil && damage.isEmpty }

    /// The first thing wrong, in words; nil when intact.
    var firstProblem: String? {
        if let first = damage.first { return "SQLite reports \(first)" }
        return firstBreak.map { "the hash chain is broken at position \($0.position): \($0.reason)" }
    }
}

/// One row of a chain as `ChainVerifier` reads it.
struct ChainRow {
    let position: Int64
    let messageId: String
    let fields: [Data]
    let hash: Data
    /// Broker store: the hash this row links to when retention removed the row before it.
    var linksTo: Data? = nil
}

/// Walks a chain in a database that may be damaged in any way: SQLite's integrity check first,
/// then every row, decoded with throwing accessors (a NULL or a wrong type where a value
/// belongs is damage, reported, never a crash).
enum ChainVerifier {
    /// `decode` reads a row as the chain sees it and throws when it is unreadable or does not
    /// agree with itself; `otherTables` reads everything else the commands read and returns
    /// what it could not.
    static func verify(_ db: Database, sql: String, recovery: String?, what: String,
                       schema: StoreSchema, decode: (Row) throws -> ChainRow,
                       otherTables: (Database) -> [String] = { _ in [] }) -> ChainReport {
        let damage = integrityProblems(db) + schemaProblems(db, schema: schema) + otherTables(db)
        var previous = HashChain.genesis
        var count = 0
        var lastPosition: Int64 = 0
        func broken(_ position: Int64, _ messageId: String, _ reason: String) -> ChainReport {
            ChainReport(entries: count, firstBreak: .init(position: position, messageId: messageId, reason: reason),
                        damage: damage, recovery: recovery)
        }
        do {
            let rows = try Row.fetchCursor(db, sql: sql)
            while let row = try rows.next() {
                count += 1
                let item: ChainRow
                do {
                    item = try decode(row)
                } catch {
                    let position = (try? row.decode(Int64?.self, forColumn: "position")) ?? nil
                    // A row that reads but whose columns disagree with its hashed bytes says which.
                    let named = (error as? StoreError).flatMap { $0.kind == .damaged ? $0.description : nil }
                    return broken(position ?? lastPosition + 1, "",
                                  named ?? "the \(what) cannot be read (a field is missing or of the wrong type): the file is damaged")
                }
                if let linksTo = item.linksTo {
                    // Retention removed the rows before it; a link where no row is missing was not its doing.
                    guard item.position > lastPosition + 1 else {
                        return broken(item.position, item.messageId,
                                      "the \(what) records a link over removed rows, but no row before it is missing")
                    }
                    previous = linksTo
                }
                let expected = HashChain.link(previous: previous, fields: item.fields)
                guard item.hash == expected else {
                    return broken(item.position, item.messageId,
                                  "the \(what)'s content does not match its hash: it was changed or damaged after it was written")
                }
                previous = item.hash
                lastPosition = item.position
            }
        } catch {
            count = max(count - 1, 0)
            return broken(lastPosition + 1, "", "SQLite cannot read past entry \(lastPosition): \(describe(error))")
        }
        return ChainReport(entries: count, firstBreak: nil, damage: damage, recovery: recovery)
    }

    /// What a daemon checks before it writes to a file: SQLite's `quick_check` (every page
    /// readable and well formed), the schema, and the last link of the chain (`lastTwo` selects
    /// the last two rows, newest first). Returns the damage in words, or nil. docs/operations.md
    /// (Damaged files) gives the cost on 100,000 entries.
    /// Rows up to which a daemon checks its file whole at start (`startCheck`): about half a
    /// second on the machines CTBus runs on (measured: docs/operations.md, Damaged files).
    static let fullStartCheckRows = 20_000

    /// What a daemon checks before it writes: with at most `fullStartCheckRows` rows in `table`,
    /// everything `verify` does (SQLite's integrity_check, indexes against their tables included,
    /// the schema, every row and every link); on a larger file, quick_check, the schema and the
    /// last link, and `skipped` says what was left out.
    static func startCheck(_ db: Database, table: String, what: String, schema: StoreSchema,
                           full: (Database) -> ChainReport, lastTwo sql: String,
                           decode: (Row) throws -> ChainRow) -> (problem: String?, skipped: String?) {
        let rows = (try? Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)")) ?? nil
        if let rows, rows <= fullStartCheckRows { return (full(db).firstProblem, nil) }
        let skipped = "the whole hash chain and SQLite's index check were left out at start (\(rows.map(String.init) ?? "uncounted") \(what)s, "
            + "over \(fullStartCheckRows)); run `ctbus journal verify` for them"
        return (startProblem(db, schema: schema, lastTwo: sql, what: what, decode: decode), skipped)
    }

    static func startProblem(_ db: Database, schema: StoreSchema, lastTwo sql: String, what: String,
                             decode: (Row) throws -> ChainRow) -> String? {
        if let first = integrityProblems(db, quick: true).first { return "SQLite reports \(first)" }
        if let first = schemaProblems(db, schema: schema).first { return first }
        do {
            let rows = try Row.fetchAll(db, sql: sql)
            guard let last = rows.first else { return nil }
            let item = try decode(last)
            let previous = try item.linksTo ?? rows.dropFirst().first.map { try decode($0).hash } ?? HashChain.genesis
            return HashChain.link(previous: previous, fields: item.fields) == item.hash
                ? nil : "the hash chain is broken at its last \(what) (position \(item.position))"
        } catch {
            return "its last \(what)s cannot be read (\(describe(error)))"
        }
    }

    /// Differences between the file's tables and indexes and those of `schema` (a damaged byte
    /// in the schema can rename a column or a table while every page still reads well).
    static func schemaProblems(_ db: Database, schema: StoreSchema) -> [String] {
        do {
            // A file of an older version this build upgrades is checked against that version's schema.
            let expected = try schema.definitions(ofVersion: StoreSchema.Found(db).version).get()
            let actual = try StoreSchema.definitions(in: db)
            guard actual != expected else { return [] }
            let missing = Set(expected).subtracting(actual).count
            let unexpected = Set(actual).subtracting(expected).count
            return ["the schema differs from the one this version writes (\(missing) definitions missing or changed, \(unexpected) unexpected)"]
        } catch {
            return ["the schema cannot be read: \(describe(error))"]
        }
    }

    /// Reads every row of `sql` with `decode` (as the commands read them); says what could not be read.
    static func unreadable(_ table: String, sql: String, in db: Database, decode: (Row) throws -> Void) -> String? {
        do {
            for row in try Row.fetchAll(db, sql: sql) { try decode(row) }
            return nil
        } catch {
            return "the \(table) cannot be read: \(describe(error))"
        }
    }

    /// SQLite's `integrity_check` (at most 20 problems), or why it could not run.
    static func integrityProblems(_ db: Database, quick: Bool = false) -> [String] {
        do {
            let lines = try String.fetchAll(db, sql: quick ? "PRAGMA quick_check(20)" : "PRAGMA integrity_check(20)")
            return lines == ["ok"] ? [] : lines
        } catch {
            return ["SQLite cannot check the file: \(describe(error))"]
        }
    }

    /// An SQLite failure in words, without the statement's arguments (they may be content).
    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}
