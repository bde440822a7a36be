import CTBusNotify
import CTBusPolicy
import CTBusSchema
import Foundation
import ZeroMQ

/// A node's settings (deploy/nodes/NAME.json). Relative paths are relative to the file.
public struct NodeConfiguration: Sendable, Codable {
    /// This node's id in the registry ("oct", "wg-border").
    public var nodeId: String
    /// The broker's endpoint, e.g. "tcp://broker.example:7470".
    public var brokerEndpoint: String
    /// The broker's CURVE public key itself (40 Z85 characters). Give this or
    /// `brokerPublicKeyFile`, never both: the two forms cannot be mistaken for each other.
    public var brokerPublicKey: String?
    /// A file holding the broker's CURVE public key (as `ctbus keygen` writes `broker.pub`).
    public var brokerPublicKeyFile: String?
    /// This node's CURVE secret key file (its public key is in the registry).
    public var secretKeyFile: String
    /// The node's Ed25519 secret key file, to sign what it publishes. Default: beside
    /// `secretKeyFile`, as `ctbus keygen` writes it (`oct.key` -> `oct.sign.key`).
    public var signingKeyFile: String?
    /// The node's X25519 secret key file, to open what is sealed to it. Default: `oct.seal.key`
    /// beside `secretKeyFile`.
    public var sealingKeyFile: String?
    /// The node's journal (SQLite).
    public var journalPath: String
    /// The highest classification this node is cleared for (as in the registry). The node
    /// refuses to journal anything above it, whatever the broker sends.
    public var clearance: String
    public var heartbeatIntervalMilliseconds: Int
    /// No word from the broker for this long: the node says Hello again.
    public var brokerTimeoutMilliseconds: Int
    /// An unacknowledged publication is sent again after this long.
    public var resendAfterMilliseconds: Int
    /// How often the daemon looks for new publications in the outbox.
    public var outboxPollMilliseconds: Int
    /// Reconnection back-off, first and longest interval.
    public var reconnectMilliseconds: Int
    public var reconnectMaxMilliseconds: Int
    /// Whether a node whose journal holds nothing yet asks the broker for the retained messages
    /// it is entitled to (a node that joined late). Default true.
    public var requestBacklog: Bool
    /// The console (`ctbus node` serves it beside the node when set): `{"port": 8470}`, bound to
    /// 127.0.0.1 unless `bind` says otherwise (another address needs `usersFile` or `tokenFile`).
    public var http: HTTPSettings?
    /// The node's own copy of the registry (deploy/registry.json). Required to run a node: every
    /// delivery's signature is checked against the keys it lists. The console reads from it which
    /// types this node's role may publish and the node and group ids a message can be released to.
    public var registryFile: String?
    /// Subscriptions to arriving messages, and how mail and webhooks are sent (the daemon's
    /// notifier): see `NotificationSettings`.
    public var notifications: NotificationSettings?

    public struct HTTPSettings: Sendable, Codable, Equatable {
        public var port: Int
        public var bind: String?
        /// People who may sign in (`ctbus console-user` writes it): needed, or `tokenFile`, to
        /// bind anywhere but loopback.
        public var usersFile: String?
        /// Bearer tokens for other systems, one a line.
        public var tokenFile: String?
        /// The names people reach the console by (`console.example.org`), beside `localhost`, the
        /// loopback addresses and `bind`: a request for any other name in `Host` is refused (421).
        public var allowedHosts: [String]?

        public init(port: Int, bind: String? = nil, usersFile: String? = nil, tokenFile: String? = nil, allowedHosts: [String]? = nil) {
            self.port = port
            self.bind = bind
            self.usersFile = usersFile
            self.tokenFile = tokenFile
            self.allowedHosts = allowedHosts
        }
    }

