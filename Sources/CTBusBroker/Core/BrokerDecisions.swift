import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf

/// The one translation of the policy's decisions into recipients, audit lines and withdrawals
/// (PROTOCOL.md 7), for publications, backlogs and deliveries judged again, and of registry
/// changes into registry audit lines (4.5). Pure: the registry and the date come in.
enum BrokerDecisions {
    /// Checks one publication (5.2) and decides its recipients and audit lines.
    static func publication(_ publish: Publish, size: Int, from nodeId: String, registry: NodeRegistry, roots: BatchRoots? = nil,
                            maxMessageBytes: Int, at date: Date) throws(BusError) -> Publication {
        let admitted = try Admission.admit(publish, size: size, from: nodeId, registry: registry, roots: roots,
                                           maxMessageBytes: maxMessageBytes, at: date)
        let (recipients, audit) = Self.recipients(of: admitted.decisions, at: date)
        let proof: Data
        do {
            proof = try admitted.signed.proof.serializedData()
        } catch {
            throw BusError(.internal, "could not store the proof", messageId: admitted.envelope.messageID)
        }
        return Publication(envelope: admitted.envelope, signedEnvelope: admitted.signed.signedEnvelope, payload: admitted.signed.payload,
                           proof: proof, recipients: recipients, audit: audit)
    }

    /// Every node's decision for a publication: the recipients with what each copy withholds,
    /// and one audit line per node.
    static func recipients(of decisions: [(node: NodeProfile, decision: RecipientDecision)],
                           at date: Date) -> ([Publication.Recipient], [AuditEntry]) {
        var recipients: [Publication.Recipient] = []
        var audit: [AuditEntry] = []
        for (node, decision) in decisions {
            switch decision {
            case .deliver(let paths) where paths.isEmpty:
                recipients.append(Publication.Recipient(nodeId: node.id))
                audit.append(AuditEntry(nodeId: node.id, outcome: .delivered, rule: nil, reason: "entitled", recordedAt: date))
            case .deliver(let paths):
                recipients.append(Publication.Recipient(nodeId: node.id, redactedPaths: paths))
                audit.append(AuditEntry(nodeId: node.id, outcome: .redacted, rule: .policy(.memberStateRestriction),
                                        reason: "removed \(paths.joined(separator: ", "))", recordedAt: date))
            case .refuse(let rule, let reason):
                audit.append(AuditEntry(nodeId: node.id, outcome: .refused, rule: .policy(rule), reason: reason, recordedAt: date))
            }
        }
        return (recipients, audit)
    }

    /// Whether a stored message belongs in a late joiner's backlog (6.2), and its copy: granted
    /// by the policy now and, when sealed, sealed to the node when it was published (a node it
    /// was not sealed to could never open it).
    static func backlogRecipient(envelope bytes: Data, payload: Data, for node: NodeProfile, at date: Date) -> Publication.Recipient? {
        guard let envelope = try? Envelope(serializedBytes: bytes),
              case .deliver(let paths) = ConfidentialityPolicy.decide(envelope, originator: envelope.originator, for: node, at: date)
        else { return nil }
        if envelope.handling.sealed {
            guard let content = try? SealedContent(serializedBytes: payload),
                  content.payload.keys.contains(where: { $0.nodeID == node.id }) else { return nil }
        }
        return Publication.Recipient(nodeId: node.id, redactedPaths: paths)
    }

    /// Why a queued delivery must be withdrawn under the registry in force, or nil when it may
    /// go: the node is no longer entitled to it, or its copy holds a field the policy now withholds.
    static func withdrawal(_ delivery: QueuedDelivery, for profile: NodeProfile?, at date: Date) -> (PolicyRule, String)? {
        guard delivery.revocationReason == nil else { return nil } // tells of a message the node holds
        guard let profile, let envelope = try? Envelope(serializedBytes: delivery.envelope) else {
            return (.releasability, "the node or the stored envelope cannot be read")
        }
        switch ConfidentialityPolicy.decide(envelope, originator: delivery.originator, for: profile, at: date) {
        case .deliver(let paths) where Set(paths).isSubset(of: delivery.redactedPaths):
            return nil // the queued copy withholds at least what the policy asks now
        case .deliver(let paths):
            return (.memberStateRestriction, "the policy now withholds \(paths.joined(separator: ", ")), which the queued copy holds")
        case .refuse(let rule, let reason):
            return (rule, reason)
        }
    }

    /// What the registry audit records of a reload that would put `new` in force with `changes`.
    /// Throws when the registry cannot be written out as JSON.
    static func registryRecord(_ new: NodeRegistry, changes: [RegistryChange], source: String, origin: String?,
                               at date: Date) throws -> BrokerCore.RegistryRecord {
        let origin = origin.map { "; \($0)" } ?? ""
        guard !changes.isEmpty else {
            return BrokerCore.RegistryRecord(source: source, outcome: .unchanged, detail: "no change (\(new.entries.count) nodes)" + origin,
                                             registry: nil, changes: [], rejudge: [], at: date)
        }
        return BrokerCore.RegistryRecord(source: source, outcome: .applied, detail: summary(new, changes) + origin,
                                         registry: try new.json(), changes: changes.map(auditLine), rejudge: rejudged(changes), at: date)
    }

    /// The nodes whose queued deliveries `changes` require to be judged again.
    static func rejudged(_ changes: [RegistryChange]) -> [String] {
        changes.filter { $0.kind != .removed && $0.changesEntitlement }.map(\.nodeId)
    }

    static func summary(_ registry: NodeRegistry, _ changes: [RegistryChange]) -> String {
        let counts = [RegistryChange.Kind.added, .removed, .changed].compactMap { kind -> String? in
            let count = changes.filter { $0.kind == kind }.count
            return count == 0 ? nil : "\(count) \(kind.rawValue)"
        }
        return "\(registry.entries.count) nodes" + (counts.isEmpty ? "" : "; " + counts.joined(separator: ", "))
    }

    static func auditLine(_ change: RegistryChange) -> (nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String) {
        let outcome: RegistryAuditEntry.Outcome = switch change.kind {
        case .added: .added
        case .removed: .removed
        case .changed: .changed
        }
        return (change.nodeId, outcome, change.details.joined(separator: "; "))
    }
}
