import CTBusConsole
import CTBusJournal
import CTBusLocal
import CTBusSchema
import CTBusTesting
import Foundation
import Testing

/// The console's notifications page over real HTTP: what a person adds, what is refused and
/// why, whose subscriptions they see and may remove, and the status page's summary.
@Suite("Console notifications", .serialized, .busSlot)
struct ConsoleNotificationTests {
    @Test("People add subscriptions in the console: an unknown State, a webhook that is not https (to this machine either), a name of markup are refused or escaped by their fields; a webhook's secret is shown once; each sees and removes only their own; a form without its token writes nothing")
    func subscribeInTheConsole() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let journal = try bus.journal("oct")
        try journal.notifications.replaceConfigured([Subscription(id: "config:ops", name: "ops", owner: "configuration",
                                                                  channel: .mail("ops@oct.example"), filter: NotificationFilter(), mode: .immediate)])
        let theirs = Subscription(id: "console:alice-1", name: "alice's", owner: "alice", channel: .mail("alice@oct.example"),
                                  filter: NotificationFilter(), mode: .immediate)
        try journal.notifications.add(theirs)
        try await ConsoleTests.serving(journal, node: "oct", clearance: .confidential, registry: bus.registry, sendsMail: true) { base in
            let browser = ConsoleComposeTests.Browser(base)
            let token = try await browser.token("/notifications")
            let page = try await browser.request("GET", "/notifications")
            #expect(page.body.contains("from the node&#39;s configuration") && page.body.contains("e-mail to ops@oct.example"))
            #expect(!page.body.contains("alice"), "another person's subscription is not shown")
            #expect(!page.body.contains("STRICTLY_CONFIDENTIAL"), "no level above the console's clearance is offered")

            func add(_ fields: [(String, String)]) async throws -> ConsoleTests.Page {
                try await browser.request("POST", "/notifications", form: [("csrf", token)] + fields)
            }
            let unknown = try await add([("name", "desk"), ("channel", "mail"), ("target", "desk@oct.example"), ("memberStates", "Kenya")])
            #expect(unknown.status == 422 && unknown.body.contains("memberStates: &quot;Kenya&quot; is unknown"), "\(unknown.body)")
            let plain = try await add([("name", "hook"), ("channel", "webhook"), ("target", "http://hooks.example.org/ctbus")])
            #expect(plain.status == 422 && plain.body.contains("a webhook off this machine must use https"))
            let local = try await add([("name", "hook"), ("channel", "webhook"), ("target", "http://127.0.0.1:9090/metrics")])
            #expect(local.status == 422 && local.body.contains("a webhook added here must use https"), "a person cannot make the node post to its own host")
            let header = try await add([("name", "x"), ("channel", "mail"), ("target", "desk@oct.example\r\nBcc: all@example.org")])
            #expect(header.status == 422 && header.body.contains("is not an e-mail address"))
            #expect(try journal.notifications.subscriptions().count == 2, "nothing was added")

            let mail = try await add([("name", "<b>Kenya</b> desk"), ("channel", "mail"), ("target", "desk@oct.example"),
                                      ("types", "COUNTRY_VISIT_RECOMMENDATION"), ("memberStates", "ken, SOM"), ("classifications", "CONFIDENTIAL"),
                                      ("mode", "daily"), ("digestHour", "6")])
            #expect(mail.status == 303 && mail.headers["location"] == "/notifications?done=subscribed")
            let hook = try await add([("name", "tracker"), ("channel", "webhook"), ("target", "https://hooks.example.org/ctbus")])
            #expect(hook.status == 200 && hook.body.contains("shown this once"))
            let mine = try journal.notifications.subscriptions().filter { $0.owner == "local" }
            #expect(mine.map(\.name).sorted() == ["<b>Kenya</b> desk", "tracker"])
            let added = try #require(mine.first { $0.name == "tracker" })
            guard case .webhook(_, let secret) = added.channel else { Issue.record("not a webhook"); return }
            #expect(hook.body.contains(secret) && secret.hasPrefix("whsec_"))
            let kenya = try #require(mine.first { $0.name != "tracker" })
            #expect(kenya.filter == NotificationFilter(types: ["COUNTRY_VISIT_RECOMMENDATION"], memberStates: ["KEN", "SOM"], classifications: ["CONFIDENTIAL"]))
            #expect(kenya.mode == .daily && kenya.digestHour == 6)

            let list = try await browser.request("GET", "/notifications?done=subscribed")
            #expect(list.body.contains("&lt;b&gt;Kenya&lt;/b&gt; desk") && !list.body.contains("<b>Kenya"))
            #expect(list.body.contains("about Kenya (KEN), Somalia (SOM), marked CONFIDENTIAL") && list.body.contains("daily digest at 06:00 UTC"))
            #expect(!list.body.contains(secret), "the secret is shown once, not on the list")
            #expect(try await browser.request("POST", "/notifications/\(theirs.id)/remove", form: [("csrf", token)]).status == 404)
            #expect(try await browser.request("POST", "/notifications/config:ops/remove", form: [("csrf", token)]).status == 404)
            let forged = try await browser.request("POST", "/notifications/\(kenya.id)/remove", form: [])
            #expect(forged.status == 403)
            let removed = try await browser.request("POST", "/notifications/\(kenya.id)/remove", form: [("csrf", token)])
            #expect(removed.status == 303 && removed.headers["location"] == "/notifications?done=unsubscribed")
            #expect(try journal.notifications.subscriptions().map(\.id).sorted() == [theirs.id, "config:ops", added.id].sorted())

            let status = try await browser.request("GET", "/status")
            #expect(status.body.contains("3 subscriptions; 0 notifications waiting, 0 given up"))
        }
    }
}
