import CTBusBroker
import CTBusPolicy
import CTBusLocal
import CTBusTesting
import Crypto
import Foundation
import Testing
import ZeroMQ

/// Issue 13, item 1: every node has, beside its CURVE transport key pair, an Ed25519 signing key
/// pair and an X25519 sealing key pair; the registry lists the public halves and the node's
/// configuration names the secret files (real `ctbus` processes, real files).
@Suite("Message keys", .busSlot)
struct MessageKeysTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test("ctbus keygen writes three key pairs (secrets 0600), registers the three public keys, and writes nothing when one file exists")
    func keygen() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let out = bus.folder.appendingPathComponent("new-keys").path
        let registry = bus.brokerConfiguration.registryFile
        let result = try await CommandLineTests.run(["keygen", "--out", out, "--register-in", registry, "oct"])
        #expect(result.status == 0, "\(result.errors)")
        for name in ["oct", "oct.sign", "oct.seal"] {
            #expect(try Self.mode("\(out)/\(name).key") == 0o600, "\(name).key")
            #expect(FileManager.default.fileExists(atPath: "\(out)/\(name).pub"))
        }
        func text(_ file: String) throws -> String {
            try String(contentsOfFile: "\(out)/\(file)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let entry = try #require(try NodeRegistry(json: try Data(contentsOf: URL(fileURLWithPath: registry))).entry(id: "oct"))
        let written = (try text("oct.pub"), try text("oct.sign.pub"), try text("oct.seal.pub"), try text("oct.sign.key"))
        #expect(entry.publicKey == written.0 && entry.signingKey == written.1 && entry.sealingKey == written.2)
        #expect(MessageKeys.signingPrivateKey(written.3)?.publicKey.rawRepresentation == MessageKeys.bytes(entry.signingKey))

        // One of the six exists: nothing is written, and the registry is unchanged.
        let other = bus.folder.appendingPathComponent("other-keys").path
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: "\(other)/cted.seal.pub"))
        let before = try Data(contentsOf: URL(fileURLWithPath: registry))
        let refused = try await CommandLineTests.run(["keygen", "--out", other, "--register-in", registry, "cted"])
        #expect(refused.status != 0 && refused.errors.contains("cted.seal.pub exists already"), "\(refused.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(other)/cted.key") && !FileManager.default.fileExists(atPath: "\(other)/cted.sign.key"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: registry)) == before)
    }

    @Test("A node does not start without its signing or sealing key, with a malformed or readable one, or with one the registry does not list; each error names the file")
    func nodeRefusesBadKeys() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.writeConfigurationFiles()
        let config = bus.nodeConfigurationPath("oct")
        let signing = bus.folder.appendingPathComponent("oct.sign.key").path
        let sealing = bus.folder.appendingPathComponent("oct.seal.key").path
        let good = try Data(contentsOf: URL(fileURLWithPath: signing))
        func start() async throws -> CommandLineTests.Result {
            // Without a broker the node would run on: each case fails before it connects.
            try await CommandLineTests.run(["node", "--config", config])
        }

        try FileManager.default.moveItem(atPath: signing, toPath: signing + ".away")
        var result = try await start()
        #expect(result.status == 1 && result.errors.contains(signing), "\(result.errors)")
        try FileManager.default.moveItem(atPath: signing + ".away", toPath: signing)

        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: signing))
        result = try await start()
        #expect(result.status == 1 && result.errors.contains("signing key file \(signing) does not hold an Ed25519 secret key"), "\(result.errors)")

        // Another valid key, not the one the registry lists for oct.
        try Data((MessageKeys.newSigningKey().secret + "\n").utf8).write(to: URL(fileURLWithPath: signing))
        result = try await start()
        #expect(result.status == 1 && result.errors.contains("does not belong to the signingKey the registry lists for node oct"), "\(result.errors)")
        try good.write(to: URL(fileURLWithPath: signing))

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: sealing)
        result = try await start()
        #expect(result.status == 1 && result.errors.contains(sealing), "\(result.errors)")
        #expect(!result.errors.contains(try String(contentsOfFile: sealing, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)),
                "no secret key in the message")
    }

    @Test("A registry from before signing and sealing keys: the broker refuses it, naming the node and field; keygen --message-keys-only adds them node by node")
    func upgrade() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let path = bus.brokerConfiguration.registryFile
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let nodes = try #require(object["nodes"] as? [[String: Any]]).map { node in
            node.filter { $0.key != "signingKey" && $0.key != "sealingKey" }
        }
        object["nodes"] = nodes
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        let check = try await CommandLineTests.run(["registry", "check", path])
        #expect(check.status == 1 && check.errors.contains("node oct: signingKey is required"), "\(check.errors)")

        let out = bus.folder.appendingPathComponent("upgrade").path
        for (index, node) in nodes.compactMap({ $0["id"] as? String }).enumerated() {
            let result = try await CommandLineTests.run(["keygen", "--message-keys-only", "--out", out, "--register-in", path, node])
            #expect(result.status == 0, "\(result.errors)")
            #expect(result.output.contains("still without them") == (index < nodes.count - 1), "\(result.output)")
            #expect(try Self.mode("\(out)/\(node).sign.key") == 0o600 && !FileManager.default.fileExists(atPath: "\(out)/\(node).key"))
        }
        let fixed = try await CommandLineTests.run(["registry", "check", path])
        #expect(fixed.status == 0, "\(fixed.errors)")
        // The CURVE keys are the ones the nodes had.
        #expect(try NodeRegistry(json: Data(contentsOf: URL(fileURLWithPath: path))).entry(id: "oct")?.publicKey == bus.nodeKeys["oct"]?.publicKey)
    }
}
