import Foundation

/// A configuration, registry or key file that cannot be used: missing, unreadable, not valid
/// JSON, or with a wrong value. The message names the file and the field.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Reading the JSON configuration files of `deploy/`.
public enum ConfigurationFile {
    /// Reads the bytes of `path`; a missing or unreadable file is a `ConfigurationError`.
    public static func read(_ path: String, what: String) throws(ConfigurationError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError("\(what) \(path) does not exist")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("\(what) \(path) cannot be read")
        }
        return data
    }

    /// Decodes a JSON configuration file.
    public static func decode<T: Decodable>(_ type: T.Type, from path: String, what: String) throws(ConfigurationError) -> T {
        let data = try read(path, what: what)
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            let field = (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw ConfigurationError("\(what) \(path): missing field \(field)")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ConfigurationError("\(what) \(path): wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch {
            throw ConfigurationError("\(what) \(path) is not valid JSON")
        }
    }

    /// `path` resolved against the folder of the configuration file that named it.
    /// Writes `data` over the file at `path` at once (a new file renamed over it, so a reader
    /// never sees half of it), keeping the old file's mode and, when this process may set it,
    /// its owner: a registry rewritten by root stays readable by the broker's user.
    public static func replace(_ path: String, with data: Data) throws {
        let manager = FileManager.default
        // A symbolic link stays one: its target is what gets replaced, with the target's mode and owner.
        let path = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let old = try? manager.attributesOfItem(atPath: path)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        guard let old else { return }
        if let mode = old[.posixPermissions] { try manager.setAttributes([.posixPermissions: mode], ofItemAtPath: path) }
        if getuid() == 0, let owner = old[.ownerAccountID], let group = old[.groupOwnerAccountID] {
            try manager.setAttributes([.ownerAccountID: owner, .groupOwnerAccountID: group], ofItemAtPath: path)
        }
    }

    public static func resolve(_ path: String, relativeTo configPath: String) -> String {
        if path.hasPrefix("/") { return path }
        let folder = URL(fileURLWithPath: configPath).deletingLastPathComponent()
        return folder.appendingPathComponent(path).standardizedFileURL.path
    }
}
