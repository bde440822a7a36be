import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import SwiftProtobuf
import Testing

/// Issue 13, items 2 and 3, the pure parts: disclosures (selective disclosure in the manner of
/// IETF SD-JWT, on protobuf) and the publication signature. Not on the wire yet.
@Suite("Signatures and disclosures")
struct SignatureTests {
    /// One payload of each type with every redactable field set (two activities in the matrix).
    static func samples() throws -> [BusMessage.OneOf_Payload] {
        var recommendation = SampleMessages.recommendation(text: "Strengthen border data sharing").countryVisitRecommendation
        recommendation.technicalAssistanceNeed = "API/PNR training"
        recommendation.resolutionsAssessed = [2178, 2396]
        recommendation.priority = .high
        var report = SampleMessages.missionReport().missionReport
        report.findings = ["finding one", "finding two"]
        report.followUpActions = ["follow up"]
        report.participatingEntities = ["CTED", "UNODC"]
        var matrix = SampleMessages.activityMatrix(answering: ["019a5a2e-4c00-7a3b-8f21-3d4e5f607182"]).activityMatrix
        var second = matrix.activities[0]
        second.title = "Second activity"
        second.budgetUsd = 250_000
        matrix.activities.append(second)
        return [.countryVisitRecommendation(recommendation), .missionReport(report), .activityMatrix(matrix)]
    }

    @Test("Every redactable path can be withheld and disclosed again, alone; a path that is not redactable cannot")
    func everyPath() throws {
        for payload in try Self.samples() {
            let paths = RedactablePaths.paths(for: payload.messageType)
            #expect(!paths.isEmpty)
            for path in paths {
                let (cleared, disclosures) = try Disclosures.split(payload, paths: [path])
                #expect(cleared != payload && cleared == Redactor.redact(payload, paths: [path]), "\(path) was not cleared")
                #expect(!disclosures.isEmpty && disclosures.allSatisfy { $0.path == path }, "\(path)")
                #expect(try Disclosures.apply(disclosures, to: cleared, restricted: [path]) == payload, "\(path)")
            }
        }
        let recommendation = try Self.samples()[0]
        #expect(throws: Disclosures.Failure.unknownPath("recommendation_id")) {
            try Disclosures.split(recommendation, paths: ["recommendation_id"])
        }
    }

    @Test("Split and put back: all disclosures give the whole payload; any subset gives exactly what the Redactor leaves for the rest")
    func roundTrip() throws {
        for payload in try Self.samples() {
            let paths = RedactablePaths.paths(for: payload.messageType).sorted()
            let (withheld, disclosures) = try Disclosures.split(payload, paths: paths)
            #expect(withheld == Redactor.redact(payload, paths: paths))
            #expect(try Disclosures.apply(disclosures, to: withheld, restricted: Set(paths)) == payload, "\(payload.messageType)")
            #expect(Set(disclosures.map(\.salt)).count == disclosures.count, "a salt per disclosure")
            for path in paths {
                // A recipient outside the allowed list gets every disclosure but those of `path`.
                let kept = disclosures.filter { $0.path != path }
                #expect(try Disclosures.apply(kept, to: withheld, restricted: Set(paths)) == Redactor.redact(payload, paths: [path]), "\(path)")
            }
        }
    }

    @Test("A changed disclosure no longer matches its digest; a wrong path, element or value is refused")
    func tampering() throws {
        let payload = try Self.samples()[2]
        let (withheld, disclosures) = try Disclosures.split(payload, paths: ["activities.title"])
        #expect(disclosures.count == 2 && disclosures.map(\.index) == [0, 1])
        let original = disclosures[1]
        let forged = Disclosure(salt: original.salt, path: original.path, index: original.index, value: disclosures[0].value)
        #expect(forged.digest != original.digest)
        #expect(Set(disclosures.map(\.digest)).count == 2)
        let moved = Disclosure(salt: original.salt, path: original.path, index: 7, value: original.value)
        let restricted: Set<String> = ["activities.title"]
        #expect(throws: Disclosures.Failure.indexOutOfRange(path: "activities.title", index: 7)) {
            try Disclosures.apply([moved], to: withheld, restricted: restricted)
        }
        let unknown = Disclosure(salt: original.salt, path: "summary", index: 0, value: original.value)
        #expect(throws: Disclosures.Failure.unknownPath("summary")) { try Disclosures.apply([unknown], to: withheld, restricted: restricted) }
        let garbage = Disclosure(salt: original.salt, path: original.path, index: 0, value: Data([0xFF, 0xFF]))
        #expect(throws: Disclosures.Failure.undecodableValue(path: "activities.title")) {
            try Disclosures.apply([garbage], to: withheld, restricted: restricted)
        }
        #expect(throws: Disclosures.Failure.duplicate(path: "activities.title", index: 1)) {
            try Disclosures.apply([original, original], to: withheld, restricted: restricted)
        }
        // A field the restriction does not withhold, and a value the signed payload holds, are refused.
        let budget = try Disclosures.split(payload, paths: ["activities.budget_usd"]).disclosures[0]
        #expect(throws: Disclosures.Failure.notRestricted("activities.budget_usd")) {
            try Disclosures.apply([budget], to: withheld, restricted: restricted)
        }
        #expect(throws: Disclosures.Failure.notWithheld("activities.budget_usd")) {
            try Disclosures.apply([budget], to: withheld, restricted: ["activities.title", "activities.budget_usd"])
        }
    }

    @Test("The signature covers envelope, payload and every digest: any changed byte or a missing digest fails; the digests' order does not matter")
    func signature() throws {
        let key = Curve25519.Signing.PrivateKey()
        let message = SampleMessages.restricted(SampleMessages.recommendation(), state: "KEN",
                                                fields: ["recommendation_text", "priority"], allowed: ["oct"])
        let envelope = try message.envelope.serializedData()
        let (withheld, disclosures) = try Disclosures.split(try #require(message.payload), paths: ["recommendation_text", "priority"])
        let payload = try withheld.serialized()
        let digests = disclosures.map(\.digest)
        let signature = try PublicationSignature.sign(envelope: envelope, payload: payload, digests: digests, with: key)
        #expect(signature.count == 64)
        #expect(PublicationSignature.verify(signature, envelope: envelope, payload: payload, digests: digests.reversed(), key: key.publicKey))
        #expect(!PublicationSignature.verify(signature, envelope: envelope, payload: payload, digests: Array(digests.dropLast()), key: key.publicKey))
        // Digests are 32 bytes: one cut short and one made longer do not pass for the same bytes.
        let shifted = [digests[0].dropLast(), digests[0].suffix(1) + digests[1]]
        #expect(!PublicationSignature.verify(signature, envelope: envelope, payload: payload, digests: shifted, key: key.publicKey))
        #expect(!PublicationSignature.verify(signature, envelope: envelope, payload: payload, digests: digests,
                                             key: Curve25519.Signing.PrivateKey().publicKey))
        for index in [0, envelope.count / 2, envelope.count - 1] {
            var changed = envelope
            changed[index] ^= 0x01
            #expect(!PublicationSignature.verify(signature, envelope: changed, payload: payload, digests: digests, key: key.publicKey))
        }
        var changedPayload = payload
        changedPayload[payload.count / 2] ^= 0x80
        #expect(!PublicationSignature.verify(signature, envelope: envelope, payload: changedPayload, digests: digests, key: key.publicKey))
        // Moving bytes between envelope and payload changes the signed bytes too (lengths are part of them).
        #expect(!PublicationSignature.verify(signature, envelope: envelope + payload.prefix(1), payload: payload.dropFirst(),
                                             digests: digests, key: key.publicKey))
        let id = PublicationSignature.keyId(key.publicKey)
        #expect(id.count == 16 && id == PublicationSignature.keyId(key.publicKey))
        #expect(MessageKeys.signingPublicKey(MessageKeys.text(key.publicKey.rawRepresentation))?.rawRepresentation == key.publicKey.rawRepresentation)
    }
}

