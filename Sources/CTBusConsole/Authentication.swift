import CTBusJournal
import CTBusSchema
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import HummingbirdBcrypt
import Logging
import Synchronization

/// Who may use a console that is not bound to loopback: people with a password (a users file of
/// bcrypt hashes, checked with HummingbirdBcrypt; browsers ask for it with HTTP Basic) and other
/// systems with a bearer token (a token file). Both files must be private to the console's user
/// (mode 0600), as key files are. Plain HTTP carries the password: off loopback, serve the
/// console behind a TLS reverse proxy or an SSH tunnel (deploy/README.md).
public struct ConsoleAuthentication: Sendable {
    /// User name → bcrypt hash.
    let users: [String: String]
    /// SHA-256 of each token.
    let tokenDigests: [Data]
    /// Passwords verified lately (SHA-256 of user, password and hash → until when), so that a
    /// page and its style sheet do not cost a bcrypt check each.
    private let verified = VerifiedPasswords()

    final class VerifiedPasswords: Sendable {
        let entries = Mutex<[Data: ContinuousClock.Instant]>([:])
    }
    static let rememberFor: Duration = .seconds(300)

    public static let minimumTokenLength = 32

    init(users: [String: String], tokens: [String]) {
        self.users = users
        tokenDigests = tokens.map { Data(SHA256.hash(data: Data($0.utf8))) }
    }

    /// Reads the users file and the token file (either may be nil, not both). A line that is
    /// not `name:bcrypt-hash` (users) or a token shorter than 32 characters (tokens) is refused,
    /// naming the file and the line; neither file may be readable by others.
    public static func load(usersFile: String?, tokenFile: String?) throws(ConfigurationError) -> ConsoleAuthentication {
        guard usersFile != nil || tokenFile != nil else { throw ConfigurationError("authentication needs a users file or a token file") }
        var users: [String: String] = [:]
        var tokens: [String] = []
        if let usersFile {
            for (number, line) in try lines(of: usersFile, what: "console users file") {
                let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, isUserName(parts[0]) else {
                    throw ConfigurationError("\(usersFile) line \(number): expected NAME:BCRYPT-HASH (NAME of a-z, 0-9, '.', '_', '-'); "
                                             + "ctbus console-user writes such lines")
                }
                guard isBcryptHash(parts[1]) else {
                    throw ConfigurationError("\(usersFile) line \(number): the hash of \(parts[0]) is not a bcrypt hash ($2b$...)")
                }
                guard users.updateValue(parts[1], forKey: parts[0]) == nil else {
                    throw ConfigurationError("\(usersFile) line \(number): user \(parts[0]) appears twice")
                }
            }
        }
        if let tokenFile {
            for (number, line) in try lines(of: tokenFile, what: "console token file") {
                guard line.utf8.count >= minimumTokenLength, !line.contains(" ") else {
                    throw ConfigurationError("\(tokenFile) line \(number): a token is one word of at least \(minimumTokenLength) characters "
                                             + "(openssl rand -hex 32 makes one)")
                }
                tokens.append(line)
            }
        }
        guard !users.isEmpty || !tokens.isEmpty else {
            throw ConfigurationError("\([usersFile, tokenFile].compactMap { $0 }.joined(separator: " and ")) hold no user and no token")
        }
        return ConsoleAuthentication(users: users, tokens: tokens)
    }

    static func lines(of path: String, what: String) throws(ConfigurationError) -> [(Int, String)] {
        try PrivateFiles.requirePrivate(path, what: "the \(what)")
        let data = try ConfigurationFile.read(path, what: what)
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .map { ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespacesAndNewlines)) }
            .filter { !$0.1.isEmpty && !$0.1.hasPrefix("#") }
    }

    static func isUserName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || [45, 46, 95].contains($0) }
    }

    static func isBcryptHash(_ hash: String) -> Bool {
        hash.utf8.count == 60 && ["$2a$", "$2b$", "$2y$"].contains(String(hash.prefix(4)))
    }

    /// A users file line for `name` with a new bcrypt hash of `password` (cost 12).
    public static func userLine(name: String, password: String) throws(ConfigurationError) -> String {
        guard isUserName(name) else { throw ConfigurationError("a user name is 1 to 64 of a-z, 0-9, '.', '_', '-'") }
        guard password.utf8.count >= 12, password.utf8.count <= 72 else {
            throw ConfigurationError("a console password has 12 to 72 bytes (bcrypt reads no further than 72)")
        }
        return "\(name):\(Bcrypt.hash(password, cost: 12))"
    }

    /// Who sent the request: a user whose password matches, or a token holder; nil otherwise.
    func identify(_ headers: HTTPFields) async -> String? {
        if let bearer = headers.bearer {
            let digest = Data(SHA256.hash(data: Data(bearer.token.utf8)))
            // Every stored digest is compared, every byte, whatever matches first.
            var match = false
            for stored in tokenDigests { match = Self.constantTimeEqual(stored, digest) || match }
            return match ? "token" : nil
        }
        guard let basic = headers.basic, let hash = users[basic.username] else { return nil }
        let key = Data(SHA256.hash(data: Data("\(basic.username)\u{0}\(basic.password)\u{0}\(hash)".utf8)))
        let now = ContinuousClock.now
        if let until = verified.entries.withLock({ $0[key] }), until > now { return basic.username }
        // bcrypt takes a quarter of a second on purpose: off the server's event loops.
        let normalised = hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
        let password = basic.password
        let valid = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            DispatchQueue.global().async { continuation.resume(returning: Bcrypt.verify(password, hash: normalised)) }
        }
        guard valid else { return nil }
        verified.entries.withLock { entries in
            entries = entries.filter { $0.value > now }
            entries[key] = now + Self.rememberFor
        }
        return basic.username
    }
}

