import CTBusJournal
import CTBusSchema
import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The journal's `verify` result for the status page: run when the console starts, every hour,
/// and when a person asks (a button on the status page). Each run reads the whole journal
/// (0.9 s for 100,000 entries, release build), off the server's task threads.
final class JournalCheck: Sendable {
    struct Outcome: Sendable {
        let at: Date
        /// The report, or why verify could not run.
        let result: Result<ChainReport, StoreError>
    }

    private let state = Mutex<(last: Outcome?, running: Bool)>((nil, false))
    let journal: NodeJournal
    let logger: Logger
    /// Runs that found damage or could not run.
    let failures: Counter

    init(journal: NodeJournal, logger: Logger, failures: Counter) {
        self.journal = journal
        self.logger = logger
        self.failures = failures
    }

    var last: Outcome? { state.withLock { $0.last } }
    var isRunning: Bool { state.withLock { $0.running } }

    /// Runs verify unless a run is under way; returns when it is done.
    func run() async {
        guard state.withLock({ state in
            if state.running { return false }
            state.running = true
            return true
        }) else { return }
        let journal = journal
        let result: Result<ChainReport, StoreError>
        do {
            result = try await offPool { Result { () throws(StoreError) in try journal.verify() } }
        } catch {
            result = .failure(StoreError(.unavailable, "the thread pool is shutting down"))
        }
        switch result {
        case .success(let report) where !report.isIntact:
            failures.increment()
            logger.error("journal verify found damage", metadata: ["journal": "\(journal.path)",
                                                                    "first_break": "\(report.firstBreak?.position ?? 0)"])
        case .failure(let error):
            failures.increment()
            logger.error("journal verify could not run: \(error)")
        default:
            break
        }
        state.withLock { $0 = (Outcome(at: Date(), result: result), false) }
    }

    /// The service: a run at start, then one an hour.
    struct Schedule: Service {
        let check: JournalCheck

        func run() async throws {
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    await check.run()
                    try? await Task.sleep(for: .seconds(3_600))
                }
            }
        }
    }
}
