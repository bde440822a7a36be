import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import ZeroMQ

/// A node's secret signing (Ed25519) and sealing (X25519) keys, read from the files its
/// configuration names. Loaded and checked when the daemon starts; signatures and sealed
/// messages use them. Sendable by hand: swift-crypto's keys are immutable values that
/// it does not mark Sendable.
public struct NodeMessageKeys: @unchecked Sendable {
    public let signing: Curve25519.Signing.PrivateKey
    public let sealing: Curve25519.KeyAgreement.PrivateKey

    public init(signing: Curve25519.Signing.PrivateKey, sealing: Curve25519.KeyAgreement.PrivateKey) {
        self.signing = signing
        self.sealing = sealing
    }

    /// Reads both files; each must be private to this user and hold one key in base64url. When a
    /// registry is given, the public halves must be the ones it lists for the node.
    public init(configuration: NodeConfiguration, registry: NodeRegistry? = nil) throws {
        let signingPath = configuration.signingKeyPath
        let sealingPath = configuration.sealingKeyPath
        // A key pasted where a path belongs: said without repeating it (it may be the secret).
        for (field, path) in [("signingKeyFile", signingPath), ("sealingKeyFile", sealingPath)]
        where MessageKeys.bytes((path as NSString).lastPathComponent) != nil && !FileManager.default.fileExists(atPath: path) {
            throw ConfigurationError("\(field) of node \(configuration.nodeId) holds a key, not a file name: name the file that holds it")
        }
        try PrivateFiles.requirePrivate(signingPath, what: "the node's signing key file")
        try PrivateFiles.requirePrivate(sealingPath, what: "the node's sealing key file")
        guard let signing = MessageKeys.signingPrivateKey(try KeyFiles.text(of: signingPath, what: "signing key file")) else {
            throw ConfigurationError("signing key file \(signingPath) does not hold an Ed25519 secret key (43 base64url characters, as ctbus keygen writes NAME.sign.key)")
        }
        guard let sealing = MessageKeys.sealingPrivateKey(try KeyFiles.text(of: sealingPath, what: "sealing key file")) else {
            throw ConfigurationError("sealing key file \(sealingPath) does not hold an X25519 secret key (43 base64url characters, as ctbus keygen writes NAME.seal.key)")
        }
        if let entry = registry?.entry(id: configuration.nodeId) {
            guard MessageKeys.text(signing.publicKey.rawRepresentation) == entry.signingKey else {
                throw ConfigurationError("signing key file \(signingPath) does not belong to the signingKey the registry lists for node \(configuration.nodeId)")
            }
            guard MessageKeys.text(sealing.publicKey.rawRepresentation) == entry.sealingKey else {
                throw ConfigurationError("sealing key file \(sealingPath) does not belong to the sealingKey the registry lists for node \(configuration.nodeId)")
            }
        }
        self.signing = signing
        self.sealing = sealing
    }
}
