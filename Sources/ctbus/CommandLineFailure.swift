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
func makeLogger(label: String, level: String) -> Logger {
    var logger = Logger(label: label) { label in StreamLogHandler.standardError(label: label) }
    logger.logLevel = Logger.Level(rawValue: level.lowercased()) ?? .info
    return logger
}

/// Blocks until SIGINT or SIGTERM arrives.
func waitForTerminationSignal() -> Int32 {
    let semaphore = DispatchSemaphore(value: 0)
    let received = ReceivedSignal()
    var sources: [any DispatchSourceSignal] = []
    for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler {
            received.set(signalNumber)
            semaphore.signal()
        }
        source.resume()
        sources.append(source)
    }
    semaphore.wait()
    sources.forEach { $0.cancel() }
    return received.value
}

final class ReceivedSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var signalNumber: Int32 = 0
    func set(_ value: Int32) { lock.withLock { signalNumber = value } }
    var value: Int32 { lock.withLock { signalNumber } }
}
