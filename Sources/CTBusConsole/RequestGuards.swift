import CTBusSchema
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The console's request context: Hummingbird's core storage and the client's address, which
/// the sign-in throttle counts failures by.
public struct ConsoleRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address as text ("-" when unknown).
    var clientAddress: String { remoteAddress?.ipAddress ?? "-" }
}

/// The names a console answers to. A web page can point a name of its own at 127.0.0.1 (DNS
/// rebinding) and then read the console as if it were the page's own site; the browser still
/// sends that name in `Host`, so a console that answers only the names it is known by cannot be
/// read that way. Always allowed: `localhost`, `127.0.0.1`, `::1` (a page cannot make a browser
/// send those for its own site) and the address the console binds to, unless it binds to all
/// addresses; beside them, the names the operator configures (`allowedHosts`).
struct AllowedHosts: Sendable, Equatable {
    let names: Set<String>

    init(bind: String, configured: [String]) {
        var names: Set<String> = ["localhost", "127.0.0.1", "::1"]
        if !["0.0.0.0", "::", ""].contains(bind) { names.insert(Self.normalised(bind)) }
        for name in configured { names.insert(Self.normalised(name)) }
        self.names = names
    }

    /// The host part of an authority ("Example.org:8080" gives "example.org", "[::1]:80" gives "::1").
    static func host(ofAuthority authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return normalised(String(authority[authority.index(after: authority.startIndex)..<end]))
        }
        return normalised(authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "")
    }

    static func normalised(_ name: String) -> String {
        var name = name.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        return name.hasSuffix(".") ? String(name.dropLast()) : name
    }

    func allows(authority: String?) -> Bool {
        guard let authority, !authority.isEmpty else { return false }
        return names.contains(Self.host(ofAuthority: authority))
    }
}

/// Answers 421 (Misdirected Request) to a request for a name the console is not known by,
/// before anything else runs.
struct RequireAllowedHost<Context: RequestContext>: RouterMiddleware {
    let allowed: AllowedHosts
    let refusals: SharedThrottledLogger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if allowed.allows(authority: request.head.authority) { return try await next(request, context) }
        let named = CSRF.loggable(request.head.authority ?? "(none)", limit: 80)
        refusals.log("host", .notice, "console refused a request for a name it does not answer to (add it to allowedHosts if it is this console's)",
                     metadata: ["host": "\(named)"])
        var body = HTML()
        body.element("p", "This console does not answer to the name \(named). Its operator can add the name to the console's allowed hosts.")
        return Response(status: .misdirectedRequest, headers: [.contentType: "text/html; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: "Unknown name", node: "", marking: nil, body))))
    }
}

/// Failed sign-ins, counted per user name and per client address: after `free` failures in a
/// row, each further one blocks that name or address for a time that doubles (from `first`,
/// up to `longest`), during which even the right password is refused (429), so that guessing
/// is slowed to a trickle. A success clears the name's and the address's count; a count with no
/// failure for `longest` is forgotten. At most `capacity` names and addresses are kept (the
/// oldest go first), so a flood of names cannot grow it without bound.
final class SignInThrottle: Sendable {
    struct Entry {
        var failures: Int
        var blockedUntil: ContinuousClock.Instant?
        var lastFailure: ContinuousClock.Instant
    }

    let free: Int
    let first: Duration
    let longest: Duration
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    init(free: Int = 5, first: Duration = .seconds(5), longest: Duration = .seconds(900), capacity: Int = 10_000) {
        self.free = free
        self.first = first
        self.longest = longest
        self.capacity = capacity
    }

    /// How long the longest block among `keys` still lasts, or nil.
    func blocked(_ keys: [String], at now: ContinuousClock.Instant = .now) -> Duration? {
        entries.withLock { entries in
            keys.compactMap { entries[$0]?.blockedUntil }.filter { $0 > now }.max().map { $0 - now }
        }
    }

    /// Counts a failure for each key; returns the block it starts, if it starts one.
    func failed(_ keys: [String], at now: ContinuousClock.Instant = .now) -> Duration? {
        entries.withLock { entries in
            if entries.count + keys.count > capacity {
                entries = entries.filter { now - $0.value.lastFailure < longest }
                while entries.count + keys.count > capacity, let oldest = entries.min(by: { $0.value.lastFailure < $1.value.lastFailure }) {
                    entries[oldest.key] = nil
                }
            }
            var longestBlock: Duration?
            for key in keys {
                var entry = entries[key].flatMap { now - $0.lastFailure < longest ? $0 : nil }
                    ?? Entry(failures: 0, blockedUntil: nil, lastFailure: now)
                entry.failures += 1
                entry.lastFailure = now
                if entry.failures > free {
                    let block = min(first * (1 << min(entry.failures - free - 1, 20)), longest)
                    entry.blockedUntil = now + block
                    longestBlock = max(longestBlock ?? .zero, block)
                }
                entries[key] = entry
            }
            return longestBlock
        }
    }

    func succeeded(_ keys: [String]) {
        entries.withLock { entries in
            for key in keys { entries[key] = nil }
        }
    }
}
