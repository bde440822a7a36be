import Foundation
import GRDB

/// Online backup of a journal or the broker's store, while its daemon runs: SQLite's backup
/// API copies one consistent snapshot (a single read transaction, which in WAL mode neither
/// waits for the writer nor delays it) into a new private file, which is then verified.
public struct BackupReport: Sendable {
    public let destination: String
    public let bytes: Int64
    public let seconds: Double
    /// `verify` on the copy.
    public let check: ChainReport
}

extension StoreDatabase {
    /// Copies the whole database into `destination`, which must not exist yet; created 0600.
    func backup(to destination: String) throws(StoreError) {
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw StoreError(.duplicate, "\(destination) exists already: a backup never overwrites a file")
        }
        let folder = URL(fileURLWithPath: destination).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder) else { throw StoreError(.notFound, "folder \(folder) does not exist") }
        try PrivateFiles.createFile(destination)
        do {
            let target = try DatabaseQueue(path: destination)
            try reader.backup(to: target)
            try target.close()
        } catch {
            // Nothing half-written is left behind to be mistaken for a backup.
            try? FileManager.default.removeItem(atPath: destination)
            for suffix in ["-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: destination + suffix) }
            throw StoreError.wrap(error, path: destination)
        }
    }
}

/// The journal and the store: files `backup` can copy and verify.
protocol BackupSource: CheckedStoreFile {
    var database: StoreDatabase { get }
    func verify() throws(StoreError) -> ChainReport
}

extension BackupSource {
    /// Backs the file at `path` up into `destination` (read-only on the source: it works beside
    /// the daemon that writes it) and verifies the copy.
    static func runBackup(path: String, to destination: String) throws(StoreError) -> BackupReport {
        let started = ContinuousClock.now
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError(.notFound, "\(path) does not exist") }
        let source = try Self(path: path, access: .readOnly)
        try source.database.backup(to: destination)
        let check = try Self(path: destination, access: .readOnly).verify()
        let size = (try? FileManager.default.attributesOfItem(atPath: destination))?[.size] as? Int64
        return BackupReport(destination: destination, bytes: size ?? 0, seconds: (ContinuousClock.now - started) / .seconds(1), check: check)
    }
}

extension NodeJournal: BackupSource {
    /// An online backup of the journal at `path` into the new file `destination`, verified.
    public static func backup(path: String, to destination: String) throws(StoreError) -> BackupReport {
        try runBackup(path: path, to: destination)
    }
}

extension BrokerStore: BackupSource {
    /// An online backup of the broker's store at `path` into the new file `destination`, verified.
    public static func backup(path: String, to destination: String) throws(StoreError) -> BackupReport {
        try runBackup(path: path, to: destination)
    }
}
