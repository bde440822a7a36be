import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusLocal
import CTBusSchema
import Foundation
import Logging

/// How the scenarios drive a bus: a bus of CTED and working groups, the messages it publishes,
/// publishing them and waiting until they are journaled, and the latencies at one recipient.
struct BusDriver {
    /// Body size of the messages published.
    let bodyBytes: Int

    /// A bus of CTED and `recipients` working groups that all receive everything.
    func makeBus(recipients: Int, clearance: Classification = .confidential) throws -> (LocalBus, [String]) {
        let names = (1...recipients).map { "r-\($0)" }
        let nodes = [LocalBus.NodeSpec("cted", role: .cted, clearance: .strictlyConfidential)]
            + names.map { LocalBus.NodeSpec($0, role: .workingGroup, clearance: clearance) }
        let bus = try LocalBus(nodes: nodes, logger: Logger(label: "ctbus.bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (bus, names)
    }

    func message(handling: Handling? = nil) -> BusMessage {
        guard let handling else { return SampleMessages.missionReport(summaryBytes: bodyBytes) }
        return SampleMessages.missionReport(handling: handling, summaryBytes: bodyBytes)
    }

    /// Publishes `count` messages from CTED in batches and waits until every recipient
    /// journaled them all. Returns the seconds taken, per message id when it was published, and
    /// the CPU seconds the calling thread spent publishing (validating, signing, journaling).
    func publishAndWait(bus: LocalBus, recipients: [String], count: Int, batch: Int = 100, waitFor: [String]? = nil,
                        handling: Handling? = nil) throws -> (seconds: Double, published: [String: Date], publishingCPU: Double) {
        let cted = try bus.startNode("cted")
        let journals = try (waitFor ?? recipients).map { try bus.journal($0) }
        guard Wait.blocking(seconds: 30, { bus.allConnected }) else { throw ConfigurationError("bench nodes did not connect") }
        let messages = (0..<count).map { _ in message(handling: handling) }
        var published: [String: Date] = [:]
        let start = Date()
        let cpuBefore = ThreadCPU.thisThread()
        for chunk in stride(from: 0, to: count, by: batch) {
            let now = Date()
            for id in try cted.publish(Array(messages[chunk..<min(count, chunk + batch)])) { published[id] = now }
        }
        let publishingCPU = ThreadCPU.thisThread() - cpuBefore
        guard try Wait.blocking(seconds: 600, { try journals.allSatisfy { try $0.lastPosition() >= count } }) else {
            throw ConfigurationError("not every message arrived within 600 s")
        }
        return (Date().timeIntervalSince(start), published, publishingCPU)
    }

    /// Publish-to-journal latencies at one recipient.
    func latencies(journal: NodeJournal, published: [String: Date]) throws -> [Double] {
        try journal.entries(matching: JournalFilter(direction: .received)).compactMap { entry in
            published[entry.messageId].map { entry.recordedAt.timeIntervalSince($0) }
        }
    }
}

extension Benchmark {
    var driver: BusDriver { BusDriver(bodyBytes: options.bodyBytes) }
}
