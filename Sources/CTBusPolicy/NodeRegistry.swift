import CTBusSchema
import Foundation

/// The node registry (deploy/registry.json): every node's id, role, clearance, groups, CURVE
/// public key and types. Parsed and checked here; reading the file is the caller's business.
public struct NodeRegistry: Sendable {
    public struct Entry: Sendable, Equatable {
        public let profile: NodeProfile
        /// The node's CURVE public key, Z85 (40 characters).
        public let publicKey: String

        public init(profile: NodeProfile, publicKey: String) {
            self.profile = profile
            self.publicKey = publicKey
        }
    }

    public let entries: [Entry]
    private let byId: [String: Int]
    private let byKey: [String: Int]

    public var profiles: [NodeProfile] { entries.map(\.profile) }

    public func entry(id: String) -> Entry? { byId[id].map { entries[$0] } }
    public func entry(publicKey: String) -> Entry? { byKey[publicKey].map { entries[$0] } }

    public init(entries: [Entry]) throws(RegistryError) {
        var byId: [String: Int] = [:]
        var byKey: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            let id = entry.profile.id
            guard MessageValidator.isNodeId(id) else { throw RegistryError("node id \"\(id)\" must use a-z, 0-9 and '-'") }
            guard byId[id] == nil else { throw RegistryError("node id \(id) appears twice") }
            guard entry.publicKey.utf8.count == 40 else { throw RegistryError("node \(id): publicKey must be a 40-character Z85 CURVE key") }
            guard byKey[entry.publicKey] == nil else { throw RegistryError("node \(id): publicKey is already used by another node") }
            guard entry.profile.clearance != .unspecified else { throw RegistryError("node \(id): clearance is required") }
            let forbidden = entry.profile.mayPublish.subtracting(entry.profile.role.publishableTypes)
            guard forbidden.isEmpty else {
                throw RegistryError("node \(id): role \(entry.profile.role.rawValue) may not publish \(forbidden.map(\.name).sorted().joined(separator: ", "))")
            }
            for group in entry.profile.groups where !MessageValidator.isNodeId(group) {
                throw RegistryError("node \(id): group \"\(group)\" must use a-z, 0-9 and '-'")
            }
            byId[id] = index
            byKey[entry.publicKey] = index
        }
        // A releasability entry names a node or a group: the two must never be confused.
        for entry in entries {
            if let clash = entry.profile.groups.first(where: { byId[$0] != nil }) {
                throw RegistryError("group \(clash) of node \(entry.profile.id) has the name of a node")
            }
        }
        self.entries = entries
        self.byId = byId
        self.byKey = byKey
    }

    /// Parses the registry's JSON form (see deploy/README.md).
    public init(json: Data) throws(RegistryError) {
        let file: RegistryFile
        do {
            file = try JSONDecoder().decode(RegistryFile.self, from: json)
        } catch {
            throw RegistryError("not a valid registry: \(Self.describe(error))")
        }
        var entries: [Entry] = []
        for node in file.nodes {
            func types(_ names: [String]?, _ field: String) throws(RegistryError) -> Set<MessageType>? {
                guard let names else { return nil }
                var result = Set<MessageType>()
                for name in names {
                    guard let type = MessageType(name: name) else { throw RegistryError("node \(node.id): \(field) names unknown type \(name)") }
                    result.insert(type)
                }
                return result
            }
            guard let role = Role(rawValue: node.role) else {
                throw RegistryError("node \(node.id): role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let clearance = Classification(name: node.clearance) else {
                throw RegistryError("node \(node.id): clearance must be UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL")
            }
            let profile = NodeProfile(id: node.id, role: role, clearance: clearance, groups: Set(node.groups ?? []),
                                      mayPublish: try types(node.mayPublish, "mayPublish"),
                                      subscriptions: try types(node.subscriptions, "subscriptions"),
                                      themes: Set(node.themes ?? []))
            entries.append(Entry(profile: profile, publicKey: node.publicKey))
        }
        try self.init(entries: entries)
    }

    /// The JSON form of a registry, for tools that write one (demo, tests).
    public func json() throws -> Data {
        let file = RegistryFile(nodes: entries.map { entry in
            let profile = entry.profile
            return RegistryFile.Node(id: profile.id, role: profile.role.rawValue, clearance: profile.clearance.name,
                                     groups: profile.groups.sorted(), publicKey: entry.publicKey,
                                     mayPublish: profile.mayPublish.map(\.name).sorted(),
                                     subscriptions: profile.subscriptions.map(\.name).sorted(),
                                     themes: profile.themes.sorted())
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(file)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing field \((context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let context):
            return context.debugDescription
        default:
            return "\(error)"
        }
    }
}

struct RegistryFile: Codable {
    struct Node: Codable {
        var id: String
        var role: String
        var clearance: String
        var groups: [String]?
        var publicKey: String
        var mayPublish: [String]?
        var subscriptions: [String]?
        var themes: [String]?
    }
    var nodes: [Node]
}

public struct RegistryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
