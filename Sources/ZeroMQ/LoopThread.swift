import CZeroMQ
import Foundation
import Synchronization

/// A dedicated OS thread that owns sockets and runs a poll loop: blocking
/// libzmq calls never run on Swift's cooperative thread pool.
///
/// The body creates its sockets, calls `ready(_:)` once it is set up (or failed to), loops
/// while `isStopping` is false with a bounded poll timeout, and closes its sockets on the way out.
public final class LoopThread: Sendable {
    private let stopping = Mutex(false)
    private let startup = Mutex<Result<Void, any Error>?>(nil)
    private let startupSignal = DispatchSemaphore(value: 0)
    private let finishedSignal = DispatchSemaphore(value: 0)

    public init() {}

    /// Starts `body` on a new thread named `name`, and waits until the body called `ready`.
    /// Rethrows the error the body gave to `ready`.
    ///
    /// The thread lets go of the body, and of this object, before it ends (`Held`).
    public func start(name: String, body: @escaping @Sendable (LoopThread) -> Void) throws {
        let held = Held { [self] in
            // The kernel's name of the thread (15 characters at most), for top, /proc and profilers.
            _ = ctbus_set_thread_name(String(name.prefix(15)))
            body(self)
            // A body that returns without calling ready must not leave start() waiting.
            reportReady(.failure(LoopThreadError.endedBeforeReady(name)))
            finishedSignal.signal()
        }
        let thread = Thread { held.take()?() }
        thread.name = name
        thread.stackSize = 4 << 20
        thread.start()
        startupSignal.wait()
        try startup.withLock { $0! }.get()
    }

    /// Called once by the body when its sockets are set up (or with the error that stopped it).
    public func ready(_ result: Result<Void, any Error>) {
        reportReady(result)
    }

    private func reportReady(_ result: Result<Void, any Error>) {
        let first = startup.withLock { state -> Bool in
            guard state == nil else { return false }
            state = result
            return true
        }
        if first { startupSignal.signal() }
    }

    /// Whether the loop was asked to stop; the body checks it after every poll.
    public var isStopping: Bool { stopping.withLock { $0 } }

    /// Asks the loop to stop and waits up to `timeout` seconds for the thread to finish.
    /// Returns false when it did not finish in time.
    @discardableResult
    public func stop(timeout: Double = 10) -> Bool {
        let already = stopping.withLock { old in defer { old = true }; return old }
        guard !already else { return true }
        guard startup.withLock({ $0 }) != nil else { return true }
        return finishedSignal.wait(timeout: .now() + timeout) == .success
    }
}

/// A thread's work until the thread takes it. Foundation's `Thread` keeps its block until the
/// C library tears down the thread's specific data, in no set order; libdispatch's data for the
/// thread may be gone by then, and a deinit that reaches libdispatch (a GRDB database, a
/// semaphore) run there writes into freed memory. So the block holds only this box, emptied
/// when the work starts, and what the work captured is released while the thread still runs.
/// (CTBusSchema's `OwnThread` does the same for threads outside this module.)
private final class Held: Sendable {
    private let work: Mutex<(@Sendable () -> Void)?>
    init(_ work: @escaping @Sendable () -> Void) { self.work = Mutex(work) }
    func take() -> (@Sendable () -> Void)? { work.withLock { work in defer { work = nil }; return work } }
}

public enum LoopThreadError: Error, CustomStringConvertible {
    case endedBeforeReady(String)

    public var description: String {
        switch self {
        case .endedBeforeReady(let name): "thread \(name) ended before it was ready"
        }
    }
}
