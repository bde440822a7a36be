import Foundation

/// Bounded waiting for a condition: checks it until it holds or the deadline passes. Tests
/// assert on the condition, never on how long it took.
public enum Wait {
    /// Returns true as soon as `condition` holds, false when `seconds` passed first.
    @discardableResult
    public static func until(seconds: Double = 15, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if try condition() { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// `until` for async callers: the pause between checks suspends the task instead of holding
    /// a thread of the cooperative pool. (A name of its own: with a synchronous condition, Swift
    /// would pick the blocking `until` even after `await`.)
    @discardableResult
    public static func suspendingUntil(seconds: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            if try await condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
