import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// A publication as its author signed it (issue 13, PROTOCOL.md 7.2): the exact envelope bytes,
/// the payload with the fields of a partial Member State restriction cleared, and the proof
/// (signature, key id, the digests of the withheld values and the disclosures that carry them).
/// `sign` is the publisher's step; `verify` is the one pure check that the broker (before it
/// stores), every recipient (before it journals), `ctbus journal verify` and the tests all run.
public struct SignedPublication: Sendable, Equatable {
    public var signedEnvelope: Data
    public var payload: Data
    public var proof: Proof

    public init(signedEnvelope: Data, payload: Data, proof: Proof) {
        self.signedEnvelope = signedEnvelope
        self.payload = payload
        self.proof = proof
    }

    /// Signs a validated message: splits off the restricted fields as disclosures (fresh salts),
    /// serializes the envelope once and signs those bytes. `salt` gives 16 random bytes.
    public static func sign(_ envelope: Envelope, payload: BusMessage.OneOf_Payload, with key: Curve25519.Signing.PrivateKey,
                            salt: () -> Data = { Disclosures.randomSalt() }) throws -> SignedPublication {
        let (base, disclosures) = try Disclosures.split(payload, paths: restrictedPaths(of: envelope).sorted(), salt: salt)
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let envelopeBytes = try envelope.serializedData(options: options)
        let payloadBytes = try base.serialized()
        var proof = Proof()
        proof.digests = disclosures.map(\.digest)
        proof.disclosures = disclosures
        proof.keyID = PublicationSignature.keyId(key.publicKey)
        proof.signature = try PublicationSignature.sign(envelope: envelopeBytes, payload: payloadBytes, digests: proof.digests, with: key)
        return SignedPublication(signedEnvelope: envelopeBytes, payload: payloadBytes, proof: proof)
    }

    /// The paths whose values travel as disclosures: those of a PARTIAL restriction.
    public static func restrictedPaths(of envelope: Envelope) -> Set<String> {
        let restriction = envelope.handling.memberStateRestriction
        return restriction.scope == .partial ? Set(restriction.fieldPaths) : []
    }

    /// The same publication without the disclosures of `paths`: a recipient's copy under a
    /// partial restriction. The signature and digests stay; only the values go.
    public func withholding(_ paths: some Collection<String>) -> SignedPublication {
        guard !paths.isEmpty else { return self }
        var copy = self
        copy.proof.disclosures.removeAll { paths.contains($0.path) }
        return copy
    }
}

/// A publication whose signature and disclosures were checked.
public struct VerifiedPublication: Sendable {
    public let envelope: Envelope
    /// The payload as this copy holds it: the signed payload with the disclosures received put back.
    public let payload: BusMessage.OneOf_Payload
    /// Restricted paths whose values this copy does not hold (withheld from this node), sorted.
    public let withheldPaths: [String]
    /// The key the signature verified with.
    public let keyId: String
}

extension SignedPublication {
    /// Checks, in this order: the envelope decodes; the originator has a signing key in
    /// `signingKey` and the proof names it (UNKNOWN_SIGNING_KEY); the signature verifies over the
    /// signed bytes (SIGNATURE_INVALID); the payload decodes as the envelope's type; the signed
    /// payload holds no value of a restricted field, the digests are exactly one per restricted
    /// field (one per activity for `activities.*`), and each disclosure matches a digest, comes
    /// once and applies (DISCLOSURE_MISMATCH). `originator`: the node that must have signed (the
    /// broker's publisher; NOT_PERMITTED otherwise). `whole`: every disclosure must be there (the
    /// broker's check of a Publish). Throws a `BusError` with the message id when it can read one.
    public func verify(signingKey: (String) -> Curve25519.Signing.PublicKey?, originator: String? = nil,
                       whole: Bool = false) throws(BusError) -> VerifiedPublication {
        guard let envelope = try? Envelope(serializedBytes: signedEnvelope) else {
            throw BusError(.malformedFrame, "signed_envelope is not an Envelope (a field is not valid protobuf or not UTF-8)",
                           messageId: FrameSalvage.messageId(inEnvelope: ArraySlice(signedEnvelope)))
        }
        let messageId = MessageValidator.echoable(envelope.messageID)
        func fail(_ code: ErrorCode, _ detail: String) -> BusError { BusError(code, detail, messageId: messageId) }
        if let originator, envelope.originator != originator {
            throw fail(.notPermitted, "envelope.originator must be the publishing node \(originator): a node publishes only as itself")
        }
        guard MessageValidator.isNodeId(envelope.originator) else { throw fail(.validationFailed, "envelope.originator is not a node id") }
        guard let key = signingKey(envelope.originator) else {
            throw fail(.unknownSigningKey, "originator \(envelope.originator) has no signing key in the registry")
        }
        let keyId = PublicationSignature.keyId(key)
        guard proof.keyID == keyId else {
            let named = proof.keyID.utf8.count == 16 && proof.keyID.allSatisfy(\.isHexDigit) ? "key \(proof.keyID)" : "an unreadable key id"
            throw fail(.unknownSigningKey, "signed with \(named); the registry's signing key of \(envelope.originator) is \(keyId)")
        }
        guard !proof.signature.isEmpty else { throw fail(.signatureInvalid, "the publication carries no signature") }
        guard PublicationSignature.verify(proof.signature, envelope: signedEnvelope, payload: payload, digests: proof.digests, key: key) else {
            throw fail(.signatureInvalid, "the signature of \(envelope.originator) does not verify over the signed bytes")
        }
        let base: BusMessage.OneOf_Payload
        do {
            base = try BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: payload)
        } catch {
            throw fail(error.code, error.detail)
        }
        let restricted = Self.restrictedPaths(of: envelope)
        guard Redactor.redact(base, paths: Array(restricted)) == base else {
            throw fail(.disclosureMismatch, "the signed payload holds a value of a restricted field")
        }
        var expected: [String: Int] = [:]
        for path in restricted {
            guard Disclosures.paths(for: envelope.type).contains(path) else {
                throw fail(.validationFailed, "a restriction path is not a redactable path of \(envelope.type.name)")
            }
            if path.hasPrefix("activities."), case .activityMatrix(let matrix) = base {
                expected[path] = matrix.activities.count
            } else {
                expected[path] = 1
            }
        }
        let digests = Set(proof.digests)
        guard digests.count == proof.digests.count, proof.digests.count == expected.values.reduce(0, +) else {
            throw fail(.disclosureMismatch, "signed \(proof.digests.count) disclosure digests; the restriction has \(expected.values.reduce(0, +)) values, each signed once")
        }
        for disclosure in proof.disclosures where !digests.contains(disclosure.digest) {
            let named = restricted.contains(disclosure.path) ? disclosure.path : "of an unrestricted path"
            throw fail(.disclosureMismatch, "a disclosure \(named) matches no signed digest")
        }
        let disclosed: BusMessage.OneOf_Payload
        do {
            disclosed = try Disclosures.apply(proof.disclosures, to: base, restricted: restricted)
        } catch {
            throw fail(.disclosureMismatch, error.description)
        }
        var received: [String: Int] = [:]
        for disclosure in proof.disclosures { received[disclosure.path, default: 0] += 1 }
        let withheld = expected.filter { received[$0.key, default: 0] < $0.value }.keys.sorted()
        if whole, !withheld.isEmpty {
            throw fail(.disclosureMismatch, "the disclosures of \(withheld.joined(separator: ", ")) are missing")
        }
        return VerifiedPublication(envelope: envelope, payload: disclosed, withheldPaths: withheld, keyId: keyId)
    }
}
