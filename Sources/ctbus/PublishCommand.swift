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
            the originator is always the node's id. Prints the message id. With --draft the message \
            stays in the journal only (it never leaves the node); --release ID sends it later.
            """)

    @Option(name: .long, help: "The publishing node's configuration file.")
    var nodeConfig: String

    @Flag(help: "Keep the message as a draft in the journal; it is not sent until --release.")
    var draft = false

    @Option(help: "Release the draft with this message id: it goes to the outbox and out.")
    var release: String?

    @Argument(help: "The message file, protobuf JSON as in Schemas/examples/.")
    var file: String?

    func validate() throws {
        if release != nil && (file != nil || draft) { throw ValidationError("--release takes a message id and no file") }
        if release == nil && file == nil { throw ValidationError("give a message file (or --release ID)") }
    }

    func run() throws {
        try runReportingErrors {
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            let journal = try NodeJournal(path: configuration.journalPath)
            if let release {
                try Publisher.releaseDraft(MessageID.canonical(release), from: journal, clearance: configuration.clearanceLevel)
                print(release)
                return
            }
            let json = try ConfigurationFile.read(file!, what: "message file")
            let message = try Publisher.prepare(json: json, nodeId: configuration.nodeId)
            let id = draft ? try Publisher.saveDraft(message, into: journal, clearance: configuration.clearanceLevel)
                : try Publisher.enqueue(message, into: journal, clearance: configuration.clearanceLevel)
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
