import CTBusSchema
import Crypto
import Foundation

/// The node registry (deploy/registry.json): every node's id, role, clearance, groups, CURVE
/// public key and types. Parsed and checked here; reading the file is the caller's business.
public struct NodeRegistry: Sendable, Equatable {
    /// One node. Checked as a whole by `NodeRegistry.init`.
    public struct Entry: Sendable, Equatable {
        public var profile: NodeProfile
        /// The node's CURVE public key, Z85 (40 characters).
        public var publicKey: String
        /// During a key rotation, the node's new CURVE public key: connections with either key are
        /// admitted as this node until the rotation is finished (`ctbus registry finish-rotation`).
        public var nextPublicKey: String?
        /// The node's Ed25519 public key, for the signatures on what it publishes (`MessageKeys`).
        public var signingKey: String
        /// The node's X25519 public key, to which messages are sealed for it (`MessageKeys`).
        public var sealingKey: String
        /// Signing keys the node used before `signingKey`, each with when it stopped signing: what
        /// the node signed before then still verifies (journals, exports); nothing created later
        /// does. A compromised key is not kept here.
        public var previousSigningKeys: [PreviousSigningKey]

        public init(profile: NodeProfile, publicKey: String, nextPublicKey: String? = nil, signingKey: String, sealingKey: String,
                    previousSigningKeys: [PreviousSigningKey] = []) {
            self.profile = profile
            self.publicKey = publicKey
            self.nextPublicKey = nextPublicKey
            self.signingKey = signingKey
            self.sealingKey = sealingKey
            self.previousSigningKeys = previousSigningKeys
        }

        /// The keys a connection may authenticate with as this node.
        public var publicKeys: [String] { [publicKey] + (nextPublicKey.map { [$0] } ?? []) }
    }

    /// A signing key a node no longer signs with.
    public struct PreviousSigningKey: Sendable, Equatable, Codable {
        /// The Ed25519 public key, base64url as `signingKey`.
        public var key: String
        /// When it stopped signing: it verifies what was created before then, nothing after.
        public var retiredAt: Date

        public init(key: String, retiredAt: Date) {
            self.key = key
            self.retiredAt = retiredAt
        }
    }

    public let entries: [Entry]
    private let byId: [String: Int]
    private let byKey: [String: Int]
    /// Each node's signing key's 32 bytes, decoded from text once (every publication and
    /// delivery is checked with one). Bytes, not keys: swift-crypto's keys are not Sendable.
    private let signingKeys: [String: Data]
    /// Each node's sealing key's 32 bytes, likewise.
    private let sealingKeys: [String: Data]

    public var profiles: [NodeProfile] { entries.map(\.profile) }

    public func entry(id: String) -> Entry? { byId[id].map { entries[$0] } }
    /// The node whose current or next key `publicKey` is.
    public func entry(publicKey: String) -> Entry? { byKey[publicKey].map { entries[$0] } }
    /// The Ed25519 key that signs what node `id` publishes; nil for a node not in the registry.
    public func signingKey(of id: String) -> Curve25519.Signing.PublicKey? {
        signingKeys[id].flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }
    /// The previous signing key of node `id` whose key id is `keyId`, with when it was retired.
    public func previousSigningKey(of id: String, keyId: String) -> (key: Curve25519.Signing.PublicKey, retiredAt: Date)? {
        for previous in entry(id: id)?.previousSigningKeys ?? [] {
            guard let key = MessageKeys.signingPublicKey(previous.key), PublicationSignature.keyId(key) == keyId else { continue }
            return (key, previous.retiredAt)
        }
        return nil
    }

