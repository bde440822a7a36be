import ArgumentParser
import CTBusBroker
import CTBusJournal
import CTBusSchema
import Foundation

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Print who received a message and who was refused, by which rule (from the broker's store; never the content).")

    @Option(name: .long, help: "The broker's store (SQLite).")
    var store: String?

    @Option(name: .long, help: "The broker configuration file; its store is read.")
    var brokerConfig: String?

    @Argument(help: "The message id.")
    var messageId: String

    func run() throws {
        try runReportingErrors {
            let path: String
            switch (store, brokerConfig) {
            case (let store?, nil): path = store
            case (nil, let config?): path = try BrokerConfiguration.load(path: config).storePath
            default: throw ValidationError("give either --store or --broker-config")
            }
            guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("broker store \(path) does not exist") }
            guard let trail = try BrokerStore(path: path, access: .readOnly).audit(messageId: MessageID.canonical(messageId)) else {
                throw StoreError(.notFound, "no message \(messageId) in the broker's store")
            }
            let time = ISO8601DateFormatter()
            print("message \(trail.messageId): \(trail.typeName) \(trail.classificationName) from \(trail.originator), stored \(time.string(from: trail.storedAt))")
            for entry in trail.entries {
                let rule = entry.rule.map { " [\($0)]" } ?? ""
                print("  \(entry.nodeId.padding(toLength: 12, withPad: " ", startingAt: 0)) \(entry.outcome.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))\(rule) \(entry.reason)")
            }
        }
    }
}
