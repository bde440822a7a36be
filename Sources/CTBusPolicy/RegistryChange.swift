import CTBusSchema

/// What changed for one node between two registries: what the broker applies on a reload and
/// writes to its registry audit.
public struct RegistryChange: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case added, removed, changed
    }

    public let nodeId: String
    public let kind: Kind
    /// For `changed`, one item per field, for people: "clearance CONFIDENTIAL -> UNCLASSIFIED",
    /// "groups +un-secretariat", "publicKey replaced", "nextPublicKey added".
    public let details: [String]

    public init(nodeId: String, kind: Kind, details: [String] = []) {
        self.nodeId = nodeId
        self.kind = kind
        self.details = details
    }

    public var description: String {
        details.isEmpty ? "\(kind.rawValue) \(nodeId)" : "\(kind.rawValue) \(nodeId): \(details.joined(separator: "; "))"
    }

    /// Whether what the node may receive can have changed (its queue is judged again).
    public var changesEntitlement: Bool {
        kind != .changed || details.contains { detail in
            !["publicKey", "nextPublicKey", "signingKey", "sealingKey", "mayPublish"].contains { detail.hasPrefix($0) }
        }
    }
}

extension NodeRegistry {
    /// The changes from `old` to this registry, in this registry's order (removed nodes last).
    public func changes(from old: NodeRegistry) -> [RegistryChange] {
        var changes: [RegistryChange] = []
        for entry in entries {
            guard let before = old.entry(id: entry.profile.id) else {
                changes.append(RegistryChange(nodeId: entry.profile.id, kind: .added))
                continue
            }
            let details = Self.differences(before, entry)
            if !details.isEmpty { changes.append(RegistryChange(nodeId: entry.profile.id, kind: .changed, details: details)) }
        }
        for entry in old.entries where self.entry(id: entry.profile.id) == nil {
            changes.append(RegistryChange(nodeId: entry.profile.id, kind: .removed))
        }
        return changes
    }

    private static func differences(_ old: Entry, _ new: Entry) -> [String] {
        let a = old.profile, b = new.profile
        var details: [String] = []
        if a.role != b.role { details.append("role \(a.role.rawValue) -> \(b.role.rawValue)") }
        if a.clearance != b.clearance { details.append("clearance \(a.clearance.name) -> \(b.clearance.name)") }
        func set(_ name: String, _ before: Set<String>, _ after: Set<String>) {
            let added = after.subtracting(before).sorted().map { "+\($0)" }
            let removed = before.subtracting(after).sorted().map { "-\($0)" }
            if !(added + removed).isEmpty { details.append("\(name) \((added + removed).joined(separator: " "))") }
        }
        set("groups", a.groups, b.groups)
        set("subscriptions", Set(a.subscriptions.map(\.name)), Set(b.subscriptions.map(\.name)))
        set("themes", a.themes, b.themes)
        set("mayPublish", Set(a.mayPublish.map(\.name)), Set(b.mayPublish.map(\.name)))
        if old.publicKey != new.publicKey {
            details.append(old.nextPublicKey == new.publicKey ? "publicKey rotated to the next key" : "publicKey replaced")
        }
        if old.signingKey != new.signingKey { details.append("signingKey replaced") }
        if old.sealingKey != new.sealingKey { details.append("sealingKey replaced") }
        if old.nextPublicKey != new.nextPublicKey, new.nextPublicKey != nil {
            details.append(old.nextPublicKey == nil ? "nextPublicKey added" : "nextPublicKey replaced")
        } else if old.nextPublicKey != nil, new.nextPublicKey == nil, old.nextPublicKey != new.publicKey {
            details.append("nextPublicKey removed")
        }
        return details
    }
}
