import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CoreMetrics
import CTBusLocal
import Foundation
import Logging

/// `ctbus bench`: real buses (CURVE, SQLite journals and store on disk, as in production)
/// measured side by side with `BaselineForwarder` in the same run. Each scenario runs
/// `rounds` times on a fresh bus; the report gives medians.
public struct Benchmark {
    public struct Options: Sendable {
        public var messages: Int
        public var bodyBytes: Int
        public var rounds: Int
        public var rate: Double
        public var latencyMessages: Int
        public var catchUpMessages: Int
        public var scaleRecipients: [Int]
        /// Messages queued for an absent node in the memory scenario.
        public var queuedMessages: Int
        /// The ctbus executable, for scenarios that run the broker as a process of its own.
        public var executable: String?
        /// The scenarios to run; all of them by default.
        public var scenarios: Set<Scenario> = Set(Scenario.allCases)
        /// A fresh metrics backend for the `metrics` scenario (`ctbus bench` gives Prometheus's);
        /// without one the scenario is left out.
        public var metricsFactory: (@Sendable () -> any MetricsFactory)?

        public static let short = Options(messages: 2_000, bodyBytes: 1_024, rounds: 3, rate: 1_000, latencyMessages: 500,
                                          catchUpMessages: 2_000, scaleRecipients: [3, 12], queuedMessages: 20_000)
        public static let full = Options(messages: 20_000, bodyBytes: 1_024, rounds: 5, rate: 1_000, latencyMessages: 5_000,
                                         catchUpMessages: 100_000, scaleRecipients: [3, 12, 48], queuedMessages: 1_000_000)
    }

    /// The parts of a run, selectable on their own (to profile one, or to repeat one).
    public enum Scenario: String, CaseIterable, Sendable {
        case fanOut = "fan-out"
        case latency
        case catchUp = "catch-up"
        case scale
        case memory
        /// Fan-out with the broker's metrics on, against the same with them off, alternated.
        case metrics
        /// What signatures cost per message: signing, the broker's check, a recipient's check.
        case signatures
        /// Fan-out of sealed STRICTLY_CONFIDENTIAL messages against signed, unsealed ones, alternated.
        case sealed
    }

    /// One line of the report.
    public struct Result: Codable, Sendable {
        public let scenario: String
        public let metric: String
        public let unit: String
        public let median: Double
        public let baseline: Double?
        /// ctbus / baseline (for throughputs: the share of the ceiling reached).
        public let ratio: Double?
        public let rounds: [Double]
    }

    public let options: Options
    public var progress: (String) -> Void = { _ in }

    public init(options: Options) { self.options = options }

    // MARK: Running

