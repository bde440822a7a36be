import ArgumentParser
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema

struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a message this node published: every node that received it marks it revoked.",
        discussion: "The revocation waits in the node's journal until the node daemon has it acknowledged by the broker.")

    @Option(name: .long, help: "The publishing node's configuration file.")
    var nodeConfig: String

    @Option(help: "Why, for the people who read the journals.")
    var reason = "revoked by the originator"

    @Argument(help: "The message id.")
    var messageId: String

    func run() throws {
        try runReportingErrors {
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            // Signed once, here, with the node's key; the daemon sends these exact bytes.
            let key = try NodeMessageKeys(configuration: configuration, registry: try configuration.loadRegistry()).signing
            let revocation = try Revocation.signed(messageId: MessageID.canonical(messageId), reason: reason,
                                                   by: configuration.nodeId, with: key)
            try MessageValidator.validate(revocation.frame) // the broker's bounds, checked before anything is queued
            try NodeJournal(path: configuration.journalPath).revocations.queue(revocation)
            print(revocation.messageID)
        }
    }
}
