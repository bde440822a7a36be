import Foundation

extension Process {
    private static let spawning = NSLock()

    /// `run()`, one process at a time: Foundation's `Process.run` on Linux is not safe to call
    /// from several threads at once (tests that spawned in parallel crashed inside it, in a
    /// memcpy). Every process a test starts goes through here.
    public func runAlone() throws {
        try Self.spawning.withLock { try run() }
    }
}
