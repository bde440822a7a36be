import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import PropertyBased
import SwiftProtobuf
import Testing

/// Property tests over random registries and random handling blocks. Each case is built from
/// one generated seed (reported on failure), so a failing case replays exactly.
@Suite("Policy properties")
struct PolicyPropertyTests {
    static let cases = 2_000
    static let groupNames = ["compact-wg", "un-secretariat", "compact-wg-security", "observers"]
    static let levels: [Classification] = [.unclassified, .confidential, .strictlyConfidential]

    /// A random world: a registry of 2-12 nodes and a message from one of them.
    struct World: CustomStringConvertible {
        var nodes: [NodeProfile]
        var envelope: Envelope
        var originator: String

        var description: String {
            "nodes \(nodes.map { "\($0.id)/\($0.clearance.name)/\($0.groups.sorted())" }), handling \(envelope.handling.textFormatString())"
        }
    }

    static func world(seed: UInt64) -> World {
        var random = SeededGenerator(seed: seed)
        let count = Int.random(in: 2...12, using: &random)
        let nodes = (0..<count).map { index in
            NodeProfile(id: "node-\(index)", role: Role.allCases.randomElement(using: &random)!,
                        clearance: levels.randomElement(using: &random)!,
                        groups: Set(groupNames.filter { _ in Bool.random(using: &random) }),
                        themes: Bool.random(using: &random) ? [] : ["border-security"])
        }
        var envelope = Envelope()
        envelope.messageID = MessageID.generate()
        envelope.type = [MessageType.countryVisitRecommendation, .missionReport, .activityMatrix].randomElement(using: &random)!
        envelope.thematicTags = Bool.random(using: &random) ? ["border-security"] : ["terrorist-financing"]
        envelope.handling.classification = levels.randomElement(using: &random)!
        let vocabulary = nodes.map(\.id) + groupNames + ["nobody"]
        envelope.handling.releasability = vocabulary.filter { _ in Int.random(in: 0..<4, using: &random) == 0 }
        envelope.handling.tlp = TlpLabel.allCases.randomElement(using: &random)!
        if Bool.random(using: &random) {
            var restriction = MemberStateRestriction()
            restriction.state = "KEN"
            restriction.scope = Bool.random(using: &random) ? .whole : .partial
            restriction.fieldPaths = restriction.scope == .partial ? Array(RedactablePaths.paths(for: envelope.type)).sorted().prefix(2).map { $0 } : []
            restriction.allowedNodes = nodes.map(\.id).filter { _ in Bool.random(using: &random) }
            envelope.handling.memberStateRestriction = restriction
        }
        return World(nodes: nodes, envelope: envelope, originator: nodes.randomElement(using: &random)!.id)
    }

    static func recipients(_ world: World) -> [String: RecipientDecision] {
        var result: [String: RecipientDecision] = [:]
        for (node, decision) in ConfidentialityPolicy.decide(world.envelope, originator: world.originator, among: world.nodes)
        where decision.isDelivered {
            result[node.id] = decision
        }
        return result
    }

    @Test("No recipient below the classification, outside the releasability list or outside a whole restriction")
    func entitlement() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let world = Self.world(seed: seed)
            let handling = world.envelope.handling
            for node in world.nodes {
                guard Self.recipients(world)[node.id] != nil else { continue }
                #expect(node.clearance.rawValue >= handling.classification.rawValue, "seed \(seed): \(world)")
                #expect(handling.releasability.isEmpty || handling.releasability.contains(node.id)
                        || !node.groups.isDisjoint(with: handling.releasability), "seed \(seed): \(world)")
                if handling.hasMemberStateRestriction, handling.memberStateRestriction.scope == .whole {
                    #expect(handling.memberStateRestriction.allowedNodes.contains(node.id), "seed \(seed): \(world)")
                }
                #expect(node.id != world.originator)
            }
        }
    }

    @Test("A partially restricted message never carries a restricted path to a node outside the allowed list")
    func partialRestriction() async throws {
        await propertyCheck(count: Self.cases, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var world = Self.world(seed: seed)
            var restriction = MemberStateRestriction()
            restriction.state = "KEN"
            restriction.scope = .partial
            restriction.fieldPaths = Array(RedactablePaths.paths(for: world.envelope.type))
            restriction.allowedNodes = world.envelope.handling.memberStateRestriction.allowedNodes
            world.envelope.handling.memberStateRestriction = restriction
            let payload = PolicyPropertyTests.markedPayload(world.envelope.type)
            for (nodeId, decision) in Self.recipients(world) where !restriction.allowedNodes.contains(nodeId) {
                guard case .deliver(let paths) = decision else { continue }
                #expect(Set(paths) == Set(restriction.fieldPaths), "seed \(seed)")
                let bytes = (try? Redactor.redact(payload, paths: paths).serialized()) ?? Data()
                #expect(!String(decoding: bytes, as: UTF8.self).contains("RESTRICTED"), "seed \(seed): \(nodeId) would see restricted text")
            }
        }
    }

    @Test("Narrowing a releasability list or raising the classification never adds a recipient")
    func narrowingNeverWidens() async {
        await propertyCheck(count: Self.cases, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let world = Self.world(seed: seed)
            let before = Set(Self.recipients(world).keys)
            var random = SeededGenerator(seed: seed ^ 0x5EED)
            var narrowed = world
            let list = world.envelope.handling.releasability
            if list.count > 1 {
                narrowed.envelope.handling.releasability = list.filter { _ in Bool.random(using: &random) }
                if narrowed.envelope.handling.releasability.isEmpty { narrowed.envelope.handling.releasability = [list[0]] }
                #expect(Set(Self.recipients(narrowed).keys).isSubset(of: before), "seed \(seed): narrowing added a recipient")
            }
            var raised = world
            let level = world.envelope.handling.classification.rawValue
            raised.envelope.handling.classification = Classification(rawValue: min(level + 1, 3)) ?? .strictlyConfidential
            #expect(Set(Self.recipients(raised).keys).isSubset(of: before), "seed \(seed): raising the level added a recipient")
        }
    }

    /// A payload of the type whose every redactable text says RESTRICTED.
    static func markedPayload(_ type: MessageType) -> BusMessage.OneOf_Payload {
        switch type {
        case .countryVisitRecommendation:
            var value = CountryVisitRecommendation()
            value.visitID = "V"
            value.recommendationText = "RESTRICTED text"
            value.thematicArea = "RESTRICTED area"
            value.technicalAssistanceNeed = "RESTRICTED need"
            return .countryVisitRecommendation(value)
        case .missionReport:
            var value = MissionReport()
            value.missionID = "M"
            value.summary = "RESTRICTED summary"
            value.findings = ["RESTRICTED finding"]
            value.followUpActions = ["RESTRICTED action"]
            value.participatingEntities = ["RESTRICTED entity"]
            return .missionReport(value)
        default:
            var activity = ActivityMatrix.Activity()
            activity.projectID = "P"
            activity.title = "RESTRICTED title"
            activity.implementingEntities = ["RESTRICTED entity"]
            var value = ActivityMatrix()
            value.activities = [activity]
            return .activityMatrix(value)
        }
    }
}
