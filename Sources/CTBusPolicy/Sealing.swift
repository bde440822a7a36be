import CTBusSchema
import Crypto
import Foundation

/// Sealed content (issue 13, item 4; PROTOCOL.md 7.5): bytes encrypted once under a fresh 256-bit content key with ChaCha20-Poly1305, and that key
/// sealed with HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
/// ChaCha20-Poly1305) to each recipient's X25519 sealing key. Whoever is not among the recipients
/// (the broker included) holds only ciphertext.
public struct SealedGroup: Sendable, Equatable {
    /// One recipient's copy of the content key.
    public struct WrappedKey: Sendable, Equatable {
        public let nodeId: String
        /// HPKE's encapsulated key (32 bytes for X25519).
        public let encapsulatedKey: Data
        /// The content key sealed by HPKE (32 bytes + 16 of tag).
        public let sealedKey: Data

        public init(nodeId: String, encapsulatedKey: Data, sealedKey: Data) {
            self.nodeId = nodeId
            self.encapsulatedKey = encapsulatedKey
            self.sealedKey = sealedKey
        }
    }

    /// ChaCha20-Poly1305 `combined`: nonce, ciphertext, tag.
    public let ciphertext: Data
    /// Sorted by node id.
    public let keys: [WrappedKey]

    /// A group as read from the wire or a store (`seal` makes new ones).
    public init(ciphertext: Data, keys: [WrappedKey]) {
        self.ciphertext = ciphertext
        self.keys = keys
    }

    public enum Failure: Error, Equatable {
        /// This node is not among the recipients.
        case notARecipient
        /// The wrapped key or the ciphertext does not open: changed, or sealed to another key.
        case doesNotOpen
    }

    static var ciphersuite: HPKE.Ciphersuite { .Curve25519_SHA256_ChachaPoly }

    /// Seals `plaintext` for `recipients` (node id and sealing key). `context` binds the group to
    /// its place (the message id and the group's name): it is HPKE's info and the content
    /// cipher's associated data, so a group cannot be moved to another message or group.
    public static func seal(_ plaintext: Data, to recipients: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)],
                            context: Data) throws -> SealedGroup {
        try sealKeepingKey(plaintext, to: recipients, context: context).group
    }

    /// `seal`, also returning the 32-byte content key (the publisher's journal keeps it, so that
    /// its own copy can be checked against the sealed bytes it signed).
    public static func sealKeepingKey(_ plaintext: Data, to recipients: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)],
                                      context: Data) throws -> (group: SealedGroup, contentKey: Data) {
        let contentKey = SymmetricKey(size: .bits256)
        let ciphertext = try ChaChaPoly.seal(plaintext, using: contentKey, authenticating: context).combined
        let keyBytes = contentKey.withUnsafeBytes { Data($0) }
        let keys = try recipients.sorted { $0.nodeId < $1.nodeId }.map { recipient in
            var sender = try HPKE.Sender(recipientKey: recipient.key, ciphersuite: ciphersuite, info: context)
            let sealed = try sender.seal(keyBytes, authenticating: Data(recipient.nodeId.utf8))
            return WrappedKey(nodeId: recipient.nodeId, encapsulatedKey: sender.encapsulatedKey, sealedKey: sealed)
        }
        return (SealedGroup(ciphertext: ciphertext, keys: keys), keyBytes)
    }

    /// Opens the group as `nodeId` with its sealing secret key.
    public func open(as nodeId: String, with key: Curve25519.KeyAgreement.PrivateKey, context: Data) throws(Failure) -> Data {
        try openKeepingKey(as: nodeId, with: key, context: context).plaintext
    }

    /// `open`, also returning the content key it recovered.
    public func openKeepingKey(as nodeId: String, with key: Curve25519.KeyAgreement.PrivateKey,
                               context: Data) throws(Failure) -> (plaintext: Data, contentKey: Data) {
        guard let wrapped = keys.first(where: { $0.nodeId == nodeId }) else { throw .notARecipient }
        let keyBytes: Data
        do {
            var recipient = try HPKE.Recipient(privateKey: key, ciphersuite: Self.ciphersuite, info: context,
                                               encapsulatedKey: wrapped.encapsulatedKey)
            keyBytes = try recipient.open(wrapped.sealedKey, authenticating: Data(nodeId.utf8))
        } catch {
            throw .doesNotOpen
        }
        return (try open(contentKey: keyBytes, context: context), keyBytes)
    }

    /// Opens the group with its content key (as a journal kept it).
    public func open(contentKey: Data, context: Data) throws(Failure) -> Data {
        guard contentKey.count == 32 else { throw .doesNotOpen }
        do {
            return try ChaChaPoly.open(try ChaChaPoly.SealedBox(combined: ciphertext), using: SymmetricKey(data: contentKey),
                                       authenticating: context)
        } catch {
            throw .doesNotOpen
        }
    }

    /// The wire's form.
    public var box: SealedBox {
        var box = SealedBox()
        box.ciphertext = ciphertext
        box.keys = keys.map { key in
            var wrapped = CTBusSchema.WrappedKey()
            wrapped.nodeID = key.nodeId
            wrapped.encapsulatedKey = key.encapsulatedKey
            wrapped.sealedKey = key.sealedKey
            return wrapped
        }
        return box
    }

    public init(_ box: SealedBox) {
        self.init(ciphertext: box.ciphertext, keys: box.keys.map {
            WrappedKey(nodeId: $0.nodeID, encapsulatedKey: $0.encapsulatedKey, sealedKey: $0.sealedKey)
        })
    }

    /// What a group is bound to: its message and its name in `SealedContent` ("payload",
    /// "disclosures"): `"CTBus-Sealed-v1" 0x00 || message id || 0x00 || name`.
    public static func context(messageId: String, group: String) -> Data {
        Data("CTBus-Sealed-v1\u{0}\(messageId)\u{0}\(group)".utf8)
    }

    /// The node ids it is sealed to.
    public var recipients: [String] { keys.map(\.nodeId) }
}
