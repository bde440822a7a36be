import Foundation
import CTBusSchema

/// Bounded waiting for a condition: checks it until it holds or the deadline passes. Tests
/// assert on the condition, never on how long it took.
public enum Wait {
    /// Returns true as soon as `condition` holds, false when `seconds` passed first. The pause
    /// between checks suspends the task: a waiting task holds no thread of the cooperative pool
    /// (one thread per core), so other tasks run meanwhile.
    @discardableResult
    public static func until(seconds: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            if try await condition() { return true }
            if ContinuousClock.now >= deadline || Task.isCancelled { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// `until` for a thread of its own (the benchmark's driver), never for a task: it sleeps the
    /// calling thread between checks.
    @discardableResult
    public static func blocking(seconds: Double = 15, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if try condition() { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Runs blocking work (a child process, a read with a timeout) on a thread of its own and
    /// suspends the task until it is done, so that it holds no thread of the cooperative pool.
    public static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            OwnThread.start { continuation.resume(with: Result(catching: body)) }
        }
    }
}
