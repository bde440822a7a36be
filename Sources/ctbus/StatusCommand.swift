import ArgumentParser
import CTBusBroker
import CTBusMetrics
import CTBusSchema
import CTBusBrokerHTTP
import Foundation
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `ctbus status`: the broker's sessions and queues, a line per registered node (like NATS's
/// `nats server report connections`), read from a running broker's `/status` over HTTP.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running broker's nodes: connected or away since when, clearance, queue depth, oldest queued, in flight, last acknowledgement.",
        discussion: "It asks the broker's http port (the http section of broker.json) and never touches the store itself.")

    @Option(name: .long, help: "The broker configuration file; its http section says where to ask.")
    var brokerConfig: String?

    @Option(help: "The broker's status address instead, such as http://127.0.0.1:9470/status.")
    var url: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard (brokerConfig == nil) != (url == nil) else { throw ValidationError("give --broker-config FILE or --url URL") }
    }

    func run() throws {
        try runReportingErrors {
            let address: String
            if let url {
                address = url
            } else {
                let configuration = try BrokerConfiguration.load(path: brokerConfig!)
                guard let http = configuration.http else {
                    throw ConfigurationError("\(brokerConfig!) has no http section: add \"http\": {\"port\": 9470} and restart the broker")
                }
                let host = http.bind.map { ["0.0.0.0", "::", ""].contains($0) ? "127.0.0.1" : $0 } ?? "127.0.0.1"
                address = "http://\(host.contains(":") ? "[\(host)]" : host):\(http.port)/status"
            }
            let data = try Self.fetch(address)
            if json {
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let report: BrokerStatusReport
            do {
                report = try BrokerStatusReport.decoder.decode(BrokerStatusReport.self, from: data)
            } catch {
                throw ConfigurationError("\(address) did not answer with a broker status report")
            }
            print(Self.render(report, now: Date(), width: TextTable.outputWidth()), terminator: "")
        }
    }

    static func fetch(_ address: String) throws -> Data {
        guard let url = URL(string: address), url.scheme == "http" || url.scheme == "https" else {
            throw ConfigurationError("\(address) is not an http address")
        }
        let result = Mutex<Result<Data, ConfigurationError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: url)
        request.timeoutInterval = 10
        URLSession.shared.dataTask(with: request) { data, response, error in
            let status = (response as? HTTPURLResponse)?.statusCode
            if let data, status == 200 {
                result.withLock { $0 = .success(data) }
            } else {
                let reason = error.map { "\($0.localizedDescription)" } ?? "HTTP \(status ?? 0)"
                result.withLock { $0 = .failure(ConfigurationError("the broker at \(address) did not answer (\(reason)); is it running with its http section?")) }
            }
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + 15) == .success, let outcome = result.withLock({ $0 }) else {
            throw ConfigurationError("the broker at \(address) did not answer within 15 s")
        }
        return try outcome.get()
    }

    static func render(_ report: BrokerStatusReport, now: Date, width: Int) -> String {
        let time = ISO8601DateFormatter()
        func age(_ date: Date?) -> String {
            guard let date else { return "-" }
            let seconds = Int(max(0, now.timeIntervalSince(date)))
            if seconds < 120 { return "\(seconds) s ago" }
            if seconds < 7_200 { return "\(seconds / 60) min ago" }
            if seconds < 172_800 { return "\(seconds / 3_600) h ago" }
            return "\(seconds / 86_400) days ago"
        }
        let rows = report.nodes.map { node in
            [node.node, node.connected ? "connected" : "away", node.since.map { age($0) } ?? "never seen", node.clearance,
             "\(node.queueDepth)", age(node.oldestQueuedAt), "\(node.inFlight)", age(node.lastAcknowledgedAt)]
        }
        let table = TextTable(columns: ["node", "session", "since", "clearance", "queued", "oldest queued", "in flight", "last ack"],
                              rows: rows, fixedColumns: 2)
        let removed = report.removedByRetention.map { $0 > 0 ? " (\($0) removed by retention)" : "" } ?? ""
        let registry = report.registryAppliedAt.map { "; registry applied \(time.string(from: $0))" } ?? ""
        return "broker up since \(time.string(from: report.startedAt)); \(report.sessionsConnected) of \(report.nodes.count) nodes connected; "
            + "\(report.storeMessages) messages stored\(removed)\(registry)\n\n" + table.render(width: width)
    }
}
