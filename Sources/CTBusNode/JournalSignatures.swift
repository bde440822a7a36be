import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf

/// What a journal entry's proof says, checked again against a registry (`ctbus journal verify`,
/// `journal show`, the console): the same `SignedPublication.verify` a node runs before it
/// journals, plus a check that the payload the journal shows is the one the signature proves.
public enum SignatureState: Sendable, Equatable {
    /// The originator's signature verifies with key `keyId`; `withheld` are the restricted paths
    /// this copy does not hold (it verifies for the fields it holds).
    case verified(originator: String, keyId: String, withheld: [String], sealed: Bool)
    case failed(BusError)
}

extension SignatureState {
    /// What it says to a person (`ctbus journal show`, the console's message page).
    public var summary: String {
        switch self {
        case .verified(let originator, let keyId, let withheld, let sealed):
            "signed by \(originator) with key \(keyId); "
                + (withheld.isEmpty ? "verifies" : "verifies for the fields this copy holds (\(withheld.joined(separator: ", ")) withheld from this node)")
                + (sealed ? "; crossed the broker sealed" : "")
        case .failed(let error):
            "DOES NOT VERIFY: \(error)"
        }
    }
}

extension JournalEntry {
    /// The entry as its author signed it.
    public func signed() throws(BusError) -> SignedPublication {
        guard let decoded = try? Proof(serializedBytes: proof) else {
            throw BusError(.malformedFrame, "journal entry \(messageId): its proof does not decode")
        }
        return SignedPublication(signedEnvelope: envelopeBytes, payload: signedPayload ?? payload, proof: decoded)
    }

    /// Checks the entry's signature with the keys of `registry`, and that the payload and the
    /// withheld paths the journal records are what the signed bytes and disclosures give.
    public func signatureState(registry: NodeRegistry) -> SignatureState {
        do {
            let signed = try signed()
            let verified = try signed.verify(signingKey: registry.signingKey(of:), previousKey: registry.previousSigningKey(of:keyId:), opening: contentKeys.map { .contentKeys($0) })
            guard verified.envelope.messageID == messageId,
                  (try? BusMessage.OneOf_Payload.decode(type: verified.envelope.type, bytes: payload)) == verified.payload else {
                return .failed(BusError(.signatureInvalid, "the journal's payload is not the one the signature proves", messageId: messageId))
            }
            guard verified.withheldPaths == redactedPaths.sorted() else {
                return .failed(BusError(.disclosureMismatch, "the journal records other withheld fields than the disclosures show", messageId: messageId))
            }
            return .verified(originator: verified.envelope.originator, keyId: verified.keyId, withheld: verified.withheldPaths,
                             sealed: verified.sealed)
        } catch {
            return .failed(error)
        }
    }
}

extension JournalEntry {
    /// The entry's revocation, checked with the keys of `registry` (nil: not revoked): the
    /// originator's signature, that it names this entry's originator, and that the journal's
    /// `revoked_at` and `revoke_reason` are what it says.
    public func revocationState(registry: NodeRegistry) -> SignatureState? {
        guard revokedAt != nil || revocation != nil else { return nil }
        do throws(BusError) {
            guard let revocation else {
                throw BusError(.signatureInvalid, "the entry is marked revoked without its originator's signed revocation", messageId: messageId)
            }
            guard let decoded = try? Revocation(serializedBytes: revocation) else {
                throw BusError(.malformedFrame, "the revocation does not decode", messageId: messageId)
            }
            let keyId = try decoded.verify(signingKey: registry.signingKey(of:), previousKey: registry.previousSigningKey(of:keyId:))
            guard decoded.messageID == messageId, decoded.revokedBy == originator else {
                throw BusError(.notPermitted, "the revocation is \(decoded.revokedBy)'s of \(decoded.messageID), not this entry's originator's", messageId: messageId)
            }
            guard let revokedAt, revokedAt.isStoredTime(of: decoded.revokedAt.date), revokeReason == decoded.reason else {
                throw BusError(.signatureInvalid, "the journal's revoked_at or revoke_reason is not what the signed revocation says", messageId: messageId)
            }
            return .verified(originator: decoded.revokedBy, keyId: keyId, withheld: [], sealed: false)
        } catch {
            return .failed(error)
        }
    }

    /// When, by whom and why the message was revoked, and whether that checks out (`journal
    /// show`, the console's message page); nil when it was not revoked.
    public func revocationSummary(registry: NodeRegistry?) -> String? {
        guard let revokedAt else { return nil }
        let when = UTCTime.iso8601(revokedAt)
        let said = "revoked by \(originator) at \(when): \(revokeReason ?? "no reason given")"
        guard let registry, let state = revocationState(registry: registry) else { return said }
        return switch state {
        case .verified(_, let keyId, _, _): said + " (signed with key \(keyId); verifies)"
        case .failed(let error): said + " (DOES NOT VERIFY: \(error))"
        }
    }
}

/// What checking every signature of a journal found.
public struct SignatureReport: Sendable {
    public var verified = 0
    /// Verified copies that lack restricted fields (they verify for the fields they hold).
    public var redacted = 0
    /// The entries whose signature did not verify: position, message id, why.
    public var failures: [(position: Int64, messageId: String, error: BusError)] = []

    public var isIntact: Bool { failures.isEmpty }
}

extension NodeJournal {
    /// Checks the signature of every entry against `registry` (an entry that fails does not stop
    /// the walk: every failure is reported).
    public func verifySignatures(registry: NodeRegistry) throws -> SignatureReport {
        var report = SignatureReport()
        try forEachEntry { entry in
            switch entry.signatureState(registry: registry) {
            case .verified(_, _, let withheld, _):
                report.verified += 1
                if !withheld.isEmpty { report.redacted += 1 }
            case .failed(let error): report.failures.append((entry.position, entry.messageId, error))
            }
            if case .failed(let error)? = entry.revocationState(registry: registry) {
                report.failures.append((entry.position, entry.messageId, BusError(error.code, "revocation: \(error.detail)", messageId: entry.messageId)))
            }
        }
        return report
    }
}
