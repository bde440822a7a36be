import ArgumentParser
import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CTBusTesting
import Foundation
import Logging

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a broker, OCT, CTED and three working groups on 127.0.0.1 with sample traffic, then print every journal.",
        discussion: "Keys, registry, store and journals go into a temporary folder that is removed at the end (unless --keep).")

    @Flag(help: "Keep the temporary folder (keys, registry, store, journals) and print its path.")
    var keep = false

    @Option(help: "Log level of broker and nodes (to stderr): trace, debug, info, notice, warning, error, critical.")
    var logLevel = "critical"

    func run() throws {
        try runReportingErrors { try runDemo() }
    }

    static let nodes: [LocalBus.NodeSpec] = [
        .init("oct", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        .init("cted", role: .cted, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        .init("wg-border", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"], themes: ["border-security"]),
        .init("wg-cft", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"], themes: ["terrorist-financing"]),
        .init("wg-rights", role: .workingGroup, clearance: .unclassified, groups: ["compact-wg"]),
    ]

    private func runDemo() throws {
        let bus = try LocalBus(nodes: Self.nodes, logger: makeLogger(label: "ctbus", level: logLevel))
        defer { bus.shutdown(removeFolder: !keep) }
        print("CTBus demo: broker on \(bus.endpoint), CURVE keys in \(bus.folder.path)")
        print("")
        print("Registry")
        for entry in bus.registry.entries {
            let profile = entry.profile
            let themes = profile.themes.isEmpty ? "all themes" : "themes: \(profile.themes.sorted().joined(separator: ", "))"
            print("  \(profile.id.padding(toLength: 10, withPad: " ", startingAt: 0)) \(profile.role.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) cleared \(profile.clearance.name.padding(toLength: 22, withPad: " ", startingAt: 0)) groups: \(profile.groups.sorted().joined(separator: ",")); \(themes)")
        }
        try bus.startBroker()
        try bus.startAllNodes()
        guard bus.waitUntilConnected() else { throw ConfigurationError("the nodes did not connect to the broker within 15 s") }

        // CTED publishes the outcome of its visits; OCT answers with its activity matrix.
        var published: [(label: String, message: BusMessage, from: String)] = []
        func publish(_ label: String, _ message: BusMessage, from node: String) throws {
            try bus.publish(message, from: node)
            published.append((label, message, node))
        }
        let r1 = SampleMessages.recommendation(memberState: "KEN", handling: SampleMessages.handling(.unclassified))
        try publish("R1 recommendation, UNCLASSIFIED", r1, from: "cted")
        let r2 = SampleMessages.recommendation(
            memberState: "NGA", handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]),
            thematicArea: "terrorist-financing", text: "Extend the financial intelligence unit's access to beneficial ownership data.")
        try publish("R2 recommendation, CONFIDENTIAL, releasable to oct", r2, from: "cted")
        let r3 = SampleMessages.recommendation(
            memberState: "IDN", handling: SampleMessages.handling(.confidential, releasableTo: ["oct", "compact-wg"]))
        try publish("R3 recommendation, CONFIDENTIAL, releasable to oct and compact-wg", r3, from: "cted")
        var restricted = SampleMessages.handling(.unclassified)
        var restriction = MemberStateRestriction()
        restriction.state = "TUN"
        restriction.requestedOn = "2026-03-20"
        restriction.scope = .partial
        restriction.fieldPaths = ["recommendation_text", "technical_assistance_need"]
        restriction.allowedNodes = ["oct"]
        restricted.memberStateRestriction = restriction
        let r4 = SampleMessages.recommendation(memberState: "TUN", handling: restricted)
        try publish("R4 recommendation, UNCLASSIFIED, TUN asked to keep its text for oct only", r4, from: "cted")
        let m1 = SampleMessages.missionReport(memberState: "KEN", handling: SampleMessages.handling(.confidential),
                                              tags: ["border-security", "terrorist-financing"], reportsOn: r1.envelope.messageID)
        try publish("M1 mission report, CONFIDENTIAL", m1, from: "cted")
        let a1 = SampleMessages.activityMatrix(answering: [r1.envelope.messageID, r3.envelope.messageID])
        try publish("A1 activity matrix, UNCLASSIFIED, answers R1 and R3", a1, from: "oct")

        print("")
        print("Published")
        for item in published {
            print("  \(item.from.padding(toLength: 5, withPad: " ", startingAt: 0)) \(item.label)  (\(item.message.envelope.messageID))")
        }

        // What the policy entitles each node to; wait (bounded) until every journal holds it.
        let profiles = bus.registry.profiles
        var expected: [String: Set<String>] = [:]
        for item in published {
            for (node, decision) in ConfidentialityPolicy.decide(item.message.envelope, originator: item.from, among: profiles)
            where decision.isDelivered {
                expected[node.id, default: []].insert(item.message.envelope.messageID)
            }
        }
        let journals = try Dictionary(uniqueKeysWithValues: profiles.map { ($0.id, try bus.journal($0.id)) })
        let complete = try Wait.until(seconds: 20) {
            try expected.allSatisfy { node, ids in
                let received = try journals[node]!.entries(matching: JournalFilter(direction: .received))
                return Set(received.map(\.messageId)).isSuperset(of: ids)
            }
        }
        guard complete else { throw ConfigurationError("not every delivery arrived within 20 s") }
        let acknowledged = try Wait.until(seconds: 20) {
            try published.allSatisfy { item in
                try journals[item.from]!.publicationStatus(messageId: item.message.envelope.messageID) == .acknowledged
            }
        }

        let labels = Dictionary(uniqueKeysWithValues: published.map { ($0.message.envelope.messageID, String($0.label.prefix(2))) })
        print("")
        print("Journals")
        for profile in profiles {
            print("")
            print("  \(profile.id) (cleared \(profile.clearance.name))")
            for entry in try journals[profile.id]!.entries() {
                let label = labels[entry.messageId] ?? "??"
                var line = "    \(entry.direction == .sent ? "sent    " : "received") \(label) \(entry.typeName) \(entry.classificationName) \(entry.subject)"
                if entry.direction == .received { line += " from \(entry.originator)" }
                if !entry.redactedPaths.isEmpty { line += "  REDACTED: \(entry.redactedPaths.joined(separator: ", ")) removed" }
                let message = try entry.message()
                if case .activityMatrix(let matrix) = message.payload {
                    let answered = matrix.activities.flatMap(\.recommendationIds).map { labels[$0] ?? $0 }
                    line += "  (answers \(answered.joined(separator: ", ")))"
                }
                print(line)
            }
            for item in published where item.from != profile.id {
                let decision = ConfidentialityPolicy.decide(item.message.envelope, originator: item.from, for: profile)
                if case .refuse(let rule, let reason) = decision {
                    print("    not received \(labels[item.message.envelope.messageID]!): \(rule.rawValue) rule: \(profile.id) \(reason)")
                }
            }
        }
        print("")
        print(acknowledged ? "Every publication was acknowledged by the broker and every journal holds exactly what the policy allows."
                           : "Some publications were not acknowledged in time.")
        if keep { print("Kept: \(bus.folder.path)") }
    }
}
