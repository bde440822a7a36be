import CTBusJournal
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
    /// How long stored messages are kept (off unless set: everything is kept; the queues of
    /// removed nodes go after 30 days either way). See `RetentionSettings`.
    public var retention: RetentionSettings?

    /// `{"messages": {"MISSION_REPORT": "5y", "ACTIVITY_MATRIX": "forever"}, "removedNodeQueues": "30d",
    /// "every": "1h"}`. Durations are a whole number and a unit: s, m, h, d or y (365 days), or "forever".
    public struct RetentionSettings: Sendable, Codable, Equatable {
        /// Per message type name: how long after it was stored a message leaves the store (once
        /// nothing of it is queued). A type not named is kept forever.
        public var messages: [String: String]?
        /// How long the queue of a node removed from the registry is kept (default "30d").
        public var removedNodeQueues: String?
        /// How often the broker applies the retention (default "1h"; also a minute after start).
        public var every: String?

        public init(messages: [String: String]? = nil, removedNodeQueues: String? = nil, every: String? = nil) {
            self.messages = messages
            self.removedNodeQueues = removedNodeQueues
            self.every = every
        }
    }

    /// The retention as the store applies it.
    public func retentionPolicy() throws(ConfigurationError) -> RetentionPolicy {
        var policy = RetentionPolicy.keepEverything
        guard let retention else { return policy }
        for (type, text) in retention.messages ?? [:] {
            guard MessageType.allCases.contains(where: { $0.name == type && $0 != .unspecified }) else {
                throw ConfigurationError("retention.messages: unknown message type \(type) (types: "
                    + MessageType.allCases.filter { $0 != .unspecified }.map(\.name).joined(separator: ", ") + ")")
            }
            policy.messages[type] = try Self.duration(text, field: "retention.messages.\(type)")
        }
        if let text = retention.removedNodeQueues {
            guard let grace = try Self.duration(text, field: "retention.removedNodeQueues") else {
                throw ConfigurationError("retention.removedNodeQueues: \"forever\" is not allowed; give a duration such as \"30d\"")
            }
            policy.removedNodeQueues = grace
        }
        return policy
    }

    /// How often the retention runs.
    public func compactionInterval() throws(ConfigurationError) -> TimeInterval {
        guard let text = retention?.every else { return 3_600 }
        guard let interval = try Self.duration(text, field: "retention.every"), interval >= 1 else {
            throw ConfigurationError("retention.every must be a duration of at least 1s, such as \"1h\"")
        }
        return interval
    }

    /// "30d" as seconds; nil for "forever".
    static func duration(_ text: String, field: String) throws(ConfigurationError) -> TimeInterval? {
        if text == "forever" { return nil }
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "y": 365 * 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let count = Int(text.dropLast()), count >= 0, count < 10_000_000 else {
            throw ConfigurationError("\(field): \"\(text)\" is not a duration (a whole number and s, m, h, d or y, such as \"90d\"), nor \"forever\"")
        }
        return TimeInterval(count) * unit
    }

    public struct HTTPSettings: Sendable, Codable, Equatable {
        public var port: Int
        public var bind: String?

        public init(port: Int, bind: String? = nil) {
            self.port = port
            self.bind = bind
        }
    }

    public static let defaultMaxMessageBytes = WireLimits.defaultMaxMessageBytes

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
        case heartbeatIntervalMilliseconds, sessionTimeoutMilliseconds, deliveryWindow, http, retention
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
        retention = try container.decodeIfPresent(RetentionSettings.self, forKey: .retention)
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
        do {
            _ = try retentionPolicy()
            _ = try compactionInterval()
        } catch {
            throw ConfigurationError("\(path): \(error.description)")
        }
    }
}
