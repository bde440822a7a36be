import CTBusJournal
import CTBusSchema
import Logging
import ServiceLifecycle

/// Fills the journal's full-text index beside the console, never in the node's journaling
/// transaction: every second it indexes what was journaled since, in batches of 1,000 entries
/// (one short write transaction each). A large journal met for the first time is indexed in
/// the background, with its progress logged; searches meanwhile say how far it has come.
struct SearchIndexer: Service {
    let journal: NodeJournal
    let logger: Logger
    static let batch = 1_000

    func run() async throws {
        let problems = SharedThrottledLogger(logger, period: .seconds(60))
        await cancelWhenGracefulShutdown {
            var reported = 0
            while !Task.isCancelled {
                do {
                    var total = 0
                    while !Task.isCancelled {
                        let indexed = try await offPool { [journal] in try journal.search.index(limit: Self.batch) }
                        total += indexed
                        if indexed < Self.batch { break }
                        if total - reported >= 10_000 {
                            let status = try await offPool { [journal] in try journal.search.status() }
                            logger.info("search index: \(status.indexedThrough) of \(status.last) journal entries")
                            reported = total
                        }
                        await Task.yield()
                    }
                    if reported > 0 && total > 0 {
                        logger.info("search index: every journal entry is searchable")
                        reported = 0
                    }
                } catch {
                    // A busy or damaged journal: the pages say how far search reaches; try again later.
                    problems.log("index", .warning, "search index not updated: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