    /// The X25519 key to which messages are sealed for node `id`.
    public func sealingKey(of id: String) -> Curve25519.KeyAgreement.PublicKey? {
        sealingKeys[id].flatMap { try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: $0) }
    }

    /// A registry with no node.
    public init() {
        entries = []
        byId = [:]
        byKey = [:]
        signingKeys = [:]
        sealingKeys = [:]
    }

    public static func == (lhs: NodeRegistry, rhs: NodeRegistry) -> Bool { lhs.entries == rhs.entries }

    public init(entries: [Entry]) throws(RegistryError) {
        var byId: [String: Int] = [:]
        var byKey: [String: Int] = [:]
        // Every key's bytes, whatever its purpose or text form: one key never serves two nodes or two purposes.
        var keyBytes: [Data: (node: String, field: String)] = [:]
        for (index, entry) in entries.enumerated() {
            let id = entry.profile.id
            guard MessageValidator.isNodeId(id) else { throw RegistryError("node \"\(id)\": id must use a-z, 0-9 and '-'") }
            guard byId[id] == nil else { throw RegistryError("node \(id): id appears twice") }
            for (field, key) in [("publicKey", entry.publicKey), ("nextPublicKey", entry.nextPublicKey)] {
                guard let key else { continue }
                guard Self.isCurveKey(key) else { throw RegistryError("node \(id): \(field) must be a 40-character Z85 CURVE public key") }
                if let other = byKey[key] {
                    throw RegistryError(other == index ? "node \(id): nextPublicKey is the same as publicKey"
                                                       : "node \(id): \(field) is already used by node \(entries[other].profile.id)")
                }
                byKey[key] = index
                if let bytes = Self.z85Bytes(key) {
                    if let other = keyBytes[bytes] {
                        throw RegistryError("node \(id): \(field) is the same key as \(other.field) of node \(other.node); each purpose and node needs its own key")
                    }
                    keyBytes[bytes] = (id, field)
                }
            }
            for (field, text, valid) in [("signingKey", entry.signingKey, MessageKeys.signingPublicKey(entry.signingKey) != nil),
                                         ("sealingKey", entry.sealingKey, MessageKeys.sealingPublicKey(entry.sealingKey) != nil)] {
                guard valid, let bytes = MessageKeys.bytes(text) else {
                    throw RegistryError("node \(id): \(field) must be a 32-byte public key in base64url (43 characters), as ctbus keygen writes it")
                }
                if let other = keyBytes[bytes] {
                    throw RegistryError("node \(id): \(field) is the same key as \(other.field) of node \(other.node); each purpose and node needs its own key")
                }
                keyBytes[bytes] = (id, field)
            }
            for previous in entry.previousSigningKeys {
                guard MessageKeys.signingPublicKey(previous.key) != nil, let bytes = MessageKeys.bytes(previous.key) else {
                    throw RegistryError("node \(id): previousSigningKeys: a key must be a 32-byte public key in base64url (43 characters)")
                }
                if let other = keyBytes[bytes] {
                    throw RegistryError("node \(id): previousSigningKeys holds the same key as \(other.field) of node \(other.node)")
                }
                keyBytes[bytes] = (id, "previousSigningKeys")
            }
            guard entry.profile.clearance != .unspecified else { throw RegistryError("node \(id): clearance is required") }
            let forbidden = entry.profile.mayPublish.subtracting(entry.profile.role.publishableTypes)
            guard forbidden.isEmpty else {
                throw RegistryError("node \(id): mayPublish: role \(entry.profile.role.rawValue) may not publish \(forbidden.map(\.name).sorted().joined(separator: ", "))")
            }
            for group in entry.profile.groups where !MessageValidator.isNodeId(group) {
                throw RegistryError("node \(id): groups: \"\(group)\" must use a-z, 0-9 and '-'")
            }
            byId[id] = index
        }
        // A releasability entry names a node or a group: the two must never be confused.
        for entry in entries {
            if let clash = entry.profile.groups.first(where: { byId[$0] != nil }) {
                throw RegistryError(clash == entry.profile.id ? "node \(clash): groups: the node names itself as a group"
                                                              : "node \(entry.profile.id): groups: group \(clash) has the name of a node")
            }
        }
        self.entries = entries
        self.byId = byId
        self.byKey = byKey
        signingKeys = entries.reduce(into: [:]) { keys, entry in keys[entry.profile.id] = MessageKeys.bytes(entry.signingKey) }
        sealingKeys = entries.reduce(into: [:]) { keys, entry in keys[entry.profile.id] = MessageKeys.bytes(entry.sealingKey) }
    }

    /// Whether `text` is a CURVE public key in Z85: 40 characters of the Z85 alphabet, each group
    /// of 5 a value below 2^32 (the check libzmq's `zmq_z85_decode` makes; this module does not
    /// link libzmq).
    public static func isCurveKey(_ text: String) -> Bool { z85Bytes(text) != nil }

    /// The 32 bytes of a Z85 CURVE key, or nil.
    static func z85Bytes(_ text: String) -> Data? {
        let characters = Array(text.utf8)
        guard characters.count == 40 else { return nil }
        var bytes = Data(capacity: 32)
        var value: UInt64 = 0
        for (index, character) in characters.enumerated() {
            guard let digit = z85Digit[character] else { return nil }
            value = value * 85 + UInt64(digit)
            if index % 5 == 4 {
                guard value <= UInt64(UInt32.max) else { return nil }
                bytes.append(contentsOf: [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)])
                value = 0
            }
        }
        return bytes
    }

    private static let z85Digit: [UInt8: Int] = Dictionary(uniqueKeysWithValues: Array(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8).enumerated().map { ($1, $0) })

    /// Parses the registry's JSON form (see deploy/README.md).
    public init(json: Data) throws(RegistryError) {
        let file: RegistryFile
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .utcTime
            file = try decoder.decode(RegistryFile.self, from: json)
        } catch {
            throw RegistryError("not a valid registry: \(Self.describe(error))")
        }
        try Self.refuseUnknownFields(json)
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
            guard let signingKey = node.signingKey, let sealingKey = node.sealingKey else {
                throw RegistryError("node \(node.id): \(node.signingKey == nil ? "signingKey" : "sealingKey") is required "
                                    + "(ctbus keygen writes it as NAME.\(node.signingKey == nil ? "sign" : "seal").pub)")
            }
            entries.append(Entry(profile: profile, publicKey: node.publicKey, nextPublicKey: node.nextPublicKey,
                                 signingKey: signingKey, sealingKey: sealingKey, previousSigningKeys: node.previousSigningKeys ?? []))
        }
        try self.init(entries: entries)
    }

    /// The JSON form of a registry, for tools that write one (demo, tests).
    public func json() throws -> Data {
        let file = RegistryFile(nodes: entries.map { entry in
            let profile = entry.profile
            return RegistryFile.Node(id: profile.id, role: profile.role.rawValue, clearance: profile.clearance.name,
                                     groups: profile.groups.sorted(), publicKey: entry.publicKey, nextPublicKey: entry.nextPublicKey,
                                     signingKey: entry.signingKey, sealingKey: entry.sealingKey,
                                     previousSigningKeys: entry.previousSigningKeys.isEmpty ? nil : entry.previousSigningKeys,
                                     mayPublish: profile.mayPublish.map(\.name).sorted(),
                                     subscriptions: profile.subscriptions.map(\.name).sorted(),
                                     themes: profile.themes.sorted())
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] // keys as written by keygen
        encoder.dateEncodingStrategy = .utcTime
        return try encoder.encode(file)
    }

    /// A field this version does not know is a typo (`clearence`) that would otherwise silently
    /// take the default: refused, naming the node and the field.
    private static func refuseUnknownFields(_ json: Data) throws(RegistryError) {
        guard let top = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return }
        if let unknown = top.keys.filter({ !RegistryFile.CodingKeys.allNames.contains($0) }).sorted().first {
            throw RegistryError("unknown field \(unknown) at the top level (fields: \(RegistryFile.CodingKeys.allNames.sorted().joined(separator: ", ")))")
        }
        for (index, node) in (top["nodes"] as? [Any] ?? []).enumerated() {
            guard let node = node as? [String: Any] else { continue }
            if let unknown = node.keys.filter({ !RegistryFile.Node.CodingKeys.allNames.contains($0) }).sorted().first {
                let name = (node["id"] as? String).map { "node \($0)" } ?? "nodes[\(index)]"
                throw RegistryError("\(name): unknown field \(unknown) (fields: \(RegistryFile.Node.CodingKeys.allNames.sorted().joined(separator: ", ")))")
            }
        }
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
        var nextPublicKey: String?
        var signingKey: String?
        var sealingKey: String?
        var previousSigningKeys: [NodeRegistry.PreviousSigningKey]?
        var mayPublish: [String]?
        var subscriptions: [String]?
        var themes: [String]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, role, clearance, groups, publicKey, nextPublicKey, signingKey, sealingKey, previousSigningKeys, mayPublish, subscriptions, themes
            static let allNames = Set(allCases.map(\.rawValue))
        }
    }
    var nodes: [Node]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case nodes
        static let allNames = Set(allCases.map(\.rawValue))
    }
}

public struct RegistryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
