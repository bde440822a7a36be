import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import SwiftProtobuf
import Testing

/// Issue 13, item 4, over a real broker and real nodes: sealed messages cross the broker as
/// ciphertext, and combine with a partial restriction.
@Suite("Sealed messages", .serialized, .busSlot)
struct SealedTests {
    /// The standard nodes, and a second node cleared STRICTLY_CONFIDENTIAL in OCT's group ("oct-field").
    static func bus() throws -> LocalBus {
        try LocalBus(nodes: LocalBus.standardNodes + [.init("oct-field", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"])])
    }

    static func bytes(_ paths: [String]) -> Data {
        paths.reduce(into: Data()) { bytes, path in bytes.append((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()) }
    }

    /// Wraps `key` for `node` in `box` with HPKE, as a publisher does (bound to `context` and the node).
    static func wrap(_ key: Data, for node: String, in box: inout SealedBox, context: Data, bus: LocalBus) throws {
        let index = try #require(box.keys.firstIndex { $0.nodeID == node })
        var sender = try HPKE.Sender(recipientKey: try #require(bus.registry.sealingKey(of: node)),
                                     ciphersuite: .Curve25519_SHA256_ChachaPoly, info: context)
        box.keys[index].sealedKey = try sender.seal(key, authenticating: Data(node.utf8))
        box.keys[index].encapsulatedKey = sender.encapsulatedKey
    }

    /// Signs `content` as CTED's payload of `signed` and publishes it from a raw session as cted;
    /// true once the broker acknowledged it.
    static func publishAsCted(_ signed: SignedPublication, content: SealedContent, bus: LocalBus) async throws -> Bool {
        var signed = signed
        signed.payload = try Canonical.encode(content)
        signed.proof.signature = try PublicationSignature.sign(envelope: signed.signedEnvelope, payload: signed.payload,
                                                               digests: signed.proof.digests, with: try bus.signingKey(of: "cted"))
        let client = try await BadInputTests.session(bus, as: "cted")
        var publish = Publish()
        publish.signedEnvelope = signed.signedEnvelope
        publish.payload = signed.payload
        publish.proof = signed.proof
        try client.send(.publish(publish))
        if case .publishAck = try await client.receiveReply() { return true }
        return false
    }

    @Test("A publisher that wraps another content key for one recipient, to tell it something else under the same signature: the broker cannot tell and stores it; that recipient refuses it before decrypting (the key is not the committed one) and journals nothing; the other journals the committed content")
    func equivocatingPublisher() async throws {
        let bus = try Self.bus()
        defer { bus.shutdown() }
        try bus.startBroker()
        let oct = try bus.startNode("oct")
        let field = try bus.startNode("oct-field")
        let message = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["un-secretariat"]),
                                                    text: "The programme is on track and fully funded")
        let cted = try bus.signingKey(of: "cted")
        let recipients = try SealingRecipients.decide(message.envelope, originator: "cted", registry: bus.registry)
        #expect(recipients.all.map(\.nodeId) == ["oct", "oct-field"])
        let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: cted, sealing: recipients)
        // oct-field gets a key of its own. With a ciphertext built to open under both keys (ChaCha20-
        // Poly1305 allows it) it would read another text; the node refuses before it decrypts, so
        // the ciphertext here need not be one.
        var content = try SealedContent(serializedBytes: signed.payload)
        try Self.wrap(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }, for: "oct-field", in: &content.payload,
                      context: SealedBox.context(messageId: message.envelope.messageID, group: "payload"), bus: bus)
        await #expect(try Self.publishAsCted(signed, content: content, bus: bus), "the broker stores it")

        let id = message.envelope.messageID
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: id) == 1 && field.refusedDeliveries == 1 })
        #expect(try bus.journal("oct-field").count(messageId: id) == 0)
        #expect(field.deliveryRefusals.map(\.code) == [.sealInvalid])
        #expect(field.deliveryRefusals.first?.detail.contains("other than the one its signed commitment names") == true)
        #expect(oct.refusedDeliveries == 0)
        #expect(try bus.journal("oct").entry(messageId: id)?.message().countryVisitRecommendation.recommendationText
                == "The programme is on track and fully funded")
    }

    @Test("A real two-key ciphertext (Tests/signatures/salamander.py: it opens, tag and all, under two keys to two texts), one key wrapped for each recipient under one signature: the broker stores it; the recipient whose key is not the committed one refuses before decrypting; nothing is journaled as a message two nodes could read differently")
    func invisibleSalamander() async throws {
        let bus = try Self.bus()
        defer { bus.shutdown() }
        try bus.startBroker()
        let oct = try bus.startNode("oct")
        let field = try bus.startNode("oct-field")
        let message = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["un-secretariat"]))
        let cted = try bus.signingKey(of: "cted")
        let recipients = try SealingRecipients.decide(message.envelope, originator: "cted", registry: bus.registry)
        let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: cted, sealing: recipients)
        let context = SealedBox.context(messageId: message.envelope.messageID, group: "payload")
        let script = CommandLineTests.root.appendingPathComponent("Tests/signatures/salamander.py").path
        let made = try await CommandLineTests.run([script], executable: URL(fileURLWithPath: "/usr/bin/python3"),
                                            input: context.map { String(format: "%02x", $0) }.joined())
        #expect(made.status == 0, "\(made.errors)")
        let values = try #require(try JSONSerialization.jsonObject(with: Data(made.output.utf8)) as? [String: String])
        func bytes(_ name: String) throws -> Data {
            let hex = Array(try #require(values[name]).utf8)
            return Data(stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)! })
        }
        let (key1, key2, ciphertext) = (try bytes("key1"), try bytes("key2"), try bytes("ciphertext"))
        // Without a commitment, both recipients would read a valid, different plaintext.
        let box = try ChaChaPoly.SealedBox(combined: ciphertext)
        let text1 = try ChaChaPoly.open(box, using: SymmetricKey(data: key1), authenticating: context)
        let text2 = try ChaChaPoly.open(box, using: SymmetricKey(data: key2), authenticating: context)
        #expect(text1 != text2)

        var content = try SealedContent(serializedBytes: signed.payload)
        content.payload.ciphertext = ciphertext
        content.payload.keyCommitment = SealedBox.keyCommitment(key1, context: context)
        try Self.wrap(key1, for: "oct", in: &content.payload, context: context, bus: bus)
        try Self.wrap(key2, for: "oct-field", in: &content.payload, context: context, bus: bus)
        await #expect(try Self.publishAsCted(signed, content: content, bus: bus), "the broker stores it")

        let id = message.envelope.messageID
        #expect(await Wait.until { field.refusedDeliveries == 1 && oct.refusedDeliveries == 1 })
        #expect(field.deliveryRefusals.map(\.code) == [.sealInvalid])
        #expect(field.deliveryRefusals.first?.detail.contains("other than the one its signed commitment names") == true)
        // The committed key opens random bytes here, which are no recommendation: refused too.
        #expect(oct.deliveryRefusals.count == 1 && [.malformedFrame, .nonCanonical].contains(oct.deliveryRefusals[0].code))
        #expect(try bus.journal("oct").count(messageId: id) == 0 && bus.journal("oct-field").count(messageId: id) == 0)
    }

    @Test("A registry file that no longer reads: publishing a sealed message through the node fails naming the file, nothing is queued (no fallback to the copy read at start); an unsealed one still goes")
    func unreadableRegistryWhenSealing() async throws {
        let bus = try Self.bus()
        defer { bus.shutdown() }
        try bus.startBroker()
        let cted = try bus.startNode("cted")
        let registryFile = bus.brokerConfiguration.registryFile
        try Data("{ not a registry".utf8).write(to: URL(fileURLWithPath: registryFile))
        let sealed = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct"]))
        do {
            _ = try cted.publish([sealed])
            Issue.record("a sealed message was queued with a registry that does not read")
        } catch {
            #expect("\(error)".contains(registryFile), "\(error)")
        }
        #expect(try bus.journal("cted").count() == 0)
        _ = try cted.publish([SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]))])
        #expect(try bus.journal("cted").count() == 1)
    }

    @Test("A sealed STRICTLY_CONFIDENTIAL message: the broker's store holds no plaintext of it (while it holds an unsealed one's), OCT reads it whole, the other recipient without the part restricted to OCT, both copies verify and say they crossed sealed")
    func sealedAcrossTheBroker() async throws {
        let bus = try Self.bus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let sealedMarker = "SEALED-MARKER-2395"
        let plainMarker = "PLAIN-MARKER-2395"
        let sealed = SampleMessages.restricted(
            SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["un-secretariat"]),
                                          text: "Recommendation \(sealedMarker) on watch lists"),
            state: "KEN", fields: ["recommendation_text"], allowed: ["oct"])
        #expect(sealed.envelope.handling.sealed)
        let plain = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]),
                                                  text: "Recommendation \(plainMarker)")
        let sealedId = try bus.publish(sealed, from: "cted")
        let plainId = try bus.publish(plain, from: "cted")
        let oct = try bus.journal("oct")
        let field = try bus.journal("oct-field")
        #expect(try await Wait.until { try oct.count(messageId: sealedId) == 1 && oct.count(messageId: plainId) == 1 && field.count(messageId: sealedId) == 1 })

        let store = bus.brokerConfiguration.storePath
        let stored = Self.bytes([store, store + "-wal"])
        #expect(stored.range(of: Data(plainMarker.utf8)) != nil, "the unsealed message's text is in the store: the check can fail")
        #expect(stored.range(of: Data(sealedMarker.utf8)) == nil, "the sealed message's text reached the broker's store")
        #expect(Self.bytes([bus.journalPath("oct"), bus.journalPath("oct") + "-wal"]).range(of: Data(sealedMarker.utf8)) != nil)
        #expect(Self.bytes([bus.journalPath("oct-field"), bus.journalPath("oct-field") + "-wal"]).range(of: Data(sealedMarker.utf8)) == nil)

        let ctedKey = PublicationSignature.keyId(try bus.signingKey(of: "cted").publicKey)
        let whole = try #require(try oct.entry(messageId: sealedId))
        #expect(try whole.message().countryVisitRecommendation.recommendationText.contains(sealedMarker))
        #expect(whole.signatureState(registry: bus.registry) == .verified(originator: "cted", keyId: ctedKey, withheld: [], sealed: true))
        let partial = try #require(try field.entry(messageId: sealedId))
        #expect(partial.redactedPaths == ["recommendation_text"])
        #expect(partial.signatureState(registry: bus.registry)
                == .verified(originator: "cted", keyId: ctedKey, withheld: ["recommendation_text"], sealed: true))
        #expect(try bus.journal("cted").entry(messageId: sealedId)?.signatureState(registry: bus.registry)
                == .verified(originator: "cted", keyId: ctedKey, withheld: [], sealed: true), "the publisher's own copy checks too")
        // Nobody else got it; the audit names the recipients as for any message.
        for node in ["wg-border", "wg-cft", "wg-rights"] { #expect(try bus.journal(node).count(messageId: sealedId) == 0) }
        let audit = try #require(try bus.broker!.store.audit(messageId: sealedId))
        #expect(Set(audit.entries.filter { $0.outcome != .refused }.map(\.nodeId)) == ["oct", "oct-field"])

        // A node added later, entitled today, asks for its backlog: the sealed message was sealed
        // to others, so it is left out (it could never open it); the unsealed one comes.
        let open = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try oct.count(messageId: open) == 1 })
        try bus.addNode(.init("oct-late", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"]))
        #expect(ConfidentialityPolicy.decide(sealed.envelope, originator: "cted", for: bus.registry.entry(id: "oct-late")!.profile).isDelivered)
        bus.stopBroker()
        try bus.startBroker()
        try bus.startNode("oct-late")
        let late = try bus.journal("oct-late")
        #expect(try await Wait.until { try late.count(messageId: open) == 1 && bus.broker!.store.queueDepth(for: "oct-late") == 0 })
        #expect(try late.count(messageId: sealedId) == 0)
        #expect(bus.node("oct-late")?.deliveryRefusals.isEmpty == true)

        try bus.writeConfigurationFiles()
        let verify = try await CommandLineTests.run(["journal", "verify", "--node-config", bus.nodeConfigurationPath("oct-field")])
        #expect(verify.status == 0 && verify.output.contains("signatures: 2 verify"), "\(verify.output)\(verify.errors)")
        // The exports check out with the registry's public keys alone, the sealed content opened
        // with the content keys they carry.
        for node in ["oct", "oct-field", "cted"] {
            let export = try await CommandLineTests.run(["journal", "export", "--node-config", bus.nodeConfigurationPath(node)])
            let checked = try await SignatureEndToEndTests.verifyExport(export.output, registry: bus.brokerConfiguration.registryFile)
            #expect(checked.status == 0 && checked.output.contains(" \(sealedId)"), "\(node): \(checked.output)\(checked.errors)")
        }
        let show = try await CommandLineTests.run(["journal", "show", sealedId, "--node-config", bus.nodeConfigurationPath("oct")])
        #expect(show.errors.contains("signature: signed by cted with key \(ctedKey); verifies; crossed the broker sealed"), "\(show.errors)")
    }

    @Test("The broker refuses a sealed publication sealed to a node the policy excludes, or missing a recipient, and a STRICTLY_CONFIDENTIAL one that is not sealed; nothing is stored")
    func brokerChecksTheSealedToSet() async throws {
        let bus = try await BadInputTests.runningBus()
        defer { bus.shutdown() }
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw)
        let key = try bus.signingKey(of: BadInputTests.raw)
        let before = try bus.broker!.store.messageCount()
        func message() -> BusMessage {
            var message = SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct"]))
            message.envelope.originator = BadInputTests.raw
            return message
        }
        func sealed(_ message: BusMessage, to nodes: [String]) throws -> Publish {
            let recipients = nodes.map { (nodeId: $0, key: bus.registry.sealingKey(of: $0)!) }
            return Publish(try SignedPublication.sign(message.envelope, payload: message.payload!, with: key,
                                                      sealing: SealingRecipients(all: recipients, whole: recipients)))
        }
        var ids: [String] = []
        for (nodes, missing) in [(["oct", "wg-rights"], "not entitled: wg-rights"), ([], "missing: oct")] {
            let outgoing = message()
            ids.append(outgoing.envelope.messageID)
            try client.send(.publish(try sealed(outgoing, to: nodes)))
            let report = try await BadInputTests.expectError(client, .sealedToMismatch)
            #expect(report?.messageID == outgoing.envelope.messageID)
            #expect(report?.detail.contains(missing) == true, "\(report?.detail ?? "")")
        }
        var unsealed = message()
        unsealed.envelope.handling.sealed = false
        ids.append(unsealed.envelope.messageID)
        try client.publish(unsealed)
        await #expect(try BadInputTests.expectError(client, .validationFailed)?.detail.contains("envelope.handling.sealed") == true)
        let fine = message()
        try client.send(.publish(try sealed(fine, to: ["oct"])))
        guard case .publishAck(let ack) = try await client.receiveReply() else { Issue.record("no PublishAck"); return }
        #expect(ack.messageID == fine.envelope.messageID && ack.recipientCount == 1)
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: fine.envelope.messageID) == 1 })
        #expect(try bus.broker!.store.messageCount() == before + 1)
        for id in ids { #expect(try bus.journal("oct").count(messageId: id) == 0) }
    }
}
