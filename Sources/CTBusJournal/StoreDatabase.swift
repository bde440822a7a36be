import Foundation
import GRDB

/// How a store file is opened.
public enum StoreAccess: Sendable {
    /// The owner's access: creates the file private (0600, folder 0700) with its schema
    /// when missing, refuses a file of another kind or schema version, checkpoints in the
    /// background.
    case readWrite
    /// Inspection (`journal verify`, `list`, `export`, `audit`): never creates, checkpoints or
    /// writes anything; works on a write-protected copy and on read-only media, and beside a
    /// daemon that is writing the file.
    case readOnly
}

/// A journal or a store, as a daemon checks it before writing to it.
public protocol CheckedStoreFile {
    init(path: String, access: StoreAccess) throws(StoreError)
    /// Throws `StoreError.damaged` naming the file, the damage and what helps; returns what it
    /// left out on a file too large to check whole at start, for the daemon to log.
    func checkAtStart() throws(StoreError) -> String?
}

extension CheckedStoreFile {
    /// The start-up check of the file at `path`, read-only, before a daemon opens it for
    /// writing. A file that does not exist or holds no schema yet (another process is creating
    /// it) has nothing to check; a file of another kind or schema version is refused. Returns
    /// what the check left out, if anything.
    @discardableResult
    public static func checkAtStart(path: String) throws(StoreError) -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file: Self
        do {
            file = try Self(path: path, access: .readOnly)
        } catch where error.kind == .notCreated {
            return nil
        }
        return try file.checkAtStart()
    }
}

/// An SQLite file in WAL mode with full fsync on commit: what a store acknowledged survives a
/// crash of the process or the machine. Every failure comes out as a `StoreError`.
struct StoreDatabase: Sendable {
    let path: String
    let reader: any DatabaseReader
    /// The writer; nil when opened read-only.
    let pool: DatabasePool?
    /// Set when the file's last write was torn by a crash and SQLite's recovery dropped it.
    let recovery: String?
    private let checkpointer: Checkpointer?

