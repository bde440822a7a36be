import ArgumentParser
import CTBusMetrics
import CTBusBench
import CTBusLocal
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the bus (CURVE, durable store and journals) beside a raw libzmq forwarder in the same run.",
        discussion: "Prints a table of medians over the rounds, with the baseline and the ratio, and writes the same as JSON.")

    @Flag(help: "The full run (20,000 messages, 5 rounds, catch-up of 100,000, up to 48 recipients). Default: the short run.")
    var full = false

    @Option(help: "Messages per fan-out round.")
    var messages: Int?

    @Option(help: "Body size in bytes.")
    var bodyBytes: Int?

    @Option(help: "Rounds per scenario (medians are taken over them).")
    var rounds: Int?

    @Option(help: "Messages a node catches up on in the catch-up scenario (short 2,000; full 100,000).")
    var catchUp: Int?

    @Option(help: "Messages queued for an absent node in the memory scenario (short 20,000; full 1,000,000).")
    var queued: Int?

    @Option(name: .customLong("only"), parsing: .upToNextOption,
            help: "Run only these scenarios: fan-out, latency, catch-up, scale, memory, metrics, signatures, sealed. Default: all.")
    var scenarios: [Benchmark.Scenario] = []

    @Option(help: "Where to write the JSON report.")
    var json = "ctbus-bench.json"

    func run() throws {
        try runReportingErrors {
            var options = full ? Benchmark.Options.full : Benchmark.Options.short
            if let messages { options.messages = messages }
            if let bodyBytes { options.bodyBytes = bodyBytes }
            if let rounds { options.rounds = rounds }
            if let catchUp { options.catchUpMessages = catchUp }
            if let queued { options.queuedMessages = queued }
            if !scenarios.isEmpty { options.scenarios = Set(scenarios) }
            options.executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            options.metricsFactory = { MetricsEndpoint().factory }
            var benchmark = Benchmark(options: options)
            benchmark.progress = { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
            let results = try benchmark.run()
            print(BenchTable.render(results, options: options))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(results).write(to: URL(fileURLWithPath: json))
            FileHandle.standardError.write(Data("bench: JSON written to \(json)\n".utf8))
        }
    }
}

enum BenchTable {
    static func render(_ results: [Benchmark.Result], options: Benchmark.Options) -> String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "-" }
            return value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
        }
        var lines = ["ctbus bench: \(options.messages) messages of \(options.bodyBytes) B per fan-out round, \(options.rounds) rounds, medians",
                     "",
                     "| scenario | metric | ctbus | baseline (raw libzmq) | ratio |",
                     "|---|---|---:|---:|---:|"]
        for result in results {
            lines.append("| \(result.scenario) | \(result.metric) | \(number(result.median)) \(result.unit) | "
                         + "\(result.baseline == nil ? "-" : "\(number(result.baseline)) \(result.unit)") | \(number(result.ratio)) |")
        }
        return lines.joined(separator: "\n")
    }
}

extension Benchmark.Scenario: ExpressibleByArgument {}
