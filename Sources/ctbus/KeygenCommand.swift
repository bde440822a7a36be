import ArgumentParser
import Foundation
import ZeroMQ

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public).",
        discussion: "The public key goes into the registry (for a node) or into every node configuration (for the broker).")

    @Option(name: .long, help: "The folder to write the key files into.")
    var out = "."

    @Argument(help: "The key's name, usually the node id or \"broker\".")
    var name: String

    func run() throws {
        try runReportingErrors {
            let pair = try CurveKeyPair.generate()
            let files = try pair.write(toFolder: out, name: name)
            print("secret key: \(files.secretKeyFile)")
            print("public key: \(files.publicKeyFile) \(pair.publicKey)")
        }
    }
}
