/// The rule of the confidentiality policy (PROTOCOL.md 7.1) that kept a node from receiving a
/// message. Its raw value is how the audit trail, the logs and the metrics name it.
public enum PolicyRule: String, Sendable, CaseIterable {
    /// Rule 1: the originator does not receive its own message.
    case originator
    /// Rule 1 (checked after the confidentiality rules): the node does not subscribe to the type.
    case subscription
    /// Rule 1 (checked after the confidentiality rules): the node follows themes and the message has none of them.
    case theme
    /// Rule 2: the node's clearance is below the classification.
    case clearance
    /// Rule 3: the releasability list names neither the node nor one of its groups.
    case releasability
    /// A whole-message Member State restriction does not allow the node.
    case memberStateRestriction = "member-state-restriction"
    /// The message expired (envelope.expires_at) before it could be delivered.
    case expired
}

/// Why an audit line's outcome is what it is, when a rule decided it: a rule of the policy, a
/// publication refused because its id was taken by a different message, or a queue entry dropped
/// because its node left the registry (retention, after the grace period).
public enum AuditRule: Sendable, Equatable, Hashable {
    case policy(PolicyRule)
    case conflictingDuplicate
    case nodeRemoved

    /// The name in the audit trail (the store's `rule` column, `ctbus audit`).
    public var rawValue: String {
        switch self {
        case .policy(let rule): rule.rawValue
        case .conflictingDuplicate: "conflicting-duplicate"
        case .nodeRemoved: "node-removed"
        }
    }

    public init?(rawValue: String) {
        if rawValue == "conflicting-duplicate" {
            self = .conflictingDuplicate
        } else if rawValue == "node-removed" {
            self = .nodeRemoved
        } else if let rule = PolicyRule(rawValue: rawValue) {
            self = .policy(rule)
        } else {
            return nil
        }
    }
}