    public init(nodeId: String, brokerEndpoint: String, brokerPublicKey: String? = nil, brokerPublicKeyFile: String? = nil,
                secretKeyFile: String, journalPath: String, clearance: String, heartbeatIntervalMilliseconds: Int = 1_000,
                brokerTimeoutMilliseconds: Int = 5_000, resendAfterMilliseconds: Int = 3_000,
                outboxPollMilliseconds: Int = 100, reconnectMilliseconds: Int = 100, reconnectMaxMilliseconds: Int = 5_000,
                requestBacklog: Bool = true) {
        self.nodeId = nodeId
        self.brokerEndpoint = brokerEndpoint
        self.brokerPublicKey = brokerPublicKey
        self.brokerPublicKeyFile = brokerPublicKeyFile
        self.secretKeyFile = secretKeyFile
        self.journalPath = journalPath
        self.clearance = clearance
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.brokerTimeoutMilliseconds = brokerTimeoutMilliseconds
        self.resendAfterMilliseconds = resendAfterMilliseconds
        self.outboxPollMilliseconds = outboxPollMilliseconds
        self.reconnectMilliseconds = reconnectMilliseconds
        self.reconnectMaxMilliseconds = reconnectMaxMilliseconds
        self.requestBacklog = requestBacklog
    }