/// Issue 13, item 4, the pure part: sealing a group of bytes to several nodes' sealing keys.
@Suite("Sealing")
struct SealingTests {
    @Test("Each recipient opens what was sealed to it; another node, a changed byte, another message or another recipient's key do not")
    func sealAndOpen() throws {
        let marker = Data("SEALED-MARKER-\(UUID().uuidString)".utf8)
        let oct = Curve25519.KeyAgreement.PrivateKey()
        let cted = Curve25519.KeyAgreement.PrivateKey()
        let stranger = Curve25519.KeyAgreement.PrivateKey()
        let context = Data("019a5a2e-4c00-7a3b-8f21-3d4e5f607182/payload".utf8)
        let group = try SealedBox.seal(marker, to: [("oct", oct.publicKey), ("cted", cted.publicKey)], context: context)
        #expect(group.recipients == ["cted", "oct"])
        #expect(try group.open(as: "oct", with: oct, context: context) == marker)
        #expect(try group.open(as: "cted", with: cted, context: context) == marker)
        #expect(group.ciphertext.range(of: marker) == nil && !group.keys.contains { $0.sealedKey.range(of: marker) != nil },
                "no plaintext in what travels")

        #expect(throws: SealedBox.Failure.notARecipient) { try group.open(as: "wg-border", with: stranger, context: context) }
        #expect(throws: SealedBox.Failure.doesNotOpen) { try group.open(as: "oct", with: stranger, context: context) }
        #expect(throws: SealedBox.Failure.doesNotOpen) { try group.open(as: "oct", with: oct, context: Data("another message".utf8)) }
        // oct's wrapped key presented as cted's: the node id is bound to it.
        var swapped = group
        for index in swapped.keys.indices { swapped.keys[index].nodeID = group.keys[index].nodeID == "oct" ? "cted" : "oct" }
        #expect(throws: SealedBox.Failure.doesNotOpen) { try swapped.open(as: "cted", with: cted, context: context) }
        var changed = group
        changed.ciphertext[changed.ciphertext.count / 2] ^= 0x01
        #expect(throws: SealedBox.Failure.doesNotOpen) {
            try changed.open(as: "oct", with: oct, context: context)
        }
        // Each sealing uses a fresh content key: the same bytes sealed twice differ.
        #expect(try SealedBox.seal(marker, to: [("oct", oct.publicKey)], context: context).ciphertext != group.ciphertext)
    }
}
