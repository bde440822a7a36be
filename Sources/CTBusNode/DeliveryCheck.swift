import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf

/// What a node checks in a delivery before it journals it (PROTOCOL.md 7.3), whatever the broker
/// decided: the originator's signature with the key the node's own copy of the registry lists,
/// every disclosure against the signed digests, and the confidentiality policy applied to itself
/// (its clearance, the releasability list, the Member State restriction's allowed list). The
/// broker is not trusted here: a delivery that fails is refused, never journaled.
final class DeliveryCheck {
    /// Why a delivery was refused: the label of `ctbus_node_deliveries_refused_total{reason}`.
    enum Reason: String, CaseIterable {
        case unsigned
        case unknownSigningKey = "unknown_signing_key"
        case signatureInvalid = "signature_invalid"
        case disclosureMismatch = "disclosure_mismatch"
        case sealedToMismatch = "sealed_to_mismatch"
        case sealInvalid = "seal_invalid"
        case nonCanonical = "non_canonical"
        case invalid
        case malformed
        case clearance
        /// Releasability or a Member State restriction keeps the copy from this node.
        case policy
        /// A revocation without its originator's valid signature, or signed by another node.
        case revocationInvalid = "revocation_invalid"
    }

    struct Refusal: Error {
        let reason: Reason
        let error: BusError
    }

    private var registry: NodeRegistry
    private let registryFile: String?
    private var registryModified: Date?
    private var lastReload: ContinuousClock.Instant?
    private let clearance: Classification
    private let nodeId: String
    /// This node's id and sealing key: a sealed message is opened with them.
    private let opening: SealOpening
    private let logger: Logger
    /// The batch roots this node verified (PROTOCOL.md 7.2): each is verified once, however many
    /// of its publications arrive and in whatever order.
    let batchRoots = BatchRoots()
    /// Why the registry file last failed to read, so that the same failure is logged once.
    private var reloadFailure: String?
    /// How many times the registry copy was replaced: checks made with an older copy are not used.
    private var registryGeneration = 0

    init(registry: NodeRegistry, registryFile: String?, clearance: Classification, nodeId: String,
         sealingKey: Curve25519.KeyAgreement.PrivateKey, logger: Logger) {
        self.logger = logger
        self.registry = registry
        self.registryFile = registryFile
        self.clearance = clearance
        self.nodeId = nodeId
        opening = .recipient(nodeId: nodeId, key: sealingKey)
        registryModified = registryFile.flatMap(Self.modified)
    }

    /// A signature check run ahead of `check`, with the registry copy of `generation`.
    struct Prechecked {
        let generation: Int
        let result: Result<VerifiedPublication, BusError>
    }

    /// The signature checks of a batch of deliveries, run side by side on the machine's cores
    /// with each root verified once (`RootOrderedChecks`), in the batch's order; nil for an
    /// unsigned delivery, which `check` refuses. No registry is read again here: `check` does
    /// that when a key is unknown, and then checks the rest of the batch again with the copy it
    /// read, since a key it removed may be one the checks here accepted.
    func verifyConcurrently(_ delivers: [Deliver]) -> [Prechecked?] {
        guard delivers.count > 1 else { return delivers.map { _ in nil } }
        let (registry, opening, roots, generation) = (registry, opening, batchRoots, registryGeneration)
        return RootOrderedChecks.run(count: delivers.count, include: { !delivers[$0].signedEnvelope.isEmpty && delivers[$0].hasProof },
                                     root: { delivers[$0].proof.rootName },
                                     failed: { if case .failure = $0 { true } else { false } },
                                     check: { index in
            Result { () throws(BusError) in try Self.verify(Self.signed(delivers[index]), registry: registry, opening: opening, roots: roots) }
        }).map { $0.map { Prechecked(generation: generation, result: $0) } }
    }

