import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import SwiftProtobuf
import Testing
import ZeroMQ

/// A registered working group (wg-cft, through a raw client with its real CURVE keys) attacks a
/// real broker. After every attack the other nodes' journals hold exactly what the policy
/// allows for the legitimate traffic, and the broker keeps serving.
@Suite("Adversarial", .serialized, .busSlot)
struct AdversarialTests {
    final class Scene {
        let bus: LocalBus
        let attacker: RawClient
        var legitimate: [(message: BusMessage, from: String)] = []
        let honest = ["oct", "cted", "wg-border", "wg-rights"]

        init() async throws {
            // "oct-raw" publishes like OCT through a raw client; it is never started as a node.
            bus = try LocalBus(nodes: LocalBus.standardNodes + [.init("oct-raw", role: .oct, clearance: .strictlyConfidential)])
            try bus.startBroker()
            for node in honest { try bus.startNode(node) }
            #expect(await bus.waitUntilConnected())
            attacker = try bus.rawClient(as: "wg-cft")
            try attacker.hello(keepAlive: true)
            guard case .welcome = try await attacker.receiveCommand() else { throw ConfigurationError("the attacker got no session") }
        }

        /// Publishes legitimately from CTED and remembers it.
        @discardableResult
        func publish(_ message: BusMessage, from node: String = "cted") throws -> String {
            legitimate.append((message, node))
            return try bus.publish(message, from: node)
        }

        /// Waits for a fresh UNCLASSIFIED message from CTED everywhere (order per publisher makes
        /// it a barrier), then checks every honest journal against the policy, exactly.
        func expectJournalsExact(sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let sentinel = try publish(SampleMessages.recommendation())
            for node in honest where node != "cted" {
                let journal = try bus.journal(node)
                #expect(try await Wait.until { try journal.count(messageId: sentinel) == 1 }, "\(node) missed the sentinel",
                        sourceLocation: sourceLocation)
            }
            let profiles = bus.registry.profiles
            for node in honest {
                let profile = profiles.first { $0.id == node }!
                let entitled = Set(legitimate.filter {
                    ConfidentialityPolicy.decide($0.message.envelope, originator: $0.from, for: profile).isDelivered
                }.map(\.message.envelope.messageID))
                let received = Set(try bus.journal(node).entries(matching: JournalFilter(direction: .received)).map(\.messageId))
                #expect(received == entitled, "\(node)'s journal differs from the policy", sourceLocation: sourceLocation)
            }
        }

        /// A Publish signed by the attacker (wg-cft), keeping the originator the message names.
        func publishFrame(_ message: BusMessage) throws -> Frame.OneOf_Kind {
            try attacker.publishFrame(message, keepOriginator: true)
        }

