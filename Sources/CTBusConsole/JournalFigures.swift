import CTBusJournal
import CTBusMetricNames
import CTBusMetrics
import CTBusSchema
import Hummingbird
import Logging

/// The node's figures at each scrape of `/metrics`, read from its journal (read transactions),
/// and `/ready` while the journal reads.
struct JournalFigures: Sendable {
    let journal: NodeJournal
    let endpoint: MetricsEndpoint
    let problems: SharedThrottledLogger

    func addRoutes(to router: Router<ConsoleRequestContext>) {
        let (figures, journal) = (self, journal)
        endpoint.addRoutes(to: router, refresh: {
            try? await offPool { figures.refresh() }
        }, ready: {
            do {
                return try await offPool { (try? journal.lastPosition()) == nil ? "the journal cannot be read" : nil }
            } catch {
                return "the console is stopping"
            }
        })
    }

    /// The node's figures from its journal, into the endpoint's gauges.
    func refresh() {
        do {
            let search = try journal.search.status()
            let outbox = try journal.outbox.counts()
            let session = try journal.session()
            endpoint.set(.nodeJournalEntries, to: Double(search.last))
            endpoint.set(.nodeOutboxDepth, to: Double(outbox.waiting))
            endpoint.set(.nodeOutboxRefused, to: Double(outbox.refused))
            endpoint.set(.nodeDrafts, to: Double(try journal.drafts.list().count))
            let notifications = try journal.notifications.counts()
            endpoint.set(.nodeNotificationsWaiting, to: Double(notifications.waiting))
            endpoint.set(.nodeNotificationsFailed, to: Double(notifications.failed))
            endpoint.set(.nodeSearchUnindexedEntries, to: Double(max(0, search.last - search.indexedThrough)))
            let open = FileLock.isHeld(journal.path) && session?.open == true
            endpoint.set(.nodeBrokerSessionOpen, to: Double(open ? 1 : 0))
        } catch {
            problems.log("metrics", .warning, "metrics: could not read the journal's figures: \(error)")
        }
    }
}
