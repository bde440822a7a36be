import CTBusBroker
import CTBusJournal
import CTBusMetrics
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import GRDB
import Prometheus
import SwiftProtobuf
import Testing

/// Issue 13, items 2 and 3, over a real broker and real nodes: what the broker refuses, what a
/// redacted copy holds and proves, and what `ctbus journal verify`, `show` and `export` say.
@Suite("Signatures end to end", .serialized, .busSlot)
struct SignatureEndToEndTests {
    static func bytes(of paths: [String]) -> Data {
        paths.reduce(into: Data()) { bytes, path in bytes.append((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()) }
    }

    /// Tests/signatures/verify_export.py (none of our code) on `export`, with `registry`'s keys.
    static func verifyExport(_ export: String, registry: String) async throws -> CommandLineTests.Result {
        try await CommandLineTests.run([CommandLineTests.root.appendingPathComponent("Tests/signatures/verify_export.py").path, registry],
                                 executable: URL(fileURLWithPath: "/usr/bin/python3"), input: export)
    }

    static func journalFiles(_ bus: LocalBus, _ node: String) -> [String] {
        [bus.journalPath(node), bus.journalPath(node) + "-wal"]
    }

    @Test("A partial restriction over a real broker: the withheld text never reaches the working group's journal file, its copy verifies for the fields it holds, and journal verify, show and an independent script on the export say so")
    func redactedCopyProvesItsAuthor() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let marker = "WITHHELD-MARKER-2395"
        let message = SampleMessages.restricted(
            SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct", "wg-border"]),
                                          text: "Recommendation \(marker) on the watch list"),
            state: "KEN", fields: ["recommendation_text"], allowed: ["oct"])
        let id = try bus.publish(message, from: "cted")
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until { try oct.count(messageId: id) == 1 && border.count(messageId: id) == 1 })

        #expect(Self.bytes(of: Self.journalFiles(bus, "oct")).range(of: Data(marker.utf8)) != nil, "the grep below can find the marker")
        #expect(Self.bytes(of: Self.journalFiles(bus, "wg-border")).range(of: Data(marker.utf8)) == nil,
                "the withheld text reached wg-border's journal file")
        let copy = try #require(try border.entry(messageId: id))
        #expect(copy.redactedPaths == ["recommendation_text"])
        #expect(try copy.message().countryVisitRecommendation.recommendationText.isEmpty)
        let ctedKey = PublicationSignature.keyId(try bus.signingKey(of: "cted").publicKey)
        #expect(copy.signatureState(registry: bus.registry) == .verified(originator: "cted", keyId: ctedKey, withheld: ["recommendation_text"], sealed: false))
        #expect(try oct.entry(messageId: id)?.signatureState(registry: bus.registry) == .verified(originator: "cted", keyId: ctedKey, withheld: [], sealed: false))

        try bus.writeConfigurationFiles()
        let config = bus.nodeConfigurationPath("wg-border")
        let verify = try await CommandLineTests.run(["journal", "verify", "--node-config", config])
        #expect(verify.status == 0, "\(verify.output)\(verify.errors)")
        #expect(verify.output.contains("signatures: 1 verify with the originators' keys in the registry (1 redacted copies verify for the fields they hold)"),
                "\(verify.output)")
        let show = try await CommandLineTests.run(["journal", "show", id, "--node-config", config])
        #expect(show.errors.contains("signature: signed by cted with key \(ctedKey); verifies for the fields this copy holds (recommendation_text withheld from this node)"),
                "\(show.errors)")

        // Someone outside the bus checks both exports with the registry's public keys alone.
        let registry = bus.brokerConfiguration.registryFile
        var exports: [String: String] = [:]
        for node in ["oct", "wg-border"] {
            let export = try await CommandLineTests.run(["journal", "export", "--node-config", bus.nodeConfigurationPath(node)])
            #expect(export.status == 0, "\(export.errors)")
            exports[node] = export.output
            let checked = try await Self.verifyExport(export.output, registry: registry)
            #expect(checked.status == 0 && checked.output.contains("ok 1 \(id)"), "\(node): \(checked.output)\(checked.errors)")
        }
        #expect(exports["wg-border"]?.contains(marker) == false)
        // The same script refuses an export whose signed payload, or whose disclosure, was changed.
        let line = try #require(exports["oct"]?.split(separator: "\n").first(where: { $0.contains(id) }).map(String.init))
        var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        var proof = try #require(object["proof"] as? [String: Any])
        let payload = try #require(proof["payload"] as? String)
        proof["payload"] = String(payload.dropLast()) + (payload.hasSuffix("A") ? "B" : "A")
        object["proof"] = proof
        var disclosed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        var disclosedProof = try #require(disclosed["proof"] as? [String: Any])
        var disclosures = try #require(disclosedProof["disclosures"] as? [[String: Any]])
        disclosures[0]["value"] = MessageKeys.text(try {
            var fragment = CountryVisitRecommendation()
            fragment.recommendationText = "A text the broker would like OCT to read"
            return try fragment.serializedData()
        }())
        disclosedProof["disclosures"] = disclosures
        disclosed["proof"] = disclosedProof
        // And one whose message text was edited beside an intact proof.
        var edited = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        var shown = try #require(edited["message"] as? [String: Any])
        var recommendation = try #require(shown["country_visit_recommendation"] as? [String: Any])
        recommendation["recommendation_text"] = "A text nobody signed"
        shown["country_visit_recommendation"] = recommendation
        edited["message"] = shown
        let tampered = try [object, disclosed, edited].map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let refused = try await Self.verifyExport(tampered.joined(separator: "\n") + "\n", registry: registry)
        #expect(refused.status == 1)
        #expect(refused.output.contains("FAIL 1 \(id): the signature does not verify"), "\(refused.output)")
        #expect(refused.output.contains("FAIL 2 \(id): disclosure recommendation_text matches no signed digest"), "\(refused.output)")
        #expect(refused.output.contains("FAIL 3 \(id): the exported content is not the signed one"), "\(refused.output)")
    }

    @Test("The broker refuses a publication whose key, signature or disclosures do not check out (batch paths bent included), with a stable code and the message id; nothing of it is stored or delivered")
    func brokerRefusesBadSignatures() async throws {
        let bus = try await BadInputTests.runningBus()
        defer { bus.shutdown() }
        let client = try await BadInputTests.session(bus, as: BadInputTests.raw)
        let key = try bus.signingKey(of: BadInputTests.raw)
        let before = try bus.broker!.store.messageCount()
        func restricted(_ text: String) -> BusMessage {
            var message = SampleMessages.restricted(
                SampleMessages.recommendation(handling: SampleMessages.handling(.confidential), text: text),
                state: "KEN", fields: ["recommendation_text"], allowed: ["oct"])
            message.envelope.originator = BadInputTests.raw
            return message
        }
        func signed(_ message: BusMessage, with signer: Curve25519.Signing.PrivateKey) throws -> Publish {
            try RawClient.signedPublish(message, with: signer)
        }
        var cases: [(String, Publish, ErrorCode, String?)] = []

        var unknownKey = try signed(restricted("unknown key"), with: key)
        unknownKey.proof.keyID = "00112233aabbccdd"
        cases.append(("unknown key id", unknownKey, .unknownSigningKey, nil))

        var otherKey = try signed(restricted("other key"), with: Curve25519.Signing.PrivateKey())
        otherKey.proof.keyID = PublicationSignature.keyId(key.publicKey)
        cases.append(("another key's signature", otherKey, .signatureInvalid, nil))

        var flipped = try signed(restricted("flipped"), with: key)
        flipped.payload[flipped.payload.count - 2] ^= 0x01
        cases.append(("a flipped payload byte", flipped, .signatureInvalid, nil))

        var forged = try signed(restricted("forged"), with: key)
        forged.proof.disclosures[0].value = Data([0x32, 0x01, 0x58])
        cases.append(("a forged disclosure", forged, .disclosureMismatch, "matches no signed digest"))

        var missing = try signed(restricted("missing"), with: key)
        missing.proof.disclosures = []
        cases.append(("a disclosure left out", missing, .disclosureMismatch, "are missing"))

        var unsigned = try signed(restricted("unsigned"), with: key)
        unsigned.clearProof()
        cases.append(("no proof", unsigned, .signatureInvalid, "unsigned"))

        // Publications signed in a batch, each bent on the way.
        let batch = try SignedPublication.signBatch((0..<3).map { index in
            let message = restricted("batch \(index)")
            return (message.envelope, message.payload!, nil)
        }, with: key).map { signed in
            var publish = Publish()
            (publish.signedEnvelope, publish.payload, publish.proof) = (signed.signed.signedEnvelope, signed.signed.payload, signed.signed.proof)
            return publish
        }
        var swapped = batch[0]
        swapped.proof.batch.index = 1
        cases.append(("a batch path at another index", swapped, .signatureInvalid, "does not verify over the root its path leads to"))
        var longPath = batch[1]
        longPath.proof.batch.path.append(Data(count: 32))
        cases.append(("a batch path one sibling long", longPath, .signatureInvalid, "the path has 3 siblings; a batch of its size has 2"))
        var shortBlinder = batch[2]
        shortBlinder.proof.batch.blinder = Data(count: 16)
        cases.append(("a blinder of 16 bytes", shortBlinder, .signatureInvalid, "blinder is 16 bytes, not 32"))
        var farIndex = batch[2]
        farIndex.proof.batch.index = 9
        cases.append(("an index beyond the batch", farIndex, .signatureInvalid, "index 9 is outside a batch of 3"))

        var versionOne = Publish()
        let old = restricted("version one")
        versionOne.envelope = old.envelope
        versionOne.payload = try old.payload!.serialized()
        cases.append(("a protocol 1 envelope", versionOne, .malformedFrame, "protocol version 1"))

        var ids: [String] = []
        for (name, publish, code, detail) in cases {
            try client.send(.publish(publish))
            let report = try await BadInputTests.expectError(client, code)
            let id = publish.hasEnvelope ? publish.envelope.messageID : try Envelope(serializedBytes: publish.signedEnvelope).messageID
            ids.append(id)
            #expect(report?.messageID == id, "\(name)")
            if let detail { #expect(report?.detail.contains(detail) == true, "\(name): \(report?.detail ?? "")") }
        }
        try await BadInputTests.sentinel(bus)
        #expect(try bus.broker!.store.messageCount() == before + 1, "only the sentinel was stored")
        for id in ids { #expect(try bus.journal("oct").count(messageId: id) == 0) }
    }

    @Test("journal verify re-checks every signature: an entry whose chain is intact but whose signature is not the originator's fails, naming entry and code")
    func verifyFindsForeignSignatures() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let path = bus.journalPath("oct")
        let journal = try NodeJournal(path: path)
        let genuine = SampleMessages.recommendation()
        try journal.recordDelivery(genuine, sequence: 1, signedWith: try bus.signingKey(of: "cted"))
        // Someone who can write the journal file but not CTED's key: the hash chain is unkeyed,
        // so the entry links fine; only the signature tells.
        let planted = SampleMessages.recommendation(text: "A recommendation CTED never made")
        try journal.recordDelivery(planted, sequence: 2, signedWith: NodeJournal.testSigningKey)
        let registry = bus.brokerConfiguration.registryFile

        let unchecked = try await CommandLineTests.run(["journal", "verify", "--journal", path])
        #expect(unchecked.status == 0)
        #expect(unchecked.output.contains("signatures: not checked: name the registry with --registry FILE"), "\(unchecked.output)")

        let checked = try await CommandLineTests.run(["journal", "verify", "--journal", path, "--registry", registry])
        #expect(checked.status == 1)
        #expect(checked.output.contains("intact: 2 entries"), "the chain itself is intact: \(checked.output)")
        #expect(checked.output.contains("SIGNATURE FAILS at entry 2 (message \(planted.envelope.messageID)): UNKNOWN_SIGNING_KEY"),
                "\(checked.output)")
        #expect(!checked.output.contains("entry 1 "))
    }

    @Test("Replacing a node's keys keeps its old signing key as a previous one: journal verify and the independent export check still verify what it signed before; with --compromised the old key is dropped")
    func keyHistory() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let journal = try NodeJournal(path: bus.journalPath("oct"))
        let old = SampleMessages.recommendation()
        try journal.recordDelivery(old, sequence: 1, signedWith: try bus.signingKey(of: "cted"))
        let registry = bus.brokerConfiguration.registryFile
        let keys = bus.folder.appendingPathComponent("new-keys")
        let replaced = try await CommandLineTests.run(["keygen", "cted", "--out", keys.path, "--register-in", registry])
        #expect(replaced.status == 0, "\(replaced.errors)")
        #expect(replaced.output.contains("the old signing key stays as a previous key of cted"), "\(replaced.output)")
        let updated = try NodeRegistry(json: Data(contentsOf: URL(fileURLWithPath: registry)))
        #expect(updated.entry(id: "cted")?.previousSigningKeys.count == 1)
        #expect(updated.signingKey(of: "cted")?.rawRepresentation != bus.registry.signingKey(of: "cted")?.rawRepresentation)

        let verify = try await CommandLineTests.run(["journal", "verify", "--journal", bus.journalPath("oct"), "--registry", registry])
        #expect(verify.status == 0, "\(verify.output)")
        let export = try await CommandLineTests.run(["journal", "export", "--journal", bus.journalPath("oct")])
        let independent = try await Self.verifyExport(export.output, registry: registry)
        #expect(independent.status == 0, "\(independent.output)")

        // A message from the old key dated after its retirement does not verify.
        var late = SampleMessages.recommendation()
        late.envelope.createdAt = .init(date: Date().addingTimeInterval(3_600))
        try journal.recordDelivery(late, sequence: 2, signedWith: try bus.signingKey(of: "cted"))
        let lateVerify = try await CommandLineTests.run(["journal", "verify", "--journal", bus.journalPath("oct"), "--registry", registry])
        #expect(lateVerify.status == 1 && lateVerify.output.contains("retired at"), "\(lateVerify.output)")

        // Compromised: the old key goes, and what it signed no longer verifies.
        let again = try await CommandLineTests.run(["keygen", "cted", "--out", bus.folder.appendingPathComponent("newer-keys").path,
                                              "--register-in", registry, "--compromised"])
        #expect(again.status == 0 && !again.output.contains("stays as a previous key"))
        #expect(try NodeRegistry(json: Data(contentsOf: URL(fileURLWithPath: registry))).entry(id: "cted")?.previousSigningKeys.count == 1,
                "the key retired before stays; the compromised one is not added")
    }

    @Test("journal verify names a column edited beside the hashed bytes (originator, type, classification, subject, created_at), which lists, filters and exports read")
    func verifyFindsEditedColumns() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let edits = [("originator", "'oct'"), ("type", "'MISSION_REPORT'"), ("classification", "'STRICTLY_CONFIDENTIAL'"),
                     ("subject", "'XYZ'"), ("created_at", "created_at - 86400")]
        for (column, value) in edits {
            let path = bus.folder.appendingPathComponent("edited-\(column).sqlite").path
            let journal = try NodeJournal(path: path)
            try journal.recordDelivery(SampleMessages.recommendation(), sequence: 1, signedWith: try bus.signingKey(of: "cted"))
            try journal.recordDelivery(SampleMessages.recommendation(), sequence: 2, signedWith: try bus.signingKey(of: "cted"))
            #expect(try await CommandLineTests.run(["journal", "verify", "--journal", path]).status == 0)
            try await DatabaseQueue(path: path).write { db in try db.execute(sql: "UPDATE entry SET \(column) = \(value) WHERE position = 2") }
            let checked = try await CommandLineTests.run(["journal", "verify", "--journal", path])
            #expect(checked.status == 1)
            #expect(checked.output.contains("BROKEN at entry 2: entry 2: its \(column) disagree with its envelope"), "\(column): \(checked.output)")
        }
    }
}