    public func run() throws -> [Result] {
        var results: [Result] = []
        let selected = options.scenarios
        if selected.contains(.fanOut) { results += try fanOut() }
        if selected.contains(.latency) { results += try fixedRateLatency() }
        if selected.contains(.catchUp) { results += try catchUp() }
        if selected.contains(.scale) { results += try scale() }
        if selected.contains(.memory), options.executable != nil { results += try memory() }
        if selected.contains(.metrics), let factory = options.metricsFactory { results += try metricsCost(factory) }
        if selected.contains(.signatures) { results += try signatureCosts() }
        if selected.contains(.sealed) { results += try sealedFanOut() }
        return results
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    // MARK: Scenarios

    func fanOut() throws -> [Result] {
        var throughput: [Double] = []
        var baseline: [Double] = []
        var p50: [Double] = []
        var p99: [Double] = []
        var p999: [Double] = []
        var baseP99: [Double] = []
        var parties: [PartyCPU.Figures] = []
        var baseCPU: [Double] = []
        for round in 1...options.rounds {
            progress("fan-out round \(round)/\(options.rounds)")
            let (bus, names) = try driver.makeBus(recipients: 3)
            defer { bus.shutdown() }
            try bus.startBroker()
            for name in names { try bus.startNode(name) }
            let cpu = PartyCPU(publisher: "cted", recipient: names[0])
            let run = try driver.publishAndWait(bus: bus, recipients: names, count: options.messages)
            parties.append(cpu.perMessage(options.messages, publishing: run.publishingCPU))
            throughput.append(Double(options.messages) / run.seconds)
            let lat = try driver.latencies(journal: try bus.journal(names[0]), published: run.published)
            p50.append(Self.percentile(lat, 0.5))
            p99.append(Self.percentile(lat, 0.99))
            p999.append(Self.percentile(lat, 0.999))
            let base = try BaselineForwarder.run(messages: options.messages, bodyBytes: options.bodyBytes, recipients: 3)
            baseline.append(Double(options.messages) / base.seconds)
            baseP99.append(Self.percentile(base.latencies, 0.99))
            baseCPU.append(base.forwarderCPUSeconds / Double(options.messages) * 1e6)
        }
        let ms = { (values: [Double]) in values.map { $0 * 1000 } }
        let party = { (metric: String, value: (PartyCPU.Figures) -> Double, baseline: [Double]?) in
            let rounds = parties.map(value)
            return Result(scenario: "fan-out to 3, CPU per message", metric: metric, unit: "µs", median: Self.median(rounds),
                          baseline: baseline.map(Self.median), ratio: baseline.map { Self.median(rounds) / Self.median($0) }, rounds: rounds)
        }
        return [
            Result(scenario: "fan-out to 3, durable", metric: "messages/s journaled at all recipients", unit: "msg/s",
                   median: Self.median(throughput), baseline: Self.median(baseline),
                   ratio: Self.median(throughput) / Self.median(baseline), rounds: throughput),
            party("publisher: validate, sign, journal, send", \.publisher, nil),
            party("broker: admit, store, deliver to 3", \.broker, baseCPU),
            party("one recipient: check, journal, acknowledge", \.recipient, nil),
            party("libzmq I/O threads, all parties", \.libzmqIO, nil),
            Result(scenario: "latency near saturation", metric: "p50 publish to journal", unit: "ms",
                   median: Self.median(ms(p50)), baseline: nil, ratio: nil, rounds: ms(p50)),
            Result(scenario: "latency near saturation", metric: "p99 publish to journal", unit: "ms",
                   median: Self.median(ms(p99)), baseline: Self.median(ms(baseP99)),
                   ratio: Self.median(p99) / Self.median(baseP99), rounds: ms(p99)),
            Result(scenario: "latency near saturation", metric: "p99.9 publish to journal", unit: "ms",
                   median: Self.median(ms(p999)), baseline: nil, ratio: nil, rounds: ms(p999)),
        ]
    }

    /// What counting costs: the fan-out of `fanOut`, with the broker's metrics off and on in
    /// turn (the order alternating by round, so that drift falls on both alike).
    func metricsCost(_ makeFactory: @Sendable () -> any MetricsFactory) throws -> [Result] {
        var off: [Double] = []
        var on: [Double] = []
        for round in 1...options.rounds {
            progress("metrics round \(round)/\(options.rounds)")
            for enabled in round % 2 == 1 ? [false, true] : [true, false] {
                let (bus, names) = try driver.makeBus(recipients: 3)
                defer { bus.shutdown() }
                try bus.startBroker(metrics: enabled ? makeFactory() : NOOPMetricsHandler.instance)
                for name in names { try bus.startNode(name) }
                let run = try driver.publishAndWait(bus: bus, recipients: names, count: options.messages)
                let rate = Double(options.messages) / run.seconds
                if enabled { on.append(rate) } else { off.append(rate) }
            }
        }
        return [Result(scenario: "fan-out to 3, metrics on (baseline: off)", metric: "messages/s journaled at all recipients",
                       unit: "msg/s", median: Self.median(on), baseline: Self.median(off), ratio: Self.median(on) / Self.median(off),
                       rounds: on)]
    }

    func fixedRateLatency() throws -> [Result] {
        var p50: [Double] = []
        var p99: [Double] = []
        var p999: [Double] = []
        var baseP50: [Double] = []
        var baseP99: [Double] = []
        for round in 1...options.rounds {
            progress("latency at \(Int(options.rate))/s round \(round)/\(options.rounds)")
            let (bus, names) = try driver.makeBus(recipients: 3)
            defer { bus.shutdown() }
            try bus.startBroker()
            for name in names { try bus.startNode(name) }
            let cted = try bus.startNode("cted")
            guard Wait.blocking(seconds: 30, { bus.allConnected }) else { throw ConfigurationError("bench nodes did not connect") }
            var published: [String: Date] = [:]
            let start = Date()
            for index in 0..<options.latencyMessages {
                let due = start.addingTimeInterval(Double(index) / options.rate)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) } // pacing the offered load, not measuring
                let now = Date()
                published[try cted.publish([driver.message()])[0]] = now
            }
            let journal = try bus.journal(names[0])
            guard try Wait.blocking(seconds: 120, { try journal.lastPosition() >= options.latencyMessages }) else {
                throw ConfigurationError("not every message arrived")
            }
            let lat = try driver.latencies(journal: journal, published: published)
            p50.append(Self.percentile(lat, 0.5) * 1000)
            p99.append(Self.percentile(lat, 0.99) * 1000)
            p999.append(Self.percentile(lat, 0.999) * 1000)
            let base = try BaselineForwarder.run(messages: options.latencyMessages, bodyBytes: options.bodyBytes, recipients: 3,
                                                 rate: options.rate)
            baseP50.append(Self.percentile(base.latencies, 0.5) * 1000)
            baseP99.append(Self.percentile(base.latencies, 0.99) * 1000)
        }
        let name = "latency at \(Int(options.rate)) msg/s"
        return [
            Result(scenario: name, metric: "p50 publish to journal", unit: "ms", median: Self.median(p50),
                   baseline: Self.median(baseP50), ratio: Self.median(p50) / Self.median(baseP50), rounds: p50),
            Result(scenario: name, metric: "p99 publish to journal", unit: "ms", median: Self.median(p99),
                   baseline: Self.median(baseP99), ratio: Self.median(p99) / Self.median(baseP99), rounds: p99),
            Result(scenario: name, metric: "p99.9 publish to journal", unit: "ms", median: Self.median(p999),
                   baseline: nil, ratio: nil, rounds: p999),
        ]
    }

    func catchUp() throws -> [Result] {
        var seconds: [Double] = []
        var baseline: [Double] = []
        for round in 1...options.rounds {
            progress("catch-up of \(options.catchUpMessages) round \(round)/\(options.rounds)")
            let (bus, names) = try driver.makeBus(recipients: 1)
            defer { bus.shutdown() }
            try bus.startBroker()
            // The recipient is away while CTED publishes; it has never connected.
            _ = try driver.publishAndWait(bus: bus, recipients: names, count: options.catchUpMessages, batch: 500, waitFor: [])
            guard let broker = bus.broker else { throw ConfigurationError("the bench broker is not running") }
            guard try Wait.blocking(seconds: 600, { try broker.store.queueDepth(for: names[0]) == options.catchUpMessages }) else {
                throw ConfigurationError("the backlog was not stored")
            }
            let journal = try bus.journal(names[0])
            let start = Date()
            try bus.startNode(names[0])
            guard try Wait.blocking(seconds: 600, { try journal.lastPosition() >= options.catchUpMessages }) else {
                throw ConfigurationError("catch-up did not complete")
            }
            seconds.append(Date().timeIntervalSince(start))
            baseline.append(try BaselineForwarder.run(messages: options.catchUpMessages, bodyBytes: options.bodyBytes, recipients: 1).seconds)
        }
        return [Result(scenario: "catch-up of \(options.catchUpMessages)", metric: "time until the journal is complete",
                       unit: "s", median: Self.median(seconds), baseline: Self.median(baseline),
                       ratio: Self.median(seconds) / Self.median(baseline), rounds: seconds)]
    }

    func scale() throws -> [Result] {
        var results: [Result] = []
        for recipients in options.scaleRecipients {
            var throughput: [Double] = []
            var cpu: [Double] = []
            var baseline: [Double] = []
            var baselineCPU: [Double] = []
            let count = max(200, options.messages / max(1, recipients / 3))
            for round in 1...options.rounds {
                progress("scale to \(recipients) recipients round \(round)/\(options.rounds)")
                let (bus, names) = try driver.makeBus(recipients: recipients)
                defer { bus.shutdown() }
                try bus.startBroker()
                for name in names { try bus.startNode(name) }
                let before = ThreadCPU.seconds(named: "broker")
                let run = try driver.publishAndWait(bus: bus, recipients: names, count: count)
                let after = ThreadCPU.seconds(named: "broker")
                throughput.append(Double(count) / run.seconds)
                if let before, let after { cpu.append((after - before) / Double(count * recipients) * 1e6) }
                let base = try BaselineForwarder.run(messages: count, bodyBytes: options.bodyBytes, recipients: recipients)
                baseline.append(Double(count) / base.seconds)
                baselineCPU.append(base.forwarderCPUSeconds / Double(count * recipients) * 1e6)
            }
            results.append(Result(scenario: "scale: \(recipients) recipients", metric: "messages/s journaled at all recipients",
                                  unit: "msg/s", median: Self.median(throughput), baseline: Self.median(baseline),
                                  ratio: Self.median(throughput) / Self.median(baseline), rounds: throughput))
            results.append(Result(scenario: "scale: \(recipients) recipients", metric: "broker CPU per delivered message",
                                  unit: "µs", median: Self.median(cpu), baseline: Self.median(baselineCPU),
                                  ratio: Self.median(cpu) / Self.median(baselineCPU), rounds: cpu))
        }
        return results
    }
}

