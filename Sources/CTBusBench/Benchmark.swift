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
        /// Messages of a latency round at 1,000 msg/s (rounds at other rates last as long).
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

        public static let short = Options(messages: 2_000, bodyBytes: 1_024, rounds: 3, latencyMessages: 500,
                                          catchUpMessages: 2_000, scaleRecipients: [3, 12], queuedMessages: 20_000)
        public static let full = Options(messages: 20_000, bodyBytes: 1_024, rounds: 5, latencyMessages: 5_000,
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
        if selected.contains(.latency) {
            let measured = results.first { $0.scenario == Self.fanOutScenario }?.median
            results += try openLoopLatency(maximum: try measured ?? quickMaximum())
        }
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

    // MARK: Scenarios

    func fanOut() throws -> [Result] {
        var throughput: [Double] = []
        var baseline: [Double] = []
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
            let base = try BaselineForwarder.run(messages: options.messages, bodyBytes: options.bodyBytes, recipients: 3)
            baseline.append(Double(options.messages) / base.seconds)
            baseCPU.append(base.forwarderCPUSeconds / Double(options.messages) * 1e6)
        }
        let party = { (metric: String, value: (PartyCPU.Figures) -> Double, baseline: [Double]?) in
            let rounds = parties.map(value)
            return Result(scenario: "fan-out to 3, CPU per message", metric: metric, unit: "µs", median: Self.median(rounds),
                          baseline: baseline.map(Self.median), ratio: baseline.map { Self.median(rounds) / Self.median($0) }, rounds: rounds)
        }
        return [
            Result(scenario: Self.fanOutScenario, metric: "messages/s journaled at all recipients", unit: "msg/s",
                   median: Self.median(throughput), baseline: Self.median(baseline),
                   ratio: Self.median(throughput) / Self.median(baseline), rounds: throughput),
            party("publisher: validate, sign, journal, send", \.publisher, nil),
            party("broker: admit, store, deliver to 3", \.broker, baseCPU),
            party("one recipient: check, journal, acknowledge", \.recipient, nil),
            party("libzmq I/O threads, all parties", \.libzmqIO, nil),
            party("libdispatch workers (checkpoints, checks side by side), all parties", \.workers, nil),
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

    static let fanOutScenario = "fan-out to 3, durable"

    /// The fan-out rate of one round, for the latency scenario when the fan-out is not run.
    func quickMaximum() throws -> Double {
        progress("fan-out round for the latency rates")
        let (bus, names) = try driver.makeBus(recipients: 3)
        defer { bus.shutdown() }
        try bus.startBroker()
        for name in names { try bus.startNode(name) }
        return Double(options.messages) / (try driver.publishAndWait(bus: bus, recipients: names, count: options.messages).seconds)
    }

    /// Open-loop latency (no coordinated omission): messages fall due at a fixed rate whatever the
    /// bus does, and each one's latency runs from when it fell due to when a recipient journaled
    /// it, so time the publisher spent behind counts. At 1,000 msg/s, and at 50 % and 80 % of
    /// `maximum` (the fan-out rate measured in the same run). Each round publishes for
    /// `latencyMessages / 1,000` seconds at its rate; the percentiles come from an HDR histogram
    /// of microseconds (three significant digits), the median over the rounds is reported.
    func openLoopLatency(maximum: Double) throws -> [Result] {
        var results: [Result] = []
        for (name, rate) in [("1000 msg/s", 1_000.0), ("50 % of the maximum", maximum * 0.5), ("80 % of the maximum", maximum * 0.8)] {
            let count = max(100, Int(rate * Double(options.latencyMessages) / 1_000))
            var rounds: [LatencyPercentiles] = []
            var baseline: [LatencyPercentiles] = []
            var hops: [String: [LatencyPercentiles]] = [:]
            var hopOrder: [String] = []
            for round in 1...options.rounds {
                progress("open-loop latency at \(Int(rate))/s round \(round)/\(options.rounds)")
                let (bus, names) = try driver.makeBus(recipients: 3)
                defer { bus.shutdown() }
                try bus.startBroker()
                for node in names { try bus.startNode(node) }
                let run = try driver.openLoop(bus: bus, recipients: names, rate: rate, count: count, hops: rate == 1_000)
                rounds.append(LatencyPercentiles(run.latencies))
                for (hop, microseconds) in run.hops {
                    if hops[hop] == nil { hopOrder.append(hop) }
                    hops[hop, default: []].append(LatencyPercentiles(microseconds))
                }
                let base = try BaselineForwarder.run(messages: count, bodyBytes: options.bodyBytes, recipients: 3, rate: rate)
                baseline.append(LatencyPercentiles(base.latencies.map { $0 * 1e6 }))
            }
            let scenario = "open-loop latency at \(name)" + (rate == 1_000 ? "" : " (\(Int(rate)) msg/s)")
            for (metric, value) in [("p50", \LatencyPercentiles.p50), ("p99", \.p99), ("p99.9", \.p999)] as [(String, KeyPath<LatencyPercentiles, Double>)] {
                let ms = rounds.map { $0[keyPath: value] / 1_000 }
                let base = baseline.map { $0[keyPath: value] / 1_000 }
                results.append(Result(scenario: scenario, metric: "\(metric) due to journaled", unit: "ms", median: Self.median(ms),
                                      baseline: Self.median(base), ratio: Self.median(ms) / Self.median(base), rounds: ms))
            }
            // Where the time goes, hop by hop; the raw forwarder has no hops to set beside them.
            for hop in hopOrder {
                for (metric, value) in [("p50", \LatencyPercentiles.p50), ("p99", \.p99)] as [(String, KeyPath<LatencyPercentiles, Double>)] {
                    let ms = (hops[hop] ?? []).map { $0[keyPath: value] / 1_000 }
                    results.append(Result(scenario: scenario + ", hop by hop", metric: "\(metric) \(hop)", unit: "ms", median: Self.median(ms),
                                          baseline: nil, ratio: nil, rounds: ms))
                }
            }
        }
        return results
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