    /// The delivery as the journal records it, or the refusal. `prechecked`: the signature
    /// checks `verifyConcurrently` ran for it, taken only when they used the registry copy in
    /// force now; one that failed for want of a key is run again here, after the registry file is
    /// read again if it changed.
    func check(_ deliver: Deliver, prechecked: Prechecked? = nil) throws(Refusal) -> IncomingDelivery {
        guard !deliver.signedEnvelope.isEmpty, deliver.hasProof else {
            let id = (try? Envelope(serializedBytes: deliver.signedEnvelope))?.messageID ?? ""
            throw Refusal(reason: .unsigned, error: BusError(.signatureInvalid, "an unsigned delivery",
                                                             messageId: MessageValidator.echoable(id)))
        }
        let signed = Self.signed(deliver)
        let verified: VerifiedPublication
        do throws(BusError) {
            switch prechecked?.generation == registryGeneration ? prechecked?.result : nil {
            case .success(let publication): verified = publication
            case .failure(let error) where error.code != .unknownSigningKey: throw error
            default: verified = try verify(signed)
            }
        } catch {
            throw Refusal(reason: Self.reason(error.code), error: error)
        }
        let envelope = verified.envelope
        // The broker validated what it could read; a sealed payload only this node can. (A copy
        // with withheld fields lacks values the rules require: its envelope is checked alone.)
        if verified.sealed {
            do {
                if verified.withheldPaths.isEmpty {
                    try MessageValidator.validate(envelope: envelope, payload: verified.payload)
                } else {
                    try MessageValidator.validate(sealedEnvelope: envelope)
                }
            } catch {
                throw Refusal(reason: .invalid, error: error.about(MessageValidator.echoable(envelope.messageID)))
            }
        }
        // A refusal by this node's own entry is judged again with the registry file as it is now
        // when it changed since (the node was added to a group, say), at most once a second.
        let refusal = { ConfidentialityPolicy.checkReceived(envelope, disclosed: verified.disclosedPaths, withheld: verified.withheldPaths,
                                                            by: self.profile) }
        if let (rule, detail) = refusal().flatMap({ found in reloadRegistry() ? refusal() : found }) {
            throw Refusal(reason: rule == .clearance ? .clearance : .policy,
                          error: BusError(.notPermitted, detail, messageId: MessageValidator.echoable(envelope.messageID)))
        }
        do {
            let record = JournalRecord(envelope: envelope, envelopeBytes: deliver.signedEnvelope, payload: try verified.payload.serialized(),
                                       signedPayload: deliver.payload, proof: try deliver.proof.serializedData(),
                                       contentKeys: verified.contentKeys)
            return IncomingDelivery(record, sequence: deliver.sequence, redactedPaths: verified.withheldPaths)
        } catch {
            throw Refusal(reason: .malformed, error: BusError(.malformedFrame, "the delivery could not be encoded again",
                                                              messageId: MessageValidator.echoable(envelope.messageID)))
        }
    }

    /// A revocation, once its signature checks out with `revoked_by`'s key in this node's
    /// registry copy (read again when the key is unknown, as for a delivery).
    func check(_ revocation: Revocation) throws(Refusal) -> Revocation {
        do {
            _ = try withCurrentKeys { registry throws(BusError) in
                try revocation.verify(signingKey: registry.signingKey(of:), previousKey: registry.previousSigningKey(of:keyId:))
            }
            return revocation
        } catch {
            throw Refusal(reason: .revocationInvalid, error: error)
        }
    }

    /// This node as the policy sees it: its registry entry (groups, clearance), cleared no higher
    /// than its configuration says; without an entry, a node of no group.
    private var profile: NodeProfile {
        let entry = registry.entry(id: nodeId)?.profile
        let level = min(entry?.clearance.rawValue ?? clearance.rawValue, clearance.rawValue)
        return NodeProfile(id: nodeId, role: entry?.role ?? .workingGroup, clearance: Classification(rawValue: level) ?? .unclassified,
                           groups: entry?.groups ?? [])
    }

    private func verify(_ signed: SignedPublication) throws(BusError) -> VerifiedPublication {
        try withCurrentKeys { registry throws(BusError) in try Self.verify(signed, registry: registry, opening: opening, roots: batchRoots) }
    }

    /// The signature and disclosure checks of a delivery (PROTOCOL.md 7.3 steps 1 to 4) with the
    /// keys of `registry`, opened with `opening`.
    private static func verify(_ signed: SignedPublication, registry: NodeRegistry, opening: SealOpening,
                               roots: BatchRoots) throws(BusError) -> VerifiedPublication {
        try signed.verify(signingKey: registry.signingKey(of:), previousKey: registry.previousSigningKey(of:keyId:), opening: opening,
                          roots: roots)
    }

    private static func signed(_ deliver: Deliver) -> SignedPublication {
        SignedPublication(signedEnvelope: deliver.signedEnvelope, payload: deliver.payload, proof: deliver.proof)
    }

    /// Runs a signature check with the registry as it is; when the signer or its key is unknown,
    /// reads the registry file again first if it changed since (a node added or a key replaced),
    /// at most once a second whatever a broker sends, and checks once more.
    private func withCurrentKeys<T>(_ check: (NodeRegistry) throws(BusError) -> T) throws(BusError) -> T {
        do {
            return try check(registry)
        } catch let error where error.code == .unknownSigningKey && reloadRegistry() {
            return try check(registry)
        }
    }

    private func reloadRegistry() -> Bool {
        guard let registryFile, lastReload.map({ ContinuousClock.now - $0 >= .seconds(1) }) ?? true else { return false }
        lastReload = .now
        let modified = Self.modified(registryFile)
        guard modified != registryModified else { return false }
        do {
            registry = try NodeRegistry(json: try ConfigurationFile.read(registryFile, what: "registry"))
        } catch {
            // Checked with the copy read before; said once per reason, with the file.
            let reason = "\(error)"
            if reason != reloadFailure {
                logger.error("the registry file changed but cannot be read; deliveries are checked with the copy read before",
                             metadata: ["file": "\(registryFile)", "reason": "\(reason)"])
            }
            reloadFailure = reason
            return false
        }
        reloadFailure = nil
        registryModified = modified
        registryGeneration += 1
        return true
    }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    private static func reason(_ code: ErrorCode) -> Reason {
        switch code {
        case .unknownSigningKey: .unknownSigningKey
        case .signatureInvalid: .signatureInvalid
        case .disclosureMismatch: .disclosureMismatch
        case .sealedToMismatch: .sealedToMismatch
        case .sealInvalid: .sealInvalid
        case .nonCanonical: .nonCanonical
        case .validationFailed: .invalid
        default: .malformed
        }
    }
}
