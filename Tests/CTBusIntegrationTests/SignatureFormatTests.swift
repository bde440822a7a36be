import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import SwiftProtobuf
import Testing

/// The signature format (PROTOCOL.md 7.2 and 5.5) checked by someone else's code:
/// Tests/signatures/verify_vectors.py implements the signed bytes and disclosure digests from the
/// design alone, with Python's `cryptography`, and must agree with this implementation on good
/// and tampered vectors.
@Suite("Signature format, checked independently", .busSlot)
struct SignatureFormatTests {
    static func base64url(_ data: Data) -> String { MessageKeys.text(data) }

    static func vector(_ name: String, expect: Bool, envelope: Data, payload: Data, disclosures: [Disclosure], signature: Data,
                       key: Curve25519.Signing.PublicKey, keyId: String? = nil) -> [String: Any] {
        [
            "name": name, "expect": expect,
            "envelope": envelope.base64EncodedString(), "payload": payload.base64EncodedString(),
            "disclosures": disclosures.map { ["salt": $0.salt.base64EncodedString(), "path": $0.path, "index": Int($0.index),
                                              "value": $0.value.base64EncodedString()] as [String: Any] },
            "signature": signature.base64EncodedString(),
            "public_key": base64url(key.rawRepresentation), "key_id": keyId ?? PublicationSignature.keyId(key),
        ]
    }

    static func vector(_ name: String, expect: Bool, revocation: Revocation, key: Curve25519.Signing.PublicKey) -> [String: Any] {
        [
            "name": name, "expect": expect, "kind": "revocation",
            "message_id": revocation.messageID, "revoked_by": revocation.revokedBy, "reason": revocation.reason,
            "seconds": Int(revocation.revokedAt.seconds), "nanos": Int(revocation.revokedAt.nanos),
            "signature": revocation.signature.base64EncodedString(),
            "public_key": base64url(key.rawRepresentation), "key_id": revocation.keyID,
        ]
    }

    @Test("A Python script written from the design alone verifies our signatures (publications and revocations) and refuses the tampered ones")
    func independentScript() async throws {
        let key = Curve25519.Signing.PrivateKey()
        // A partially restricted recommendation: two fields travel as disclosures.
        let restricted = SampleMessages.restricted(SampleMessages.recommendation(), state: "KEN",
                                                   fields: ["recommendation_text", "priority"], allowed: ["oct"])
        let envelope = try restricted.envelope.serializedData()
        let (withheld, disclosures) = try Disclosures.split(try #require(restricted.payload), paths: ["recommendation_text", "priority"])
        let payload = try withheld.serialized()
        let signature = try PublicationSignature.sign(envelope: envelope, payload: payload, digests: disclosures.map(\.digest), with: key)
        // An activity matrix with per-activity disclosures, and a mission report with none.
        let matrix = SampleMessages.activityMatrix(answering: ["019a5a2e-4c00-7a3b-8f21-3d4e5f607182"])
        let matrixEnvelope = try matrix.envelope.serializedData()
        let matrixSplit = try Disclosures.split(try #require(matrix.payload), paths: ["activities.title", "activities.budget_usd"])
        let matrixPayload = try matrixSplit.payload.serialized()
        let matrixSignature = try PublicationSignature.sign(envelope: matrixEnvelope, payload: matrixPayload,
                                                            digests: matrixSplit.disclosures.map(\.digest), with: key)
        let report = SampleMessages.missionReport()
        let reportEnvelope = try report.envelope.serializedData()
        let reportPayload = try #require(report.payload).serialized()
        let reportSignature = try PublicationSignature.sign(envelope: reportEnvelope, payload: reportPayload, digests: [], with: key)

        var flipped = envelope
        flipped[flipped.count / 2] ^= 0x01
        let changed = Disclosure(salt: disclosures[0].salt, path: disclosures[0].path, index: disclosures[0].index,
                                 value: disclosures[0].value + Data([0x00]))
        let revocation = try Revocation.signed(messageId: report.envelope.messageID, reason: "superseded — see the 2026 report",
                                               by: "cted", at: Date(timeIntervalSince1970: 1_796_000_000.123456789), with: key)
        var otherReason = revocation
        otherReason.reason = "a reason the broker wrote"
        var otherRevoker = revocation
        otherRevoker.revokedBy = "oct"
        var otherTime = revocation
        otherTime.revokedAt.nanos += 1
        let vectors: [[String: Any]] = [
            Self.vector("a signed revocation", expect: true, revocation: revocation, key: key.publicKey),
            Self.vector("a revocation with another reason", expect: false, revocation: otherReason, key: key.publicKey),
            Self.vector("a revocation naming another revoker", expect: false, revocation: otherRevoker, key: key.publicKey),
            Self.vector("a revocation at another time", expect: false, revocation: otherTime, key: key.publicKey),
            Self.vector("restricted recommendation", expect: true, envelope: envelope, payload: payload, disclosures: disclosures,
                        signature: signature, key: key.publicKey),
            Self.vector("disclosures in another order", expect: true, envelope: envelope, payload: payload,
                        disclosures: disclosures.reversed(), signature: signature, key: key.publicKey),
            Self.vector("activity matrix, a disclosure per activity", expect: true, envelope: matrixEnvelope, payload: matrixPayload,
                        disclosures: matrixSplit.disclosures, signature: matrixSignature, key: key.publicKey),
            Self.vector("mission report without disclosures", expect: true, envelope: reportEnvelope, payload: reportPayload,
                        disclosures: [], signature: reportSignature, key: key.publicKey),
            Self.vector("a changed disclosure value", expect: false, envelope: envelope, payload: payload,
                        disclosures: [changed, disclosures[1]], signature: signature, key: key.publicKey),
            Self.vector("a disclosure left out (its digest must come with the delivery)", expect: false, envelope: envelope,
                        payload: payload, disclosures: [disclosures[1]], signature: signature, key: key.publicKey),
            Self.vector("a flipped envelope byte", expect: false, envelope: flipped, payload: payload, disclosures: disclosures,
                        signature: signature, key: key.publicKey),
            Self.vector("another node's key", expect: false, envelope: envelope, payload: payload, disclosures: disclosures,
                        signature: signature, key: Curve25519.Signing.PrivateKey().publicKey),
            Self.vector("a key id that is not the key's", expect: false, envelope: envelope, payload: payload, disclosures: disclosures,
                        signature: signature, key: key.publicKey, keyId: "0000000000000000"),
        ]
        let input = String(decoding: try JSONSerialization.data(withJSONObject: vectors), as: UTF8.self)
        let script = CommandLineTests.root.appendingPathComponent("Tests/signatures/verify_vectors.py").path
        let result = try await CommandLineTests.run([script], executable: URL(fileURLWithPath: "/usr/bin/python3"), input: input)
        #expect(result.status == 0 && result.output == "ok \(vectors.count)\n", "\(result.output)\(result.errors)")
    }
}
