import CTBusSchema
import Crypto
import Foundation

/// The Merkle tree of a batch signature (PROTOCOL.md 7.2, batch signatures): one Ed25519
/// signature over a root that commits to N publications, each of which carries its index, a
/// blinder and the path to that root.
///
/// Every hash input starts with a byte that says its kind (leaf, inner node, empty node), holds
/// the batch id and its position, and has a fixed length, so no input of one kind or position
/// reads as another: a leaf cannot be moved to another index or batch, an inner node cannot pass
/// for a leaf, and a padded level pads with an empty node rather than a copy, so every position
/// has exactly one leaf. The blinder, fresh per leaf, makes each sibling hash reveal nothing about
/// the publication it covers to a recipient who does not hold that publication.
public enum BatchTree {
    /// The most leaves a batch may have (a path of at most 16 siblings).
    public static let maxLeaves = WireLimits.batchLeaves
    /// Bytes of a batch id, a blinder and every hash.
    public static let hashBytes = WireLimits.batchHashBytes
    static let rootContext = Data("CTBus-BatchRoot-v1\u{0}".utf8)

    /// The number of levels above the leaves: 0 for one leaf, otherwise ceil(log2 N).
    public static func height(leaves: Int) -> Int {
        leaves <= 1 ? 0 : Int.bitWidth - (leaves - 1).leadingZeroBitCount
    }

    /// `SHA-256(0x00 || batch_id || u32be(index) || blinder || content)`.
    public static func leaf(batchId: Data, index: UInt32, blinder: Data, content: Data) -> Data {
        var hash = SHA256()
        hash.update(data: [0x00])
        hash.update(data: batchId)
        hash.update(data: index.bigEndianBytes)
        hash.update(data: blinder)
        hash.update(data: content)
        return Data(hash.finalize())
    }

    /// `SHA-256(0x01 || batch_id || u8(level) || u32be(position) || left || right)`: the node at
    /// `position` of `level` (the leaves are level 0).
    public static func node(batchId: Data, level: Int, position: UInt32, left: Data, right: Data) -> Data {
        var hash = SHA256()
        hash.update(data: [0x01])
        hash.update(data: batchId)
        hash.update(data: [UInt8(level)])
        hash.update(data: position.bigEndianBytes)
        hash.update(data: left)
        hash.update(data: right)
        return Data(hash.finalize())
    }

    /// `SHA-256(0x02 || batch_id || u8(level) || u32be(position))`: what stands for the missing
    /// last node of a level with an odd number of nodes.
    public static func empty(batchId: Data, level: Int, position: UInt32) -> Data {
        var hash = SHA256()
        hash.update(data: [0x02])
        hash.update(data: batchId)
        hash.update(data: [UInt8(level)])
        hash.update(data: position.bigEndianBytes)
        return Data(hash.finalize())
    }

    /// What the publisher's Ed25519 key signs: `"CTBus-BatchRoot-v1" 0x00 || SHA-256(public key)
    /// || batch_id || u32be(leaf_count) || root`.
    public static func rootMessage(key: Curve25519.Signing.PublicKey, batchId: Data, leafCount: UInt32, root: Data) -> Data {
        var message = rootContext
        message.append(contentsOf: SHA256.hash(data: key.rawRepresentation))
        message.append(batchId)
        message.append(contentsOf: leafCount.bigEndianBytes)
        message.append(root)
        return message
    }

    /// The root over `contents` (one 32-byte hash per publication) and each leaf's path, for a
    /// batch of 1 to `maxLeaves` leaves with the given id and blinders.
    public static func build(batchId: Data, blinders: [Data], contents: [Data]) -> (root: Data, paths: [[Data]]) {
        precondition(!contents.isEmpty && contents.count <= maxLeaves && blinders.count == contents.count)
        var level = contents.indices.map { leaf(batchId: batchId, index: UInt32($0), blinder: blinders[$0], content: contents[$0]) }
        var paths = [[Data]](repeating: [], count: contents.count)
        for height in stride(from: 1, through: height(leaves: contents.count), by: 1) {
            if level.count % 2 == 1 { level.append(empty(batchId: batchId, level: height - 1, position: UInt32(level.count))) }
            for index in paths.indices {
                paths[index].append(level[(index >> (height - 1)) ^ 1])
            }
            level = stride(from: 0, to: level.count, by: 2).map {
                node(batchId: batchId, level: height, position: UInt32($0 / 2), left: level[$0], right: level[$0 + 1])
            }
        }
        return (level[0], paths)
    }

    /// Refuses a path of the wrong shape: a leaf count of 0 or above `maxLeaves`, an index not
    /// below it, other than one sibling per level, a field that is not 32 bytes. Checked before
    /// anything is hashed.
    public static func checkShape(_ path: BatchPath) throws(Failure) {
        guard path.leafCount >= 1, path.leafCount <= maxLeaves else { throw .leafCount(path.leafCount) }
        guard path.index < path.leafCount else { throw .index(path.index, leafCount: path.leafCount) }
        let height = height(leaves: Int(path.leafCount))
        guard path.path.count == height else { throw .pathLength(path.path.count, expected: height) }
        guard path.batchID.count == hashBytes else { throw .fieldLength("batch_id", path.batchID.count) }
        guard path.blinder.count == hashBytes else { throw .fieldLength("blinder", path.blinder.count) }
        if let sibling = path.path.first(where: { $0.count != hashBytes }) { throw .fieldLength("a path sibling", sibling.count) }
    }

    /// Why a batch path is refused before any signature is checked.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case leafCount(UInt32)
        case index(UInt32, leafCount: UInt32)
        case pathLength(Int, expected: Int)
        case fieldLength(String, Int)

        public var description: String {
            switch self {
            case .leafCount(let count): "the batch claims \(count) publications; a batch holds 1 to \(BatchTree.maxLeaves)"
            case .index(let index, let count): "index \(index) is outside a batch of \(count)"
            case .pathLength(let length, let expected): "the path has \(length) siblings; a batch of its size has \(expected)"
            case .fieldLength(let field, let length): "\(field) is \(length) bytes, not \(BatchTree.hashBytes)"
            }
        }
    }

    /// The root that `path` leads to from a publication whose signed bytes hash to `content`.
    /// The shape is checked first (the leaf count, the index below it, exactly as many siblings
    /// as the tree has levels, every field 32 bytes), so nothing malformed is hashed.
    public static func root(of path: BatchPath, content: Data) throws(Failure) -> Data {
        try checkShape(path)
        var hash = leaf(batchId: path.batchID, index: path.index, blinder: path.blinder, content: content)
        var position = path.index
        for (below, sibling) in path.path.enumerated() {
            let odd = position & 1 == 1
            position >>= 1
            hash = odd ? node(batchId: path.batchID, level: below + 1, position: position, left: sibling, right: hash)
                       : node(batchId: path.batchID, level: below + 1, position: position, left: hash, right: sibling)
        }
        return hash
    }
}

extension UInt32 {
    var bigEndianBytes: [UInt8] {
        [UInt8(self >> 24), UInt8(truncatingIfNeeded: self >> 16), UInt8(truncatingIfNeeded: self >> 8), UInt8(truncatingIfNeeded: self)]
    }
}
