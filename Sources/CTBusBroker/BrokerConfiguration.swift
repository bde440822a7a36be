import CTBusSchema
import Foundation

/// The broker's settings (deploy/broker.json). Relative paths are relative to the file.
public struct BrokerConfiguration: Sendable, Codable {
    /// Where the ROUTER socket binds, e.g. "tcp://0.0.0.0:7470" (":*" picks a free port).
    public var endpoint: String
    /// The broker's CURVE secret key file (its public key goes to every node's configuration).
    public var secretKeyFile: String
    /// The node registry.
    public var registryFile: String
    /// The SQLite store of accepted publications and delivery queues.
    public var storePath: String
    /// Largest Publish frame accepted (envelope + payload + framing); larger ones get MESSAGE_TOO_LARGE.
    public var maxMessageBytes: Int
    /// How often the broker expects a heartbeat from each node, in milliseconds.
    public var heartbeatIntervalMilliseconds: Int
    /// A node silent for this long is considered away; its queue waits for it.
    public var sessionTimeoutMilliseconds: Int
    /// Deliveries sent to a node and not yet acknowledged, at most (flow control credit).
    public var deliveryWindow: Int
    /// `/metrics`, `/health` and `/ready` over HTTP (off unless set): `{"port": 9470}`, bound to
    /// 127.0.0.1 unless `bind` says otherwise.
    public var http: HTTPSettings?

    public struct HTTPSettings: Sendable, Codable, Equatable {
        public var port: Int
        public var bind: String?

        public init(port: Int, bind: String? = nil) {
            self.port = port
            self.bind = bind
        }
    }

    public static let defaultMaxMessageBytes = 1 << 20

    public init(endpoint: String, secretKeyFile: String, registryFile: String, storePath: String,
                maxMessageBytes: Int = BrokerConfiguration.defaultMaxMessageBytes,
                heartbeatIntervalMilliseconds: Int = 1_000, sessionTimeoutMilliseconds: Int = 5_000,
                deliveryWindow: Int = 256) {
        self.endpoint = endpoint
        self.secretKeyFile = secretKeyFile
        self.registryFile = registryFile
        self.storePath = storePath
        self.maxMessageBytes = maxMessageBytes
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.sessionTimeoutMilliseconds = sessionTimeoutMilliseconds
        self.deliveryWindow = deliveryWindow
    }

    enum CodingKeys: String, CodingKey {
        case endpoint, secretKeyFile, registryFile, storePath, maxMessageBytes
        case heartbeatIntervalMilliseconds, sessionTimeoutMilliseconds, deliveryWindow, http
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try container.decode(String.self, forKey: .endpoint)
        secretKeyFile = try container.decode(String.self, forKey: .secretKeyFile)
        registryFile = try container.decode(String.self, forKey: .registryFile)
        storePath = try container.decode(String.self, forKey: .storePath)
        maxMessageBytes = try container.decodeIfPresent(Int.self, forKey: .maxMessageBytes) ?? Self.defaultMaxMessageBytes
        heartbeatIntervalMilliseconds = try container.decodeIfPresent(Int.self, forKey: .heartbeatIntervalMilliseconds) ?? 1_000
        sessionTimeoutMilliseconds = try container.decodeIfPresent(Int.self, forKey: .sessionTimeoutMilliseconds) ?? 5_000
        deliveryWindow = try container.decodeIfPresent(Int.self, forKey: .deliveryWindow) ?? 256
        http = try container.decodeIfPresent(HTTPSettings.self, forKey: .http)
    }

    /// Loads a configuration file and resolves its paths against the file's folder.
    public static func load(path: String) throws(ConfigurationError) -> BrokerConfiguration {
        var configuration = try ConfigurationFile.decode(BrokerConfiguration.self, from: path, what: "broker configuration")
        configuration.secretKeyFile = ConfigurationFile.resolve(configuration.secretKeyFile, relativeTo: path)
        configuration.registryFile = ConfigurationFile.resolve(configuration.registryFile, relativeTo: path)
        configuration.storePath = ConfigurationFile.resolve(configuration.storePath, relativeTo: path)
        try configuration.check(path: path)
        return configuration
    }

    func check(path: String) throws(ConfigurationError) {
        guard maxMessageBytes >= 1_024 else { throw ConfigurationError("\(path): maxMessageBytes must be at least 1024") }
        guard heartbeatIntervalMilliseconds >= 10 else { throw ConfigurationError("\(path): heartbeatIntervalMilliseconds must be at least 10") }
        guard sessionTimeoutMilliseconds > heartbeatIntervalMilliseconds else {
            throw ConfigurationError("\(path): sessionTimeoutMilliseconds must be longer than heartbeatIntervalMilliseconds")
        }
        guard deliveryWindow >= 1 else { throw ConfigurationError("\(path): deliveryWindow must be at least 1") }
    }
}
