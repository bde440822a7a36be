import ArgumentParser
import CTBusBroker
import CTBusPolicy
import CTBusSchema
import Foundation
import ZeroMQ

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a node's key pairs: NAME.key/.pub (CURVE transport), NAME.sign.key/.pub (Ed25519), NAME.seal.key/.pub (X25519).",
        discussion: """
            Secret files get mode 0600. A node's public keys go into the registry (--register-in sets them); the broker \
            needs only its CURVE pair, whose public key goes into every node configuration.
            """)

    @Option(name: .long, help: "The folder to write the key files into.")
    var out = "."

    @Option(name: .long, help: "A registry file: set the public key of node NAME in it.")
    var registerIn: String?

    @Flag(help: """
        Start a key rotation for node NAME: write NAME.next.key and NAME.next.pub and register the new public key as the \
        node's nextPublicKey (with --register-in), so the broker admits both keys until `ctbus registry finish-rotation`.
        """)
    var rotate = false

    @Flag(help: "Write only the CURVE pair (NAME.key, NAME.pub): the broker's keys.")
    var transportOnly = false

    @Flag(help: """
        Write only the signing and sealing pairs (NAME.sign.*, NAME.seal.*) and, with --register-in, add their public keys \
        to the node's entry: for a registry written before nodes had them (the node keeps its CURVE key).
        """)
    var messageKeysOnly = false

    @Flag(help: """
        With --register-in, when the node's keys are replaced: the old signing key was compromised, so drop it instead         of keeping it as a previous key (by default it stays in previousSigningKeys, retired now, so that what the node \
        signed before still verifies; a thief of the key could backdate what it signs, so a compromised key is not kept).
        """)
    var compromised = false

    @Argument(help: "The key's name, usually the node id or \"broker\".")
    var name: String

    func run() throws {
        try runReportingErrors {
            if messageKeysOnly {
                guard !rotate, !transportOnly else { throw ValidationError("--message-keys-only goes alone") }
                return try addMessageKeys()
            }
            if rotate, registerIn == nil { throw ValidationError("--rotate needs --register-in REGISTRY") }
            // Check the registry before writing keys, so a typo leaves nothing behind.
            let registry = try registerIn.map { path in try Broker.loadRegistry(path) }
            if let registry, registry.entry(id: name) == nil {
                throw ConfigurationError("node \(name) is not in the registry \(registerIn!)")
            }
            if rotate, let next = registry?.entry(id: name)?.nextPublicKey {
                throw ConfigurationError("node \(name) is already rotating to \(next); finish that rotation first (ctbus registry finish-rotation)")
            }
            if transportOnly, registerIn != nil { throw ValidationError("a node needs all three key pairs: drop --transport-only to register one") }
            let curveName = rotate ? "\(name).next" : name
            try requireNew([curveName] + (rotate || transportOnly ? [] : ["\(name).sign", "\(name).seal"]))
            let pair = try CurveKeyPair.generate()
            let files = try pair.write(toFolder: out, name: curveName)
            print("transport (CURVE) secret key: \(files.secretKeyFile)")
            print("transport (CURVE) public key: \(files.publicKeyFile) \(pair.publicKey)")
            let messageKeys = rotate || transportOnly ? nil : try writeMessageKeys()
            let signing = messageKeys?.signing
            let sealing = messageKeys?.sealing
            if let registry, let path = registerIn {
                let entries = registry.entries.map { entry in
                    guard entry.profile.id == name else { return entry }
                    var changed = entry
                    if rotate {
                        changed.nextPublicKey = pair.publicKey
                    } else {
                        changed.publicKey = pair.publicKey
                        changed.signingKey = signing ?? entry.signingKey
                        changed.sealingKey = sealing ?? entry.sealingKey
                        if !compromised, changed.signingKey != entry.signingKey {
                            // Retired at the next whole second (the registry keeps seconds), so
                            // nothing signed before now is dated after the retirement.
                            let retiredAt = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 1).rounded(.down))
                            changed.previousSigningKeys.append(.init(key: entry.signingKey, retiredAt: retiredAt))
                        }
                    }
                    return changed
                }
                try ConfigurationFile.replace(path, with: try NodeRegistry(entries: entries).json())
                if rotate {
                    print("registry: \(path) now lists this key as the next key of \(name), beside its current one")
                    print("next: ctbus registry reload; run the node with \(files.secretKeyFile); ctbus registry finish-rotation \(name); reload again")
                } else {
                    print("registry: \(path) now holds these public keys for \(name)")
                    if let previous = entries.first(where: { $0.profile.id == name })?.previousSigningKeys.last, !compromised {
                        print("registry: the old signing key stays as a previous key of \(name), retired at "
                              + "\(ISO8601DateFormatter().string(from: previous.retiredAt)): what it signed before then still verifies")
                    }
                }
            }
        }
    }

    /// `--message-keys-only`: the upgrade of a registry from before signing and sealing keys. The
    /// registry is edited as JSON (it does not validate yet while nodes lack their keys).
    private func addMessageKeys() throws {
        var top: [String: Any] = [:]
        var index: Int?
        if let path = registerIn {
            let data = try ConfigurationFile.read(path, what: "registry")
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let nodes = object["nodes"] as? [[String: Any]] else {
                throw ConfigurationError("registry \(path): not a JSON object with a \"nodes\" list")
            }
            guard let found = nodes.firstIndex(where: { $0["id"] as? String == name }) else {
                throw ConfigurationError("node \(name) is not in the registry \(path)")
            }
            top = object
            index = found
        }
        try requireNew(["\(name).sign", "\(name).seal"])
        let keys = try writeMessageKeys()
        guard let path = registerIn, let index, var nodes = top["nodes"] as? [[String: Any]] else { return }
        nodes[index]["signingKey"] = keys.signing
        nodes[index]["sealingKey"] = keys.sealing
        top["nodes"] = nodes
        try ConfigurationFile.replace(path, with: try JSONSerialization.data(withJSONObject: top,
                                                                             options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
        print("registry: \(path) now holds the signing and sealing keys of \(name)")
        let missing = nodes.filter { $0["signingKey"] == nil || $0["sealingKey"] == nil }.compactMap { $0["id"] as? String }
        if !missing.isEmpty { print("still without them (the broker refuses this registry until they have them): \(missing.joined(separator: ", "))") }
    }

    private func requireNew(_ names: [String]) throws {
        try Self.requireNew(names, in: out)
    }

    /// All or nothing: no key file is written while any of NAME.key / NAME.pub for `names` exists.
    static func requireNew(_ names: [String], in out: String) throws {
        for file in names.flatMap({ ["\($0).key", "\($0).pub"] }) {
            let path = (out as NSString).appendingPathComponent(file)
            if FileManager.default.fileExists(atPath: path) { throw ConfigurationError("\(path) exists already; remove it first to make a new key") }
        }
    }

    private func writeMessageKeys() throws -> (signing: String, sealing: String) {
        try Self.writeMessageKeys(folder: out, name: name)
    }

    /// Writes NAME.sign.* and NAME.seal.* into `folder`, one key per purpose (Ed25519 to sign
    /// publications, X25519 to open sealed messages), says where, and returns the public keys.
    static func writeMessageKeys(folder out: String, name: String) throws -> (signing: String, sealing: String) {
        let sign = MessageKeys.newSigningKey()
        let seal = MessageKeys.newSealingKey()
        let signFiles = try KeyFiles.writePair(folder: out, name: "\(name).sign", secret: sign.secret, public: sign.public)
        let sealFiles = try KeyFiles.writePair(folder: out, name: "\(name).seal", secret: seal.secret, public: seal.public)
        print("signing (Ed25519) secret key: \(signFiles.secretKeyFile)")
        print("signing (Ed25519) public key: \(signFiles.publicKeyFile) \(sign.public)")
        print("sealing (X25519) secret key:  \(sealFiles.secretKeyFile)")
        print("sealing (X25519) public key:  \(sealFiles.publicKeyFile) \(seal.public)")
        return (sign.public, seal.public)
    }
}
