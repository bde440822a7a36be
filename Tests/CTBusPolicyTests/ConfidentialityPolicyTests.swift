import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

@Suite("Confidentiality policy")
struct ConfidentialityPolicyTests {
    static let oct = NodeProfile(id: "oct", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"])
    static let cted = NodeProfile(id: "cted", role: .cted, clearance: .strictlyConfidential, groups: ["un-secretariat"])
    static let border = NodeProfile(id: "wg-border", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"],
                                    themes: ["border-security"])
    static let rights = NodeProfile(id: "wg-rights", role: .workingGroup, clearance: .unclassified, groups: ["compact-wg"])
    static let nodes = [oct, cted, border, rights]

    static func envelope(_ classification: Classification, list: [String] = [], type: MessageType = .countryVisitRecommendation,
                         tags: [String] = ["border-security"]) -> Envelope {
        var envelope = Envelope()
        envelope.messageID = MessageID.generate()
        envelope.type = type
        envelope.handling.classification = classification
        envelope.handling.releasability = list
        envelope.thematicTags = tags
        return envelope
    }

    static func recipients(_ envelope: Envelope, from originator: String = "cted") -> [String] {
        ConfidentialityPolicy.decide(envelope, originator: originator, among: nodes).filter { $0.decision.isDelivered }.map(\.node.id)
    }

    @Test("Rule 1: the originator never receives its own message; unsubscribed types and other themes are not delivered")
    func ruleOne() {
        #expect(Self.recipients(Self.envelope(.unclassified)) == ["oct", "wg-border", "wg-rights"])
        #expect(Self.recipients(Self.envelope(.unclassified, tags: ["terrorist-financing"])) == ["oct", "wg-rights"])
        let narrow = NodeProfile(id: "x", role: .workingGroup, clearance: .strictlyConfidential, subscriptions: [.activityMatrix])
        #expect(ConfidentialityPolicy.decide(Self.envelope(.unclassified), originator: "cted", for: narrow)
                == .refuse(.subscription, reason: "does not subscribe to COUNTRY_VISIT_RECOMMENDATION"))
    }

    @Test("Rule 2: nobody below the classification receives it")
    func ruleTwo() {
        #expect(Self.recipients(Self.envelope(.confidential)) == ["oct", "wg-border"])
        if case .refuse(let rule, _) = ConfidentialityPolicy.decide(Self.envelope(.confidential), originator: "cted", for: Self.rights) {
            #expect(rule == .clearance)
        } else {
            Issue.record("wg-rights must not receive a CONFIDENTIAL message")
        }
    }

    @Test("Rule 3: a releasability list names nodes or groups")
    func ruleThree() {
        #expect(Self.recipients(Self.envelope(.confidential, list: ["oct"])) == ["oct"])
        #expect(Self.recipients(Self.envelope(.unclassified, list: ["compact-wg"])) == ["wg-border", "wg-rights"])
        #expect(Self.recipients(Self.envelope(.confidential, list: ["compact-wg"])) == ["wg-border"])
        #expect(Self.recipients(Self.envelope(.unclassified, list: ["nobody"])) == [])
    }

    @Test("Rule 4: STRICTLY_CONFIDENTIAL and whole restrictions need an explicit list")
    func ruleFour() throws {
        #expect(throws: BusError.self) { try ConfidentialityPolicy.checkPublication(Self.envelope(.strictlyConfidential), by: Self.cted) }
        do {
            try ConfidentialityPolicy.checkPublication(Self.envelope(.strictlyConfidential), by: Self.cted)
        } catch {
            #expect(error.code == .needToKnowRequired)
        }
        try ConfidentialityPolicy.checkPublication(Self.envelope(.strictlyConfidential, list: ["oct"]), by: Self.cted)
        var whole = Self.envelope(.unclassified)
        whole.handling.memberStateRestriction.scope = .whole
        whole.handling.memberStateRestriction.allowedNodes = ["oct"]
        #expect(throws: BusError.self) { try ConfidentialityPolicy.checkPublication(whole, by: Self.cted) }
        whole.handling.releasability = ["oct", "wg-border"]
        try ConfidentialityPolicy.checkPublication(whole, by: Self.cted)
        #expect(Self.recipients(whole) == ["oct"]) // the restriction narrows the list further
    }

