import CTBusJournal
import Foundation

/// The node's state as its journal shows it: the daemon and its broker session, the outbox, the
/// search index and the last journal verify, with a button that runs verify now.
struct StatusPage: ConsolePage {
    struct Facts {
        var daemonRunning: Bool
        var session: (open: Bool, since: Date)?
        var entries: Int64
        var outbox: Int
        var refused: Int
        var drafts: Int
        var lastReceived: Date?
        var lastAcknowledged: Date?
        var searchIndexed: Int64
        var verify: JournalCheck.Outcome?
        var verifying: Bool
        var notifications: [SubscriptionStatus]
    }

    let facts: Facts
    let csrf: String
    var done: ActionDone? = nil

    var title: String { "Status" }
    var marking: String? { nil }

    var body: HTML {
        let connection: String
        switch (facts.daemonRunning, facts.session) {
        case (true, let session?) where session.open: connection = "connected to the broker since \(Reading.time(session.since))"
        case (true, let session?): connection = "running, not connected to the broker since \(Reading.time(session.since)) (it keeps trying)"
        case (true, nil): connection = "running, not connected to the broker yet"
        case (false, _): connection = "not running: nothing is sent or received until ctbus node runs"
        }
        let verify: String
        switch facts.verify?.result {
        case .success(let report)? where report.isIntact:
            let since = facts.entries - Int64(report.entries)
            verify = "intact: \(report.entries) entries and their hash chain (checked \(Reading.time(facts.verify!.at)))"
                + (since > 0 ? "; the \(since) entries journaled since are checked at the next verify" : "")
        case .success(let report)?:
            verify = "DAMAGED: " + (report.firstBreak.map { "entry \($0.position): \($0.reason)" } ?? report.damage.joined(separator: "; "))
                + " (checked \(Reading.time(facts.verify!.at))); see ctbus journal salvage"
        case .failure(let error)?:
            verify = "could not run: \(error)"
        case nil:
            verify = facts.verifying ? "running…" : "not run yet"
        }
        let waiting = facts.notifications.map(\.waiting).reduce(0, +), failed = facts.notifications.map(\.failed).reduce(0, +)
        var notifications = "\(facts.notifications.count) subscriptions; \(waiting) notifications waiting, \(failed) given up"
        // Named, never addressed: the addresses are their owners' to see.
        let failing = facts.notifications.filter { $0.failed > 0 || ($0.waiting > 0 && $0.lastError != nil) }
        if !failing.isEmpty {
            notifications += ". Failing: " + failing.map { "\($0.subscription.name) (\($0.lastError ?? "given up"))" }.joined(separator: "; ")
        }
        var html = HTML(raw: "<dl class=\"facts status\">")
        for (name, value) in [("Node daemon", connection), ("Journal entries", "\(facts.entries)"),
                              ("Publications waiting in the outbox", "\(facts.outbox)"),
                              ("Publications refused by the broker", "\(facts.refused)"), ("Drafts", "\(facts.drafts)"),
                              ("Last message received", facts.lastReceived.map(Reading.time) ?? "none yet"),
                              ("Last publication acknowledged", facts.lastAcknowledged.map(Reading.time) ?? "none yet"),
                              ("Search index", "\(facts.searchIndexed) of \(facts.entries) entries"),
                              ("Journal verify", verify), ("Notifications", notifications)] {
            html.element("dt", name)
            html.element("dd", value)
        }
        html.raw("</dl><form method=\"post\" action=\"/status/verify\">" + PageLayout.csrfField(csrf)
                 + "<button type=\"submit\">Verify the journal now</button></form>")
        return html
    }
}
