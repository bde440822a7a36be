import Foundation
import GRDB

/// The one schema of a kind of store file, and how a file says which kind and version it holds:
/// SQLite's `application_id` names the kind and `user_version` the schema version, both in the
/// file's header. A file is created with its whole schema in one transaction; a file of another
/// kind or version is refused with words that say which, never altered, except a file of an
/// older version this build knows how to upgrade (`Upgrade`): read-only access reads it as it
/// stands, and its owner upgrades it in one transaction when it opens it for writing.
struct StoreSchema: Sendable {
    /// What people call a file of this kind ("broker store", "node journal").
    let kind: String
    let applicationId: Int32
    let version: Int32
    /// Every table and index, as one script.
    let sql: String
    /// Every definition as SQLite records it in a new file (`sqlite_master`, one line each, in
    /// order), made once: what a file's own must equal. A failure says why.
    let definitions: Result<[String], DatabaseError>
    /// The older versions this build upgrades, oldest first, each to the next.
    let upgrades: [Upgrade]
    /// SQL functions the schema's views call, added to every connection to a file of this kind.
    let functions: [DatabaseFunction]

    /// An older version: its whole schema as it was (what a file of that version must hold) and
    /// the script that brings such a file to the next version. Only derived data (indexes that
    /// are filled again from the hashed entries) may be dropped by a script.
    struct Upgrade: Sendable {
        let from: Int32
        let definitions: Result<[String], DatabaseError>
        let script: String

        init(from: Int32, sql: String, script: String) {
            self.from = from
            self.script = script
            definitions = StoreSchema.definitions(of: sql)
        }
    }

    init(kind: String, applicationId: Int32, version: Int32, sql: String, upgrades: [Upgrade] = [],
         functions: [DatabaseFunction] = []) {
        self.kind = kind
        self.applicationId = applicationId
        self.version = version
        self.sql = sql
        self.upgrades = upgrades
        self.functions = functions
        definitions = Self.definitions(of: sql)
    }

    /// The definitions SQLite records for `sql` in a new file.
    static func definitions(of sql: String) -> Result<[String], DatabaseError> {
        Result {
            let queue = try DatabaseQueue()
            try queue.write { db in try db.execute(sql: sql) }
            return try queue.read(Self.definitions(in:))
        }.mapError { $0 as? DatabaseError ?? DatabaseError(message: "\($0)") }
    }

    /// What a file of `version` must hold: this build's schema, or an older one it upgrades.
    func definitions(ofVersion version: Int32) -> Result<[String], DatabaseError> {
        version == self.version ? definitions
            : upgrades.first { $0.from == version }?.definitions ?? .failure(DatabaseError(message: "no schema \(version) in this build"))
    }

    /// The upgrades that bring a file of `version` to this build's, or nil when there is no path.
    func upgrades(from version: Int32) -> [Upgrade]? {
        guard version < self.version else { return nil }
        let steps = upgrades.filter { $0.from >= version }.sorted { $0.from < $1.from }
        guard steps.map(\.from) == Array(version..<self.version) else { return nil }
        return steps
    }

    /// The definitions of the tables and indexes in `db`, one line each, in order.
    static func definitions(in db: Database) throws -> [String] {
        try Row.fetchAll(db, sql: "SELECT type, name, tbl_name, coalesce(sql, '') AS sql FROM sqlite_master ORDER BY type, name").map { row in
            try ["type", "name", "tbl_name", "sql"].map { column in try row.decode(String.self, forColumn: column) }
                .joined(separator: " | ")
        }
    }

    /// Every kind this build knows, to name the kind of a file opened as the wrong one.
    static var all: [StoreSchema] { [BrokerStore.schema, NodeJournal.schema] }

    /// What a file's header and tables say, read without writing anything.
    struct Found {
        let applicationId: Int32
        let version: Int32
        let tables: Int

        init(_ db: Database) throws {
            applicationId = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
            version = try Int32.fetchOne(db, sql: "PRAGMA user_version") ?? 0
            tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
        }

        /// Nothing in it yet: a new file, or one another process is creating right now.
        var isEmpty: Bool { applicationId == 0 && version == 0 && tables == 0 }
    }

    /// Throws `.notCreated` for an empty file and `.schema` for a file of another kind or
    /// version, naming which and what to do.
    func check(_ found: Found, path: String) throws(StoreError) {
        if found.isEmpty { throw StoreError(.notCreated, "\(path) holds no \(kind) yet") }
        guard found.applicationId == applicationId else {
            if let other = Self.all.first(where: { $0.applicationId == found.applicationId }) {
                throw StoreError(.schema, "\(path) is a \(other.kind), not a \(kind)")
            }
            throw StoreError(.schema, found.applicationId == 0
                ? "\(path) is not a \(kind) of this build: it is another SQLite file, or a CTBus file written before "
                    + "files carried a schema version (a development build); this build reads \(kind) schema \(version) only"
                : "\(path) is not a CTBus file (SQLite application id \(found.applicationId))")
        }
        guard found.version == version || upgrades(from: found.version) != nil else {
            throw StoreError(.schema, found.version > version
                ? "\(path) holds \(kind) schema \(found.version), newer than this build's \(version): "
                    + "use the CTBus build that wrote it, or a newer one"
                : "\(path) holds \(kind) schema \(found.version), older than this build's \(version), which cannot read it")
        }
    }

    /// Creates the schema in an empty file, or checks the one there and upgrades an older one,
    /// under the write lock (so two processes creating or upgrading the same file at once do it
    /// once), in one transaction.
    func createOrCheck(_ pool: DatabasePool, path: String) throws {
        try pool.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                let found = try Found(db)
                if found.isEmpty {
                    try db.execute(sql: sql)
                    try db.execute(sql: "PRAGMA application_id = \(applicationId); PRAGMA user_version = \(version)")
                } else {
                    try check(found, path: path)
                    for upgrade in upgrades(from: found.version) ?? [] {
                        // Only a file that holds exactly the older schema is upgraded, and only
                        // into exactly this one; anything else rolls back and is refused.
                        guard try Self.definitions(in: db) == upgrade.definitions.get() else {
                            throw StoreError(.schema, "\(path) holds \(kind) schema \(upgrade.from) with tables other than that schema's; "
                                             + "it is not upgraded (see ctbus journal verify)")
                        }
                        try db.execute(sql: upgrade.script)
                        try db.execute(sql: "PRAGMA user_version = \(upgrade.from + 1)")
                    }
                    if found.version != version, try Self.definitions(in: db) != definitions.get() {
                        throw StoreError(.schema, "\(path): the upgrade to \(kind) schema \(version) did not give that schema; nothing was changed")
                    }
                }
                return .commit
            }
        }
    }
}
