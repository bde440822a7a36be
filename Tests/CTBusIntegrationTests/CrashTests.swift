import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import Testing

/// Crash tests with real processes on 127.0.0.1: broker and nodes run as `ctbus` processes and
/// are killed with SIGKILL at random moments. Afterwards every journal must hold exactly what
/// the policy entitles it to: nothing missing, nothing twice, CTED's order kept.
///
/// CI runs a short version. CTBUS_CRASH_ROUNDS, CTBUS_CRASH_MESSAGES and CTBUS_CRASH_SEED make it
/// longer or replay a failure (the seed is printed).
@Suite("Crash", .serialized, .busSlot)
struct CrashTests {
    enum Victim: String, CaseIterable, Sendable {
        /// kill -9 the broker while CTED publishes, restart it.
        case broker
        /// kill -9 a receiving node (OCT) while it receives, restart it.
        case receiver
        /// kill -9 the publishing node (CTED) between outbox writes and acknowledgements.
        case publisher
        /// stop a node (SIGTERM) for a while, publish, start it again.
        case stoppedNode
    }

    static let environment = ProcessInfo.processInfo.environment
    static let rounds = Int(environment["CTBUS_CRASH_ROUNDS"] ?? "") ?? 3
    static let messages = Int(environment["CTBUS_CRASH_MESSAGES"] ?? "") ?? 600

    /// The bus's processes: started and killed by name.
    final class Processes {
        let bus: LocalBus
        var running: [String: Process] = [:]
        var kills = 0

        init(bus: LocalBus) { self.bus = bus }

        func start(_ name: String) throws {
            let arguments = name == "broker"
                ? ["broker", "--config", bus.folder.appendingPathComponent("broker.json").path]
                : ["node", "--config", bus.nodeConfigurationPath(name)]
            running[name] = try CommandLineTests.start(arguments, log: bus.folder.appendingPathComponent("\(name).\(kills).log"))
        }

        func kill(_ name: String) {
            guard let process = running.removeValue(forKey: name) else { return }
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            kills += 1
        }

        func stop(_ name: String) async -> Int32? {
            guard let process = running.removeValue(forKey: name) else { return nil }
            return await CommandLineTests.stop(process)
        }

        /// For `defer`, which cannot await (`CommandLineTests.terminate`).
        func terminateAll() { for name in Array(running.keys) { _ = running.removeValue(forKey: name).map(CommandLineTests.terminate) } }
    }

    @Test("Nothing acknowledged is lost, nothing is journaled twice, order per publisher holds", arguments: Victim.allCases)
    func crash(victim: Victim) async throws {
        let seed = UInt64(Self.environment["CTBUS_CRASH_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("crash test \(victim.rawValue): seed \(seed), \(Self.rounds) rounds, \(Self.messages) messages")
        var random = SeededGenerator(seed: seed)
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.writeConfigurationFiles()
        let processes = Processes(bus: bus)
        defer { processes.terminateAll() }
        let receivers = ["oct", "wg-border", "wg-rights"]
        for name in ["broker", "cted"] + receivers { try processes.start(name) }

        let cted = try bus.journal("cted")
        let ctedKey = try bus.signingKey(of: "cted")
        var published: [BusMessage] = []
        let perRound = max(1, Self.messages / Self.rounds)
        for round in 0..<Self.rounds {
            if victim == .stoppedNode { await #expect(processes.stop("wg-border") == 0) }
            for index in 0..<perRound {
                let message = Self.message(number: round * perRound + index)
                try Publisher.enqueue(message, into: cted, clearance: .strictlyConfidential, signingKey: ctedKey)
                published.append(message)
            }
            // A random moment while the traffic flows.
            try await Task.sleep(for: .milliseconds(Int.random(in: 10...300, using: &random)))
            switch victim {
            case .broker:
                processes.kill("broker")
                try processes.start("broker")
            case .receiver:
                processes.kill("oct")
                try processes.start("oct")
            case .publisher:
                processes.kill("cted")
                try processes.start("cted")
            case .stoppedNode:
                try processes.start("wg-border")
            }
        }

        // What the policy entitles each node to, in CTED's order.
        let profiles = bus.registry.profiles
        var expected: [String: [String]] = [:]
        for message in published {
            for (node, decision) in ConfidentialityPolicy.decide(message.envelope, originator: "cted", among: profiles)
            where decision.isDelivered && receivers.contains(node.id) {
                expected[node.id, default: []].append(message.envelope.messageID)
            }
        }
        let journals = try Dictionary(uniqueKeysWithValues: receivers.map { ($0, try bus.journal($0)) })
        let complete = try await Wait.until(seconds: 90) {
            try receivers.allSatisfy { try journals[$0]!.count() >= expected[$0, default: []].count }
        }
        #expect(complete, "seed \(seed): not every journal caught up")
        for node in receivers {
            let received = try journals[node]!.entries(matching: JournalFilter(direction: .received)).map(\.messageId)
            let wanted = expected[node, default: []]
            #expect(Set(received).count == received.count, "seed \(seed): \(node) holds a message twice")
            let extra = Set(received).subtracting(wanted).count
            let missing = Set(wanted).subtracting(received).count
            #expect(extra == 0, "seed \(seed): \(node) holds \(extra) messages it is not entitled to")
            #expect(missing == 0, "seed \(seed): \(node) is missing \(missing) of \(wanted.count) messages")
            #expect(missing > 0 || received == wanted, "seed \(seed): \(node) received CTED's messages out of order")
            #expect(try journals[node]!.verify().isIntact)
        }
        #expect(try await Wait.until(seconds: 30) { try cted.outbox.items().isEmpty }, "seed \(seed): CTED's outbox did not drain")
        print("crash test \(victim.rawValue): \(processes.kills) kills, \(published.count) messages, "
              + receivers.map { "\($0) \(expected[$0, default: []].count)" }.joined(separator: ", ") + " delivered, none lost")
    }

    /// UNCLASSIFIED for everyone, CONFIDENTIAL for the cleared, CONFIDENTIAL for OCT only, in turn.
    static func message(number: Int) -> BusMessage {
        switch number % 3 {
        case 0: SampleMessages.recommendation(text: "Recommendation \(number).")
        case 1: SampleMessages.missionReport(handling: SampleMessages.handling(.confidential))
        default: SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"]),
                                               text: "Recommendation \(number) for OCT.")
        }
    }
}
