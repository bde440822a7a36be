import CTBusSchema
import Dispatch
import Foundation

/// Runs the signature checks of a batch of publications side by side on the machine's cores,
/// so that each batch root is verified once (PROTOCOL.md 7.2): the first publication of each root
/// (and each publication signed on its own) goes first, all of them side by side; then the rest,
/// each on its own, which only hash up to a root `BatchRoots` now keeps. When a root's first
/// publication failed (a bent or malformed copy may come first, before the root was verified),
/// that root's others are checked one after the other, so the first genuine one verifies the root
/// for the rest. Answers in the batch's order.
public enum RootOrderedChecks {
    /// `root(i)`: what names item `i`'s root (its key id and batch id), nil when it is signed on
    /// its own; items for which `include` is false are not checked (nil in the answer).
    /// `failed`: whether a result is a refusal.
    public static func run<Outcome: Sendable>(count: Int, include: (Int) -> Bool, root: (Int) -> Data?,
                                              failed: (Outcome) -> Bool, check: @escaping @Sendable (Int) -> Outcome) -> [Outcome?] {
        var firsts: [Data: Int] = [:]
        var leading: [[Int]] = []
        var following: [Data: [Int]] = [:]
        for index in 0..<count where include(index) {
            guard let batch = root(index) else { leading.append([index]); continue }
            if firsts[batch] == nil {
                firsts[batch] = index
                leading.append([index])
            } else {
                following[batch, default: []].append(index)
            }
        }
        let slots = Slots<Outcome>(count: count)
        func perform(_ work: [[Int]]) {
            DispatchQueue.concurrentPerform(iterations: work.count) { piece in
                for index in work[piece] { slots.pointer[index] = check(index) }
            }
        }
        perform(leading)
        perform(following.flatMap { batch, indices -> [[Int]] in
            guard let first = firsts[batch], let outcome = slots.pointer[first], failed(outcome) else { return indices.map { [$0] } }
            return [indices]
        })
        return Array(slots.pointer)
    }

    /// The answers, one slot per item. Unchecked: each slot is written by exactly one piece of
    /// work, and read only once every piece has ended.
    private final class Slots<Outcome>: @unchecked Sendable {
        let pointer: UnsafeMutableBufferPointer<Outcome?>

        init(count: Int) {
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: nil)
        }

        deinit {
            pointer.deinitialize()
            pointer.deallocate()
        }
    }
}

extension Proof {
    /// What names the batch root this proof leads to, for `RootOrderedChecks`: the key id and the
    /// batch id; nil for a publication signed on its own.
    public var rootName: Data? {
        hasBatch ? Data(keyID.utf8) + [0] + batch.batchID : nil
    }
}
