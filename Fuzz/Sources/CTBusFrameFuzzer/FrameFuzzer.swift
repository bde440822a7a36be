import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation

/// libFuzzer entry point: the bytes are one wire frame, as the broker would read it after the
/// routing id, from each registered node in turn. A Publish is admitted twice: as it came (a
/// random signature never verifies, so this explores the refusals), and signed again with the
/// publisher's key over the fuzzed bytes, so that the policy, the disclosures and the decisions
/// behind the signature check are explored too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let kind = try? Admission.decodeFrame(bytes) else { return 0 }
    switch kind {
    case .publish(let publish):
        for (publisher, key) in zip(FuzzRegistry.nodes, FuzzRegistry.keys) {
            var resigned = publish
            resigned.proof.keyID = PublicationSignature.keyId(key.publicKey)
            resigned.proof.signature = (try? PublicationSignature.sign(envelope: publish.signedEnvelope, payload: publish.payload,
                                                                       digests: publish.proof.digests, with: key)) ?? Data()
            for candidate in [publish, resigned] {
                guard let admitted = try? Admission.admit(candidate, size: size, from: publisher, signingKey: key.publicKey,
                                                          among: FuzzRegistry.nodes, maxMessageBytes: 1 << 20) else { continue }
                FuzzRegistry.checkInvariants(admitted, publisher: publisher)
            }
        }
    default:
        break
    }
    return 0
}

enum FuzzRegistry {
    static let nodes: [NodeProfile] = [
        NodeProfile(id: "oct", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        NodeProfile(id: "cted", role: .cted, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        NodeProfile(id: "wg-border", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"], themes: ["border-security"]),
        NodeProfile(id: "wg-rights", role: .workingGroup, clearance: .unclassified, groups: ["compact-wg"]),
    ]

    /// Each node's signing key, fixed (the seed generator signs with the same ones). Built once
    /// and only read, on libFuzzer's one thread (swift-crypto does not mark keys Sendable).
    nonisolated(unsafe) static let keys: [Curve25519.Signing.PrivateKey] = nodes.indices.map { key(for: $0) }

    static func key(for index: Int) -> Curve25519.Signing.PrivateKey {
        try! Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: UInt8(index + 1), count: 32))
    }

    /// The confidentiality promises, checked on every admitted input: a violation crashes, and
    /// libFuzzer keeps the input.
    static func checkInvariants(_ admitted: Admission.Admitted, publisher: NodeProfile) {
        precondition(admitted.envelope.originator == publisher.id, "admitted under another originator")
        precondition(publisher.mayPublish.contains(admitted.envelope.type), "a role published a type it may not")
        let handling = admitted.envelope.handling
        let list = handling.releasability
        let restriction = handling.memberStateRestriction
        let digests = Set(admitted.signed.proof.digests)
        precondition(admitted.signed.proof.disclosures.allSatisfy { digests.contains($0.digest) }, "a disclosure outside the signature")
        for (node, decision) in admitted.decisions {
            guard case .deliver(let paths) = decision else { continue }
            precondition(node.id != publisher.id, "originator among its recipients")
            let classification = ConfidentialityPolicy.effectiveClassification(handling)
            precondition(node.clearance.rawValue >= classification.rawValue, "delivered above clearance")
            precondition(list.isEmpty || list.contains(node.id) || !node.groups.isDisjoint(with: list), "delivered outside the list")
            if handling.hasMemberStateRestriction, !restriction.allowedNodes.contains(node.id) {
                precondition(restriction.scope != .whole, "delivered outside a whole restriction")
                precondition(Set(paths) == Set(restriction.fieldPaths), "restricted fields not withheld")
                let copy = admitted.signed.withholding(paths)
                precondition(!copy.proof.disclosures.contains { restriction.fieldPaths.contains($0.path) }, "a restricted disclosure kept")
            }
        }
        if handling.classification == .strictlyConfidential { precondition(!list.isEmpty, "need to know not enforced") }
        if handling.classification == .strictlyConfidential { precondition(handling.sealed, "STRICTLY_CONFIDENTIAL admitted unsealed") }
        if handling.sealed {
            guard let content = try? SealedContent(serializedBytes: admitted.signed.payload) else {
                preconditionFailure("a sealed publication admitted without sealed content")
            }
            let delivered = Set(admitted.decisions.filter { $0.decision.isDelivered }.map(\.node.id))
            precondition(Set(content.payload.keys.map(\.nodeID)) == delivered, "sealed to other nodes than the policy decides")
        }
    }
}
