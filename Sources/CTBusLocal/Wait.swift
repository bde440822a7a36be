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
}
