import ArgumentParser
import CTBusJournal
import CTBusNode
import CTBusSchema
import Foundation

struct PublishCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Validate a message (protobuf JSON) and put it in a node's outbox.",
        discussion: """
            Works while the node daemon or the broker is down: the daemon sends the message when it \
            can. The message id, schema version, creation time and type are filled in when missing; \
            the originator is always the node's id. Prints the message id.
            """)

    @Option(name: .long, help: "The publishing node's configuration file.")
    var nodeConfig: String

    @Argument(help: "The message file, protobuf JSON as in Schemas/examples/.")
    var file: String

    func run() throws {
        try runReportingErrors {
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            let json = try ConfigurationFile.read(file, what: "message file")
            let message = try Publisher.prepare(json: json, nodeId: configuration.nodeId)
            let journal = try NodeJournal(path: configuration.journalPath)
            let id = try Publisher.enqueue(message, into: journal)
            print(id)
        }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check message files (protobuf JSON) against the schema rules.")

    @Argument(help: "Message files.")
    var files: [String]

    func run() throws {
        try runReportingErrors {
            for file in files {
                let json = try ConfigurationFile.read(file, what: "message file")
                do {
                    let message = try Publisher.prepare(json: json, nodeId: "validator")
                    print("\(file): valid \(message.envelope.type.name)")
                } catch let error as BusError {
                    throw BusError(error.code, "\(file): \(error.detail)")
                }
            }
        }
    }
}
