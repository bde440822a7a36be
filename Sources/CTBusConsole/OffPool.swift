import NIOPosix

/// Runs journal work (SQLite reads and writes through GRDB, verifying, signing) on NIO's thread
/// pool, as hummingbird-auth runs bcrypt: the console never holds a thread of the cooperative pool
/// while SQLite waits for the disk.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}
