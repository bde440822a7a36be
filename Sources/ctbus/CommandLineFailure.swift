import ArgumentParser
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
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
func makeLogger(label: String, level: String, format: LogFormat = .text) -> Logger {
    var logger = Logger(label: label) { label -> any LogHandler in
        format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
    }
    logger.logLevel = Logger.Level(rawValue: level.lowercased()) ?? .info
    return logger
}

/// How a daemon writes its log: text for people, JSON (one object a line) for log shippers.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// SIGINT and SIGTERM, the signals that stop a daemon gracefully, SIGUSR1, which a daemon sends itself to stop on its own,
/// and SIGHUP, which asks a daemon to reload.
private func terminationSignals() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGINT)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGUSR1) // a daemon stopping on its own (`runDaemon`'s fatal)
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
