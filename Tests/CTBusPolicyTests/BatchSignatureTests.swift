import CTBusLocal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Testing

/// Batch signatures (PROTOCOL.md 7.2): the tree, the checks of a path, the roots a party keeps,
/// and publications signed in a batch going through the one `SignedPublication.verify`.
@Suite("Batch signatures")
struct BatchSignatureTests {
    static var cted: Curve25519.Signing.PrivateKey { SignedPublicationTests.cted }
    static var oct: Curve25519.Signing.PrivateKey { SignedPublicationTests.oct }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    static func contents(_ count: Int) -> [Data] {
        (0..<count).map { Data(SHA256.hash(data: Data([UInt8(truncatingIfNeeded: $0)]))) }
    }

    /// A signed batch of `count` contents: each content with its signature and path.
    static func batch(_ count: Int, key: Curve25519.Signing.PrivateKey = cted) throws -> [(content: Data, signature: Data, path: BatchPath)] {
        let contents = contents(count)
        return zip(contents, try PublicationSignature.signBatches(contents, maxLeaves: BatchTree.maxLeaves, with: key)).map { ($0, $1.signature, $1.path) }
    }

    static func verifies(_ item: (content: Data, signature: Data, path: BatchPath), key: Curve25519.Signing.PrivateKey = cted,
                         roots: BatchRoots? = nil) -> Bool {
        (try? PublicationSignature.verify(item.signature, batch: item.path, content: item.content, key: key.publicKey, roots: roots)) == true
    }