    init(path: String, schema: StoreSchema, access: StoreAccess = .readWrite) throws(StoreError) {
        self.path = path
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            for function in schema.functions { db.add(function: function) }
        }
        switch access {
        case .readWrite:
            recovery = WriteAheadLog.tornTail(ofDatabaseAt: path)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // The checkpointer does it in the background; see `Checkpointer`.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            }
            try Self.refuseOtherSchema(path: path, schema: schema)
            try PrivateFiles.makeFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
            try PrivateFiles.createFile(path)
            do {
                let pool = try Self.open(path: path, configuration: configuration, schema: schema)
                self.pool = pool
                reader = pool
                checkpointer = try Checkpointer(path: path, configuration: configuration)
            } catch {
                throw StoreError.wrap(error, path: path)
            }
        case .readOnly:
            guard FileManager.default.fileExists(atPath: path) else { throw StoreError(.notFound, "\(path) does not exist") }
            // A log left by a crash is reported, not recovered: recovery is the owner's business.
            // While a daemon holds the file, an unfinished transaction in the log is its work in
            // progress, not damage.
            let held = FileLock.isHeld(path)
            recovery = held ? nil : WriteAheadLog.unfinishedBytes(ofDatabaseAt: path).map {
                "the last write before a crash was incomplete: the log ends with \($0) bytes of an unfinished transaction, "
                    + "which are not part of the file (its owner discards them when it next opens it)"
            }
            configuration.readonly = true
            pool = nil
            checkpointer = nil
            reader = try Self.openReadOnly(path: path, held: held, configuration: configuration, schema: schema)
        }
    }

    /// Refuses a file of another kind or schema version before anything opens it for writing:
    /// opening a pool switches the file to WAL, which would alter what is refused. Other
    /// failures are left to the open that follows, which reports them as it always has.
    static func refuseOtherSchema(path: String, schema: StoreSchema) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = true
        do {
            _ = try openReadOnly(path: path, held: FileLock.isHeld(path), configuration: configuration, schema: schema)
        } catch where error.kind == .schema {
            throw error
        } catch {
            return
        }
    }

    /// Opens without writing anything. With no write-ahead log beside the file (a store closed
    /// cleanly, or a copy of one), SQLite reads it as immutable: it touches no file at all, not
    /// even a lock or a -shm. With a log, or while a daemon holds the file (`held`), it reads the
    /// log too (`mode=ro`), which needs the -shm.
    private static func openReadOnly(path: String, held: Bool, configuration: Configuration,
                                     schema: StoreSchema) throws(StoreError) -> DatabaseQueue {
        let logSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        let encoded = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#%"))) ?? path
        // A rollback journal beside it means a process is creating the file right now: read it
        // the ordinary way then, never as immutable.
        let busy = held || logSize > 0 || FileManager.default.fileExists(atPath: path + "-journal")
        let uri = "file:\(encoded)?" + (busy ? "mode=ro" : "immutable=1")
        do {
            let queue = try DatabaseQueue(path: uri, configuration: configuration)
            try queue.read { db in
                // SQLite opens anything lazily; reading the header and the schema catches a file that
                // is not a database.
                try schema.check(StoreSchema.Found(db), path: path)
            }
            return queue
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    /// Opens the pool and creates or checks the schema. Two processes may create the same file at
    /// once (the node daemon and `ctbus publish`); SQLite answers "locked" without waiting while
    /// the other one switches the new file to WAL, which a new attempt cures. A damaged file
    /// fails every attempt and is reported.
    private static func open(path: String, configuration: Configuration, schema: StoreSchema) throws -> DatabasePool {
        var attempt = 1
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try schema.createOrCheck(pool, path: path)
                return pool
            } catch let error as DatabaseError where attempt < 5 && isCreationRace(error) {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.02 * Double(attempt)) // back off while the other process finishes
            }
        }
    }

    private static func isCreationRace(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try reader.read(body)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        guard let pool else { throw StoreError(.unavailable, "\(path) is open read-only (for inspection)") }
        do {
            return try pool.write(body)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }
}

/// Copies the write-ahead log back into the database file every 250 ms on a connection and a
/// queue of its own. SQLite's automatic checkpoint runs inside whichever commit crosses 1,000
/// pages and makes it wait for the copy and an fsync of the database file: that was the bus's
/// p99 latency (`ctbus bench --full --only latency`, p99 at 1,000 msg/s: 8.3 ms with it, 5.6 ms
/// with this, 4.6 ms with no checkpoint at all; every 100 ms and every second were both worse
/// than 250 ms). A passive checkpoint never blocks a writer or a reader; once it has copied
/// everything, the next write starts the log from the beginning again, so the log stays small.
/// The schedule is a dispatch timer on that queue, not a task that sleeps: measured side by side,
/// a task's schedule added about 0.2 ms to the p50 at 1,000 msg/s (docs/decisions.md).
final class Checkpointer: @unchecked Sendable {
    /// The checkpoint connection; used and closed on `queue` only.
    private final class Connection: @unchecked Sendable {
        var database: DatabaseQueue?
        init(_ database: DatabaseQueue) { self.database = database }
    }

    private let queue = DispatchQueue(label: "ctbus.checkpoint")
    private let connection: Connection
    private let timer: any DispatchSourceTimer

    init(path: String, configuration: Configuration, interval: DispatchTimeInterval = .milliseconds(250)) throws {
        let connection = Connection(try DatabaseQueue(path: path, configuration: configuration))
        self.connection = connection
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
        timer.setEventHandler {
            // Busy (another checkpoint runs, from another process) is fine: the next turn retries.
            try? connection.database?.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") }
        }
        timer.resume()
    }

    deinit {
        timer.cancel()
        // Closes the connection now, with its owner, after a checkpoint under way: the last
        // connection to a database to close copies the whole log into the database file.
        let connection = connection
        queue.sync { connection.database = nil }
    }
}
