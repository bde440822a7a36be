import CTBusJournal
import CTBusPolicy
import CTBusSchema
import CTBusTrace
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwiftProtobuf

/// The node console: a web server beside a node, reading its journal. This first part serves
/// the journal, each message, the traceability report and the node's status, read-only.
///
/// Security: it binds to loopback only (authentication for other addresses comes with the
/// compose pages); every response carries a strict Content-Security-Policy (no script at all),
/// `X-Frame-Options: DENY`, `nosniff`, no referrer and `Cache-Control: no-store`; every value is
/// escaped; nothing above the node's clearance is shown, whatever the journal holds.
public struct ConsoleServer: Sendable {
    public let nodeId: String
    public let clearance: Classification
    public let journal: NodeJournal
    public let host: String
    public let port: Int
    public let logger: Logger

    /// Refuses an address other than loopback: until authentication is configured, the console
    /// serves the local user only.
    public init(nodeId: String, clearance: Classification, journal: NodeJournal, host: String = "127.0.0.1", port: Int,
                logger: Logger = Logger(label: "ctbus.console")) throws(ConfigurationError) {
        guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
            throw ConfigurationError("the console serves only this machine's user for now: bind it to 127.0.0.1 "
                                     + "(authentication for other addresses is not available yet)")
        }
        guard (1...65_535).contains(port) else { throw ConfigurationError("the console's port must be 1 to 65535") }
        self.nodeId = nodeId
        self.clearance = clearance
        self.journal = journal
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// The application, ready to run (`runService`). `onRunning` is told once it listens.
    public func application(onRunning: @escaping @Sendable () async -> Void = {}) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: SecurityHeaders())
        let console = self
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/journal"]) }
        router.get("/static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: Pages.stylesheet)))
        }
        router.get("/journal") { request, _ in try console.journalPage(request) }
        router.get("/messages/:id") { _, context in try console.messagePage(context.parameters.get("id") ?? "") }
        router.get("/trace") { _, _ in try console.tracePage() }
        router.get("/status") { _, _ in try console.statusPage() }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "ctbus-console"),
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }

    // MARK: Pages

    static let pageSize = 50

    func journalPage(_ request: Request) throws -> Response {
        let parameters = request.uri.queryParameters
        func value(_ name: String) -> String? {
            parameters.get(name).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var query = Pages.JournalQuery(type: value("type"), originator: value("originator"), memberState: value("member_state"),
                                       classification: value("classification"), direction: value("direction"))
        var filter = JournalFilter(originator: query.originator, subject: query.memberState?.uppercased(), newestFirst: true,
                                   limit: Self.pageSize + 1)
        if let type = query.type {
            guard let value = MessageType(name: type), value != .unspecified else { return error(.badRequest, "There is no message type \(type).") }
            filter.type = value
        }
        if let name = query.classification {
            guard let value = Classification(name: name) else { return error(.badRequest, "There is no classification \(name).") }
            filter.classification = value
        }
        if let name = query.direction {
            guard let value = Direction(rawValue: name) else { return error(.badRequest, "Direction is received or sent.") }
            filter.direction = value
        }
        if let before = value("before") {
            guard let position = Int64(before) else { return error(.badRequest, "before must be a journal position.") }
            query.before = position
            filter.before = position
        }
        var entries = try journal.entries(matching: filter).filter(visible)
        let more = entries.count > Self.pageSize
        if more { entries.removeLast() }
        let body = Pages.journal(entries, query: query, next: more ? entries.last?.position : nil, now: Date())
        return page("Journal", marking: Pages.marking(entries.map(\.classificationName)), body)
    }

    func messagePage(_ id: String) throws -> Response {
        let id = MessageID.canonical(id)
        guard MessageID.isUUID(id), let entry = try journal.entry(messageId: id), visible(entry) else {
            return error(.notFound, "This journal holds no message \(id.prefix(64)) that this console may show.")
        }
        guard let message = try? entry.message() else {
            return error(.internalServerError, "The journal entry of \(id) cannot be decoded: run ctbus journal verify.")
        }
        let hash = entry.hash.map { String(format: "%02x", $0) }.joined()
        let title = "\(message.envelope.type.name.replacingOccurrences(of: "_", with: " ").capitalized) · \(message.envelope.subject)"
        return page(title, marking: Pages.marking([entry.classificationName]), Pages.message(entry, message, hashHex: hash))
    }

    func tracePage() throws -> Response {
        var messages: [Traceability.Message] = []
        var names: [String] = []
        for entry in try journal.entries() where visible(entry) {
            guard let message = try? entry.message(), let payload = message.payload else { continue }
            messages.append(Traceability.Message(envelope: message.envelope, payload: payload, revoked: entry.revokedAt != nil,
                                                 redactedPaths: entry.redactedPaths))
            names.append(entry.classificationName)
        }
        return page("Traceability", marking: Pages.marking(names), Pages.trace(Traceability.report(messages)))
    }

    func statusPage() throws -> Response {
        let entries = try journal.lastPosition()
        let outbox = try journal.outboxCounts()
        let received = try journal.entries(matching: JournalFilter(direction: .received, newestFirst: true, limit: 1)).first
        let body = Pages.status(entries: entries, outbox: outbox.waiting, refused: outbox.refused, lastReceived: received?.recordedAt,
                                drafts: try journal.drafts().count)
        return page("Status", marking: nil, body)
    }

    /// Defence in depth: nothing above this node's clearance is shown, whatever the journal holds.
    func visible(_ entry: JournalEntry) -> Bool {
        (Classification(name: entry.classificationName)?.rawValue ?? Int.max) <= clearance.rawValue
    }

    func page(_ title: String, marking: String?, _ body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: Pages.page(title: title, node: nodeId, marking: marking, body))))
    }

    func error(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var body = HTML()
        body.element("p", text)
        return page(status.reasonPhrase, marking: nil, body, status: status)
    }
}

/// The headers every console response carries.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    static var fields: [(HTTPField.Name, String)] {
        [
            (.contentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
            (.cacheControl, "no-store"),
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            var body = HTML()
            body.element("p", "There is no such page.")
            response = Response(status: .notFound, headers: [.contentType: "text/html; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: Pages.page(title: "Not found", node: "", marking: nil, body))))
        }
        for (name, value) in Self.fields { response.headers[name] = value }
        return response
    }
}
