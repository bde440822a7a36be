import ArgumentParser
import CTBusBroker
import CTBusPolicy
import CTBusSchema
import Foundation
import ZeroMQ

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public).",
        discussion: "The public key goes into the registry (for a node) or into every node configuration (for the broker).")

    @Option(name: .long, help: "The folder to write the key files into.")
    var out = "."

    @Option(name: .long, help: "A registry file: set the public key of node NAME in it.")
    var registerIn: String?

    @Flag(help: """
        Start a key rotation for node NAME: write NAME.next.key and NAME.next.pub and register the new public key as the \
        node's nextPublicKey (with --register-in), so the broker admits both keys until `ctbus registry finish-rotation`.
        """)
    var rotate = false

    @Argument(help: "The key's name, usually the node id or \"broker\".")
    var name: String

    func run() throws {
        try runReportingErrors {
            if rotate, registerIn == nil { throw ValidationError("--rotate needs --register-in REGISTRY") }
            // Check the registry before writing keys, so a typo leaves nothing behind.
            let registry = try registerIn.map { path in try Broker.loadRegistry(path) }
            if let registry, registry.entry(id: name) == nil {
                throw ConfigurationError("node \(name) is not in the registry \(registerIn!)")
            }
            if rotate, let next = registry?.entry(id: name)?.nextPublicKey {
                throw ConfigurationError("node \(name) is already rotating to \(next); finish that rotation first (ctbus registry finish-rotation)")
            }
            let pair = try CurveKeyPair.generate()
            let files = try pair.write(toFolder: out, name: rotate ? "\(name).next" : name)
            print("secret key: \(files.secretKeyFile)")
            print("public key: \(files.publicKeyFile) \(pair.publicKey)")
            if let registry, let path = registerIn {
                let entries = registry.entries.map { entry in
                    guard entry.profile.id == name else { return entry }
                    return rotate ? NodeRegistry.Entry(profile: entry.profile, publicKey: entry.publicKey, nextPublicKey: pair.publicKey)
                                  : NodeRegistry.Entry(profile: entry.profile, publicKey: pair.publicKey)
                }
                try ConfigurationFile.replace(path, with: try NodeRegistry(entries: entries).json())
                if rotate {
                    print("registry: \(path) now lists this key as the next key of \(name), beside its current one")
                    print("next: ctbus registry reload; run the node with \(files.secretKeyFile); ctbus registry finish-rotation \(name); reload again")
                } else {
                    print("registry: \(path) now holds this key for \(name)")
                }
            }
        }
    }
}
