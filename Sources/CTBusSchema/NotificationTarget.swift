import Foundation

/// Where a notification may go: an e-mail address that stays one header line, or a webhook
/// endpoint reached over https (plain http only to this machine), and a webhook's signing secret
/// as the Standard Webhooks specification writes it (`whsec_` and the base64 of 24 to 64 bytes).
public enum NotificationTarget {
    /// The address, trimmed, or why it cannot be one: one `local@domain`, nothing that could
    /// end a header line or name a second recipient.
    public static func mailAddress(_ text: String) throws(ConfigurationError) -> String {
        let address = text.trimmingCharacters(in: .whitespaces)
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        let forbidden = CharacterSet(charactersIn: " ,;:<>()[]\\\"").union(.controlCharacters).union(.newlines)
        guard address.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              address.unicodeScalars.allSatisfy({ $0.isASCII && !forbidden.contains($0) }) else {
            throw ConfigurationError("\"\(shown(text))\" is not an e-mail address (one address, local@domain)")
        }
        return address
    }

    /// The endpoint, or why a notification may not be sent there: https, or http to a loopback
    /// address when `loopbackHTTP` (the operator's configuration; not a person in the console,
    /// who would otherwise make the node post to services on its own host); no user name or
    /// password in it (they would travel in logs and pages).
    public static func webhookURL(_ text: String, loopbackHTTP: Bool = true) throws(ConfigurationError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count <= 2_048, let url = URLComponents(string: trimmed), let scheme = url.scheme?.lowercased(),
              let host = url.host, !host.isEmpty else {
            throw ConfigurationError("\"\(shown(text))\" is not a URL (https://host/path)")
        }
        guard url.user == nil, url.password == nil else {
            throw ConfigurationError("\"\(shown(text))\": a webhook URL carries no user name or password")
        }
        switch scheme {
        case "https": return trimmed
        case "http" where isLoopback(host) && loopbackHTTP: return trimmed
        case "http" where isLoopback(host): throw ConfigurationError("\"\(shown(text))\": a webhook added here must use https (http to this machine is for the node's configuration)")
        case "http": throw ConfigurationError("\"\(shown(text))\": a webhook off this machine must use https")
        default: throw ConfigurationError("\"\(shown(text))\": a webhook URL starts with https://")
        }
    }

    /// Whether `host` names this machine: localhost, 127.0.0.0/8 or ::1.
    public static func isLoopback(_ host: String) -> Bool {
        let name = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// The secret's HMAC key, or why it is not a Standard Webhooks secret.
    public static func webhookKey(_ secret: String) throws(ConfigurationError) -> Data {
        guard secret.hasPrefix(secretPrefix), let key = Data(base64Encoded: String(secret.dropFirst(secretPrefix.count))),
              (24...64).contains(key.count) else {
            throw ConfigurationError("a webhook secret is whsec_ and the base64 of 24 to 64 random bytes")
        }
        return key
    }

    /// A new secret of 32 random bytes.
    public static func newWebhookSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return secretPrefix + Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }).base64EncodedString()
    }

    public static let secretPrefix = "whsec_"

    private static func shown(_ text: String) -> String {
        let line = String(text.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) })
        return line.count > 80 ? String(line.prefix(80)) + "…" : line
    }
}
