import CTBusJournal
import CTBusMetrics
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import InMemoryLogging
import Logging
import Prometheus
import SwiftProtobuf
import Testing

/// Issue 13, item 5: an honest node (the real `Node`, its real journal) connected to a broker
/// that lies. The node checks every delivery against its own registry copy, so whatever the
/// broker does to a signed message shows, and nothing of it reaches the journal.
@Suite("Hostile broker", .serialized, .busSlot)
struct HostileBrokerTests {
    /// A message from CTED whose recommendation text carries `marker`.
    static func message(_ marker: String, handling: Handling = SampleMessages.handling(.confidential)) -> BusMessage {
        SampleMessages.recommendation(handling: handling, text: "Recommendation \(marker) on border data sharing")
    }

    /// The real node wg-border behind a hostile broker that welcomed it, its metrics, and CTED's
    /// signature (what a hostile broker can replay but not make).
    struct Scene {
        let hostile: HostileBroker
        let node: Node
        let metrics: MetricsEndpoint
        let cted: Curve25519.Signing.PrivateKey

        init(_ bus: LocalBus) async throws {
            hostile = try HostileBroker(bus: bus)
            metrics = MetricsEndpoint()
            node = try bus.startNode("wg-border", metrics: metrics.factory)
            #expect(try await hostile.welcome(as: "wg-border"))
            cted = try bus.signingKey(of: "cted")
        }

        func sign(_ message: BusMessage) throws -> SignedPublication {
            try SignedPublication.sign(message.envelope, payload: message.payload!, with: cted)
        }

        func refusals(_ reason: String) -> Double? {
            MetricsTests.value(MetricsTests.parse(metrics.registry.emitToString()), "ctbus_node_deliveries_refused_total", ["reason": reason])
        }
    }

