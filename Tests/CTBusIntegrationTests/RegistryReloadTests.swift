import CTBusBroker
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import Testing
import ZeroMQ

/// Issue 12, item 3: the registry changes while the broker runs (real broker, real nodes, real
/// CURVE keys). What a reload must never do is let a node receive what its new entry forbids.
@Suite("Registry reload", .serialized, .busSlot)
struct RegistryReloadTests {
    static func profile(_ profile: NodeProfile, clearance: Classification? = nil, themes: Set<String>? = nil) -> NodeProfile {
        NodeProfile(id: profile.id, role: profile.role, clearance: clearance ?? profile.clearance, groups: profile.groups,
                    mayPublish: profile.mayPublish, subscriptions: profile.subscriptions, themes: themes ?? profile.themes)
    }

    /// Lowers `node`'s clearance to UNCLASSIFIED in the bus's registry file.
    static func lower(_ bus: LocalBus, _ node: String) throws {
        try bus.changeRegistry { entries in
            for index in entries.indices where entries[index].profile.id == node {
                entries[index].profile = profile(entries[index].profile, clearance: .unclassified)
            }
        }
    }

    static func reload(_ bus: LocalBus) throws -> [RegistryChange] {
        try bus.broker!.reloadRegistry(file: bus.brokerConfiguration.registryFile, source: "test")
    }

    @Test("ctbus registry add gives a new node its three key pairs and its entry; after a reload it connects with them and receives what it is entitled to; registry remove takes it out again")
    func addAndRemoveNode() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        let registry = bus.brokerConfiguration.registryFile
        let keys = bus.folder.appendingPathComponent("wg-new-keys")
        let add = ["registry", "add", "wg-new", "--registry", registry, "--role", "working-group", "--clearance", "CONFIDENTIAL",
                   "--groups", "compact-wg", "--keys-out", keys.path]
        let added = try await CommandLineTests.run(add)
        #expect(added.status == 0 && added.output.contains("node wg-new added"), "\(added.errors)")
        for file in ["wg-new.key", "wg-new.sign.key", "wg-new.seal.key"] {
            #expect(PrivateFiles.mode(of: keys.appendingPathComponent(file).path) == 0o600, "\(file)")
        }
        let twice = try await CommandLineTests.run(add)
        #expect(twice.status == 1 && twice.errors.contains("node wg-new is in the registry"), "\(twice.errors)")
        let typo = try await CommandLineTests.run(["registry", "add", "wg-other", "--registry", registry, "--role", "working-group",
                                             "--clearance", "SECRET", "--keys-out", keys.path])
        #expect(typo.status != 0 && !FileManager.default.fileExists(atPath: keys.appendingPathComponent("wg-other.key").path))
        #expect(try Self.reload(bus).map(\.description) == ["added wg-new"])

