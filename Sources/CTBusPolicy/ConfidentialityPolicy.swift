import CTBusSchema
import Foundation
import SwiftProtobuf

/// The policy's answer for one node and one message.
public enum RecipientDecision: Sendable, Equatable {
    /// Deliver; `redactedPaths` are removed first (partial Member State restriction, rule 5).
    case deliver(redactedPaths: [String])
    case refuse(PolicyRule, reason: String)

    public var isDelivered: Bool {
        if case .deliver = self { return true }
        return false
    }
}

/// The confidentiality decision: pure functions of an envelope and registry entries, no I/O.
/// The broker applies them when it stores a publication and when it queues a late joiner's
/// backlog; nodes re-check their clearance.
public enum ConfidentialityPolicy {
    /// Refuses a publication the publisher may not make: a type outside its role (NOT_PERMITTED),
    /// or, by rule 4, a STRICTLY_CONFIDENTIAL message or a whole-message Member State restriction
    /// without an explicit releasability list (NEED_TO_KNOW_REQUIRED).
    public static func checkPublication(_ envelope: Envelope, by publisher: NodeProfile) throws(BusError) {
        guard publisher.mayPublish.contains(envelope.type) else {
            throw BusError(.notPermitted, "node \(publisher.id) (role \(publisher.role.rawValue)) may not publish \(envelope.type.name)",
                           messageId: envelope.messageID)
        }
        try checkOriginatorClearance(envelope, nodeId: publisher.id, clearance: publisher.clearance)
        let handling = envelope.handling
        if handling.releasability.isEmpty {
            if handling.classification == .strictlyConfidential {
                throw BusError(.needToKnowRequired, "a STRICTLY_CONFIDENTIAL message must carry a releasability list",
                               messageId: envelope.messageID)
            }
            if handling.hasMemberStateRestriction, handling.memberStateRestriction.scope == .whole {
                throw BusError(.needToKnowRequired, "a message under a whole Member State restriction must carry a releasability list",
                               messageId: envelope.messageID)
            }
        }
    }

    /// An originator must hold the clearance of what it marks: a node cleared to CONFIDENTIAL
    /// could not even read back a STRICTLY_CONFIDENTIAL message of its own. The declared
    /// classification counts (a declassify-on date does not lower it at publication).
    /// NOT_PERMITTED, at the publishing node (`ctbus publish`) and at the broker.
    public static func checkOriginatorClearance(_ envelope: Envelope, nodeId: String, clearance: Classification) throws(BusError) {
        let marked = envelope.handling.classification
        guard marked.rawValue <= clearance.rawValue else {
            throw BusError(.notPermitted, "node \(nodeId) is cleared to \(clearance.name) and may not originate a \(marked.name) message",
                           messageId: envelope.messageID)
        }
    }

    /// The classification in force at `now`: UNCLASSIFIED from the declassify-on date on.
    public static func effectiveClassification(_ handling: Handling, at now: Date = Date()) -> Classification {
        guard let date = CalendarDate.parse(handling.declassifyOn), CalendarDate.today(now) >= date else {
            return handling.classification
        }
        return .unclassified
    }

    /// Whether the message has expired at `now` (envelope.expires_at passed).
    public static func isExpired(_ envelope: Envelope, at now: Date = Date()) -> Bool {
        envelope.hasExpiresAt && envelope.expiresAt.date <= now
    }

    /// Whether `node` receives the message of `envelope`, published by `originator`, at `now`
    /// (expiry and declassification depend on the date).
    public static func decide(_ envelope: Envelope, originator: String, for node: NodeProfile,
                              at now: Date = Date()) -> RecipientDecision {
        let handling = envelope.handling
        if node.id == originator { return .refuse(.originator, reason: "is the originator") }
        if isExpired(envelope, at: now) { return .refuse(.expired, reason: "the message has expired") }
        if let (rule, reason) = entitlementRefusal(envelope, for: node, at: now) { return .refuse(rule, reason: reason) }
        let restriction = handling.hasMemberStateRestriction ? handling.memberStateRestriction : nil
        let restrictedFrom = restriction.map { !$0.allowedNodes.contains(node.id) } ?? false
        // Interest comes after entitlement, so a refusal names the confidentiality rule when one applies.
        if !node.subscriptions.contains(envelope.type) {
            return .refuse(.subscription, reason: "does not subscribe to \(envelope.type.name)")
        }
        if !node.themes.isEmpty, node.themes.isDisjoint(with: envelope.thematicTags) {
            return .refuse(.theme, reason: "follows none of the message's themes")
        }
        if let restriction, restrictedFrom, restriction.scope == .partial {
            return .deliver(redactedPaths: restriction.fieldPaths)
        }
        return .deliver(redactedPaths: [])
    }

    /// What a recipient checks of a copy it received, from its own registry entry (PROTOCOL.md
    /// 7.3): the confidentiality rules applied to itself, so that a broker cannot make it journal
    /// what the policy keeps from it. `disclosed`: the restricted paths whose values the copy
    /// holds (any element); `withheld`: those it lacks. Interest (subscriptions, themes) and
    /// expiry are the broker's to judge and not checked. Nil when the copy is one the policy
    /// sends this node.
    public static func checkReceived(_ envelope: Envelope, disclosed: [String], withheld: [String], by node: NodeProfile,
                                     at now: Date = Date()) -> (rule: PolicyRule, reason: String)? {
        if let refusal = entitlementRefusal(envelope, for: node, at: now) { return refusal }
        guard envelope.handling.hasMemberStateRestriction else { return nil }
        let restriction = envelope.handling.memberStateRestriction
        let allowed = restriction.allowedNodes.contains(node.id)
        switch restriction.scope {
        case .partial where !allowed && !disclosed.isEmpty:
            return (.memberStateRestriction, "the copy holds fields of \(restriction.state)'s restriction, which does not allow this node")
        case .partial where allowed && !withheld.isEmpty:
            return (.memberStateRestriction, "the copy lacks fields of \(restriction.state)'s restriction, which allows this node the whole message")
        default:
            return nil
        }
    }

    /// The rule of entitlement that keeps the message from `node`, with the reason: its clearance,
    /// the releasability list, or a whole-message Member State restriction; nil when none does.
    /// What the broker decides and what a recipient checks of itself (`checkReceived`).
    static func entitlementRefusal(_ envelope: Envelope, for node: NodeProfile, at now: Date) -> (rule: PolicyRule, reason: String)? {
        let handling = envelope.handling
        let classification = effectiveClassification(handling, at: now)
        if node.clearance.rawValue < classification.rawValue {
            return (.clearance, "clearance \(node.clearance.name) is below \(classification.name)")
        }
        if !handling.releasability.isEmpty, !isNamed(node, in: handling.releasability) {
            return (.releasability, "is not on the releasability list")
        }
        let restriction = handling.memberStateRestriction
        if handling.hasMemberStateRestriction, restriction.scope == .whole, !restriction.allowedNodes.contains(node.id) {
            return (.memberStateRestriction, "is not allowed by \(restriction.state)'s whole-message restriction")
        }
        return nil
    }

    /// The decision for every node of a registry, in registry order.
    public static func decide(_ envelope: Envelope, originator: String, among nodes: [NodeProfile],
                              at now: Date = Date()) -> [(node: NodeProfile, decision: RecipientDecision)] {
        nodes.map { ($0, decide(envelope, originator: originator, for: $0, at: now)) }
    }

    private static func isNamed(_ node: NodeProfile, in list: [String]) -> Bool {
        list.contains { $0 == node.id || node.groups.contains($0) }
    }
}