    static func journalBytes(_ bus: LocalBus, _ node: String) -> Data {
        [bus.journalPath(node), bus.journalPath(node) + "-wal"].reduce(into: Data()) { bytes, path in
            bytes.append((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
        }
    }

    @Test("A broker that rewrites the originator, flips a payload byte, replays a message under a new id, forges a disclosure or strips the signature: the honest node refuses each, journals nothing of it, says why and counts it; genuine messages, and a replay under their own id, are journaled once")
    func honestNodeRefusesTampering() async throws {
        let (bus, handler) = try FaultTests.loggedBus()
        defer { bus.shutdown() }
        let hostile = try HostileBroker(bus: bus)
        let metrics = MetricsEndpoint()
        let node = try bus.startNode("wg-border", metrics: metrics.factory)
        #expect(try await hostile.welcome(as: "wg-border"))
        let cted = try bus.signingKey(of: "cted")
        func sign(_ message: BusMessage) throws -> SignedPublication {
            try SignedPublication.sign(message.envelope, payload: message.payload!, with: cted)
        }

        let genuine = Self.message("GENUINE-ONE")
        try hostile.deliver(try sign(genuine))

        // (a) The originator rewritten to OCT: the proof names CTED's key, which is not OCT's.
        var rewritten = try sign(Self.message("TAMPERED-ORIGINATOR"))
        var envelope = try Envelope(serializedBytes: rewritten.signedEnvelope)
        envelope.originator = "oct"
        rewritten.signedEnvelope = try envelope.serializedData()
        try hostile.deliver(rewritten)

        // (b) One payload byte flipped.
        var flipped = try sign(Self.message("TAMPERED-BYTE"))
        flipped.payload[flipped.payload.count - 3] ^= 0x20
        try hostile.deliver(flipped)

        // (c) An old message replayed under a new id.
        var replayedEnvelope = try Envelope(serializedBytes: try sign(genuine).signedEnvelope)
        replayedEnvelope.messageID = MessageID.generate()
        var replayed = try sign(genuine)
        replayed.signedEnvelope = try replayedEnvelope.serializedData()
        try hostile.deliver(replayed)

        // (d) A copy redacted for wg-border (the text is restricted to OCT) with a disclosure
        // forged in place of the withheld one.
        let restricted = SampleMessages.restricted(Self.message("TAMPERED-DISCLOSURE"), state: "KEN",
                                                   fields: ["recommendation_text"], allowed: ["oct"])
        var forged = try sign(restricted)
        var fragment = CountryVisitRecommendation()
        fragment.recommendationText = "FORGED-DISCLOSURE text the broker wrote"
        forged.proof.disclosures[0].value = try fragment.serializedData()
        try hostile.deliver(forged)

        // (e) No signature at all: an envelope and payload of a message CTED never published, no proof.
        var unsigned = Deliver()
        let invented = Self.message("TAMPERED-UNSIGNED")
        unsigned.signedEnvelope = try invented.envelope.serializedData()
        unsigned.payload = try invented.payload!.serialized()
        try hostile.send(unsigned)

        // The genuine message again (a replay under its own id: deduplicated), then a second one.
        try hostile.deliver(try sign(genuine))
        let second = Self.message("GENUINE-TWO")
        let last = try hostile.deliver(try sign(second))
        #expect(try await hostile.waitForAcknowledgement(through: last, as: "wg-border"),
                "the node acknowledges refused deliveries too, so a broker does not send them forever")

        let journal = try bus.journal("wg-border")
        #expect(try journal.entries().map(\.messageId) == [genuine.envelope.messageID, second.envelope.messageID])
        #expect(try journal.entries().allSatisfy { if case .verified = $0.signatureState(registry: bus.registry) { true } else { false } })
        let bytes = Self.journalBytes(bus, "wg-border")
        #expect(bytes.range(of: Data("GENUINE-ONE".utf8)) != nil, "the check below can find a marker")
        for marker in ["TAMPERED", "FORGED-DISCLOSURE"] {
            #expect(bytes.range(of: Data(marker.utf8)) == nil, "\(marker) reached the journal file")
        }

        // Why, in the order they came: the node's own record, its log and its metrics.
        #expect(node.deliveryRefusals.map(\.code) == [.unknownSigningKey, .signatureInvalid, .signatureInvalid, .disclosureMismatch,
                                                       .signatureInvalid])
        #expect(node.deliveryRefusals[0].detail.contains("registry's signing key of oct"))
        #expect(node.deliveryRefusals[3].messageId == restricted.envelope.messageID)
        #expect(node.refusedDeliveries == 5)
        let refusals = handler.entries.filter { "\($0.message)" == "refused a delivery" }
        #expect(Set(refusals.compactMap { $0.metadata["code"].map { "\($0)" } })
                == ["UNKNOWN_SIGNING_KEY", "SIGNATURE_INVALID", "DISCLOSURE_MISMATCH"])
        #expect(!handler.entries.contains { "\($0.message) \($0.metadata)".contains("TAMPERED") || "\($0.metadata)".contains("FORGED") },
                "no content of a refused message in the log")
        let samples = MetricsTests.parse(metrics.registry.emitToString())
        for (reason, count) in [("unknown_signing_key", 1.0), ("signature_invalid", 2), ("disclosure_mismatch", 1), ("unsigned", 1), ("clearance", 0)] {
            #expect(MetricsTests.value(samples, "ctbus_node_deliveries_refused_total", ["reason": reason]) == count, "\(reason)")
        }
    }

    @Test("(e) A broker that delivers a sealed message to a node the policy excludes: the node cannot open it, refuses it and says why; nothing of it is journaled")
    func sealedToAnotherNode() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let hostile = try HostileBroker(bus: bus)
        let node = try bus.startNode("wg-border")
        #expect(try await hostile.welcome(as: "wg-border"))
        let message = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct"]),
                                                    text: "TAMPERED-SEALED text for OCT")
        let recipients = try SealingRecipients.decide(message.envelope, originator: "cted", registry: bus.registry)
        #expect(recipients.all.map(\.nodeId) == ["oct"])
        let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: try bus.signingKey(of: "cted"),
                                                sealing: recipients)
        let sequence = try hostile.deliver(signed)
        #expect(try await hostile.waitForAcknowledgement(through: sequence, as: "wg-border"))
        #expect(try bus.journal("wg-border").count() == 0)
        #expect(node.deliveryRefusals.map(\.code) == [.sealedToMismatch])
        #expect(node.deliveryRefusals.first?.detail == "the message is not sealed to this node")
    }

    @Test("A broker that misdirects authentic messages (one released to OCT alone, one under a whole restriction for OCT, restricted disclosures for OCT alone) or strips the disclosures a node is allowed: the node refuses each by the policy it applies to itself, journals nothing of it, and the whole copy sent later is journaled whole")
    func misdirected() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let scene = try await Scene(bus)
        let (hostile, node, sign) = (scene.hostile, scene.node, scene.sign)

        try hostile.deliver(try sign(Self.message("MISDIRECTED-RELEASE", handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]))))
        var whole = SampleMessages.restricted(Self.message("MISDIRECTED-WHOLE", handling: SampleMessages.handling(.confidential, releasableTo: ["compact-wg", "oct"])),
                                              state: "KEN", fields: [], allowed: ["oct"])
        whole.envelope.handling.memberStateRestriction.scope = .whole
        try hostile.deliver(try sign(whole))
        // The whole copy, disclosures included, of a message whose text only OCT may read.
        try hostile.deliver(try sign(SampleMessages.restricted(Self.message("MISDIRECTED-DISCLOSED"), state: "KEN",
                                                               fields: ["recommendation_text"], allowed: ["oct"])))
        // A message whose text wg-border may read, without that text: a copy it must not keep.
        let allowed = SampleMessages.restricted(Self.message("ALLOWED-TEXT"), state: "KEN", fields: ["recommendation_text"], allowed: ["wg-border"])
        let signed = try sign(allowed)
        try hostile.deliver(signed.withholding(["recommendation_text"]), redactedPaths: ["recommendation_text"])
        let last = try hostile.deliver(signed)
        #expect(try await hostile.waitForAcknowledgement(through: last, as: "wg-border"))

        let journal = try bus.journal("wg-border")
        #expect(try journal.entries().map(\.messageId) == [allowed.envelope.messageID])
        #expect(try journal.entries().first?.redactedPaths == [], "journaled whole")
        let bytes = Self.journalBytes(bus, "wg-border")
        #expect(bytes.range(of: Data("ALLOWED-TEXT".utf8)) != nil)
        #expect(bytes.range(of: Data("MISDIRECTED".utf8)) == nil, "a misdirected message reached the journal file")
        #expect(node.deliveryRefusals.map(\.code) == [.notPermitted, .notPermitted, .notPermitted, .notPermitted])
        let details = node.deliveryRefusals.map(\.detail)
        #expect(details[0].contains("releasability list") && details[1].contains("whole-message restriction"))
        #expect(details[2].contains("holds fields") && details[3].contains("lacks fields"), "\(details)")
        #expect(scene.refusals("policy") == 4)
    }

    @Test("A broker that forges revocations (unsigned, signed by another node as itself, naming the originator with another node's key, the reason changed) gets each refused: the message stays listed; the originator's signed revocation is applied, and journal show says when, by whom and why")
    func forgedRevocations() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let scene = try await Scene(bus)
        let (hostile, node, cted) = (scene.hostile, scene.node, scene.cted)
        let message = Self.message("REVOKED-LATER")
        let id = message.envelope.messageID
        try hostile.deliver(try scene.sign(message))
        func carrying(_ revocation: Revocation) -> Deliver {
            var deliver = Deliver()
            deliver.revocation = revocation
            return deliver
        }
        let when = Date(timeIntervalSince1970: 1_796_000_000.25)
        let genuine = try Revocation.signed(messageId: id, reason: "superseded by the 2026 assessment", by: "cted", at: when, with: cted)

        var unsigned = Revocation()
        unsigned.messageID = id
        unsigned.reason = "forged"
        unsigned.revokedBy = "cted"
        try hostile.send(carrying(unsigned))
        let byOther = try Revocation.signed(messageId: id, reason: "forged", by: "wg-cft", with: try bus.signingKey(of: "wg-cft"))
        try hostile.send(carrying(byOther))
        var otherKey = byOther
        otherKey.revokedBy = "cted"
        try hostile.send(carrying(otherKey))
        var changed = genuine
        changed.reason = "the broker's own reason"
        let last = try hostile.send(carrying(changed))
        #expect(try await hostile.waitForAcknowledgement(through: last, as: "wg-border"))

        let journal = try bus.journal("wg-border")
        #expect(try journal.entry(messageId: id)?.revokedAt == nil, "a forged revocation was applied")
        #expect(try journal.entries().map(\.messageId) == [id], "still listed")
        #expect(node.deliveryRefusals.map(\.code).sorted { $0.rawValue < $1.rawValue }
                == [.notPermitted, .unknownSigningKey, .signatureInvalid, .signatureInvalid])
        #expect(scene.refusals("revocation_invalid") == 4)

        let sequence = try hostile.send(carrying(genuine))
        #expect(try await hostile.waitForAcknowledgement(through: sequence, as: "wg-border"))
        let entry = try #require(try journal.entry(messageId: id))
        #expect(entry.revokedAt == when && entry.revokeReason == "superseded by the 2026 assessment")
        let show = try await CommandLineTests.run(["journal", "show", id, "--journal", bus.journalPath("wg-border"), "--registry", bus.folder.appendingPathComponent("registry.json").path])
        #expect(show.errors.contains("revoked by cted at 2026-"), "\(show.errors)")
        #expect(show.errors.contains("superseded by the 2026 assessment") && show.errors.contains("verifies"), "\(show.errors)")
        #expect(try journal.verifySignatures(registry: bus.registry).isIntact)
    }
}

