import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import SwiftProtobuf
import Testing

/// The one check of a signed publication that the broker, every recipient and `journal verify`
/// run (`SignedPublication.verify`): what passes, and the stable code of each way to fail.
@Suite("Signed publications")
struct SignedPublicationTests {
    /// Fixed keys (swift-crypto's keys are not Sendable, so no shared random ones).
    static var cted: Curve25519.Signing.PrivateKey { try! .init(rawRepresentation: Data(repeating: 1, count: 32)) }
    static var oct: Curve25519.Signing.PrivateKey { try! .init(rawRepresentation: Data(repeating: 2, count: 32)) }

    static func keys(_ id: String) -> Curve25519.Signing.PublicKey? {
        switch id {
        case "cted": cted.publicKey
        case "oct": oct.publicKey
        default: nil
        }
    }

    /// A recommendation from CTED whose text and priority are restricted to OCT.
    static func restricted() -> BusMessage {
        var message = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential), text: "RESTRICTED-TEXT")
        message.countryVisitRecommendation.priority = .high
        return SampleMessages.restricted(message, state: "KEN", fields: ["recommendation_text", "priority"], allowed: ["oct"])
    }

    static func sign(_ message: BusMessage, with key: Curve25519.Signing.PrivateKey = cted) throws -> SignedPublication {
        try SignedPublication.sign(message.envelope, payload: message.payload!, with: key)
    }

    static func code(_ body: () throws(BusError) -> VerifiedPublication) -> ErrorCode? {
        do {
            _ = try body()
            return nil
        } catch {
            return error.code
        }
    }

    @Test("Signed and checked whole: the payload comes back entire, nothing withheld, the key named")
    func whole() throws {
        let message = Self.restricted()
        let signed = try Self.sign(message)
        #expect(signed.proof.disclosures.count == 2 && signed.proof.digests.count == 2)
        #expect(!String(decoding: signed.payload, as: UTF8.self).contains("RESTRICTED-TEXT"))
        let verified = try signed.verify(signingKey: Self.keys, originator: "cted", whole: true)
        #expect(verified.payload == message.payload)
        #expect(verified.withheldPaths.isEmpty)
        #expect(verified.keyId == PublicationSignature.keyId(Self.cted.publicKey))
    }

    @Test("A copy without the restricted disclosures still verifies, holds exactly what the Redactor leaves, and says what is withheld")
    func redactedCopy() throws {
        let message = Self.restricted()
        let copy = try Self.sign(message).withholding(["recommendation_text", "priority"])
        let verified = try copy.verify(signingKey: Self.keys)
        #expect(verified.payload == Redactor.redact(message.payload!, paths: ["recommendation_text", "priority"]))
        #expect(verified.withheldPaths == ["priority", "recommendation_text"])
        #expect(try !copy.proof.serializedData().contains(Data("RESTRICTED-TEXT".utf8)))
        // The broker's check wants every disclosure.
        #expect(Self.code { () throws(BusError) in try copy.verify(signingKey: Self.keys, whole: true) } == .disclosureMismatch)
    }

    @Test("Each way to tamper has its code: unknown key, another originator, a changed byte, a forged, extra or repeated disclosure, a restricted value left in the signed payload")
    func tampering() throws {
        let signed = try Self.sign(Self.restricted())
        let verify = { (candidate: SignedPublication) in Self.code { () throws(BusError) in try candidate.verify(signingKey: Self.keys) } }

        var unknownKey = signed
        unknownKey.proof.keyID = "0000000000000000"
        #expect(verify(unknownKey) == .unknownSigningKey)

        // Signed by OCT's key while the envelope names CTED: the key is not CTED's.
        let byOther = try Self.sign(Self.restricted(), with: Self.oct)
        #expect(verify(byOther) == .unknownSigningKey)

        // The originator rewritten (OCT's key id put in as well): the signature no longer covers it.
        var envelope = try Envelope(serializedBytes: signed.signedEnvelope)
        envelope.originator = "oct"
        var rewritten = signed
        rewritten.signedEnvelope = try envelope.serializedData()
        rewritten.proof.keyID = PublicationSignature.keyId(Self.oct.publicKey)
        #expect(verify(rewritten) == .signatureInvalid)
        #expect(Self.code { () throws(BusError) in try signed.verify(signingKey: Self.keys, originator: "oct") } == .notPermitted)

        var flipped = signed
        flipped.payload[flipped.payload.count / 2] ^= 0x01
        #expect(verify(flipped) == .signatureInvalid)

        var newId = try Envelope(serializedBytes: signed.signedEnvelope)
        newId.messageID = MessageID.generate()
        var replayed = signed
        replayed.signedEnvelope = try newId.serializedData()
        #expect(verify(replayed) == .signatureInvalid)

        var unsigned = signed
        unsigned.proof.signature = Data()
        #expect(verify(unsigned) == .signatureInvalid)

        var forged = signed
        forged.proof.disclosures[0].value = try {
            var fragment = CountryVisitRecommendation()
            fragment.recommendationText = "A forged text"
            return try fragment.serializedData()
        }()
        #expect(verify(forged) == .disclosureMismatch)

        var repeated = signed
        repeated.proof.disclosures.append(repeated.proof.disclosures[0])
        #expect(verify(repeated) == .disclosureMismatch)

        // A publisher that leaves a restricted value in the payload it signs.
        let message = Self.restricted()
        var leaky = try Self.sign(message)
        leaky.payload = try message.payload!.serialized()
        leaky.proof.signature = try PublicationSignature.sign(envelope: leaky.signedEnvelope, payload: leaky.payload,
                                                              digests: leaky.proof.digests, with: Self.cted)
        #expect(verify(leaky) == .disclosureMismatch)

        // Digests that do not match the restriction (one value signed without its disclosure digest).
        var short = signed
        short.proof.digests.removeLast()
        short.proof.disclosures.removeAll { !short.proof.digests.contains($0.digest) }
        short.proof.signature = try PublicationSignature.sign(envelope: short.signedEnvelope, payload: short.payload,
                                                              digests: short.proof.digests, with: Self.cted)
        #expect(verify(short) == .disclosureMismatch)
    }

    /// `signed` with its signature made again over what it now holds (a publisher that signs
    /// whatever bytes it likes), the digests recomputed from its disclosures when `digests`.
    static func resigned(_ signed: SignedPublication, digests: Bool = false) throws -> SignedPublication {
        var copy = signed
        if digests { copy.proof.digests = copy.proof.disclosures.map(\.digest) }
        copy.proof.signature = try PublicationSignature.sign(envelope: copy.signedEnvelope, payload: copy.payload,
                                                             digests: copy.proof.digests, with: cted)
        return copy
    }

    /// A length-delimited protobuf field (wire type 2) holding `text` (under 128 bytes).
    static func field(_ number: UInt32, _ text: String) -> Data {
        var tag = number << 3 | 2
        var bytes = Data()
        while tag >= 0x80 {
            bytes.append(UInt8(tag & 0x7f) | 0x80)
            tag >>= 7
        }
        bytes.append(UInt8(tag))
        return bytes + Data([UInt8(text.utf8.count)]) + Data(text.utf8)
    }

    @Test("One encoding per signature: a restricted value encoded before an empty one, a value in an unknown field, fields out of order, an envelope with an extra field: NON_CANONICAL, though each decodes to a message that looks right")
    func canonicalOnly() throws {
        let signed = try Self.sign(Self.restricted())
        let verify = { (candidate: SignedPublication) in Self.code { () throws(BusError) in try candidate.verify(signingKey: Self.keys) } }
        #expect(verify(signed) == nil)

        // recommendation_text (field 6) holds the value, then an empty string: the last one wins when decoded.
        var twice = signed
        twice.payload += Self.field(6, "RESTRICTED-TEXT") + Self.field(6, "")
        let decoded = try CountryVisitRecommendation(serializedBytes: twice.payload)
        #expect(decoded.recommendationText.isEmpty, "decoded, the field looks withheld")
        #expect(verify(try Self.resigned(twice)) == .nonCanonical)

        var unknown = signed
        unknown.payload += Self.field(99, "RESTRICTED-TEXT")
        #expect(verify(try Self.resigned(unknown)) == .nonCanonical)

        // The same fields, the last one moved first.
        let payload = try CountryVisitRecommendation(serializedBytes: signed.payload)
        var last = CountryVisitRecommendation()
        last.resolutionsAssessed = payload.resolutionsAssessed
        var rest = payload
        rest.resolutionsAssessed = []
        var reordered = signed
        reordered.payload = try last.serializedData() + rest.serializedData()
        #expect(try CountryVisitRecommendation(serializedBytes: reordered.payload) == payload)
        #expect(verify(try Self.resigned(reordered)) == .nonCanonical)

        var envelope = signed
        envelope.signedEnvelope += Self.field(99, "hidden")
        #expect(verify(try Self.resigned(envelope)) == .nonCanonical)
    }

    @Test("A disclosure carries exactly its field, canonically: a fragment that also sets another field, or hides one in an unknown field, is refused")
    func disclosureFragments() throws {
        let signed = try Self.sign(Self.restricted())
        let verify = { (candidate: SignedPublication) in Self.code { () throws(BusError) in try candidate.verify(signingKey: Self.keys) } }
        let index = try #require(signed.proof.disclosures.firstIndex { $0.path == "recommendation_text" })

        var more = signed
        var fragment = try CountryVisitRecommendation(serializedBytes: more.proof.disclosures[index].value)
        fragment.technicalAssistanceNeed = "a value no digest of its own covers"
        more.proof.disclosures[index].value = try fragment.serializedData()
        #expect(verify(try Self.resigned(more, digests: true)) == .disclosureMismatch)

        var hidden = signed
        hidden.proof.disclosures[index].value += Self.field(99, "hidden")
        #expect(verify(try Self.resigned(hidden, digests: true)) == .nonCanonical)

        #expect(verify(try Self.resigned(signed, digests: true)) == nil, "re-signing alone changes nothing")
    }

    @Test("A retired signing key still verifies what was created before it was retired, and nothing created after; a revocation likewise")
    func previousKeys() throws {
        let retiredAt = Date(timeIntervalSince1970: 1_800_000_000)
        let previous: PreviousKeyLookup = { node, keyId in
            node == "cted" && keyId == PublicationSignature.keyId(Self.oct.publicKey) ? (Self.oct.publicKey, retiredAt) : nil
        }
        // CTED's current key is `cted`; `oct` stands for the key it signed with before.
        func signed(at date: Date) throws -> SignedPublication {
            var message = Self.restricted()
            message.envelope.createdAt = .init(date: date)
            return try Self.sign(message, with: Self.oct)
        }
        let before = try signed(at: retiredAt.addingTimeInterval(-60))
        #expect(Self.code { () throws(BusError) in try before.verify(signingKey: Self.keys) } == .unknownSigningKey, "without the history")
        #expect(try before.verify(signingKey: Self.keys, previousKey: previous).keyId == PublicationSignature.keyId(Self.oct.publicKey))
        let after = try signed(at: retiredAt.addingTimeInterval(1))
        #expect(Self.code { () throws(BusError) in try after.verify(signingKey: Self.keys, previousKey: previous) } == .unknownSigningKey)

        let early = try Revocation.signed(messageId: MessageID.generate(), reason: "r", by: "cted", at: retiredAt.addingTimeInterval(-1), with: Self.oct)
        #expect(try early.verify(signingKey: Self.keys, previousKey: previous) == PublicationSignature.keyId(Self.oct.publicKey))
        let late = try Revocation.signed(messageId: MessageID.generate(), reason: "r", by: "cted", at: retiredAt, with: Self.oct)
        #expect(throws: BusError.self) { try late.verify(signingKey: Self.keys, previousKey: previous) }
    }

    @Test("An activity matrix restricts budgets per activity: one disclosure per activity, each withheld alike")
    func perActivity() throws {
        var message = SampleMessages.activityMatrix(answering: [MessageID.generate()])
        message.activityMatrix.activities.append(message.activityMatrix.activities[0])
        message.activityMatrix.activities[1].budgetUsd = 999_999
        message = SampleMessages.restricted(message, state: "KEN", fields: ["activities.budget_usd"], allowed: ["cted"])
        let signed = try Self.sign(message, with: Self.oct)
        #expect(signed.proof.disclosures.map(\.index) == [0, 1])
        let copy = try signed.withholding(["activities.budget_usd"]).verify(signingKey: Self.keys)
        guard case .activityMatrix(let matrix) = copy.payload else { Issue.record("not a matrix"); return }
        #expect(matrix.activities.allSatisfy { $0.budgetUsd == 0 })
        #expect(copy.withheldPaths == ["activities.budget_usd"])
    }
}

