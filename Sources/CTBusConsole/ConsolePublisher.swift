import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import Crypto
import Logging

/// What the console publishes, from a form or the API, goes to the outbox as `ctbus publish`
/// puts it there: signed with the node's signing key and sealed to the registry as its file says
/// now. A draft is kept unsigned until it is released.
struct ConsolePublisher: Sendable {
    let nodeId: String
    let journal: NodeJournal
    let clearance: Classification
    /// The node's keys: what the console publishes is signed with its signing key. Without them
    /// the console reads and keeps drafts but publishes nothing.
    let messageKeys: NodeMessageKeys?
    /// The node's registry copy, read when the console started.
    let registry: NodeRegistry?
    /// The file it was read from, when known: a sealed message is sealed to the registry as the
    /// file says now (the broker may have reloaded its own since the console started).
    let registryFile: String?
    /// Where a registry file that no longer reads is reported.
    let problems: SharedThrottledLogger

    /// Queues `message` in the outbox, or keeps it as a draft. With a registry, what the broker
    /// would refuse is refused here, before anything is queued (`Publisher.AdmissionCheck`).
    func publish(_ message: BusMessage, asDraft draft: Bool) throws {
        if draft {
            try Publisher.saveDraft(message, into: journal, clearance: clearance)
        } else {
            let registry = try currentRegistry()
            try Publisher.enqueue(message, into: journal, clearance: clearance, signingKey: try signer(), registry: registry,
                                  admission: registry.map { Publisher.AdmissionCheck(nodeId: nodeId, registry: $0) })
        }
    }

    /// Validates a draft again, checks it as the broker would, and moves it to the outbox.
    func release(draft id: String) throws {
        let registry = try currentRegistry()
        try Publisher.releaseDraft(id, from: journal, clearance: clearance, signingKey: try signer(), registry: registry,
                                   admission: registry.map { Publisher.AdmissionCheck(nodeId: nodeId, registry: $0) })
    }

    /// What the broker would decide for `message`, from the registry as it is now: each node's
    /// copy, or the error it would answer. Nil without a registry (nothing to judge by).
    func preview(_ message: BusMessage) throws -> [(node: NodeProfile, decision: RecipientDecision)]? {
        guard let registry = try currentRegistry() else { return nil }
        return try Publisher.preview(message, nodeId: nodeId, clearance: clearance, signingKey: try signer(), registry: registry)
    }

    /// The registry to seal to: the file as it is now when the console knows it. A file that no
    /// longer reads is an error (logged; nothing is queued), never the copy read at start, whose
    /// recipients the broker may no longer agree with.
    func currentRegistry() throws(BusError) -> NodeRegistry? {
        guard let registryFile else { return registry }
        do {
            return try NodeRegistry(json: try ConfigurationFile.read(registryFile, what: "registry"))
        } catch {
            problems.log("registry-unreadable", .error, "the registry file cannot be read; sealed messages are not queued",
                         metadata: ["file": "\(registryFile)", "reason": "\(error)"])
            throw BusError(.sealInvalid, "the registry file \(registryFile) cannot be read (\(error)); a sealed message needs it")
        }
    }

    /// The key to sign with, or the error that says why this console cannot publish.
    func signer() throws(BusError) -> Curve25519.Signing.PrivateKey {
        guard let messageKeys else {
            throw BusError(.notPermitted, "this console was started without the node's signing key; it keeps drafts but cannot publish")
        }
        return messageKeys.signing
    }
}