extension Benchmark {
    /// Broker resident memory with `queuedMessages` waiting for a node that never connects. The
    /// broker runs as a process of its own so its memory is its own; CTED publishes from here.
    func memory() throws -> [Result] {
        guard let executable = options.executable else { return [] }
        progress("memory with \(options.queuedMessages) queued (one round)")
        let (bus, names) = try driver.makeBus(recipients: 1)
        defer { bus.shutdown() }
        let brokerConfig = try bus.writeConfigurationFiles()
        let broker = Process()
        broker.executableURL = URL(fileURLWithPath: executable)
        broker.arguments = ["broker", "--config", brokerConfig, "--log-level", "error"]
        broker.standardError = FileHandle.nullDevice
        try broker.run()
        defer {
            broker.terminate()
            broker.waitUntilExit()
        }
        let cted = try bus.startNode("cted")
        guard Wait.blocking(seconds: 30, { bus.allConnected }) else { throw ConfigurationError("CTED did not connect to the broker process") }
        let idle = Self.residentBytes(pid: broker.processIdentifier) ?? 0
        let journal = try bus.journal("cted")
        var sent = 0
        while sent < options.queuedMessages {
            let batch = min(500, options.queuedMessages - sent)
            try cted.publish((0..<batch).map { _ in driver.message() })
            sent += batch
            // Keep the outbox short so this measures the broker's queue, not CTED's backlog.
            _ = try Wait.blocking(seconds: 600) { try journal.outbox.items(limit: 5_000).count < 2_000 }
        }
        guard try Wait.blocking(seconds: 600, { try journal.outbox.items(limit: 1).isEmpty }) else {
            throw ConfigurationError("the broker did not acknowledge every publication")
        }
        let store = try BrokerStore(path: bus.brokerConfiguration.storePath)
        let queued = try store.queueDepth(for: names[0])
        guard queued == options.queuedMessages else { throw ConfigurationError("\(queued) queued, expected \(options.queuedMessages)") }
        let loaded = Self.residentBytes(pid: broker.processIdentifier) ?? 0
        let mb = { (bytes: Int) in Double(bytes) / 1_048_576 }
        return [Result(scenario: "\(options.queuedMessages) queued for an absent node", metric: "broker resident memory (idle: \(String(format: "%.1f", mb(idle))) MB)",
                       unit: "MB", median: mb(loaded), baseline: nil, ratio: nil, rounds: [mb(loaded)])]
    }

    /// VmRSS of a process, from /proc (Linux).
    static func residentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kilobytes * 1024
    }
}