extension ConsoleAuthentication {
    static func constantTimeEqual(_ a: Data, _ b: Data) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Refuses every request without valid credentials (401 with a Basic challenge, so that a
/// browser asks for the password), when the console has authentication configured. Failed
/// credentials count against the user name and the client's address (`SignInThrottle`); while
/// either is blocked, requests with credentials are answered 429 without checking them.
struct RequireAuthentication<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let authentication: ConsoleAuthentication
    let realm: String
    let refusals: SharedThrottledLogger
    let throttle: SignInThrottle

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // The name is the sender's: only a well-formed one reaches the log (no line breaks, no control characters).
        let user = request.headers.basic.map { ConsoleAuthentication.isUserName($0.username) ? $0.username : "(malformed name)" }
            ?? (request.headers.bearer != nil ? "(token)" : "(none)")
        let address = context.remoteAddress?.ipAddress ?? "-"
        let hasCredentials = request.headers.basic != nil || request.headers.bearer != nil
        let keys = ["address \(address)"] + (request.headers.basic.map { ["user \($0.username.prefix(64))"] } ?? [])
        if hasCredentials, let wait = throttle.blocked(keys) {
            let seconds = Int((wait / .seconds(1)).rounded(.up))
            refusals.log("throttled-\(user.prefix(64))-\(address)", .notice, "console refused credentials while their sign-in is throttled",
                         metadata: ["user": "\(user.prefix(64))", "address": "\(address)", "retry-after-s": "\(seconds)"])
            return refusal(request, status: .tooManyRequests, code: "TOO_MANY_ATTEMPTS",
                           detail: "too many failed sign-ins: try again in \(seconds) seconds", retryAfter: seconds)
        }
        if await authentication.identify(request.headers) != nil {
            throttle.succeeded(keys)
            return try await next(request, context)
        }
        if hasCredentials, let block = throttle.failed(keys) {
            refusals.log("throttling-\(user.prefix(64))-\(address)", .warning, "console throttles sign-in after repeated failures",
                         metadata: ["user": "\(user.prefix(64))", "address": "\(address)", "blocked-s": "\(Int(block / .seconds(1)))"])
        }
        refusals.log("auth-\(user.prefix(64))", .notice, "console refused a request without valid credentials",
                     metadata: ["user": "\(user.prefix(64))", "path": "\(CSRF.loggable(request.uri.path))"])
        return refusal(request, status: .unauthorized, code: "UNAUTHORIZED", detail: "credentials are missing or wrong", retryAfter: nil)
    }

    private func refusal(_ request: Request, status: HTTPResponse.Status, code: String, detail: String, retryAfter: Int?) -> Response {
        let json = request.uri.path.hasPrefix("/api/")
        var body = HTML()
        body.element("p", retryAfter == nil ? "This console needs a user name and password, or a bearer token." : "Refused: \(detail).")
        var response = json
            ? Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                       body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"code":"\#(code)","detail":"\#(detail)"}}"#)))
            : Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                       body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: "Sign in", node: "", marking: nil, body))))
        if let retryAfter {
            response.headers[.retryAfter] = "\(retryAfter)"
        } else {
            response.headers[.wwwAuthenticate] = "Basic realm=\"\(realm)\", charset=\"UTF-8\""
        }
        return response
    }
}

extension HTTPFields {
    /// The user name the request authenticated with (Basic), "token" for a bearer token, or ""
    /// on a console without authentication. The middleware has checked the credentials.
    var consoleUser: String {
        if let basic { return basic.username }
        return bearer != nil ? "token" : ""
    }
}