    @Test("Known answers: a leaf, an empty node and the roots of 3, 5 and 9 leaves, computed apart from this code (Python's hashlib, from PROTOCOL.md)")
    func knownAnswers() {
        let batchId = Data(repeating: 7, count: 32)
        let blinders = (0..<3).map { Data(repeating: UInt8(0x10 + $0), count: 32) }
        let contents = Self.contents(3)
        #expect(Self.hex(BatchTree.leaf(batchId: batchId, index: 0, blinder: blinders[0], content: contents[0]))
            == "52ccc324f83952c26489673d91bd56b9513ac022a810dce0f65fe547af1dd8ed")
        #expect(Self.hex(BatchTree.empty(batchId: batchId, level: 0, position: 3))
            == "50320749a8c4fd725573cf952501a535619b74f267565d0144e4bfae84f3b72d")
        let (root, paths) = BatchTree.build(batchId: batchId, blinders: blinders, contents: contents)
        #expect(Self.hex(root) == "2e56a5bae5b21d4931ee5af426065b71f7051e95ca5a35c6cf1c02f427a9f7fc")
        #expect(paths.map(\.count) == [2, 2, 2])
        // Padding above the leaves: 5 leaves pad levels 0 and 1, 9 leaves levels 0 to 2.
        for (count, expected) in [(5, "5ac34727d8e964fff17c83c432319389490bceadca227bf267d3b7f33b66d1ac"),
                                  (9, "a9195bfa78ee2daa963ea56a56ab30d36b1e8a301a428b0894c13e3c73c9911c")] {
            let blinders = (0..<count).map { Data(repeating: UInt8(0x10 + $0), count: 32) }
            #expect(Self.hex(BatchTree.build(batchId: batchId, blinders: blinders, contents: Self.contents(count)).root) == expected, "\(count) leaves")
        }
    }

    @Test("Height: none for one leaf, then ceil(log2 N)", arguments: [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (64, 6), (65, 7), (65_536, 16)])
    func height(leaves: Int, expected: Int) {
        #expect(BatchTree.height(leaves: leaves) == expected)
    }

    @Test("Every index of batches of 1 to 33, 64 and 65 leaves leads to its root and verifies, cold and with the roots kept")
    func everyIndex() throws {
        let roots = BatchRoots()
        for count in Array(1...33) + [64, 65] {
            let batch = try Self.batch(count)
            #expect(Set(batch.map(\.signature)).count == 1, "one signature per batch")
            for item in batch {
                #expect(Self.verifies(item), "cold: \(count) leaves, index \(item.path.index)")
                #expect(Self.verifies(item, roots: roots), "kept: \(count) leaves, index \(item.path.index)")
            }
        }
        #expect(roots.counts.verified == 35, "one Ed25519 verification per batch")
        #expect(roots.counts.reused == (Array(1...33) + [64, 65]).reduce(0, +) - 35)
    }

    @Test("Batches larger than the bound are split evenly; each part has its own id and signature")
    func split() throws {
        let signed = try PublicationSignature.signBatches(Self.contents(10), maxLeaves: 4, with: Self.cted)
        #expect(signed.map(\.path.leafCount) == [4, 4, 4, 4, 3, 3, 3, 3, 3, 3], "as even as they can be")
        #expect(signed.map(\.path.index) == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2])
        #expect(Set(signed.map(\.path.batchID)).count == 3 && Set(signed.map(\.signature)).count == 3)
        #expect(Set(signed.map(\.path.blinder)).count == 10, "a fresh blinder per publication")
    }

    /// One way a hostile broker or publisher might bend a proof, and what it must come to.
    struct Bend: CustomTestStringConvertible, Sendable {
        let name: String
        /// Given batch A (7 leaves) and batch B (7 leaves, same key) and batch C (7 leaves, OCT's key),
        /// returns the bent item of A.
        let bend: @Sendable (_ a: [Item], _ b: [Item], _ c: [Item]) -> Item
        let failure: BatchTree.Failure?
        var testDescription: String { name }
    }

    typealias Item = (content: Data, signature: Data, path: BatchPath)

    static func with(_ item: Item, _ change: (inout BatchPath) -> Void) -> Item {
        var path = item.path
        change(&path)
        return (item.content, item.signature, path)
    }

    static let bends: [Bend] = [
        Bend(name: "a path from another batch", bend: { a, b, _ in with(a[2]) { $0.path = b[2].path.path } }, failure: nil),
        Bend(name: "another batch's signature", bend: { a, b, _ in (a[2].content, b[2].signature, a[2].path) }, failure: nil),
        Bend(name: "another batch's id", bend: { a, b, _ in with(a[2]) { $0.batchID = b[2].path.batchID } }, failure: nil),
        Bend(name: "a swapped index (the sibling's)", bend: { a, _, _ in with(a[2]) { $0.index = 3 } }, failure: nil),
        Bend(name: "two publications' index and path swapped", bend: { a, _, _ in
            with(a[2]) { $0.index = a[3].path.index; $0.path = a[3].path.path } }, failure: nil),
        Bend(name: "a root signed by another key, named as this key's", bend: { _, _, c in c[2] }, failure: nil),
        Bend(name: "a leaf moved into another batch at its index", bend: { a, b, _ in
            (a[2].content, b[2].signature, { var path = b[2].path; path.blinder = a[2].path.blinder; return path }()) }, failure: nil),
        Bend(name: "another leaf count with the same height", bend: { a, _, _ in with(a[2]) { $0.leafCount = 8 } }, failure: nil),
        Bend(name: "a changed blinder", bend: { a, _, _ in with(a[2]) { $0.blinder[$0.blinder.startIndex] ^= 1 } }, failure: nil),
        Bend(name: "another content", bend: { a, _, _ in (a[3].content, a[2].signature, a[2].path) }, failure: nil),
        Bend(name: "the index at the padding (leaf count 7, index 7)", bend: { a, _, _ in with(a[6]) { $0.index = 7 } },
             failure: .index(7, leafCount: 7)),
        Bend(name: "an index far out of range", bend: { a, _, _ in with(a[2]) { $0.index = .max } }, failure: .index(.max, leafCount: 7)),
        Bend(name: "a leaf count of 0", bend: { a, _, _ in with(a[2]) { $0.leafCount = 0 } }, failure: .leafCount(0)),
        Bend(name: "a leaf count above the bound", bend: { a, _, _ in with(a[2]) { $0.leafCount = 65_537; $0.path += Array(repeating: Data(count: 32), count: 14) } },
             failure: .leafCount(65_537)),
        Bend(name: "a path one sibling short", bend: { a, _, _ in with(a[2]) { $0.path.removeLast() } }, failure: .pathLength(2, expected: 3)),
        Bend(name: "a path one sibling long", bend: { a, _, _ in with(a[2]) { $0.path.append(Data(count: 32)) } }, failure: .pathLength(4, expected: 3)),
        Bend(name: "a leaf claimed one level up (a shorter tree, its first sibling dropped)", bend: { a, _, _ in with(a[2]) { $0.leafCount = 4; $0.index = 1; $0.path.removeFirst() } },
             failure: nil),
        Bend(name: "a sibling of 31 bytes", bend: { a, _, _ in with(a[2]) { $0.path[2] = Data(count: 31) } }, failure: .fieldLength("a path sibling", 31)),
        Bend(name: "a blinder of 16 bytes", bend: { a, _, _ in with(a[2]) { $0.blinder = Data(count: 16) } }, failure: .fieldLength("blinder", 16)),
        Bend(name: "a batch id of 33 bytes", bend: { a, _, _ in with(a[2]) { $0.batchID += Data([0]) } }, failure: .fieldLength("batch_id", 33)),
    ]

    @Test("A bent proof is refused, cold and with the genuine batch's roots kept; a bad shape before anything is hashed", arguments: bends)
    func bent(bend: Bend) throws {
        let a = try Self.batch(7), b = try Self.batch(7), c = try Self.batch(7, key: Self.oct)
        let bent = bend.bend(a, b, c)
        let roots = BatchRoots()
        for item in a + b { #expect(Self.verifies(item, roots: roots)) }
        for roots in [nil, roots] {
            do {
                let verifies = try PublicationSignature.verify(bent.signature, batch: bent.path, content: bent.content,
                                                               key: Self.cted.publicKey, roots: roots)
                #expect(!verifies && bend.failure == nil, "the signature fails")
            } catch {
                #expect(error == bend.failure)
            }
        }
        for item in a + b { #expect(Self.verifies(item, roots: roots), "the genuine batches still verify") }
    }

    @Test("No leaf verifies at two indices, and the padding's empty node is no leaf")
    func oneLeafPerPosition() throws {
        let batch = try Self.batch(5)
        for item in batch {
            for index in 0..<UInt32(5) where index != item.path.index {
                #expect(!Self.verifies(Self.with(item) { $0.index = index }))
            }
        }
        // Leaf 4's first sibling is the empty node at (0, 5): presented as a leaf at index 5 of a
        // batch of 6, with leaf 4 as its sibling, it does not verify.
        #expect(!Self.verifies(Self.with(batch[4]) { $0.leafCount = 6; $0.index = 5; $0.path[0] = batch[4].path.path[0] }))
    }

    @Test("Roots kept: a claim differing in any part is verified in full and does not replace the genuine one; a bad claim first does not stop the genuine one")
    func keptRoots() throws {
        let batch = try Self.batch(4)
        let roots = BatchRoots()
        var forged = batch[0]
        forged.signature = Data(repeating: 9, count: 64)
        #expect(!Self.verifies(forged, roots: roots), "a bad claim comes first")
        #expect(Self.verifies(batch[0], roots: roots), "the genuine one still verifies")
        #expect(!Self.verifies(forged, roots: roots), "a warm root does not let another signature through")
        #expect(!Self.verifies((batch[1].content, batch[1].signature, Self.with(batch[1]) { $0.leafCount = 3 }.path), roots: roots))
        #expect(Self.verifies(batch[1], roots: roots) && Self.verifies(batch[2], roots: roots))
        #expect(roots.counts == (verified: 1, reused: 2))
        #expect(!Self.verifies(batch[3], key: Self.oct, roots: roots), "the same root under another key")
    }

    @Test("Roots kept per key are bounded: a flood evicts its key's oldest, an evicted root is verified again, another key's roots stay")
    func bounded() throws {
        let roots = BatchRoots(perKey: 3)
        let octs = try Self.batch(2, key: Self.oct)
        #expect(Self.verifies(octs[0], key: Self.oct, roots: roots))
        let batches = try (0..<5).map { _ in try Self.batch(2) }
        for batch in batches { #expect(Self.verifies(batch[0], roots: roots)) }
        #expect(roots.counts.verified == 6)
        #expect(Self.verifies(batches[4][1], roots: roots) && roots.counts.verified == 6, "a recent root is kept")
        #expect(Self.verifies(batches[0][1], roots: roots) && roots.counts.verified == 7, "an evicted root is verified again")
        #expect(Self.verifies(octs[1], key: Self.oct, roots: roots) && roots.counts.verified == 7, "another key's root stays")
        // A long flood: only the last three roots stay, whatever number came before.
        let flood = try (0..<12).map { _ in try Self.batch(2) }
        for batch in flood { #expect(Self.verifies(batch[0], roots: roots)) }
        let before = roots.counts.verified
        for batch in flood.suffix(3) { #expect(Self.verifies(batch[1], roots: roots)) }
        #expect(roots.counts.verified == before, "the last three are kept")
        for batch in flood.prefix(9) { #expect(Self.verifies(batch[1], roots: roots)) }
        #expect(roots.counts.verified == before + 9, "the ones before were dropped and are verified again")
    }

    @Test("A root kept for a key the registry no longer lists for the originator is never reached: the publication is refused")
    func removedKey() throws {
        let message = SampleMessages.missionReport(summaryBytes: 64)
        let signed = try SignedPublication.signBatch([(message.envelope, message.payload!, nil),
                                                      (message.envelope, SampleMessages.missionReport().payload!, nil)], with: Self.cted)
        let roots = BatchRoots()
        _ = try signed[0].signed.verify(signingKey: SignedPublicationTests.keys, roots: roots)
        #expect(roots.counts.verified == 1)
        let replaced = Curve25519.Signing.PrivateKey().publicKey
        let code = SignedPublicationTests.code { () throws(BusError) in
            try signed[1].signed.verify(signingKey: { $0 == "cted" ? replaced : nil }, roots: roots)
        }
        #expect(code == .unknownSigningKey)
        #expect(roots.counts == (verified: 1, reused: 0))
    }

    @Test("Privacy: the same content in two batches has other siblings; recomputing a neighbour's leaf without its blinder does not give the sibling")
    func privacy() throws {
        let contents = Self.contents(2)
        let first = try PublicationSignature.signBatches(contents, maxLeaves: 2, with: Self.cted)
        let second = try PublicationSignature.signBatches(contents, maxLeaves: 2, with: Self.cted)
        #expect(first[0].path.path != second[0].path.path)
        let guess = BatchTree.leaf(batchId: first[0].path.batchID, index: 1, blinder: Data(count: 32), content: contents[1])
        #expect(first[0].path.path[0] != guess)
    }

    @Test("Publications signed in a batch each verify alone through SignedPublication.verify: whole, redacted, sealed; only messages of one handling share a batch; a message alone of its handling is signed as before")
    func publications() throws {
        let restricted = SignedPublicationTests.restricted()
        let plain = SampleMessages.missionReport(summaryBytes: 64)
        let sealedMessage = SealedPublicationTests.message()
        let recipients = SealingRecipients(all: [("oct", SealedPublicationTests.oct.publicKey), ("other", SealedPublicationTests.other.publicKey)],
                                           whole: [("oct", SealedPublicationTests.oct.publicKey)])
        var otherRestricted = SignedPublicationTests.restricted()
        otherRestricted.envelope.messageID = MessageID.generate()
        var otherSealed = SealedPublicationTests.message()
        otherSealed.envelope.messageID = MessageID.generate()
        let plainToo = SampleMessages.missionReport(summaryBytes: 32)
        var unclassifiedAlone = SampleMessages.missionReport(handling: SampleMessages.handling(.unclassified, releasableTo: ["oct"]))
        unclassifiedAlone.envelope.originator = "cted"
        let signed = try SignedPublication.signBatch([
            (restricted.envelope, restricted.payload!, nil),
            (plain.envelope, plain.payload!, nil),
            (sealedMessage.envelope, sealedMessage.payload!, recipients),
            (otherRestricted.envelope, otherRestricted.payload!, nil),
            (plainToo.envelope, plainToo.payload!, nil),
            (otherSealed.envelope, otherSealed.payload!, recipients),
            (unclassifiedAlone.envelope, unclassifiedAlone.payload!, nil),
        ], with: Self.cted)
        let batches = signed.map { $0.signed.proof.hasBatch ? $0.signed.proof.batch.batchID : nil }
        #expect(batches[0] != nil && batches[0] == batches[3] && batches[1] == batches[4] && batches[2] == batches[5])
        #expect(Set([batches[0], batches[1], batches[2]]).count == 3, "one batch per handling")
        #expect(signed[0..<6].allSatisfy { $0.signed.proof.batch.leafCount == 2 })
        #expect(batches[6] == nil, "alone of its handling: a signature of its own")
        #expect(try signed[6].signed.verify(signingKey: SignedPublicationTests.keys).envelope.messageID == unclassifiedAlone.envelope.messageID)
        let roots = BatchRoots()
        let keys = SignedPublicationTests.keys
        #expect(try signed[0].signed.verify(signingKey: keys, originator: "cted", whole: true, roots: roots).payload == restricted.payload)
        #expect(try signed[0].signed.withholding(["recommendation_text", "priority"]).verify(signingKey: keys, roots: roots).withheldPaths
            == ["priority", "recommendation_text"])
        #expect(try signed[1].signed.verify(signingKey: keys, roots: roots).payload == plain.payload)
        let opened = try signed[2].signed.verify(signingKey: keys, opening: .recipient(nodeId: "oct", key: SealedPublicationTests.oct), roots: roots)
        #expect(opened.payload == sealedMessage.payload && opened.contentKeys == signed[2].contentKeys)
        #expect(roots.counts == (verified: 3, reused: 1))
        var moved = signed[1].signed
        moved.proof.batch.index ^= 1 // its neighbour's position
        #expect(SignedPublicationTests.code { () throws(BusError) in try moved.verify(signingKey: keys) } == .signatureInvalid)
        var unlabelled = signed[1].signed
        unlabelled.proof.clearBatch()
        #expect(SignedPublicationTests.code { () throws(BusError) in try unlabelled.verify(signingKey: keys) } == .signatureInvalid,
                "a root signature is no signature of the publication alone")

        let single = try SignedPublication.signBatch([(plain.envelope, plain.payload!, nil)], with: Self.cted)
        #expect(!single[0].signed.proof.hasBatch)
        #expect(try single[0].signed.verify(signingKey: keys).keyId == PublicationSignature.keyId(Self.cted.publicKey))
    }
}
