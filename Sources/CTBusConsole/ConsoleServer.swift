import CTBusMetricNames
import CTBusJournal
import CTBusMetrics
import CoreMetrics
import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The node console: a web server beside a node, reading its journal. It serves the journal, each
/// message, the traceability report and the node's status (`ReadOnlyPages`); the compose, drafts
/// and revocation pages (`PublishingPages`); a JSON API (`ConsoleAPI`); and the node's metrics
/// (`JournalFigures`).
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
    let check: JournalCheck
    /// `/metrics`, `/health`, `/ready` beside the pages: the journal's figures at each scrape,
    /// and what the node loop counts when the node serves its own console (`ctbus node` with `http`).
    public let metrics: MetricsEndpoint
    let authentication: ConsoleAuthentication?
    /// The names in `Host` the console answers to.
    let allowedHosts: AllowedHosts
    let signIns = SignInThrottle()
    let refusals: SharedThrottledLogger
    let forms: FormRequests
    let readOnly: ReadOnlyPages
    let publishing: PublishingPages
    let notifications: NotificationPages
    let api: ConsoleAPI
    let figures: JournalFigures

    /// Refuses an address other than loopback without `authentication`. `allowedHosts`: the
    /// names people reach the console by, beside `localhost`, the loopback addresses and `host`.
    /// `registry` is the node's copy, read from `registryFile` when it is known; `messageKeys`
    /// sign what the console publishes; `sendsMail`: whether the node's notifier has a sender
    /// address, so that people may subscribe by e-mail.
    public init(nodeId: String, clearance: Classification, journal: NodeJournal, registry: NodeRegistry? = nil,
                messageKeys: NodeMessageKeys? = nil, registryFile: String? = nil, sendsMail: Bool = false,
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
        let refusals = SharedThrottledLogger(logger)
        self.refusals = refusals
        self.metrics = metrics
        let check = JournalCheck(journal: journal, logger: logger,
                                 failures: Counter(label: MetricName.nodeJournalVerifyFailuresTotal.rawValue, factory: metrics.factory))
        self.check = check
        let csrf = CSRF()
        let context = ComposeContext(nodeId: nodeId, clearance: clearance, registry: registry)
        let responses = HTMLResponder(nodeId: nodeId, publishes: !context.mayPublish.isEmpty)
        let visible = VisibleJournal(journal: journal, clearance: clearance, problems: refusals)
        let publisher = ConsolePublisher(nodeId: nodeId, journal: journal, clearance: clearance, messageKeys: messageKeys, registry: registry,
                                         registryFile: registryFile, problems: refusals)
        forms = FormRequests(csrf: csrf, refusals: refusals, responses: responses)
        readOnly = ReadOnlyPages(nodeId: nodeId, journal: journal, visible: visible, registry: registry, check: check, responses: responses)
        publishing = PublishingPages(nodeId: nodeId, journal: journal, visible: visible, context: context, publisher: publisher,
                                     responses: responses, logger: logger)
        notifications = NotificationPages(nodeId: nodeId, journal: journal, clearance: clearance, registry: registry, mails: sendsMail,
                                          responses: responses)
        api = ConsoleAPI(nodeId: nodeId, visible: visible, context: context, publisher: publisher, csrf: csrf, refusals: refusals, logger: logger)
        figures = JournalFigures(journal: journal, endpoint: metrics, problems: refusals)
    }

    /// Loopback addresses: a console bound there serves this machine's users only.
    static func isLoopback(_ host: String) -> Bool {
        ["localhost", "::1"].contains(host.lowercased()) || host.hasPrefix("127.")
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
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/journal"]) }
        router.get("/static/console.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: PageLayout.stylesheet)))
        }
        addPages(to: router)
        api.addRoutes(to: router)
        figures.addRoutes(to: router)
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "ctbus-console"),
                           services: [SearchIndexer(journal: journal, logger: logger), JournalCheck.Schedule(check: check)],
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }

    /// The HTML pages. Every handler that reads or writes the journal does it on NIO's thread
    /// pool (`offPool`); every form that changes something goes through `forms.changing`.
    private func addPages(to router: Router<ConsoleRequestContext>) {
        let (forms, pages, publishing, check, notifications) = (forms, readOnly, publishing, check, notifications)
        router.get("/journal") { request, _ in try await offPool { try pages.journalPage(request) } }
        router.get("/messages/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await offPool { try forms.withCookie(request) { token in try pages.messagePage(id, csrf: token, done: ActionDone(request)) } }
        }
        router.get("/trace") { request, _ in try await offPool { try pages.tracePage(request) } }
        router.get("/states") { _, _ in try await offPool { try pages.countryIndexPage() } }
        router.get("/states/:code") { _, context in
            let code = context.parameters.get("code") ?? ""
            return try await offPool { try pages.countryFilePage(code) }
        }
        router.get("/status") { request, _ in
            try await offPool { try forms.withCookie(request) { token in try pages.statusPage(csrf: token, done: ActionDone(request)) } }
        }
        router.post("/status/verify") { request, _ in
            let response = try await forms.changing(request) { _, _ in
                Response(status: .seeOther, headers: [.location: ActionDone.verified.location("/status")])
            }
            if response.status == .seeOther { await check.run() }
            return response
        }
        router.get("/compose") { request, _ in forms.withCookie(request) { _ in publishing.composeIndex() } }
        router.get("/compose/:type") { request, context in
            forms.withCookie(request) { token in
                publishing.composePage(context.parameters.get("type") ?? "", form: FormValues(), errors: .init(), csrf: token)
            }
        }
        router.post("/compose/:type") { request, context in
            let type = context.parameters.get("type") ?? ""
            return try await forms.changing(request) { form, token in try publishing.compose(type, form: form, csrf: token) }
        }
        router.get("/drafts") { request, _ in
            try await offPool { try forms.withCookie(request) { token in try publishing.draftsPage(csrf: token, done: ActionDone(request)) } }
        }
        router.post("/drafts/:id/:action") { request, context in
            let (id, action) = (context.parameters.get("id") ?? "", context.parameters.get("action") ?? "")
            return try await forms.changing(request) { _, _ in try publishing.draftAction(id, action: action) }
        }
        router.post("/messages/:id/revoke") { request, context in
            let id = context.parameters.get("id") ?? ""
            return try await forms.changing(request) { form, _ in try publishing.revoke(id, form: form) }
        }
        router.get("/notifications") { request, _ in
            let owner = NotificationPages.owner(request)
            return try await offPool {
                try forms.withCookie(request) { token in try notifications.page(owner: owner, csrf: token, done: ActionDone(request)) }
            }
        }
        router.post("/notifications") { request, _ in
            let owner = NotificationPages.owner(request)
            return try await forms.changing(request) { form, token in try notifications.add(form: form, owner: owner, csrf: token) }
        }
        router.post("/notifications/:id/remove") { request, context in
            let (id, owner) = (context.parameters.get("id") ?? "", NotificationPages.owner(request))
            return try await forms.changing(request) { _, _ in try notifications.remove(id, owner: owner) }
        }
    }
}
