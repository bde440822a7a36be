import CTBusSchema
import Crypto
import Foundation

/// Sealed content (PROTOCOL.md 7.5), on the wire's `SealedBox`: bytes
/// encrypted once under a fresh 256-bit content key with ChaCha20-Poly1305 (`ciphertext` is
/// `combined`: nonce, ciphertext, tag), and that key sealed with HPKE (RFC 9180, base mode,
/// DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305) to each recipient's X25519
/// sealing key (`keys`, sorted by node id). Whoever is not among the recipients (the broker
/// included) holds only ciphertext.
///
/// ChaCha20-Poly1305 does not commit to its key: a ciphertext can be built that opens under two
/// keys to two plaintexts ("invisible salamanders": Grubbs, Lu and Ristenpart, CRYPTO 2017;
/// Dodis, Grubbs, Ristenpart and Woodage, CRYPTO 2018; Albertini et al., USENIX Security 2022),
/// and each recipient unwraps its own copy of the key. So the box carries `key_commitment`, a
/// hash of the content key under its own domain (the key-commitment fix of Albertini et al.),
/// and the box's bytes are signed with it: a recipient opens only with the committed key, and
/// under one key the ciphertext, nonce and associated data give one plaintext. The hash of a
/// fresh 256-bit key tells nothing about it to whoever cannot unwrap it.
extension SealedBox {
    public enum Failure: Error, Equatable {
        /// This node is not among the recipients.
        case notARecipient
        /// The wrapped key or the ciphertext does not open: changed, or sealed to another key.
        case doesNotOpen
        /// The unwrapped content key is not the one `key_commitment` names.
        case notCommitted
    }

    static var ciphersuite: HPKE.Ciphersuite { .Curve25519_SHA256_ChachaPoly }

    /// Seals `plaintext` for `recipients` (node id and sealing key). `context` binds the box to
    /// its place (`context(messageId:group:)`): it is HPKE's info and the content cipher's
    /// associated data, so a box cannot be moved to another message or group; each recipient's
    /// node id is HPKE's associated data of its wrapped key.
    public static func seal(_ plaintext: Data, to recipients: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)],
                            context: Data) throws -> SealedBox {
        try sealKeepingKey(plaintext, to: recipients, context: context).box
    }

    /// `seal`, also returning the 32-byte content key (the publisher's journal keeps it, so that
    /// its own copy can be checked against the sealed bytes it signed).
    public static func sealKeepingKey(_ plaintext: Data, to recipients: [(nodeId: String, key: Curve25519.KeyAgreement.PublicKey)],
                                      context: Data) throws -> (box: SealedBox, contentKey: Data) {
        let contentKey = SymmetricKey(size: .bits256)
        let keyBytes = contentKey.withUnsafeBytes { Data($0) }
        var box = SealedBox()
        box.ciphertext = try ChaChaPoly.seal(plaintext, using: contentKey, authenticating: context).combined
        box.keyCommitment = keyCommitment(keyBytes, context: context)
        box.keys = try recipients.sorted { $0.nodeId < $1.nodeId }.map { recipient in
            var sender = try HPKE.Sender(recipientKey: recipient.key, ciphersuite: ciphersuite, info: context)
            var wrapped = WrappedKey()
            wrapped.nodeID = recipient.nodeId
            wrapped.sealedKey = try sender.seal(keyBytes, authenticating: Data(recipient.nodeId.utf8))
            wrapped.encapsulatedKey = sender.encapsulatedKey
            return wrapped
        }
        return (box, keyBytes)
    }

    /// Opens the box as `nodeId` with its sealing secret key.
    public func open(as nodeId: String, with key: Curve25519.KeyAgreement.PrivateKey, context: Data) throws(Failure) -> Data {
        try openKeepingKey(as: nodeId, with: key, context: context).plaintext
    }

    /// `open`, also returning the content key it recovered.
    public func openKeepingKey(as nodeId: String, with key: Curve25519.KeyAgreement.PrivateKey,
                               context: Data) throws(Failure) -> (plaintext: Data, contentKey: Data) {
        guard let wrapped = keys.first(where: { $0.nodeID == nodeId }) else { throw .notARecipient }
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

    /// Opens the box with its content key (as a journal kept it), only the committed one.
    public func open(contentKey: Data, context: Data) throws(Failure) -> Data {
        guard contentKey.count == 32 else { throw .doesNotOpen }
        guard Self.keyCommitment(contentKey, context: context) == keyCommitment else { throw .notCommitted }
        do {
            return try ChaChaPoly.open(try ChaChaPoly.SealedBox(combined: ciphertext), using: SymmetricKey(data: contentKey),
                                       authenticating: context)
        } catch {
            throw .doesNotOpen
        }
    }

    static let commitmentDomain = Data("CTBus-KeyCommitment-v1\u{0}".utf8)

    /// SHA-256 of the domain, `context` and the 32-byte `contentKey`.
    public static func keyCommitment(_ contentKey: Data, context: Data) -> Data {
        var hash = SHA256()
        hash.update(data: commitmentDomain)
        hash.update(data: context)
        hash.update(data: contentKey)
        return Data(hash.finalize())
    }

    /// The node ids it is sealed to.
    public var recipients: [String] { keys.map(\.nodeID) }

    /// What a box is bound to: its message and its name in `SealedContent` ("payload",
    /// "disclosures"): `"CTBus-Sealed-v1" 0x00 || message id || 0x00 || name`.
    public static func context(messageId: String, group: String) -> Data {
        Data("CTBus-Sealed-v1\u{0}\(messageId)\u{0}\(group)".utf8)
    }
}