        var configuration = bus.nodeConfiguration("oct")
        configuration.nodeId = "wg-new"
        configuration.secretKeyFile = keys.appendingPathComponent("wg-new.key").path
        configuration.journalPath = bus.journalPath("wg-new")
        configuration.clearance = "CONFIDENTIAL"
        let node = try Node(configuration: configuration, keyPair: try CurveKeyPair(secretKeyFile: configuration.secretKeyFile),
                            brokerPublicKey: bus.brokerKeys.publicKey, journal: try NodeJournal(path: configuration.journalPath))
        defer { node.stop() }
        try node.start()
        let id = try bus.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential, releasableTo: ["compact-wg"])),
                                 from: "cted")
        #expect(try await Wait.until { try NodeJournal(path: configuration.journalPath).count(messageId: id) == 1 })

        let removed = try await CommandLineTests.run(["registry", "remove", "wg-new", "--registry", registry])
        #expect(removed.status == 0, "\(removed.errors)")
        #expect(try Self.reload(bus).map(\.description) == ["removed wg-new"])
    }

    @Test("A node added to a group receives what is released to that group once its registry copy says so: its own check reads the changed file again instead of refusing")
    func nodeJudgesWithItsCurrentRegistry() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        for node in ["cted", "wg-rights"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        let rights = try #require(bus.node("wg-rights"))
        _ = try bus.changeRegistry { entries in
            let index = try #require(entries.firstIndex { $0.profile.id == "wg-rights" })
            let profile = entries[index].profile
            entries[index].profile = NodeProfile(id: profile.id, role: profile.role, clearance: profile.clearance,
                                                 groups: profile.groups.union(["legal-wg"]), mayPublish: profile.mayPublish,
                                                 subscriptions: profile.subscriptions, themes: profile.themes)
        }
        #expect(try Self.reload(bus).map(\.description) == ["changed wg-rights: groups +legal-wg"])
        let id = try bus.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.unclassified, releasableTo: ["legal-wg"])),
                                 from: "cted")
        #expect(try await Wait.until { try bus.journal("wg-rights").count(messageId: id) == 1 })
        #expect(rights.refusedDeliveries == 0)
    }

    @Test("A lowered clearance withholds a CONFIDENTIAL message queued before the change; the audit names the rule; an UNCLASSIFIED one still arrives")
    func loweredClearance() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let broker = try bus.startBroker()
        for node in ["cted", "oct"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        // wg-border (CONFIDENTIAL) is away: both wait in its queue.
        let confidential = try bus.publish(SampleMessages.recommendation(memberState: "NGA", handling: SampleMessages.handling(.confidential)),
                                           from: "cted")
        let open = try bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted")
        #expect(try await Wait.until { try broker.store.queueDepth(for: "wg-border") == 2 })

        try Self.lower(bus, "wg-border")
        let changes = try Self.reload(bus)
        #expect(changes == [RegistryChange(nodeId: "wg-border", kind: .changed, details: ["clearance CONFIDENTIAL -> UNCLASSIFIED"])])

        // The node still believes it is CONFIDENTIAL (its own configuration, its own check): only
        // the broker can withhold the message, and must.
        var configuration = bus.nodeConfiguration("wg-border")
        configuration.clearance = "CONFIDENTIAL"
        let node = try Node(configuration: configuration, keyPair: bus.nodeKeys["wg-border"]!, brokerPublicKey: bus.brokerKeys.publicKey,
                            journal: try bus.journal("wg-border"), logger: LocalBus.defaultLogger)
        defer { node.stop() }
        try node.start()
        let journal = try bus.journal("wg-border")
        #expect(try await Wait.until { try journal.count(messageId: open) == 1 && broker.store.queueDepth(for: "wg-border") == 0 })
        #expect(try journal.count(messageId: confidential) == 0)
        #expect(node.refusedDeliveries == 0, "the node never saw it")
        let trail = try #require(try broker.store.audit(messageId: confidential))
        let withdrawn = trail.entries.filter { $0.nodeId == "wg-border" && $0.outcome == .refused }
        #expect(withdrawn.count == 1 && withdrawn.first?.rule == .policy(.clearance) && withdrawn.first?.reason.contains("registry change") == true,
                "\(trail.entries)")
        // oct, whose entry did not change, has it.
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: confidential) == 1 })

        let history = try broker.store.registryAudit()
        #expect(history.contains { $0.source == "test" && $0.outcome == .changed && $0.nodeId == "wg-border"
            && $0.detail == "clearance CONFIDENTIAL -> UNCLASSIFIED" })

        // Revoked later: the notice goes to the nodes that hold it, not to wg-border, whose copy was withdrawn.
        let cted = try bus.journal("cted")
        #expect(try await Wait.until { try cted.outbox.status(messageId: confidential) == .acknowledged })
        try bus.revoke(confidential, from: "cted", reason: "superseded")
        #expect(try await Wait.until { try broker.store.audit(messageId: confidential)?.entries.contains { $0.outcome == .revoked } == true })
        let noticed = try #require(try broker.store.audit(messageId: confidential)).entries.filter { $0.outcome == .revoked }.map(\.nodeId)
        #expect(noticed.contains("oct") && !noticed.contains("wg-border"), "\(noticed)")
    }

    @Test("A clearance lowered while the broker was stopped, or by a reload just before a restart, still withholds what was queued")
    func loweredAcrossRestarts() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        var broker = try bus.startBroker()
        try bus.startNode("cted")
        #expect(await bus.waitUntilConnected())
        // wg-border and wg-cft (both CONFIDENTIAL) are away.
        let confidential = try bus.publish(SampleMessages.recommendation(memberState: "NGA", handling: SampleMessages.handling(.confidential)),
                                           from: "cted")
        #expect(try await Wait.until { try broker.store.queueDepth(for: "wg-border") == 1 && broker.store.queueDepth(for: "wg-cft") == 1 })
        // wg-border: lowered in the file while the broker is stopped.
        bus.stopBroker()
        try Self.lower(bus, "wg-border")
        broker = try bus.startBroker()
        // wg-cft: lowered by a reload, then the broker restarts before wg-cft comes back.
        try Self.lower(bus, "wg-cft")
        _ = try Self.reload(bus)
        bus.stopBroker()
        broker = try bus.startBroker()

        let open = try bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted")
        for node in ["wg-border", "wg-cft"] {
            var configuration = bus.nodeConfiguration(node)
            configuration.clearance = "CONFIDENTIAL" // the node's own check would not stop it: the broker must
            let running = try Node(configuration: configuration, keyPair: bus.nodeKeys[node]!, brokerPublicKey: bus.brokerKeys.publicKey,
                                   journal: try bus.journal(node), logger: LocalBus.defaultLogger)
            defer { running.stop() }
            try running.start()
            let journal = try bus.journal(node)
            #expect(try await Wait.until { try journal.count(messageId: open) == 1 && broker.store.queueDepth(for: node) == 0 }, "\(node)")
            #expect(try journal.count(messageId: confidential) == 0, "\(node)")
        }
        let withdrawn = try #require(try broker.store.audit(messageId: confidential)).entries.filter {
            $0.outcome == .refused && $0.rule == .policy(.clearance) && $0.reason.contains("withdrawn")
        }
        #expect(Set(withdrawn.map(\.nodeId)) == ["wg-border", "wg-cft"])
        #expect(try broker.store.rejudgeMarks().isEmpty, "the marks go once the nodes acknowledged past them")
    }

    @Test("A removed node's key is refused at its next frame while the others keep receiving; a node added connects at once; a replaced key is refused and the new one admitted")
    func removedAddedReplaced() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let broker = try bus.startBroker()
        for node in ["cted", "oct", "wg-border", "wg-rights"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        let cft = try await BadInputTests.session(bus, as: "wg-cft", keepAlive: false) // it loses its session on purpose

        try bus.changeRegistry { entries in entries.removeAll { $0.profile.id == "wg-cft" } }
        try bus.addNode(.init("wg-new", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"]))
        let changes = try Self.reload(bus)
        #expect(Set(changes.map(\.description)) == ["removed wg-cft", "added wg-new"])

        // The removed node's connection: its next frame is refused, and nothing reaches it.
        try cft.send(.heartbeat(Heartbeat()))
        _ = try await BadInputTests.expectError(cft, .notAuthenticated)
        // The added node connects without a broker restart.
        let added = try bus.startNode("wg-new")
        #expect(await Wait.until { added.isConnected })
        let first = try bus.publish(SampleMessages.recommendation(), from: "cted")
        for node in ["oct", "wg-border", "wg-rights", "wg-new"] {
            #expect(try await Wait.until { try bus.journal(node).count(messageId: first) == 1 }, "\(node)")
        }
        var frames: [Frame.OneOf_Kind] = []
        while let kind = try await cft.receiveCommand(seconds: 0.5) { frames.append(kind) }
        #expect(!frames.contains { if case .deliver = $0 { true } else { false } }, "\(frames)")

        // wg-rights' key is replaced: its running node (old key) is cut off; with the new key it is served again.
        let oldRights = try #require(bus.node("wg-rights"))
        try bus.replaceKey(of: "wg-rights")
        #expect(try Self.reload(bus).map(\.description) == ["changed wg-rights: publicKey replaced"])
        #expect(await Wait.until { !oldRights.isConnected })
        #expect(await Wait.until { oldRights.errorsReceived.contains { $0.code == .notAuthenticated } })
        let second = try bus.publish(SampleMessages.recommendation(memberState: "NGA"), from: "cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: second) == 1 })
        #expect(try bus.journal("wg-rights").count(messageId: second) == 0)
        bus.stopNode("wg-rights")
        try bus.startNode("wg-rights")
        #expect(try await Wait.until { try bus.journal("wg-rights").count(messageId: second) == 1 })

        let lines = try broker.store.registryAudit().filter { $0.source == "test" }.map { "\($0.outcome.rawValue) \($0.nodeId ?? "-")" }
        #expect(lines == ["applied -", "added wg-new", "removed wg-cft", "applied -", "changed wg-rights"], "\(lines)")
    }

    @Test("During a rotation both keys are admitted; finishing it cuts off the old key")
    func rotation() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startNode("cted")
        let old = try bus.replaceKey(of: "oct", asNext: true)
        #expect(try Self.reload(bus).map(\.description) == ["changed oct: nextPublicKey added"])
        let newKey = try #require(bus.nodeKeys["oct"])

        // The node still on the old key, and a client on the new one (as after the switch).
        let onOldKey = try RawClient(endpoint: bus.endpoint, brokerPublicKey: bus.brokerKeys.publicKey, keyPair: old)
        try onOldKey.hello()
        guard case .welcome(let welcome) = try await onOldKey.receiveCommand() else { Issue.record("no Welcome on the old key"); return }
        #expect(welcome.nodeID == "oct")
        let node = try bus.startNode("oct") // the new key
        #expect(await Wait.until { node.isConnected })
        // Two connections of one node: the newer session wins, whichever key each uses.
        _ = try await BadInputTests.expectError(onOldKey, .sessionReplaced)
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: id) == 1 })

        // Finished: the next key becomes the key, the old one is gone.
        try bus.changeRegistry { entries in
            for index in entries.indices where entries[index].profile.id == "oct" {
                entries[index].publicKey = newKey.publicKey
                entries[index].nextPublicKey = nil
            }
        }
        #expect(try Self.reload(bus).map(\.description) == ["changed oct: publicKey rotated to the next key"])
        try onOldKey.hello()
        _ = try await BadInputTests.expectError(onOldKey, .notAuthenticated)
        let after = try bus.publish(SampleMessages.recommendation(memberState: "NGA"), from: "cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: after) == 1 })
    }

    @Test("A registry file that does not validate changes nothing, says why (file, node, field), and is recorded as refused")
    func badFile() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let broker = try bus.startBroker()
        for node in ["cted", "oct"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected())
        let before = broker.registry
        let path = bus.brokerConfiguration.registryFile
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        // wg-rights given oct's key: a duplicate key.
        let octKey = bus.nodeKeys["oct"]!.publicKey
        let rightsKey = bus.nodeKeys["wg-rights"]!.publicKey
        try Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: rightsKey, with: octKey).utf8)
            .write(to: URL(fileURLWithPath: path))
        do {
            _ = try Self.reload(bus)
            Issue.record("a registry with a duplicate key was applied")
        } catch {
            let text = "\(error)"
            #expect(text.contains(path) && text.contains("publicKey") && text.contains("already used by node"), "\(text)")
        }
        #expect(broker.registry == before)
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try bus.journal("oct").count(messageId: id) == 1 })
        let last = try #require(try broker.store.registryAudit().last)
        #expect(last.outcome == .refused && last.detail.contains("already used"))
    }

    @Test("ctbus broker reloads on SIGHUP and ctbus registry reload; keygen --rotate and finish-rotation carry a node to a new key; a bad file is refused and the broker runs on")
    func commandLine() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let brokerConfig = try bus.writeConfigurationFiles()
        let registryFile = bus.brokerConfiguration.registryFile
        let broker = try CommandLineTests.start(["broker", "--config", brokerConfig], log: bus.folder.appendingPathComponent("broker.log"))
        defer { _ = CommandLineTests.terminate(broker) }
        for node in ["cted", "oct"] { try bus.startNode(node) }
        #expect(await bus.waitUntilConnected(seconds: 30))
        let store = try BrokerStore(path: bus.brokerConfiguration.storePath, access: .readOnly)
        #expect(try store.registryAudit().map(\.source).first == "start")

        // Rotation, step 1: a next key beside the current one, applied by `ctbus registry reload`.
        let keygen = try await CommandLineTests.run(["keygen", "wg-rights", "--rotate", "--register-in", registryFile, "--out", bus.folder.path])
        #expect(keygen.status == 0, "\(keygen.errors)")
        let nextKeyFile = bus.folder.appendingPathComponent("wg-rights.next.key").path
        let reload = try await CommandLineTests.run(["registry", "reload", "--broker-config", brokerConfig])
        #expect(reload.status == 0 && reload.output.contains("changed wg-rights: nextPublicKey added"), "\(reload.output)\(reload.errors)")
        // Step 2: the node runs with its new key and is served.
        let rights = try Node(configuration: bus.nodeConfiguration("wg-rights"), keyPair: try CurveKeyPair(secretKeyFile: nextKeyFile),
                              brokerPublicKey: bus.brokerKeys.publicKey, journal: try bus.journal("wg-rights"), logger: LocalBus.defaultLogger)
        defer { rights.stop() }
        try rights.start()
        let id = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until(seconds: 30) { try rights.journal.count(messageId: id) == 1 })
        // Step 3: finish, and reload with a plain SIGHUP.
        let finish = try await CommandLineTests.run(["registry", "finish-rotation", "wg-rights", "--registry", registryFile])
        #expect(finish.status == 0, "\(finish.errors)")
        kill(broker.processIdentifier, SIGHUP)
        #expect(try await Wait.until(seconds: 30) {
            try store.registryAudit().contains { $0.source == "SIGHUP" && $0.nodeId == "wg-rights" && $0.detail == "publicKey rotated to the next key" }
        })
        #expect(rights.isConnected)

        // A bad file: `ctbus registry reload` says why and signals nothing; a SIGHUP is refused by
        // the broker, recorded, and changes nothing.
        let good = try Data(contentsOf: URL(fileURLWithPath: registryFile))
        try Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\"working-group\"", with: "\"observer\"").utf8)
            .write(to: URL(fileURLWithPath: registryFile))
        let refused = try await CommandLineTests.run(["registry", "reload", "--broker-config", brokerConfig])
        #expect(refused.status == 1 && refused.errors.contains(registryFile) && refused.errors.contains("role must be one of"),
                "\(refused.errors)")
        let check = try await CommandLineTests.run(["registry", "check", registryFile])
        #expect(check.status == 1 && check.errors.contains("role must be one of"))
        kill(broker.processIdentifier, SIGHUP)
        #expect(try await Wait.until(seconds: 30) { try store.registryAudit().last?.outcome == .refused })
        #expect(broker.isRunning)
        let after = try bus.publish(SampleMessages.recommendation(memberState: "NGA"), from: "cted")
        #expect(try await Wait.until(seconds: 30) { try rights.journal.count(messageId: after) == 1 && bus.journal("oct").count(messageId: after) == 1 })

        let history = try await CommandLineTests.run(["registry", "history", "--broker-config", brokerConfig])
        #expect(history.status == 0)
        #expect(history.output.contains("SIGHUP: applied")
                && history.output.contains("changed  wg-rights: publicKey rotated to the next key") && history.output.contains("SIGHUP: refused"),
                "\(history.output)")
        try good.write(to: URL(fileURLWithPath: registryFile))
        let unchanged = try await CommandLineTests.run(["registry", "reload", "--broker-config", brokerConfig])
        #expect(unchanged.status == 0 && unchanged.output.contains("no change"), "\(unchanged.output)\(unchanged.errors)")
    }
}
