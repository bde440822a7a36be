import Foundation
import GRDB

/// An SQLite file in WAL mode with full fsync on commit: what a store acknowledged survives a
/// crash of the process or the machine. Every failure comes out as a `StoreError`.
struct StoreDatabase: Sendable {
    let path: String
    let pool: DatabasePool
    /// Set when the file's last write was torn by a crash and SQLite's recovery dropped it.
    let recovery: String?

    init(path: String, migrator: DatabaseMigrator) throws(StoreError) {
        self.path = path
        recovery = WriteAheadLog.tornTail(ofDatabaseAt: path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            pool = try DatabasePool(path: path, configuration: configuration)
            // SQLite opens anything lazily; reading the schema catches a file that is not a database.
            _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            try migrator.migrate(pool)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try pool.read(body)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try pool.write(body)
        } catch {
            throw StoreError.wrap(error, path: path)
        }
    }
}
