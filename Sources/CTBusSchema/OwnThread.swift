import Foundation
import Synchronization

/// Runs work on an OS thread of its own, and lets go of the work (and everything it captured)
/// before the thread ends. Foundation's `Thread` keeps its block until the thread's very last
/// moments, when the C library tears down thread-specific data in no set order; by then
/// libdispatch's own data for the thread may be gone, and an object whose deinit reaches
/// libdispatch (a GRDB database, a semaphore, a `Process`) released there writes into freed
/// memory. That corrupted the heap of the test process now and then, at the end of a node's
/// loop thread (caught under gdb with glibc's malloc perturbation).
public enum OwnThread {
    public static func start(name: String? = nil, stackSize: Int? = nil, _ work: @escaping @Sendable () -> Void) {
        let held = Held(work)
        let thread = Thread { held.take()?() }
        if let name { thread.name = name }
        if let stackSize { thread.stackSize = stackSize }
        thread.start()
    }

    /// The work, until the thread takes it: then only an empty box stays with the `Thread`.
    private final class Held: Sendable {
        private let work: Mutex<(@Sendable () -> Void)?>
        init(_ work: @escaping @Sendable () -> Void) { self.work = Mutex(work) }
        func take() -> (@Sendable () -> Void)? { work.withLock { work in defer { work = nil }; return work } }
    }
}