extension HostileBrokerTests {
    @Test("A broker that bends batch proofs (a path from another batch, a swapped index, a root signed by another key, a leaf moved between batches, a path of the wrong shape): the node refuses each as SIGNATURE_INVALID and journals nothing of it; the genuine batches are journaled, one root verified per batch")
    func bentBatchProofs() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let scene = try await Scene(bus)
        let hostile = scene.hostile
        func batch(_ markers: [String], key: Curve25519.Signing.PrivateKey) throws -> [SignedPublication] {
            try SignedPublication.signBatch(markers.map { marker in
                let message = Self.message(marker)
                return (message.envelope, message.payload!, nil)
            }, with: key).map(\.signed)
        }
        let a = try batch(["BATCH-A0", "BATCH-A1", "BATCH-A2"], key: scene.cted)
        let b = try batch(["BATCH-B0", "BATCH-B1", "BATCH-B2"], key: scene.cted)
        // OCT signs a batch whose envelopes name CTED, under CTED's key id.
        var byOct = try batch(["TAMPERED-OCT-ROOT", "TAMPERED-OCT-ROOT-2"], key: try bus.signingKey(of: "oct"))
        byOct[0].proof.keyID = a[0].proof.keyID

        try hostile.deliver(a[0])
        var otherPath = a[1]
        otherPath.proof.batch.path = b[1].proof.batch.path
        try hostile.deliver(otherPath)
        var swapped = a[1]
        swapped.proof.batch.index = 2
        try hostile.deliver(swapped)
        try hostile.deliver(byOct[0])
        var moved = b[2]
        (moved.signedEnvelope, moved.payload, moved.proof.batch.blinder) = (a[2].signedEnvelope, a[2].payload, a[2].proof.batch.blinder)
        try hostile.deliver(moved)
        var short = a[2]
        short.proof.batch.path.removeLast()
        try hostile.deliver(short)
        var last: UInt64 = 0
        for genuine in [a[1], a[2], b[0], b[1], b[2]] { last = try hostile.deliver(genuine) }
        #expect(try await hostile.waitForAcknowledgement(through: last, as: "wg-border"))

        let journal = try bus.journal("wg-border")
        #expect(try journal.entries().map(\.messageId) == (a + b).map { try! Envelope(serializedBytes: $0.signedEnvelope).messageID })
        #expect(try journal.entries().allSatisfy { if case .verified = $0.signatureState(registry: bus.registry) { true } else { false } })
        #expect(Self.journalBytes(bus, "wg-border").range(of: Data("TAMPERED".utf8)) == nil)
        #expect(scene.node.deliveryRefusals.map(\.code) == Array(repeating: .signatureInvalid, count: 5))
        #expect(scene.node.deliveryRefusals.last?.detail.contains("the path has 1 siblings; a batch of its size has 2") == true,
                "\(scene.node.deliveryRefusals.map(\.detail))")
        #expect(scene.refusals("signature_invalid") == 5)
        let samples = MetricsTests.parse(scene.metrics.registry.emitToString())
        #expect(MetricsTests.value(samples, "ctbus_node_batch_roots_total", ["outcome": "verified"]) == 2, "one verification per genuine root")
        #expect(MetricsTests.value(samples, "ctbus_node_batch_roots_total", ["outcome": "reused"]) == 4)
    }
}
