import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// Cross-site request forgery protection for the console's forms (OWASP's signed double-submit
/// cookie, plus an origin check):
///
/// - a browser gets a random cookie `ctbus_csrf` (HttpOnly, SameSite=Strict) with its first page;
/// - every form carries `HMAC-SHA256(server key, user | cookie)` in a hidden field, which a page
///   of another site can neither read nor compute;
/// - a state-changing request is refused unless the field matches the cookie (and the
///   authenticated user), and unless its `Origin` (or `Sec-Fetch-Site`) says it comes from this
///   console.
///
/// The key lives in memory: a console restarted issues new tokens, and a form opened before the
/// restart is refused with a page that says to reload it.
struct CSRF: Sendable {
    static let cookieName = "ctbus_csrf"
    private let keyBytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// The browser's cookie value, or a new one to set (`isNew`).
    func cookie(of request: Request) -> (value: String, isNew: Bool) {
        if let value = request.cookies[Self.cookieName]?.value, Self.isWellFormed(value) { return (value, false) }
        return (Self.base64URL(Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })), true)
    }

    func token(cookie: String, user: String) -> String {
        Self.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data("\(user)|\(cookie)".utf8), using: key)))
    }

    /// Why a state-changing request must be refused, or nil when it may go on.
    func refusal(_ request: Request, token: String?, user: String) -> String? {
        if let reason = crossOrigin(request) { return reason }
        guard let cookie = request.cookies[Self.cookieName]?.value, Self.isWellFormed(cookie) else {
            return "the form was sent without this console's cookie: reload the page and send it again"
        }
        guard let token, let sent = Self.data(base64URL: token),
              HMAC<SHA256>.isValidAuthenticationCode(sent, authenticating: Data("\(user)|\(cookie)".utf8), using: key) else {
            return "the form's security token is missing or out of date (the console may have restarted): reload the page and send it again"
        }
        return nil
    }

    /// A request a browser sent from a page of another origin. Browsers send `Origin` with every
    /// POST; without it, a `Referer` must name this console; a client that sends neither header
    /// (curl, a script) is no browser to forge.
    func crossOrigin(_ request: Request) -> String? {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], !["same-origin", "none"].contains(site) {
            return "the request came from another site (\(Self.loggable(site, limit: 40)))"
        }
        let host = (request.head.authority ?? "").lowercased()
        func authority(of text: String) -> String? {
            guard let url = URL(string: text), let name = url.host else { return nil }
            let bracketed = name.contains(":") && !name.hasPrefix("[") ? "[\(name)]" : name
            return (url.port.map { "\(bracketed):\($0)" } ?? bracketed).lowercased()
        }
        if let origin = request.headers[.origin] {
            guard authority(of: origin) == host else { return "the request's origin is not this console" }
        } else if let referer = request.headers[.referer] {
            guard authority(of: referer) == host else { return "the request came from a page that is not this console's" }
        }
        return nil
    }

    func setCookie(_ value: String, on response: inout Response) {
        response.setCookie(Cookie(name: Self.cookieName, value: value, path: "/", httpOnly: true, sameSite: .strict))
    }

    /// What a peer sent, fit for a log line: printable ASCII only, at most `limit` characters.
    static func loggable(_ text: some StringProtocol, limit: Int = 80) -> String {
        String(text.unicodeScalars.prefix(limit).map { (32...126).contains($0.value) ? Character($0) : "?" })
    }

    static func isWellFormed(_ value: String) -> Bool {
        value.utf8.count == 43 && data(base64URL: value)?.count == 32
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: String) -> Data? {
        guard text.utf8.count <= 64 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