    enum CodingKeys: String, CodingKey {
        case nodeId, brokerEndpoint, brokerPublicKey, brokerPublicKeyFile, secretKeyFile, signingKeyFile, sealingKeyFile, journalPath, clearance
        case heartbeatIntervalMilliseconds, brokerTimeoutMilliseconds, resendAfterMilliseconds
        case outboxPollMilliseconds, reconnectMilliseconds, reconnectMaxMilliseconds, requestBacklog, http, registryFile, notifications
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            nodeId: try c.decode(String.self, forKey: .nodeId),
            brokerEndpoint: try c.decode(String.self, forKey: .brokerEndpoint),
            brokerPublicKey: try c.decodeIfPresent(String.self, forKey: .brokerPublicKey),
            brokerPublicKeyFile: try c.decodeIfPresent(String.self, forKey: .brokerPublicKeyFile),
            secretKeyFile: try c.decode(String.self, forKey: .secretKeyFile),
            journalPath: try c.decode(String.self, forKey: .journalPath),
            clearance: try c.decode(String.self, forKey: .clearance),
            heartbeatIntervalMilliseconds: try c.decodeIfPresent(Int.self, forKey: .heartbeatIntervalMilliseconds) ?? 1_000,
            brokerTimeoutMilliseconds: try c.decodeIfPresent(Int.self, forKey: .brokerTimeoutMilliseconds) ?? 5_000,
            resendAfterMilliseconds: try c.decodeIfPresent(Int.self, forKey: .resendAfterMilliseconds) ?? 3_000,
            outboxPollMilliseconds: try c.decodeIfPresent(Int.self, forKey: .outboxPollMilliseconds) ?? 100,
            reconnectMilliseconds: try c.decodeIfPresent(Int.self, forKey: .reconnectMilliseconds) ?? 100,
            reconnectMaxMilliseconds: try c.decodeIfPresent(Int.self, forKey: .reconnectMaxMilliseconds) ?? 5_000,
            requestBacklog: try c.decodeIfPresent(Bool.self, forKey: .requestBacklog) ?? true)
        http = try c.decodeIfPresent(HTTPSettings.self, forKey: .http)
        registryFile = try c.decodeIfPresent(String.self, forKey: .registryFile)
        signingKeyFile = try c.decodeIfPresent(String.self, forKey: .signingKeyFile)
        sealingKeyFile = try c.decodeIfPresent(String.self, forKey: .sealingKeyFile)
        notifications = try c.decodeIfPresent(NotificationSettings.self, forKey: .notifications)
    }

    /// The signing key file in use (named, or the default beside `secretKeyFile`).
    public var signingKeyPath: String { signingKeyFile ?? Self.sibling(of: secretKeyFile, purpose: "sign") }
    /// The sealing key file in use (named, or the default beside `secretKeyFile`).
    public var sealingKeyPath: String { sealingKeyFile ?? Self.sibling(of: secretKeyFile, purpose: "seal") }

    /// `keys/oct.key` -> `keys/oct.sign.key`.
    static func sibling(of secretKeyFile: String, purpose: String) -> String {
        let base = secretKeyFile.hasSuffix(".key") ? String(secretKeyFile.dropLast(4)) : secretKeyFile
        return "\(base).\(purpose).key"
    }

    /// The broker's public key, from the key itself or its file; a missing or malformed file
    /// is a clear error naming it.
    public func resolvedBrokerPublicKey() throws(KeyFileError) -> String {
        if let key = brokerPublicKey { return key }
        return try CurveKeyPair.publicKey(fromFile: brokerPublicKeyFile ?? "")
    }

    /// The registry named by `registryFile`, or nil when none is named; a missing or invalid
    /// file is an error naming it.
    public func loadRegistry() throws(ConfigurationError) -> NodeRegistry? {
        guard let registryFile else { return nil }
        do {
            let registry = try NodeRegistry(json: try ConfigurationFile.read(registryFile, what: "registry"))
            guard registry.entry(id: nodeId) != nil else {
                throw ConfigurationError("\(registryFile): node \(nodeId) is not in this registry (registryFile of node \(nodeId))")
            }
            return registry
        } catch let error as ConfigurationError {
            throw error
        } catch let error as RegistryError {
            throw ConfigurationError("\(registryFile): \(error.description)")
        } catch {
            throw ConfigurationError("\(error)")
        }
    }

    /// The clearance as a level; `load` has checked it parses.
    public var clearanceLevel: Classification { Classification(name: clearance) ?? .unclassified }

    /// Loads a node configuration and resolves its paths against the file's folder.
    public static func load(path: String) throws(ConfigurationError) -> NodeConfiguration {
        var configuration = try ConfigurationFile.decode(NodeConfiguration.self, from: path, what: "node configuration")
        configuration.secretKeyFile = ConfigurationFile.resolve(configuration.secretKeyFile, relativeTo: path)
        configuration.signingKeyFile = configuration.signingKeyFile.map { ConfigurationFile.resolve($0, relativeTo: path) }
        configuration.sealingKeyFile = configuration.sealingKeyFile.map { ConfigurationFile.resolve($0, relativeTo: path) }
        configuration.journalPath = ConfigurationFile.resolve(configuration.journalPath, relativeTo: path)
        configuration.registryFile = configuration.registryFile.map { ConfigurationFile.resolve($0, relativeTo: path) }
        if var http = configuration.http {
            http.usersFile = http.usersFile.map { ConfigurationFile.resolve($0, relativeTo: path) }
            http.tokenFile = http.tokenFile.map { ConfigurationFile.resolve($0, relativeTo: path) }
            configuration.http = http
        }
        switch (configuration.brokerPublicKey, configuration.brokerPublicKeyFile) {
        case (let key?, nil):
            // A path of 40 characters decodes as Z85 too: a file by that name is a mistake to say.
            guard !FileManager.default.fileExists(atPath: ConfigurationFile.resolve(key, relativeTo: path)) else {
                throw ConfigurationError("\(path): brokerPublicKey names a file; use brokerPublicKeyFile for a file that holds the key")
            }
            guard CurveKeyPair.isPublicKey(key) else {
                throw ConfigurationError("\(path): brokerPublicKey must be the broker's public key itself (40 Z85 characters); "
                                         + "to name a file that holds it, use brokerPublicKeyFile")
            }
        case (nil, let file?):
            configuration.brokerPublicKeyFile = ConfigurationFile.resolve(file, relativeTo: path)
        case (nil, nil):
            throw ConfigurationError("\(path): give brokerPublicKeyFile (a file holding the broker's public key) or brokerPublicKey (the key itself)")
        case (_?, _?):
            throw ConfigurationError("\(path): give brokerPublicKeyFile or brokerPublicKey, not both")
        }
        guard MessageValidator.isNodeId(configuration.nodeId) else {
            throw ConfigurationError("\(path): nodeId must use a-z, 0-9 and '-'")
        }
        guard Classification(name: configuration.clearance) != nil else {
            throw ConfigurationError("\(path): clearance must be UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL")
        }
        guard configuration.heartbeatIntervalMilliseconds >= 10,
              configuration.brokerTimeoutMilliseconds > configuration.heartbeatIntervalMilliseconds else {
            throw ConfigurationError("\(path): heartbeatIntervalMilliseconds must be at least 10 and below brokerTimeoutMilliseconds")
        }
        return configuration
    }
}
