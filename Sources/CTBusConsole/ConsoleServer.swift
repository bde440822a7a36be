import CTBusMetricNames
import CTBusJournal
import CTBusMetrics
import CoreMetrics
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusTrace
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf

/// The node console: a web server beside a node, reading its journal. This first part serves
/// the journal, each message, the traceability report and the node's status, read-only.
///
/// Security: bound to loopback it serves this machine's users; bound to any other address it
/// needs `ConsoleAuthentication` (users with bcrypt hashes, or bearer tokens); every response carries a strict Content-Security-Policy (no script at all),
/// `X-Frame-Options: DENY`, `nosniff`, no referrer and `Cache-Control: no-store`; every value is
/// escaped; nothing above the node's clearance is shown, whatever the journal holds.
public struct ConsoleServer: Sendable {
    public let nodeId: String
    public let clearance: Classification
    public let journal: NodeJournal
    public let host: String
    public let port: Int
    public let logger: Logger
    let context: ComposeContext
    let csrf = CSRF()
    let check: JournalCheck
    /// `/metrics`, `/health`, `/ready` beside the pages: the journal's figures at each scrape,
    /// and what the node loop counts when the node serves its own console (`ctbus node` with `http`).
    public let metrics: MetricsEndpoint
    let authentication: ConsoleAuthentication?
    /// The names in `Host` the console answers to.
    let allowedHosts: AllowedHosts
    let signIns = SignInThrottle()
    let refusals: SharedThrottledLogger
    /// The node's keys: what the console publishes is signed with its signing key. Without them
    /// the console reads and keeps drafts but publishes nothing.
    let messageKeys: NodeMessageKeys?
    /// The node's registry copy: the message page checks each message's signature against it.
    let registry: NodeRegistry?
    /// The file it was read from, when known: a sealed message is sealed to the registry as the
    /// file says now (the broker may have reloaded its own since the console started).
    let registryFile: String?

    /// Refuses an address other than loopback without `authentication`. `allowedHosts`: the
    /// names people reach the console by, beside `localhost`, the loopback addresses and `host`.
    public init(nodeId: String, clearance: Classification, journal: NodeJournal, registry: NodeRegistry? = nil,
                messageKeys: NodeMessageKeys? = nil, registryFile: String? = nil,
                host: String = "127.0.0.1", port: Int, allowedHosts: [String] = [], authentication: ConsoleAuthentication? = nil,
                metrics: MetricsEndpoint = MetricsEndpoint(), logger: Logger = Logger(label: "ctbus.console")) throws(ConfigurationError) {
        guard Self.isLoopback(host) || authentication != nil else {
            throw ConfigurationError("the console binds to \(host) only with authentication: give a users file (ctbus console-user) "
                                     + "or a token file, or bind it to 127.0.0.1")
        }
        guard (1...65_535).contains(port) else { throw ConfigurationError("the console's port must be 1 to 65535") }
        self.nodeId = nodeId
        self.clearance = clearance
        self.journal = journal
        self.host = host
        self.port = port
        self.logger = logger
        self.authentication = authentication
        self.allowedHosts = AllowedHosts(bind: host, configured: allowedHosts)
        self.messageKeys = messageKeys
        self.registry = registry
        self.registryFile = registryFile
        context = ComposeContext(nodeId: nodeId, clearance: clearance, registry: registry)
        refusals = SharedThrottledLogger(logger)
        self.metrics = metrics
        check = JournalCheck(journal: journal, logger: logger,
                             failures: Counter(label: MetricName.nodeJournalVerifyFailuresTotal.rawValue, factory: metrics.factory))
    }

