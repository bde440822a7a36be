import CTBusJournal
import CTBusSchema
import Foundation

/// Who the node tells when a message arrives, and how (`notifications` in a node's
/// configuration). People add their own subscriptions in the console; these are the
/// operator's, kept in the journal beside them under ids starting `config:`.
public struct NotificationSettings: Sendable, Codable, Equatable {
    /// The console's address as people reach it, for the links in notifications
    /// (`https://console.example.org`). Default: the node's console on loopback.
    public var consoleURL: String?
    /// The mail's sender address. Required when a subscription mails.
    public var mailFrom: String?
    /// The program a mail is written to, with its arguments: the host's sendmail interface.
    public var sendmail: [String]
    /// Retries: the first wait, doubled each attempt up to the longest, with jitter.
    public var retryFirstMilliseconds: Int
    public var retryMaxMilliseconds: Int
    /// Attempts before a sending is given up and shown as failed.
    public var attempts: Int
    /// How long a request to a webhook or the sendmail program may take.
    public var timeoutMilliseconds: Int
    public var subscriptions: [Configured]

    public static let defaultSendmail = ["/usr/sbin/sendmail", "-t", "-i"]

    /// One subscription as the configuration writes it: `email` or `webhook` (with
    /// `secretFile`, a file holding its `whsec_` secret), the filters, and `mode`.
    public struct Configured: Sendable, Codable, Equatable {
        public var name: String
        public var email: String?
        public var webhook: String?
        public var secretFile: String?
        public var types: [String]?
        public var memberStates: [String]?
        public var themes: [String]?
        public var classifications: [String]?
        /// "immediate" (default) or "daily".
        public var mode: String?
        /// The hour (UTC) a daily digest goes out; default 7.
        public var digestHour: Int?
    }

    public init(consoleURL: String? = nil, mailFrom: String? = nil, sendmail: [String] = Self.defaultSendmail,
                retryFirstMilliseconds: Int = 5_000, retryMaxMilliseconds: Int = 3_600_000, attempts: Int = 30,
                timeoutMilliseconds: Int = 20_000, subscriptions: [Configured] = []) {
        self.consoleURL = consoleURL
        self.mailFrom = mailFrom
        self.sendmail = sendmail
        self.retryFirstMilliseconds = retryFirstMilliseconds
        self.retryMaxMilliseconds = retryMaxMilliseconds
        self.attempts = attempts
        self.timeoutMilliseconds = timeoutMilliseconds
        self.subscriptions = subscriptions
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Absent fields take the initialiser's defaults, written once there.
        let defaults = NotificationSettings()
        self.init(consoleURL: try c.decodeIfPresent(String.self, forKey: .consoleURL),
                  mailFrom: try c.decodeIfPresent(String.self, forKey: .mailFrom),
                  sendmail: try c.decodeIfPresent([String].self, forKey: .sendmail) ?? defaults.sendmail,
                  retryFirstMilliseconds: try c.decodeIfPresent(Int.self, forKey: .retryFirstMilliseconds) ?? defaults.retryFirstMilliseconds,
                  retryMaxMilliseconds: try c.decodeIfPresent(Int.self, forKey: .retryMaxMilliseconds) ?? defaults.retryMaxMilliseconds,
                  attempts: try c.decodeIfPresent(Int.self, forKey: .attempts) ?? defaults.attempts,
                  timeoutMilliseconds: try c.decodeIfPresent(Int.self, forKey: .timeoutMilliseconds) ?? defaults.timeoutMilliseconds,
                  subscriptions: try c.decodeIfPresent([Configured].self, forKey: .subscriptions) ?? [])
    }

    /// The settings checked, and the configured subscriptions as the journal keeps them; the
    /// first problem as an error that names the subscription and the field. `knownThemes`: the
    /// themes the registry's nodes follow and the journal's messages carry. Secret files are
    /// read here (relative to `configurationFile`'s folder).
    public func checked(knownThemes: [String], configurationFile: String) throws(ConfigurationError) -> [Subscription] {
        guard !sendmail.isEmpty, sendmail[0].hasPrefix("/") else {
            throw ConfigurationError("notifications.sendmail must start with the program's absolute path (\(Self.defaultSendmail.joined(separator: " ")))")
        }
        guard retryFirstMilliseconds >= 1, retryMaxMilliseconds >= retryFirstMilliseconds, (1...1_000).contains(attempts),
              (100...600_000).contains(timeoutMilliseconds) else {
            throw ConfigurationError("notifications: retryFirstMilliseconds must be at least 1 and at most retryMaxMilliseconds, "
                                     + "attempts 1 to 1000, timeoutMilliseconds 100 to 600000")
        }
        if let consoleURL {
            guard let url = URLComponents(string: consoleURL), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw ConfigurationError("notifications.consoleURL must be an http or https URL")
            }
        }
        var names = Set<String>()
        return try subscriptions.map { (configured) throws(ConfigurationError) -> Subscription in
            func fail(_ words: String) -> ConfigurationError { ConfigurationError("notifications subscription \"\(configured.name)\": \(words)") }
            guard configured.name.range(of: "^[a-z0-9][a-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
                throw ConfigurationError("notifications: subscription name \"\(configured.name)\" must be 1 to 64 of a-z, 0-9, '.', '_', '-'")
            }
            guard names.insert(configured.name).inserted else { throw fail("the name appears twice") }
            let channel: Subscription.Channel
            do throws(ConfigurationError) {
                switch (configured.email, configured.webhook) {
                case (let address?, nil):
                    guard configured.secretFile == nil else { throw ConfigurationError("secretFile is for a webhook") }
                    guard let from = mailFrom else { throw ConfigurationError("mailing needs notifications.mailFrom") }
                    _ = try NotificationTarget.mailAddress(from)
                    channel = .mail(try NotificationTarget.mailAddress(address))
                case (nil, let url?):
                    guard let file = configured.secretFile else {
                        throw ConfigurationError("a webhook needs secretFile, a file holding its secret: whsec_ and the base64 of 32 random bytes "
                                                 + "(echo whsec_$(head -c 32 /dev/urandom | base64) > FILE)")
                    }
                    let path = ConfigurationFile.resolve(file, relativeTo: configurationFile)
                    let secret = String(decoding: try ConfigurationFile.read(path, what: "webhook secret file"), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    do throws(ConfigurationError) { _ = try NotificationTarget.webhookKey(secret) } catch { throw ConfigurationError("\(path): \(error)") }
                    channel = .webhook(url: try NotificationTarget.webhookURL(url), secret: secret)
                default:
                    throw ConfigurationError("give email or webhook, one of them")
                }
            } catch {
                throw fail(error.description)
            }
            let filter: NotificationFilter
            do throws(NotificationFilterError) {
                filter = try NotificationFilter(types: configured.types ?? [], memberStates: configured.memberStates ?? [],
                                                themes: configured.themes ?? [], classifications: configured.classifications ?? [])
                    .validated(knownThemes: knownThemes)
            } catch {
                throw fail(error.description)
            }
            guard let mode = Subscription.Mode(rawValue: configured.mode ?? "immediate") else { throw fail("mode must be immediate or daily") }
            let hour = configured.digestHour ?? 7
            guard (0...23).contains(hour) else { throw fail("digestHour must be 0 to 23 (UTC)") }
            return Subscription(id: Subscription.configuredPrefix + configured.name, name: configured.name, owner: "configuration",
                                channel: channel, filter: filter, mode: mode, digestHour: hour)
        }
    }
}
