import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// A revocation as its originator signed it (PROTOCOL.md 5.5): Ed25519, with the key the
/// registry lists as the originator's `signingKey`, over
///
///     "CTBus-Revocation-v1" 0x00
///     u32be(len(message_id)) || message_id || u32be(len(revoked_by)) || revoked_by
///     || u32be(len(reason)) || reason || i64be(revoked_at.seconds) || u32be(revoked_at.nanos)
///
/// The broker checks it before it stores a revocation and every recipient before it applies
/// one, so no broker can revoke a message its originator did not revoke, nor change why or when.
extension Revocation {
    static let domain = Data("CTBus-Revocation-v1\u{0}".utf8)

    /// The revocation of `messageId` by its originator `revokedBy`, signed with `key`.
    public static func signed(messageId: String, reason: String, by revokedBy: String, at date: Date = Date(),
                              with key: Curve25519.Signing.PrivateKey) throws -> Revocation {
        var revocation = Revocation()
        revocation.messageID = messageId
        revocation.reason = reason
        revocation.revokedBy = revokedBy
        revocation.revokedAt = Google_Protobuf_Timestamp(date: date)
        revocation.keyID = PublicationSignature.keyId(key.publicKey)
        revocation.signature = try key.signature(for: revocation.signedBytes)
        return revocation
    }

    /// The bytes the signature covers.
    public var signedBytes: Data {
        var bytes = Self.domain
        bytes.appendLengthPrefixed(Data(messageID.utf8))
        bytes.appendLengthPrefixed(Data(revokedBy.utf8))
        bytes.appendLengthPrefixed(Data(reason.utf8))
        withUnsafeBytes(of: revokedAt.seconds.bigEndian) { bytes.append(contentsOf: $0) }
        bytes.appendBigEndian(UInt32(bitPattern: revokedAt.nanos))
        return bytes
    }

    /// Checks the signature with `revokedBy`'s key from `signingKey` (a registry copy): the
    /// proof names that key (UNKNOWN_SIGNING_KEY) and verifies (SIGNATURE_INVALID). Returns the
    /// key id.
    @discardableResult
    public func verify(signingKey: (String) -> Curve25519.Signing.PublicKey?,
                       previousKey: PreviousKeyLookup = { _, _ in nil }) throws(BusError) -> String {
        let messageId = MessageValidator.echoable(messageID)
        guard !signature.isEmpty, hasRevokedAt else {
            throw BusError(.signatureInvalid, "an unsigned revocation", messageId: messageId)
        }
        guard let current = signingKey(revokedBy) else {
            throw BusError(.unknownSigningKey, "revoked_by \(MessageValidator.echoable(revokedBy) ?? "(unreadable)") has no signing key in the registry",
                           messageId: messageId)
        }
        let key = try SignedPublication.key(named: keyID, current: current, previous: previousKey, of: revokedBy,
                                            signedAt: revokedAt.date, messageId: messageId)
        guard key.isValidSignature(signature, for: signedBytes) else {
            throw BusError(.signatureInvalid, "the revocation's signature does not verify for \(revokedBy)", messageId: messageId)
        }
        return keyID
    }

    /// What a node sends the broker to revoke: this statement's fields but `revoked_by`, which
    /// the broker takes from the authenticated connection.
    public var frame: Revoke {
        var revoke = Revoke()
        revoke.messageID = messageID
        revoke.reason = reason
        revoke.revokedAt = revokedAt
        revoke.keyID = keyID
        revoke.signature = signature
        return revoke
    }
}

extension Revoke {
    /// The statement a Revoke makes for the authenticated node `nodeId`.
    public func statement(by nodeId: String) -> Revocation {
        var revocation = Revocation()
        revocation.messageID = messageID
        revocation.reason = reason
        revocation.revokedBy = nodeId
        if hasRevokedAt { revocation.revokedAt = revokedAt }
        revocation.keyID = keyID
        revocation.signature = signature
        return revocation
    }
}