@Suite("Sealed publications")
struct SealedPublicationTests {
    static var oct: Curve25519.KeyAgreement.PrivateKey { try! .init(rawRepresentation: Data(repeating: 3, count: 32)) }
    static var other: Curve25519.KeyAgreement.PrivateKey { try! .init(rawRepresentation: Data(repeating: 4, count: 32)) }

    /// STRICTLY_CONFIDENTIAL from CTED to OCT and another node, its text restricted to OCT.
    static func message() -> BusMessage {
        SampleMessages.restricted(
            SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential, releasableTo: ["oct", "other"]),
                                          text: "SEALED-TEXT for OCT only"),
            state: "KEN", fields: ["recommendation_text"], allowed: ["oct"])
    }

    static func sealed() throws -> (SignedPublication, Data?) {
        let recipients = SealingRecipients(all: [("oct", oct.publicKey), ("other", other.publicKey)], whole: [("oct", oct.publicKey)])
        return try SignedPublication.signSealed(message().envelope, payload: message().payload!, with: SignedPublicationTests.cted,
                                                sealing: recipients)
    }

    @Test("Sealed: the bytes that travel hold no plaintext; the allowed recipient opens everything, the other the rest, a stranger nothing; the content keys a journal keeps check the copy again")
    func openings() throws {
        let (signed, contentKeys) = try Self.sealed()
        #expect(signed.payload.range(of: Data("SEALED-TEXT".utf8)) == nil && signed.payload.range(of: Data("KEN".utf8)) == nil)
        #expect(signed.proof.disclosures.isEmpty && signed.proof.digests.count == 1)
        let keys = SignedPublicationTests.keys
        let atOct = try signed.verify(signingKey: keys, opening: .recipient(nodeId: "oct", key: Self.oct))
        #expect(atOct.sealed && atOct.withheldPaths.isEmpty)
        #expect(atOct.payload == Self.message().payload)
        let atOther = try signed.verify(signingKey: keys, opening: .recipient(nodeId: "other", key: Self.other))
        #expect(atOther.withheldPaths == ["recommendation_text"])
        #expect(atOther.payload == Redactor.redact(Self.message().payload!, paths: ["recommendation_text"]))
        let stranger = SignedPublicationTests.code { () throws(BusError) in
            try signed.verify(signingKey: keys, opening: .recipient(nodeId: "wg-rights", key: Curve25519.KeyAgreement.PrivateKey()))
        }
        #expect(stranger == .sealedToMismatch)
        let wrongKey = SignedPublicationTests.code { () throws(BusError) in
            try signed.verify(signingKey: keys, opening: .recipient(nodeId: "oct", key: Self.other))
        }
        #expect(wrongKey == .sealInvalid)
        let kept = try signed.verify(signingKey: keys, opening: .contentKeys(try #require(atOct.contentKeys)))
        #expect(kept.payload == atOct.payload)
        #expect(atOct.contentKeys == contentKeys, "the publisher keeps the keys the recipient opens")
        // The ciphertext is signed: a changed byte fails before anything is opened.
        var changed = signed
        changed.payload[changed.payload.count / 2] ^= 1
        #expect(SignedPublicationTests.code { () throws(BusError) in
            try changed.verify(signingKey: keys, opening: .recipient(nodeId: "oct", key: Self.oct))
        } == .signatureInvalid)
    }

    @Test("One content key per box: a recipient whose wrapped key is not the committed one refuses the message (it could open another plaintext), and so do content keys a journal kept")
    func keyCommitment() throws {
        let (signed, _) = try Self.sealed()
        let keys = SignedPublicationTests.keys
        var content = try SealedContent(serializedBytes: signed.payload)
        #expect(content.payload.keyCommitment.count == 32)
        let context = SealedBox.context(messageId: Self.message().envelope.messageID, group: "payload")
        // A publisher that wraps another content key for one recipient.
        let otherKey = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let index = try #require(content.payload.keys.firstIndex { $0.nodeID == "other" })
        var sender = try HPKE.Sender(recipientKey: Self.other.publicKey, ciphersuite: .Curve25519_SHA256_ChachaPoly, info: context)
        content.payload.keys[index].sealedKey = try sender.seal(otherKey, authenticating: Data("other".utf8))
        content.payload.keys[index].encapsulatedKey = sender.encapsulatedKey
        var equivocating = signed
        equivocating.payload = try Canonical.encode(content)
        equivocating = try SignedPublicationTests.resigned(equivocating)
        #expect(throws: SealedBox.Failure.notCommitted) {
            try content.payload.open(as: "other", with: Self.other, context: context)
        }
        let atOther = SignedPublicationTests.code { () throws(BusError) in
            try equivocating.verify(signingKey: keys, opening: .recipient(nodeId: "other", key: Self.other))
        }
        #expect(atOther == .sealInvalid)
        #expect(SignedPublicationTests.code { () throws(BusError) in
            try equivocating.verify(signingKey: keys, opening: .contentKeys(otherKey))
        } == .sealInvalid)
        // OCT holds the committed key: its copy verifies.
        #expect(SignedPublicationTests.code { () throws(BusError) in
            try equivocating.verify(signingKey: keys, opening: .recipient(nodeId: "oct", key: Self.oct))
        } == nil)

        // Without a commitment the broker already refuses it.
        content.payload.keyCommitment = Data()
        var uncommitted = signed
        uncommitted.payload = try Canonical.encode(content)
        uncommitted = try SignedPublicationTests.resigned(uncommitted)
        #expect(SignedPublicationTests.code { () throws(BusError) in
            try uncommitted.verify(signingKey: keys, opening: .recipient(nodeId: "oct", key: Self.oct))
        } == .sealInvalid)
    }
}
