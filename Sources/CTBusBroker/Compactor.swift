import CTBusMetricNames
import CTBusJournal
import Dispatch
import Foundation
import CoreMetrics
import Logging
import Synchronization

/// Applies the retention to the broker's store on its own queue, beside the broker loop (never
/// in it): a minute after start and then every `interval`. The schedule is a task that sleeps;
/// the passes run on the queue, so no thread of the cooperative pool waits for SQLite. Each pass
/// is a series of bounded transactions, so the loop's own writes wait a few milliseconds at most
/// between them.
final class Compactor: Sendable {
    private let store: any BrokerStorage
    private let policy: RetentionPolicy
    private let interval: Duration
    private let registryNodes: @Sendable () -> Set<String>
    private let logger: Logger
    private let removedMessages: Counter
    private let droppedQueueEntries: Counter
    private let queue = DispatchQueue(label: "ctbus.broker.retention")
    /// Set by `stop`: a pass in progress ends after its current batch.
    private let stopping = Atomic<Bool>(false)
    /// The schedule, from `start` to `stop`.
    private let schedule = Mutex<Task<Void, Never>?>(nil)

    init(store: any BrokerStorage, policy: RetentionPolicy, interval: TimeInterval, registryNodes: @escaping @Sendable () -> Set<String>,
         logger: Logger, metrics: any MetricsFactory) {
        removedMessages = Counter(label: MetricName.brokerRetentionRemovedTotal.rawValue, dimensions: [("what", "message")], factory: metrics)
        droppedQueueEntries = Counter(label: MetricName.brokerRetentionRemovedTotal.rawValue, dimensions: [("what", "removed_node_queue_entry")],
                                      factory: metrics)
        self.store = store
        self.policy = policy
        self.interval = .milliseconds(Int64(interval * 1000))
        self.registryNodes = registryNodes
        self.logger = logger
    }

    /// Starts the schedule: the first pass a minute from now (sooner when `interval` is
    /// shorter), then one every `interval`.
    func start() {
        let (first, interval) = (min(.seconds(60), interval), interval)
        // The task holds the compactor (and through it the store) only while a pass runs: once
        // `stop` returns, nothing of it keeps the store open.
        let task = Task { [weak self] in
            var wait = first
            while (try? await Task.sleep(for: wait)) != nil {
                let ran: Bool = await withCheckedContinuation { done in
                    guard let compactor = self, !compactor.stopping.load(ordering: .relaxed) else { return done.resume(returning: false) }
                    compactor.queue.async { [weak compactor] in
                        compactor?.pass(now: Date())
                        done.resume(returning: compactor != nil)
                    }
                }
                guard ran else { return }
                wait = interval
            }
        }
        schedule.withLock { $0 = task }
    }

    /// One full pass now (tests give the date: a clock advanced by years), after any pass running.
    func runNow(now: Date) throws -> CompactionReport {
        try queue.sync { try compact(now: now) }
    }

    /// Ends the schedule and waits for a pass in progress to end.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        schedule.withLock { $0?.cancel() }
        queue.sync {}
    }

    private func pass(now: Date) {
        do {
            _ = try compact(now: now)
        } catch {
            logger.error("retention pass failed; it is tried again at the next interval", metadata: ["error": "\(error)"])
        }
    }

    private func compact(now: Date) throws -> CompactionReport {
        let started = ContinuousClock.now
        var total = CompactionReport()
        var nextProgress = 100_000 // rows: a long first pass on a large store says how far it is
        while !stopping.load(ordering: .relaxed) {
            let report = try store.compact(policy: policy, registryNodes: registryNodes(), now: now)
            guard !report.isEmpty else { break }
            total += report
            removedMessages.increment(by: report.messagesRemoved)
            droppedQueueEntries.increment(by: report.queueEntriesDropped)
            if total.messagesRemoved + total.queueEntriesDropped >= nextProgress {
                nextProgress += 100_000
                logger.info("retention in progress", metadata: ["messages-removed": "\(total.messagesRemoved)",
                                                               "removed-node-queue-entries": "\(total.queueEntriesDropped)"])
            }
        }
        if !total.isEmpty {
            logger.info("retention applied", metadata: [
                "messages-removed": "\(total.messagesRemoved)", "removed-node-queue-entries": "\(total.queueEntriesDropped)", "took": "\(ContinuousClock.now - started)",
            ])
        }
        return total
    }
}