        func expectError(_ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            guard case .error(let report) = try await attacker.receiveReply() else {
                Issue.record("expected \(code.name)", sourceLocation: sourceLocation)
                return
            }
            #expect(report.code == code, sourceLocation: sourceLocation)
        }
    }

    @Test("(a, b) Claiming another node's identity or setting the originator gets nothing through")
    func forgedIdentity() async throws {
        let scene = try await Scene()
        defer { scene.bus.shutdown() }
        try scene.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"])))
        // wg-cft writes CTED as originator on a recommendation: the broker knows it is wg-cft.
        var forged = SampleMessages.recommendation()
        forged.envelope.originator = "cted"
        try scene.attacker.send(try scene.publishFrame(forged))
        try await scene.expectError(.notPermitted)
        // An OCT-role node (allowed mission reports) signs a report naming CTED as originator: the
        // broker cannot rewrite a signed envelope, so it refuses it.
        var spoof = SampleMessages.missionReport()
        spoof.envelope.originator = "cted"
        let octClient = try scene.bus.rawClient(as: "oct-raw")
        try octClient.hello(keepAlive: true)
        guard case .welcome = try await octClient.receiveCommand() else { Issue.record("no session for OCT"); return }
        try octClient.publish(spoof, keepOriginator: true)
        guard case .error(let report) = try await octClient.receiveReply() else { Issue.record("no error"); return }
        #expect(report.code == .notPermitted && report.detail.contains("publishes only as itself"))
        // Signed as itself, the same report is stored under its own name.
        var own = SampleMessages.missionReport()
        own.envelope.originator = "oct-raw"
        try octClient.publish(own, keepOriginator: true)
        guard case .publishAck(let ack) = try await octClient.receiveReply() else { Issue.record("no PublishAck"); return }
        #expect(ack.originator == "oct-raw")
        scene.legitimate.append((own, "oct-raw"))
        let cted = try scene.bus.journal("cted")
        #expect(try await Wait.until { try cted.entry(messageId: own.envelope.messageID)?.originator == "oct-raw" })
        try await scene.expectJournalsExact()
        #expect(try cted.count(messageId: spoof.envelope.messageID) == 0)
    }

    @Test("(c) A Hello with made-up subscription fields widens nothing")
    func subscriptionAttempt() async throws {
        let scene = try await Scene()
        defer { scene.bus.shutdown() }
        // Field 15 does not exist in Hello: a client hoping for "subscribe to everything".
        var hello = Hello()
        hello.protocolVersion = 3
        var bytes: [UInt8] = try hello.serializedBytes()
        bytes += [0x7A, 0x03] + Array("all".utf8) // field 15, length-delimited
        let frame: [UInt8] = [0x0A, UInt8(bytes.count)] + bytes // Frame.hello = field 1
        try scene.attacker.send(raw: [frame])
        guard case .welcome = try await scene.attacker.receiveCommand() else { Issue.record("no Welcome"); return }
        let secret = try scene.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"])))
        try await scene.expectJournalsExact()
        // The attacker's session saw the sentinel (it follows all themes) but never the secret.
        var seen: [String] = []
        while case .deliver(let deliver)? = try await scene.attacker.receiveCommand(seconds: 1) {
            seen.append(try Envelope(serializedBytes: deliver.signedEnvelope).messageID)
        }
        #expect(!seen.isEmpty)
        #expect(!seen.contains(secret))
    }

    @Test("(d, e) No need-to-know bypass; replayed frames change nothing")
    func needToKnowAndReplay() async throws {
        let scene = try await Scene()
        defer { scene.bus.shutdown() }
        // CTED itself cannot publish STRICTLY_CONFIDENTIAL without a list.
        let strict = try scene.bus.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.strictlyConfidential)),
                                           from: "cted")
        let ctedJournal = try scene.bus.journal("cted")
        #expect(try await Wait.until {
            if case .refused(code: "NEED_TO_KNOW_REQUIRED", detail: _) = try ctedJournal.outbox.status(messageId: strict) { return true }
            return false
        })

        // A legitimate CONFIDENTIAL publication, captured (CTED's exact signed bytes) and replayed
        // by the attacker.
        let message = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential))
        try scene.publish(message)
        let signed = try #require(try ctedJournal.entry(messageId: message.envelope.messageID)?.signed())
        let captured = Frame.OneOf_Kind.publish(Publish(signed))
        for _ in 0..<5 {
            try scene.attacker.send(captured)
            try await scene.expectError(.notPermitted)
        }
        // A replayed acknowledgement of sequences the attacker never got deletes nothing.
        var ack = DeliveryAck()
        ack.throughSequence = 1_000_000
        for _ in 0..<5 { try scene.attacker.send(.deliveryAck(ack)) }
        try await scene.expectJournalsExact()
        #expect(try scene.bus.journal("oct").count(messageId: message.envelope.messageID) == 1)
    }

    @Test("(f) Thousands of truncated, oversize, random and well-formed-but-invalid frames: typed errors, broker up, journals exact")
    func frameFlood() async throws {
        let scene = try await Scene()
        defer { scene.bus.shutdown() }
        var random = SeededGenerator(seed: UInt64(ProcessInfo.processInfo.environment["CTBUS_FLOOD_SEED"] ?? "") ?? 2395)
        let valid: [UInt8] = try {
            guard case .publish(let publish) = try scene.publishFrame(SampleMessages.missionReport()) else { return [] }
            var frame = Frame()
            frame.publish = publish
            return try frame.serializedBytes()
        }()
        let count = 3_000
        var sent = 0
        for index in 0..<count {
            var frame: [UInt8]
            switch index % 4 {
            case 0: // random bytes
                frame = (0..<Int.random(in: 1...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1: // a valid publication cut short
                frame = Array(valid.prefix(Int.random(in: 1..<valid.count, using: &random)))
            case 2: // one byte flipped
                frame = valid
                frame[Int.random(in: 0..<frame.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            default: // well-formed but invalid: a publication the attacker may not make, or bad fields
                var message = SampleMessages.recommendation()
                if index % 8 == 3 { message.countryVisitRecommendation.memberState = "ZZZ" }
                guard case .publish(let publish) = try scene.publishFrame(message) else { continue }
                var wire = Frame()
                wire.publish = publish
                frame = try wire.serializedBytes()
            }
            try scene.attacker.send(raw: [frame])
            sent += 1
        }
        // One oversize frame (over the broker's limit, under libzmq's cut-off).
        try scene.attacker.send(raw: [[0x1A] + [UInt8](repeating: 0x41, count: 1_100_000)])
        // Every frame is answered (an error, or nothing for the few random ones that decode as
        // a harmless command); count the answers with a bounded wait.
        var errors = 0
        var codes = Set<ErrorCode>()
        while let kind = try await scene.attacker.receiveCommand(seconds: 2) {
            if case .error(let report) = kind {
                errors += 1
                codes.insert(report.code)
            }
        }
        #expect(errors >= sent * 9 / 10, "only \(errors) errors for \(sent) bad frames")
        #expect(codes.isSubset(of: [.malformedFrame, .validationFailed, .notPermitted, .messageTooLarge, .unsupportedVersion, .noSession,
                                    .signatureInvalid, .unknownSigningKey, .disclosureMismatch, .nonCanonical]))
        #expect(codes.contains(.malformedFrame) && codes.contains(.notPermitted))
        try await scene.expectJournalsExact()
        #expect(try scene.bus.broker!.store.messageCount() == scene.legitimate.count)
    }

    @Test("(g) An unregistered key, a registered key with the wrong server key, and no CURVE: nothing in, nothing out")
    func badConnections() async throws {
        let scene = try await Scene()
        defer { scene.bus.shutdown() }
        let bus = scene.bus
        let strangers = [
            ("unregistered key", try RawClient(endpoint: bus.endpoint, brokerPublicKey: bus.brokerKeys.publicKey,
                                               keyPair: try CurveKeyPair.generate())),
            ("wg-cft's key, wrong server key", try RawClient(endpoint: bus.endpoint, brokerPublicKey: try CurveKeyPair.generate().publicKey,
                                                             keyPair: bus.nodeKeys["wg-cft"]!)),
            ("no CURVE", try RawClient(endpoint: bus.endpoint, brokerPublicKey: "", keyPair: nil)),
        ]
        // Each says Hello and tries to publish a recommendation every honest node would accept.
        var attempted: [String] = []
        for (_, client) in strangers {
            try? client.hello()
            let message = SampleMessages.recommendation()
            attempted.append(message.envelope.messageID)
            try? client.send(try BadInputTests.publish(message))
        }
        // Legitimate traffic meanwhile, including a CONFIDENTIAL message they must never see.
        try scene.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["oct"])))
        try await scene.expectJournalsExact()
        for (name, client) in strangers {
            #expect(try await client.receive(seconds: 0.5) == nil, "\(name) got an answer")
        }
        for node in scene.honest {
            for id in attempted { #expect(try bus.journal(node).count(messageId: id) == 0, "\(node) holds a stranger's message") }
        }
        #expect(try bus.broker!.store.messageCount() == scene.legitimate.count)
    }
}