extension SignatureEndToEndTests {
    @Test("The minimal Python node of PROTOCOL.md 9, written against the spec with pyzmq, protobuf and cryptography, publishes a signed mission report that OCT journals and verifies, and receives and verifies CTED's recommendation and a batch CTED signed with one signature")
    func pythonNodeFromTheSpec() async throws {
        let bus = try LocalBus(nodes: LocalBus.standardNodes + [.init("oct-py", role: .oct, clearance: .confidential)])
        defer { bus.shutdown() }
        try bus.startBroker()
        for node in ["oct", "cted"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        let script = CommandLineTests.root.appendingPathComponent("Tests/python/minimal_node.py").path
        let example = try String(contentsOf: CommandLineTests.root.appendingPathComponent("Schemas/examples/mission-report.json"), encoding: .utf8)
        // The Python node runs until its publication is acknowledged and one message arrived (at
        // most 60 s); CTED publishes once the broker shows the Python node's session.
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = [script, bus.folder.path, "oct-py", bus.endpoint, "60", "4"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        python.standardInput = input
        python.standardOutput = output
        python.standardError = errors
        try python.run()
        input.fileHandleForWriting.write(Data(example.utf8))
        try input.fileHandleForWriting.close()
        #expect(await Wait.until(seconds: 30) { bus.broker?.status.snapshot["oct-py"]?.connected == true }, "the Python node never opened a session")
        let recommendation = try bus.publish(SampleMessages.recommendation(), from: "cted")
        let batch = try bus.publish([SampleMessages.recommendation(), SampleMessages.missionReport(), SampleMessages.recommendation()], from: "cted")
        let ctedJournal = try bus.journal("cted")
        let proofs = try batch.map { try #require(try ctedJournal.entry(messageId: $0)).signed().proof }
        #expect(proofs.allSatisfy { $0.hasBatch && $0.batch.leafCount == 3 } && Set(proofs.map(\.signature)).count == 1)
        python.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let result = try #require((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any], "\(text)\(stderr)")
        #expect(python.terminationStatus == 0)
        #expect(result["acknowledged"] as? Bool == true, "\(text)")
        #expect(Set(result["received"] as? [String] ?? []) == Set([recommendation] + batch), "\(text)")
        #expect((result["refused"] as? [Int])?.isEmpty == true, "\(text)")
        let published = try #require(result["published"] as? String)
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try oct.count(messageId: published) == 1 })
        let entry = try #require(try oct.entry(messageId: published))
        guard case .verified(let originator, _, _, _) = entry.signatureState(registry: bus.registry) else {
            Issue.record("the Python node's signature does not verify"); return
        }
        #expect(originator == "oct-py")
    }
}

extension SignatureEndToEndTests {
    @Test("A batch over a real broker: the broker and the recipient each verify its root once and hash the rest, as their metrics say; every copy is journaled and verifies alone")
    func batchVerifiedOncePerParty() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let brokerMetrics = MetricsEndpoint(), octMetrics = MetricsEndpoint()
        try bus.startBroker(metrics: brokerMetrics.factory)
        try bus.startNode("oct", metrics: octMetrics.factory)
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        let ids = try bus.publish((0..<4).map { _ in SampleMessages.recommendation() }, from: "cted")
        let oct = try bus.journal("oct")
        #expect(try await Wait.until { try ids.allSatisfy { try oct.count(messageId: $0) == 1 } })
        for id in ids {
            guard case .verified? = try oct.entry(messageId: id)?.signatureState(registry: bus.registry) else {
                Issue.record("\(id) does not verify in OCT's journal"); continue
            }
        }
        for (party, endpoint, name) in [("broker", brokerMetrics, "ctbus_broker_batch_roots_total"), ("oct", octMetrics, "ctbus_node_batch_roots_total")] {
            let samples = MetricsTests.parse(endpoint.registry.emitToString())
            #expect(MetricsTests.value(samples, name, ["outcome": "verified"]) == 1, "\(party)")
            #expect(MetricsTests.value(samples, name, ["outcome": "reused"]) == 3, "\(party)")
        }
    }
}
