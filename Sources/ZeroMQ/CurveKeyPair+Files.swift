import Foundation

/// Key files: `NAME.key` holds the Z85 secret key (mode 0600), `NAME.pub` the Z85 public key.
/// Whitespace around the key is ignored.
extension CurveKeyPair {
    /// Writes `NAME.key` (0600) and `NAME.pub` (0644) under `folder`; refuses to overwrite.
    public func write(toFolder folder: String, name: String) throws -> (secretKeyFile: String, publicKeyFile: String) {
        try KeyFiles.writePair(folder: folder, name: name, secret: secretKey, public: publicKey)
    }

    /// Loads a key pair from a secret key file.
    public init(secretKeyFile path: String) throws(KeyFileError) {
        let text = try KeyFiles.text(of: path, what: "secret key file")
        guard let pair = CurveKeyPair(secretKey: text) else {
            throw KeyFileError("secret key file \(path) does not hold a Z85 CURVE secret key")
        }
        self = pair
    }

    /// Whether `text` is a CURVE public key in Z85 form (40 characters, 32 bytes).
    public static func isPublicKey(_ text: String) -> Bool {
        text.utf8.count == 40 && Z85.decode(text)?.count == 32
    }

    /// Reads a Z85 public key from a file. A path is always a path: it is never taken for a key,
    /// whatever its length.
    public static func publicKey(fromFile path: String) throws(KeyFileError) -> String {
        let text = try KeyFiles.text(of: path, what: "public key file")
        guard isPublicKey(text) else {
            throw KeyFileError("public key file \(path) does not hold a Z85 CURVE public key")
        }
        return text
    }
}

/// Writing and reading the text files keys live in (CURVE keys here, and the signing and sealing
/// keys of CTBusPolicy's `MessageKeys`).
public enum KeyFiles {
    /// Writes `NAME.key` (the secret, mode 0600 from its creation) and `NAME.pub` under `folder`;
    /// refuses to overwrite either.
    public static func writePair(folder: String, name: String, secret: String, public publicText: String) throws
        -> (secretKeyFile: String, publicKeyFile: String) {
        let manager = FileManager.default
        try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let secretPath = (folder as NSString).appendingPathComponent("\(name).key")
        let publicPath = (folder as NSString).appendingPathComponent("\(name).pub")
        for path in [secretPath, publicPath] where manager.fileExists(atPath: path) {
            throw KeyFileError("\(path) exists already; remove it first to make a new key")
        }
        // Create the secret file with 0600 before any key byte is written to it.
        guard manager.createFile(atPath: secretPath, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw KeyFileError("cannot create \(secretPath)")
        }
        try Data((secret + "\n").utf8).write(to: URL(fileURLWithPath: secretPath))
        try Data((publicText + "\n").utf8).write(to: URL(fileURLWithPath: publicPath))
        return (secretPath, publicPath)
    }

    /// The trimmed text of a key file, or an error naming it.
    public static func text(of path: String, what: String) throws(KeyFileError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeyFileError("\(what) \(path) does not exist or cannot be read")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public struct KeyFileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
