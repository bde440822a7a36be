import Foundation
import Testing

/// At most cores + 1 integration tests at once: each starts a broker, nodes, their sockets,
/// threads and store files, and Swift Testing would start every suite's tests together. Beyond a
/// few buses per core they starve one another past the bus's 1 s session timeout, and past the
/// open files Foundation's `Process.run` copes with (about 1,300). One more than the cores keeps
/// the cores busy while one test waits.
struct BusSlot: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { return try await function() } // a suite: its test cases take the slots
        await BusSlots.shared.acquire()
        do {
            try await function()
        } catch {
            await BusSlots.shared.release()
            throw error
        }
        await BusSlots.shared.release()
    }
}

extension Trait where Self == BusSlot {
    /// Runs each test case of the suite in one of a few slots (`BusSlot`).
    static var busSlot: Self { BusSlot() }
}

/// A counting semaphore that suspends, never blocks: waiting tests hold no thread.
actor BusSlots {
    static let shared = BusSlots(permits: ProcessInfo.processInfo.activeProcessorCount + 1)

    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(permits: Int) { free = permits }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            free += 1
        } else {
            waiting.removeFirst().resume() // the slot passes straight to the next one waiting
        }
    }
}