    @Test("Rule 5: a partial restriction redacts for nodes outside the allowed list")
    func ruleFive() {
        var envelope = Self.envelope(.unclassified)
        envelope.handling.memberStateRestriction.state = "KEN"
        envelope.handling.memberStateRestriction.scope = .partial
        envelope.handling.memberStateRestriction.fieldPaths = ["recommendation_text"]
        envelope.handling.memberStateRestriction.allowedNodes = ["oct"]
        #expect(ConfidentialityPolicy.decide(envelope, originator: "cted", for: Self.oct) == .deliver(redactedPaths: []))
        #expect(ConfidentialityPolicy.decide(envelope, originator: "cted", for: Self.border) == .deliver(redactedPaths: ["recommendation_text"]))
    }

    @Test("Roles bound what a node may publish")
    func roles() {
        #expect(throws: BusError.self) {
            try ConfidentialityPolicy.checkPublication(Self.envelope(.unclassified, type: .activityMatrix), by: Self.border)
        }
        #expect(throws: BusError.self) {
            try ConfidentialityPolicy.checkPublication(Self.envelope(.unclassified, type: .activityMatrix), by: Self.cted)
        }
        #expect(throws: Never.self) {
            try ConfidentialityPolicy.checkPublication(Self.envelope(.unclassified, type: .activityMatrix), by: Self.oct)
        }
    }

    @Test("Exhaustively over small cases: nobody below the classification or outside the list ever receives")
    func exhaustive() {
        let ids = ["oct", "cted", "wg-border", "wg-rights", "compact-wg", "un-secretariat"]
        // Every classification and every subset of the list vocabulary (64 lists).
        for classification in [Classification.unclassified, .confidential, .strictlyConfidential] {
            for mask in 0..<(1 << ids.count) {
                let list = ids.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element)
                let envelope = Self.envelope(classification, list: list)
                for (node, decision) in ConfidentialityPolicy.decide(envelope, originator: "cted", among: Self.nodes)
                where decision.isDelivered {
                    #expect(node.clearance.rawValue >= classification.rawValue)
                    #expect(list.isEmpty || list.contains(node.id) || !node.groups.isDisjoint(with: list))
                    #expect(node.id != "cted")
                }
            }
        }
    }

    @Test("Declassify-on: from that date on the message counts as UNCLASSIFIED, never before")
    func declassification() {
        var envelope = Self.envelope(.confidential)
        envelope.handling.declassifyOn = "2027-01-01"
        let before = UTCTime.parse("2026-12-31T23:00:00Z")!
        let after = UTCTime.parse("2027-01-01T00:30:00Z")!
        #expect(ConfidentialityPolicy.decide(envelope, originator: "cted", for: Self.rights, at: before).isDelivered == false)
        #expect(ConfidentialityPolicy.decide(envelope, originator: "cted", for: Self.rights, at: after) == .deliver(redactedPaths: []))
        // Declassification never widens a releasability list.
        envelope.handling.releasability = ["oct"]
        #expect(ConfidentialityPolicy.decide(envelope, originator: "cted", for: Self.rights, at: after).isDelivered == false)
    }

    @Test("Expiry: an expired message is delivered to nobody")
    func expiry() {
        var envelope = Self.envelope(.unclassified)
        envelope.expiresAt = .init(date: Date(timeIntervalSince1970: 1_900_000_000))
        #expect(Self.recipients(envelope) == ["oct", "wg-border", "wg-rights"])
        let later = Date(timeIntervalSince1970: 1_900_000_001)
        #expect(ConfidentialityPolicy.decide(envelope, originator: "cted", among: Self.nodes, at: later)
            .allSatisfy { $0.decision == .refuse(.expired, reason: "the message has expired") || $0.node.id == "cted" })
    }

    @Test("An originator may not mark a message above its own clearance (declassify-on does not lower the mark)")
    func originatorClearance() throws {
        let low = NodeProfile(id: "cted-low", role: .cted, clearance: .confidential)
        try ConfidentialityPolicy.checkPublication(Self.envelope(.confidential), by: low)
        var strict = Self.envelope(.strictlyConfidential, list: ["oct"])
        strict.handling.declassifyOn = "2000-01-01"
        #expect(throws: BusError(.notPermitted, "node cted-low is cleared to CONFIDENTIAL and may not originate a STRICTLY_CONFIDENTIAL message",
                                 messageId: strict.messageID)) {
            try ConfidentialityPolicy.checkPublication(strict, by: low)
        }
        try ConfidentialityPolicy.checkPublication(strict, by: Self.cted)
    }

    @Test("The TLP label is carried but never widens delivery")
    func tlpNeverWidens() {
        var envelope = Self.envelope(.confidential, list: ["oct"])
        let baseline = Self.recipients(envelope)
        for label in [TlpLabel.tlpClear, .tlpGreen, .tlpAmber, .tlpAmberStrict, .tlpRed] {
            envelope.handling.tlp = label
            #expect(Self.recipients(envelope) == baseline)
        }
    }
}