    /// The application, ready to run (`runService`). `onRunning` is told once it listens.
    public func application(onRunning: @escaping @Sendable () async -> Void = {}) -> some ApplicationProtocol {
        let router = Router(context: ConsoleRequestContext.self)
        router.add(middleware: SecurityHeaders())
        router.add(middleware: RequireAllowedHost(allowed: allowedHosts, refusals: refusals))
        if let authentication {
            router.add(middleware: RequireAuthentication(authentication: authentication, realm: "CTBus console \(nodeId)",
                                                         refusals: refusals, throttle: signIns))
        }
        let console = self
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/journal"]) }
        router.get("/static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: PageLayout.stylesheet)))
        }
        // Every handler that reads or writes the journal does it on NIO's thread pool (`offPool`).
        router.get("/journal") { request, _ in try await offPool { try console.journalPage(request) } }
        router.get("/messages/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await offPool { try console.withCookie(request) { token in try console.messagePage(id, csrf: token) } }
        }
        router.get("/trace") { _, _ in try await offPool { try console.tracePage() } }
        router.get("/status") { request, _ in
            try await offPool { try console.withCookie(request) { token in try console.statusPage(csrf: token) } }
        }
        router.post("/status/verify") { request, context in
            let response = try await console.changing(request, context) { _, _ in Response(status: .seeOther, headers: [.location: "/status"]) }
            if response.status == .seeOther { await console.check.run() }
            return response
        }
        console.addAPI(to: router)
        console.addMetrics(to: router)
        router.get("/compose") { request, _ in console.withCookie(request) { _ in console.page(ComposeIndexPage(context: console.context)) } }
        router.get("/compose/:type") { request, context in
            console.withCookie(request) { token in console.composePage(context.parameters.get("type") ?? "", form: FormValues(), errors: .init(), csrf: token) }
        }
        router.post("/compose/:type") { request, context in
            let type = context.parameters.get("type") ?? ""
            return try await console.changing(request, context) { form, token in try console.compose(type, form: form, csrf: token) }
        }
        router.get("/drafts") { request, _ in
            try await offPool { try console.withCookie(request) { token in try console.draftsPage(csrf: token) } }
        }
        router.post("/drafts/:id/:action") { request, context in
            let (id, action) = (context.parameters.get("id") ?? "", context.parameters.get("action") ?? "")
            return try await console.changing(request, context) { _, _ in try console.draftAction(id, action: action) }
        }
        router.post("/messages/:id/revoke") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await console.changing(request, context) { form, _ in try console.revoke(id, form: form) }
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "ctbus-console"),
                           services: [SearchIndexer(journal: journal, logger: logger), JournalCheck.Schedule(check: check)],
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }

    // MARK: Pages

    static let pageSize = 50

    func journalPage(_ request: Request) throws -> Response {
        var filter: JournalFilter
        let query: JournalQuery
        do {
            (filter, query) = try JournalQuery.parse(request.uri.queryParameters)
        } catch {
            return self.error(.badRequest, error.description)
        }
        filter.limit = Self.pageSize + 1
        let unindexed = filter.words == nil ? 0 : try searchLag()
        var entries = try journal.entries(matching: filter).filter(visible)
        let more = entries.count > Self.pageSize
        if more { entries.removeLast() }
        return page(JournalPage(entries: entries, query: query, next: more ? entries.last?.position : nil, unindexed: unindexed, now: Date()))
    }

    func messagePage(_ id: String, csrf: String) throws -> Response {
        let id = MessageID.canonical(id)
        guard MessageID.isUUID(id), let (entry, pending) = try journal.revocations.entryWithPending(messageId: id), visible(entry) else {
            return error(.notFound, "This journal holds no message \(id.prefix(64)) that this console may show.")
        }
        guard let message = try? entry.message() else {
            return error(.internalServerError, "The journal entry of \(id) cannot be decoded: run ctbus journal verify.")
        }
        let published = entry.direction == .sent && entry.originator == nodeId
        return page(MessagePage(
            entry: entry, message: message, signature: registry.map { entry.signatureState(registry: $0) }, registry: registry,
            referrers: try answering(id),
            publication: published ? .init(pendingRevocation: pending.map { ($0.revocation.reason, $0.lastSentAt) }, csrf: csrf) : nil))
    }

    /// Before a search: indexes what is waiting (a bounded batch, so that the page stays quick),
    /// and returns how many entries are still not searchable.
    func searchLag() throws -> Int64 {
        do {
            try journal.search.index(limit: 2 * SearchIndexer.batch)
        } catch {
            refusals.log("index", .warning, "search index not updated before a search: \(error)")
        }
        let status = try journal.search.status()
        return max(0, status.last - status.indexedThrough)
    }

    /// What the traceability report reads: every message this console may show, with the
    /// classification of each (for the page's banner).
    func traceMessages() throws -> (messages: [Traceability.Message], classifications: [String]) {
        var messages: [Traceability.Message] = []
        var names: [String] = []
        for entry in try journal.search.traceEntries() where visible(entry) {
            guard let message = try? entry.message(), let payload = message.payload else { continue }
            messages.append(Traceability.Message(envelope: message.envelope, payload: payload, revoked: entry.revokedAt != nil,
                                                 redactedPaths: entry.redactedPaths))
            names.append(entry.classificationName)
        }
        return (messages, names)
    }

    func tracePage() throws -> Response {
        let (messages, names) = try traceMessages()
        return page(TracePage(report: Traceability.report(messages), classifications: names))
    }

    func statusPage(csrf: String) throws -> Response {
        let outbox = try journal.outbox.counts()
        let received = try journal.entries(matching: JournalFilter(direction: .received, newestFirst: true, limit: 1)).first
        let search = try journal.search.status()
        let facts = StatusPage.Facts(daemonRunning: FileLock.isHeld(journal.path), session: try journal.session(),
                                     entries: search.last, outbox: outbox.waiting, refused: outbox.refused,
                                     drafts: try journal.drafts.list().count, lastReceived: received?.recordedAt,
                                     lastAcknowledged: try journal.lastAcknowledgement(), searchIndexed: search.indexedThrough,
                                     verify: check.last, verifying: check.isRunning)
        return page(StatusPage(facts: facts, csrf: csrf))
    }

    /// The messages in this journal that point at `id` (activity matrices answering it, mission
    /// reports and follow-ups referring to it), from the journal's reference index.
    func answering(_ id: String) throws -> [(entry: JournalEntry, relation: Reference.Relation)] {
        try journal.search.referrers(of: id).filter { visible($0.entry) && $0.entry.messageId != id }
    }

    // MARK: Changes (compose, drafts, revocation)

    /// The largest form body read (a pasted activity matrix of 500 rows fits).
    static let maxFormBytes = 4 << 20

    /// The node's figures at each scrape, read from its journal (read transactions).
    func addMetrics(to router: Router<ConsoleRequestContext>) {
        let endpoint = metrics
        let journal = journal
        let problems = refusals
        metrics.addRoutes(to: router, refresh: {
            try? await offPool { Self.refreshFigures(journal: journal, endpoint: endpoint, problems: problems) }
        }, ready: {
            do {
                return try await offPool { (try? journal.lastPosition()) == nil ? "the journal cannot be read" : nil }
            } catch {
                return "the console is stopping"
            }
        })
    }

    /// The node's figures from its journal, into the endpoint's gauges.
    private static func refreshFigures(journal: NodeJournal, endpoint: MetricsEndpoint, problems: SharedThrottledLogger) {
        do {
            let search = try journal.search.status()
            let outbox = try journal.outbox.counts()
            let session = try journal.session()
            endpoint.set(.nodeJournalEntries, to: Double(search.last))
            endpoint.set(.nodeOutboxDepth, to: Double(outbox.waiting))
            endpoint.set(.nodeOutboxRefused, to: Double(outbox.refused))
            endpoint.set(.nodeDrafts, to: Double(try journal.drafts.list().count))
            endpoint.set(.nodeSearchUnindexedEntries, to: Double(max(0, search.last - search.indexedThrough)))
            let open = FileLock.isHeld(journal.path) && session?.open == true
            endpoint.set(.nodeBrokerSessionOpen, to: Double(open ? 1 : 0))
        } catch {
            problems.log("metrics", .warning, "metrics: could not read the journal's figures: \(error)")
        }
    }

    /// Loopback addresses: a console bound there serves this machine's users only.
    static func isLoopback(_ host: String) -> Bool {
        ["localhost", "::1"].contains(host.lowercased()) || host.hasPrefix("127.")
    }

    /// Runs `body` with the browser's CSRF token, and sets its cookie when the browser had none.
    func withCookie(_ request: Request, _ body: (String) throws -> Response) rethrows -> Response {
        let cookie = csrf.cookie(of: request)
        var response = try body(csrf.token(cookie: cookie.value, user: request.headers.consoleUser))
        if cookie.isNew { csrf.setCookie(cookie.value, on: &response) }
        return response
    }

    /// A state-changing request: a form body within bounds, sent from this console with a valid
    /// CSRF token; anything else is refused before `body` runs, and nothing is written.
    func changing(_ request: Request, _ context: some RequestContext,
                  _ body: @escaping @Sendable (FormValues, String) throws -> Response) async throws -> Response {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let boundary = request.headers[.contentType].flatMap(FormValues.boundary(ofContentType:))
        guard contentType.hasPrefix("application/x-www-form-urlencoded") || (contentType.hasPrefix("multipart/form-data") && boundary != nil) else {
            return error(.unsupportedMediaType, "The console takes forms as a browser sends them (application/x-www-form-urlencoded or multipart/form-data).")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxFormBytes)
        } catch {
            return self.error(.contentTooLarge, "The form is larger than \(Self.maxFormBytes >> 20) MiB.")
        }
        let form: FormValues
        do {
            form = try boundary.map { boundary throws(ConsoleInputError) in try FormValues(multipart: buffer, boundary: boundary) }
                ?? FormValues(urlEncoded: String(buffer: buffer))
        } catch {
            return self.error(.badRequest, "The form could not be read: \(error).")
        }
        if let reason = csrf.refusal(request, token: form.values["csrf"]?.first, user: request.headers.consoleUser) {
            refusals.log("csrf", .notice, "console refused a form: \(reason)", metadata: ["path": "\(CSRF.loggable(request.uri.path))"])
            return error(.forbidden, "Refused: \(reason).")
        }
        return try await offPool { try self.withCookie(request) { token in try body(form, token) } }
    }


    func composePage(_ slug: String, form: FormValues, errors: ComposeForm.Errors, csrf: String,
                     status: HTTPResponse.Status = .ok) -> Response {
        guard let type = ComposeForm.type(slug: slug) else { return error(.notFound, "There is no message type \(slug.prefix(40)) to compose.") }
        guard context.mayPublish.contains(type) else {
            return error(.forbidden, "This node's role may not publish \(ComposeForm.title(type).lowercased())s.")
        }
        return page(ComposePage(type: type, context: context, form: form, errors: errors, csrf: csrf), status: status)
    }

    /// A submitted compose form: published (to the outbox, as `ctbus publish` does) or kept as a
    /// draft; or shown again with its errors (422), nothing written.
    func compose(_ slug: String, form: FormValues, csrf: String) throws -> Response {
        guard let type = ComposeForm.type(slug: slug), context.mayPublish.contains(type) else {
            return composePage(slug, form: form, errors: .init(), csrf: csrf)
        }
        let draft = form.text("action") == "draft"
        switch ComposeForm.message(type, form: form, context: context) {
        case .failure(let box):
            // A file input cannot be filled again: what the file held comes back in the text area.
            var shown = form
            if let file = form.values["activity_matrix.activities_file"]?.first, !file.isEmpty, form.text("activity_matrix.activities").isEmpty {
                shown.set("activity_matrix.activities", file)
            }
            return composePage(slug, form: shown, errors: box.errors, csrf: csrf, status: .unprocessableContent)
        case .success(let message):
            do {
                if draft {
                    try Publisher.saveDraft(message, into: journal, clearance: clearance)
                } else {
                    try Publisher.enqueue(message, into: journal, clearance: clearance, signingKey: try signer(), registry: try currentRegistry())
                }
            } catch let failure as BusError {
                var errors = ComposeForm.Errors()
                errors.add(failure, fields: ComposeForm.allFields(type, context: context), subjectField: nil)
                return composePage(slug, form: form, errors: errors, csrf: csrf, status: .unprocessableContent)
            }
            let id = message.envelope.messageID
            logger.info("console \(draft ? "saved a draft" : "queued a publication")", metadata: ["message_id": "\(id)", "type": "\(type.name)"])
            return Response(status: .seeOther, headers: [.location: draft ? "/drafts" : PageLayout.messageHref(id)])
        }
    }

    /// The registry to seal to: the file as it is now when the console knows it. A file that no
    /// longer reads is an error (logged; nothing is queued), never the copy read at start, whose
    /// recipients the broker may no longer agree with.
    func currentRegistry() throws(BusError) -> NodeRegistry? {
        guard let registryFile else { return registry }
        do {
            return try NodeRegistry(json: try ConfigurationFile.read(registryFile, what: "registry"))
        } catch {
            refusals.log("registry-unreadable", .error, "the registry file cannot be read; sealed messages are not queued",
                         metadata: ["file": "\(registryFile)", "reason": "\(error)"])
            throw BusError(.sealInvalid, "the registry file \(registryFile) cannot be read (\(error)); a sealed message needs it")
        }
    }

    /// The key to sign with, or the error that says why this console cannot publish.
    func signer() throws(BusError) -> Curve25519.Signing.PrivateKey {
        guard let messageKeys else {
            throw BusError(.notPermitted, "this console was started without the node's signing key; it keeps drafts but cannot publish")
        }
        return messageKeys.signing
    }

    func draftsPage(csrf: String) throws -> Response {
        page(DraftsPage(drafts: try journal.drafts.envelopes(), csrf: csrf))
    }

    /// Release (validated again, then to the outbox) or discard a draft.
    func draftAction(_ id: String, action: String) throws -> Response {
        let id = MessageID.canonical(id)
        guard MessageID.isUUID(id) else { return error(.notFound, "There is no draft \(id.prefix(64)).") }
        switch action {
        case "release":
            do {
                try Publisher.releaseDraft(id, from: journal, clearance: clearance, signingKey: try signer(), registry: try currentRegistry())
            } catch let failure as StoreError where failure.kind == .notFound {
                return error(.notFound, "There is no draft \(id).")
            } catch let failure as BusError {
                return error(.unprocessableContent, "The draft cannot be released: \(failure.detail). Discard it and compose it again.")
            }
            logger.info("console released a draft", metadata: ["message_id": "\(id)"])
            return Response(status: .seeOther, headers: [.location: PageLayout.messageHref(id)])
        case "discard":
            guard try journal.drafts.discard(messageId: id) else { return error(.notFound, "There is no draft \(id).") }
            logger.info("console discarded a draft", metadata: ["message_id": "\(id)"])
            return Response(status: .seeOther, headers: [.location: "/drafts"])
        default:
            return error(.notFound, "There is no such page.")
        }
    }

    /// Queues the revocation of a message this node published (as `ctbus revoke` does).
    func revoke(_ id: String, form: FormValues) throws -> Response {
        let id = MessageID.canonical(id)
        guard MessageID.isUUID(id), let entry = try journal.entry(messageId: id), visible(entry) else {
            return error(.notFound, "This journal holds no message \(id.prefix(64)) that this console may show.")
        }
        guard entry.direction == .sent, entry.originator == nodeId else {
            return error(.forbidden, "Only the node that published a message can revoke it.")
        }
        let reason = form.text("reason").isEmpty ? "revoked by the originator" : form.text("reason")
        let revocation: Revocation
        do {
            revocation = try Revocation.signed(messageId: id, reason: reason, by: nodeId, with: try signer())
            try MessageValidator.validate(revocation.frame)
        } catch let error as BusError where error.code == .validationFailed {
            return self.error(.unprocessableContent, "The reason is too long: at most \(WireLimits.revokeReasonBytes) bytes.")
        } catch let error as BusError {
            return self.error(.forbidden, "This console cannot revoke: \(error.detail).")
        }
        try journal.revocations.queue(revocation)
        logger.info("console queued a revocation", metadata: ["message_id": "\(id)"])
        return Response(status: .seeOther, headers: [.location: PageLayout.messageHref(id)])
    }

    /// Defence in depth: nothing above this node's clearance is shown, whatever the journal holds.
    func visible(_ entry: JournalEntry) -> Bool {
        (Classification(name: entry.classificationName)?.rawValue ?? Int.max) <= clearance.rawValue
    }

    func page(_ page: some ConsolePage, status: HTTPResponse.Status = .ok) -> Response {
        self.page(page.title, marking: page.marking, page.body, status: status)
    }

    func page(_ title: String, marking: String?, _ body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: title, node: nodeId, marking: marking, body))))
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
            (HTTPField.Name("Referrer-Policy")!, "same-origin"),
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
                                body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: "Not found", node: "", marking: nil, body))))
        }
        for (name, value) in Self.fields { response.headers[name] = value }
        return response
    }
}

/// Runs journal work (SQLite reads and writes through GRDB, verifying, signing) on NIO's thread
/// pool, as hummingbird-auth runs bcrypt: the console never holds a thread of the cooperative pool
/// while SQLite waits for the disk.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(body)
}
