import CTBusSchema
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

    /// What a leaf of a batch commits to: the SHA-256 of the signed bytes.
    public static func content(envelope: Data, payload: Data, digests: [Data]) -> Data {
        Data(SHA256.hash(data: signedBytes(envelope: envelope, payload: payload, digests: digests)))
    }

    /// Signs publications, given by their `content`, in batches of at most `maxLeaves`, as even
    /// in size as they can be (257 go as 129 and 128): one Ed25519 signature per batch over the
    /// root of its tree, with a fresh batch id and a fresh blinder per publication. Returns each
    /// publication's signature (its batch's) and path.
    public static func signBatches(_ contents: [Data], maxLeaves: Int, with key: Curve25519.Signing.PrivateKey) throws -> [(signature: Data, path: BatchPath)] {
        precondition((1...BatchTree.maxLeaves).contains(maxLeaves))
        var signed: [(signature: Data, path: BatchPath)] = []
        signed.reserveCapacity(contents.count)
        let batches = (contents.count + maxLeaves - 1) / maxLeaves
        var start = 0
        for number in 0..<batches {
            let size = contents.count / batches + (number < contents.count % batches ? 1 : 0)
            let batch = Array(contents[start..<start + size])
            start += size
            let batchId = randomHash()
            let blinders = batch.map { _ in randomHash() }
            let (root, paths) = BatchTree.build(batchId: batchId, blinders: blinders, contents: batch)
            let signature = try key.signature(for: BatchTree.rootMessage(key: key.publicKey, batchId: batchId,
                                                                         leafCount: UInt32(batch.count), root: root))
            for index in batch.indices {
                var path = BatchPath()
                path.batchID = batchId
                path.leafCount = UInt32(batch.count)
                path.index = UInt32(index)
                path.blinder = blinders[index]
                path.path = paths[index]
                signed.append((signature, path))
            }
        }
        return signed
    }

    /// Whether `signature` signs the root that `path` leads to from `content` under `key`
    /// (PROTOCOL.md 7.2): the path's shape is checked before anything is hashed, and a root that
    /// `roots` verified before with the same leaf count and signature is not verified again.
    public static func verify(_ signature: Data, batch path: BatchPath, content: Data, key: Curve25519.Signing.PublicKey,
                              roots: BatchRoots?) throws(BatchTree.Failure) -> Bool {
        let root = try BatchTree.root(of: path, content: content)
        let claim = BatchRoots.Claim(leafCount: path.leafCount, root: root, signature: signature)
        guard let roots else {
            return key.isValidSignature(signature, for: BatchTree.rootMessage(key: key, batchId: path.batchID,
                                                                              leafCount: path.leafCount, root: root))
        }
        return roots.verify(claim, batchId: path.batchID, key: key)
    }

    static func randomHash() -> Data {
        Disclosures.randomBytes(BatchTree.hashBytes)
    }

    /// A key's id: the first 8 bytes of the SHA-256 of its 32 raw bytes, in lower-case hex (16
    /// characters). Names the key a signature was made with, so that rotations can overlap.
    public static func keyId(_ key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).prefix(8).hex
    }
}
