import CTBusPolicy
import CTBusSchema
import Foundation

/// libFuzzer entry point: the bytes are one wire frame from the registered working group
/// "wg-border", as the broker would read it after the routing id.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let kind = try? Admission.decodeFrame(bytes) else { return 0 }
    switch kind {
    case .publish(let publish):
        for publisher in FuzzRegistry.nodes {
            guard let admitted = try? Admission.admit(publish, size: size, from: publisher, among: FuzzRegistry.nodes,
                                                      maxMessageBytes: 1 << 20) else { continue }
            FuzzRegistry.checkInvariants(admitted, publisher: publisher)
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

    /// The confidentiality promises, checked on every admitted input: a violation crashes, and
    /// libFuzzer keeps the input.
    static func checkInvariants(_ admitted: Admission.Admitted, publisher: NodeProfile) {
        precondition(admitted.envelope.originator == publisher.id, "originator not set by the broker")
        precondition(publisher.mayPublish.contains(admitted.envelope.type), "a role published a type it may not")
        let handling = admitted.envelope.handling
        let list = handling.releasability
        for (node, decision) in admitted.decisions where decision.isDelivered {
            precondition(node.id != publisher.id, "originator among its recipients")
            let classification = ConfidentialityPolicy.effectiveClassification(handling)
            precondition(node.clearance.rawValue >= classification.rawValue, "delivered above clearance")
            precondition(list.isEmpty || list.contains(node.id) || !node.groups.isDisjoint(with: list), "delivered outside the list")
            if handling.hasMemberStateRestriction, !handling.memberStateRestriction.allowedNodes.contains(node.id) {
                precondition(handling.memberStateRestriction.scope != .whole, "delivered outside a whole restriction")
                precondition(admitted.redactedPayloads[node.id] != nil, "restricted fields not removed")
            }
        }
        if handling.classification == .strictlyConfidential { precondition(!list.isEmpty, "need to know not enforced") }
    }
}
