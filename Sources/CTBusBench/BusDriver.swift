import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusLocal
import CTBusSchema
import Foundation
import Histogram
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
    /// journaled them all. Returns the seconds taken and the CPU seconds the calling thread spent
    /// publishing (validating, signing, journaling).
    func publishAndWait(bus: LocalBus, recipients: [String], count: Int, batch: Int = 100, waitFor: [String]? = nil,
                        handling: Handling? = nil) throws -> (seconds: Double, publishingCPU: Double) {
        let cted = try bus.startNode("cted")
        let journals = try (waitFor ?? recipients).map { try bus.journal($0) }
        guard Wait.blocking(seconds: 30, { bus.allConnected }) else { throw ConfigurationError("bench nodes did not connect") }
        let messages = (0..<count).map { _ in message(handling: handling) }
        let start = Date()
        let cpuBefore = ThreadCPU.thisThread()
        for chunk in stride(from: 0, to: count, by: batch) {
            try cted.publish(Array(messages[chunk..<min(count, chunk + batch)]))
        }
        let publishingCPU = ThreadCPU.thisThread() - cpuBefore
        guard try Wait.blocking(seconds: 600, { try journals.allSatisfy { try $0.lastPosition() >= count } }) else {
            throw ConfigurationError("not every message arrived within 600 s")
        }
        return (Date().timeIntervalSince(start), publishingCPU)
    }

    /// Publishes `count` messages from CTED in open loop: message `i` falls due at `i / rate`
    /// seconds, and at each wake-up the publisher publishes every message whose time has come in
    /// one call (signed together, as a node signs what it is given at once). Returns each
    /// message's latency at the first recipient in microseconds, from when it fell due to when it
    /// was journaled: a publisher that falls behind adds its delay to every message waiting.
    /// With `hops`, also where that time went, message by message (see `OpenLoopRun.hops`).
    func openLoop(bus: LocalBus, recipients: [String], rate: Double, count: Int, hops: Bool = false) throws -> OpenLoopRun {
        let cted = try bus.startNode("cted")
        let journal = try bus.journal(recipients[0])
        guard Wait.blocking(seconds: 30, { bus.allConnected }) else { throw ConfigurationError("bench nodes did not connect") }
        let messages = (0..<count).map { _ in message() }
        var due: [String: Date] = [:]
        let start = Date()
        var next = 0
        while next < count {
            let reached = min(count, Int(Date().timeIntervalSince(start) * rate) + 1)
            guard reached > next else {
                // Pacing the offered load until the next message falls due, not measuring.
                Thread.sleep(until: start.addingTimeInterval(Double(next) / rate))
                continue
            }
            for (offset, id) in try cted.publish(Array(messages[next..<reached])).enumerated() {
                due[id] = start.addingTimeInterval(Double(next + offset) / rate)
            }
            next = reached
        }
        guard try Wait.blocking(seconds: 120, { try journal.lastPosition() >= count }) else {
            throw ConfigurationError("not every message arrived within 120 s")
        }
        let latencies = try latencies(journal: journal, published: due).map { $0 * 1e6 }
        guard hops else { return OpenLoopRun(latencies: latencies, hops: []) }
        return OpenLoopRun(latencies: latencies, hops: try hopTimes(bus: bus, publisher: "cted", recipient: journal, due: due))
    }

    /// Each message's time from falling due to the publisher's outbox, from there to the
    /// broker's store, and from there to the recipient's journal, in microseconds. All three
    /// clocks are this process's, so the differences are exact up to the stamps' placement: the
    /// outbox stamp is taken in the publishing transaction, the broker's in its store transaction.
    func hopTimes(bus: LocalBus, publisher: String, recipient: NodeJournal, due: [String: Date]) throws -> [(String, [Double])] {
        guard let broker = bus.broker else { throw ConfigurationError("the bench broker is not running") }
        let queued = Dictionary(try bus.journal(publisher).entries(matching: JournalFilter(direction: .sent)).map { ($0.messageId, $0.recordedAt) },
                                uniquingKeysWith: { first, _ in first })
        var hops: [[Double]] = [[], [], []]
        for entry in try recipient.entries(matching: JournalFilter(direction: .received)) {
            guard let fellDue = due[entry.messageId], let inOutbox = queued[entry.messageId],
                  let stored = try broker.store.audit(messageId: entry.messageId)?.storedAt else { continue }
            for (hop, (from, to)) in [(fellDue, inOutbox), (inOutbox, stored), (stored, entry.recordedAt)].enumerated() {
                hops[hop].append(to.timeIntervalSince(from) * 1e6)
            }
        }
        return zip(["due to in the outbox", "outbox to stored by the broker", "stored to journaled"], hops).map { ($0, $1) }
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

/// One open-loop round: each message's latency from falling due to a recipient's journal, and,
/// when asked for, the same messages' time hop by hop (name, microseconds per message).
struct OpenLoopRun {
    let latencies: [Double]
    let hops: [(String, [Double])]
}

/// Percentiles of latencies in microseconds, read from an HDR histogram (three significant
/// digits, up to ten minutes).
struct LatencyPercentiles {
    let p50: Double
    let p99: Double
    let p999: Double

    init(_ microseconds: [Double]) {
        let highest: UInt64 = 600_000_000
        var histogram = Histogram<UInt64>(highestTrackableValue: highest, numberOfSignificantValueDigits: .three)
        for value in microseconds { histogram.record(min(highest, UInt64(max(0, value.rounded())))) }
        p50 = Double(histogram.valueAtPercentile(50))
        p99 = Double(histogram.valueAtPercentile(99))
        p999 = Double(histogram.valueAtPercentile(99.9))
    }
}
