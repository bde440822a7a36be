import ArgumentParser
import CTBusBroker
import CTBusJournal
import CTBusSchema
import Foundation

/// Where the broker's store is: the file itself, or the broker configuration that names it
/// (`ctbus audit`, `ctbus backup`).
struct BrokerStoreLocation: ParsableArguments {
    @Option(name: .long, help: "The broker's store (SQLite).")
    var store: String?

    @Option(name: .long, help: "The broker configuration file; its store is used.")
    var brokerConfig: String?

    func path() throws -> String {
        switch (store, brokerConfig) {
        case (let store?, nil): store
        case (nil, let config?): try BrokerConfiguration.load(path: config).storePath
        default: throw ValidationError("give either --store or --broker-config")
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Print who received a message and who was refused, by which rule (from the broker's store; never the content).")

    @OptionGroup var location: BrokerStoreLocation

    @Argument(help: "The message id.")
    var messageId: String

    func run() throws {
        try runReportingErrors {
            let path = try location.path()
            guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("broker store \(path) does not exist") }
            guard let trail = try BrokerStore(path: path, access: .readOnly).audit(messageId: MessageID.canonical(messageId)) else {
                throw StoreError(.notFound, "no message \(messageId) in the broker's store (a message past its retention leaves it with its audit trail)")
            }
            let time = ISO8601DateFormatter()
            print("message \(trail.messageId): \(trail.typeName) \(trail.classificationName) from \(trail.originator), stored \(time.string(from: trail.storedAt))")
            for entry in trail.entries {
                let rule = entry.rule.map { " [\($0.rawValue)]" } ?? ""
                print("  \(entry.nodeId.padding(toLength: 12, withPad: " ", startingAt: 0)) \(entry.outcome.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))\(rule) \(entry.reason)")
            }
        }
    }
}
