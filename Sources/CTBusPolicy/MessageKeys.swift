import Crypto
import Foundation

/// The keys a node has beside its CURVE transport key, one per purpose: an Ed25519 key to sign
/// what it publishes and an X25519 key to open what is sealed to it. In text (the registry, key
/// files) each is its 32 raw bytes in base64url without padding (RFC 4648 section 5): 43 characters.
public enum MessageKeys {
    /// The text form of 32 key bytes.
    public static func text(_ bytes: Data) -> String {
        bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The 32 bytes of a key in text form, or nil when `text` is not 43 base64url characters. The
    /// round trip refuses every other spelling ('+', '/', padding, whitespace).
    public static func bytes(_ text: String) -> Data? {
        guard text.utf8.count == 43 else { return nil }
        let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
        guard let data = Data(base64Encoded: standard), data.count == 32, self.text(data) == text else { return nil }
        return data
    }

    public static func signingPublicKey(_ text: String) -> Curve25519.Signing.PublicKey? {
        bytes(text).flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }

    public static func sealingPublicKey(_ text: String) -> Curve25519.KeyAgreement.PublicKey? {
        bytes(text).flatMap { try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: $0) }
    }

    public static func signingPrivateKey(_ text: String) -> Curve25519.Signing.PrivateKey? {
        bytes(text).flatMap { try? Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
    }

    public static func sealingPrivateKey(_ text: String) -> Curve25519.KeyAgreement.PrivateKey? {
        bytes(text).flatMap { try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) }
    }

    /// A new signing key pair, as text (secret, public).
    public static func newSigningKey() -> (secret: String, public: String) {
        let key = Curve25519.Signing.PrivateKey()
        return (text(key.rawRepresentation), text(key.publicKey.rawRepresentation))
    }

    /// A new sealing key pair, as text (secret, public).
    public static func newSealingKey() -> (secret: String, public: String) {
        let key = Curve25519.KeyAgreement.PrivateKey()
        return (text(key.rawRepresentation), text(key.publicKey.rawRepresentation))
    }
}
