import ArgumentParser
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

    @Argument(help: "The key's name, usually the node id or \"broker\".")
    var name: String

    func run() throws {
        try runReportingErrors {
            // Check the registry before writing keys, so a typo leaves nothing behind.
            let registry = try registerIn.map { path in
                try NodeRegistry(json: try ConfigurationFile.read(path, what: "registry"))
            }
            if let registry, registry.entry(id: name) == nil {
                throw ConfigurationError("node \(name) is not in the registry \(registerIn!)")
            }
            let pair = try CurveKeyPair.generate()
            let files = try pair.write(toFolder: out, name: name)
            print("secret key: \(files.secretKeyFile)")
            print("public key: \(files.publicKeyFile) \(pair.publicKey)")
            if let registry, let path = registerIn {
                let entries = registry.entries.map { entry in
                    entry.profile.id == name ? NodeRegistry.Entry(profile: entry.profile, publicKey: pair.publicKey) : entry
                }
                try NodeRegistry(entries: entries).json().write(to: URL(fileURLWithPath: path))
                print("registry: \(path) now holds this key for \(name)")
            }
        }
    }
}
