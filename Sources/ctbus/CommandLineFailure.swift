import ArgumentParser
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import Synchronization
import Logging
import ZeroMQ

/// Runs a command body and turns any error into one line on stderr and exit status 1 (2 for
/// bad input the user can fix, as argument errors are).
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("ctbus: \(describe(error))\n".utf8))
        throw ExitCode(1)
    }
}

/// `runReportingErrors` for async work (the daemons).
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("ctbus: \(describe(error))\n".utf8))
        throw ExitCode(1)
    }
}

func describe(_ error: any Error) -> String {
    switch error {
    case let error as BusError: "error \(error.codeName): \(error.detail)"
    case let error as ConfigurationError: "configuration error: \(error.description)"
    case let error as KeyFileError: "key error: \(error.description)"
    case let error as RegistryError: "registry error: \(error.description)"
    case let error as StoreError: "store error (\(error.kind.rawValue)): \(error.description)"
    case let error as ZMQError: "ZeroMQ error: \(error.description)"
    default: "\(error)"
    }
}

/// The process's logger: swift-log to stderr at `level`.
/// The log options every daemon takes.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: "Log format: text, or json (one object a line, for journald and log shippers).")
    var logFormat: LogFormat = .text

    func logger(label: String) -> Logger {
        makeLogger(label: label, level: logLevel, format: logFormat)
    }
}

func makeLogger(label: String, level: Logger.Level, format: LogFormat = .text) -> Logger {
    var logger = Logger(label: label) { label -> any LogHandler in
        format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
    }
    logger.logLevel = level
    return logger
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// How a daemon writes its log: text for people, JSON (one object a line) for log shippers.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// SIGINT and SIGTERM, the signals that stop a daemon gracefully, and SIGHUP, which asks a daemon to reload.
private func terminationSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGHUP) // reload (the broker's registry); other daemons log it and go on
    return set
}

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards, so
/// they stay pending until `waitForTerminationSignal` takes them. Call it first thing in a daemon.
func blockTerminationSignals() {
    var set = terminationSignals()
    pthread_sigmask(SIG_BLOCK, &set, nil)
}

/// Waits until SIGINT or SIGTERM arrives and returns it. With `sigwait` the signal is taken
/// synchronously, whatever signal mask the process inherited from its parent (a handler-based
/// approach never runs when the parent started us with the signals blocked).
func waitForTerminationSignal() -> Int32 {
    var set = terminationSignals()
    var received: Int32 = 0
    while sigwait(&set, &received) != 0 {}
    return received
}

/// The thread `SignalService` takes signals on (0 until it runs), and a signal caught before it
/// ran (0: none). Touched first in `forwardSignals`, before the handler can run.
private let signalThread = Atomic<UInt>(0)
private let caughtEarly = Atomic<Int32>(0)

/// Installs, for SIGINT, SIGTERM and SIGHUP, a handler that hands the signal on to the signal
/// thread (`pthread_kill`, async-signal-safe), where it stays pending for `sigwait`. The handler
/// runs only on a thread that does not block the signals: the main thread while the async runtime
/// parks it in `sigsuspend`. Before the signal thread runs, the signal is kept for it.
func forwardSignals() {
    signalThread.store(0, ordering: .sequentiallyConsistent)
    caughtEarly.store(0, ordering: .sequentiallyConsistent)
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        _ = Glibc.signal(signal) { received in
            caughtEarly.store(received, ordering: .sequentiallyConsistent)
            let thread = signalThread.load(ordering: .sequentiallyConsistent)
            if thread != 0 { pthread_kill(pthread_t(thread), received) }
        }
    }
}

/// Makes the calling thread the one signals are handed to; returns a signal caught before.
func becomeSignalThread() -> Int32? {
    signalThread.store(UInt(pthread_self()), ordering: .sequentiallyConsistent)
    let early = caughtEarly.exchange(0, ordering: .sequentiallyConsistent)
    return early == 0 ? nil : early
}
