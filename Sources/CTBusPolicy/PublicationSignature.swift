import Crypto
import Foundation

/// The publisher's signature over a publication (PROTOCOL.md 7.2): Ed25519 over the exact envelope
/// and payload bytes it sends and the digests of its disclosures, under a domain prefix that
/// names the protocol version.
public enum PublicationSignature {
    static let domain = Data("CTBus-Publication-v1\u{0}".utf8)

    /// The signed bytes: the domain; the envelope and the payload, each preceded by its length
    /// (4 bytes, big-endian); the number of disclosure digests (4 bytes) and the digests, 32
    /// bytes each, in ascending byte order (so the order disclosures travel in does not matter).
    public static func signedBytes(envelope: Data, payload: Data, digests: [Data]) -> Data {
        var bytes = domain
        bytes.appendLengthPrefixed(envelope)
        bytes.appendLengthPrefixed(payload)
        let sorted = digests.sorted { $0.lexicographicallyPrecedes($1) }
        bytes.appendBigEndian(UInt32(sorted.count))
        for digest in sorted { bytes.append(digest) }
        return bytes
    }

    /// Digests are SHA-256 values: 32 bytes each, or the signed bytes would be ambiguous.
    public struct MalformedDigest: Error {}

    public static func sign(envelope: Data, payload: Data, digests: [Data], with key: Curve25519.Signing.PrivateKey) throws -> Data {
        guard digests.allSatisfy({ $0.count == 32 }) else { throw MalformedDigest() }
        return try key.signature(for: signedBytes(envelope: envelope, payload: payload, digests: digests))
    }

    public static func verify(_ signature: Data, envelope: Data, payload: Data, digests: [Data],
                              key: Curve25519.Signing.PublicKey) -> Bool {
        digests.allSatisfy { $0.count == 32 }
            && key.isValidSignature(signature, for: signedBytes(envelope: envelope, payload: payload, digests: digests))
    }

    /// A key's id: the first 8 bytes of the SHA-256 of its 32 raw bytes, in lower-case hex (16
    /// characters). Names the key a signature was made with, so that rotations can overlap.
    public static func keyId(_ key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
