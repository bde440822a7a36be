import CTBusJournal
import CTBusNotify
import CTBusPolicy
import CTBusSchema
import Foundation
import Hummingbird

/// The subscriptions a console user has (and the configuration's, which everyone sees), where
/// each stands (waiting, sent, given up, the last failure), and the form to add one: by e-mail or
/// webhook, filtered by type, Member State, theme and classification, immediately or as a daily
/// digest. A person removes only their own; the configuration's change with the configuration.
struct NotificationPages: Sendable {
    let nodeId: String
    let journal: NodeJournal
    let clearance: Classification
    let registry: NodeRegistry?
    /// Whether the node sends mail (its configuration names a sender address).
    let mails: Bool
    let responses: HTMLResponder

    /// The owner recorded for a console user: the name they signed in with, or "local" on a
    /// console without authentication (this machine's users).
    static func owner(_ request: Request) -> String {
        let user = request.headers.consoleUser
        return user.isEmpty ? "local" : user
    }

    var knownThemes: [String] { NotificationWords.knownThemes(registry: registry, journal: journal, atMost: clearance) }

    func page(owner: String, form: FormValues = FormValues(), errors: [String: String] = [:], secret: String? = nil,
              csrf: String, done: ActionDone? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        let subscriptions = try journal.notifications.status()
            .filter { $0.subscription.owner == owner || $0.subscription.id.hasPrefix(Subscription.configuredPrefix) }
        return responses.page(NotificationsPage(subscriptions: subscriptions, owner: owner, themes: knownThemes, clearance: clearance,
                                                mails: mails, form: form, errors: errors, secret: secret, csrf: csrf, done: done),
                              status: status)
    }

    /// A submitted subscription: added and confirmed, or the form again with what is wrong by
    /// its fields (422), nothing written. A webhook's secret is shown on the answer, this once.
    func add(form: FormValues, owner: String, csrf: String) throws -> Response {
        var errors: [String: String] = [:]
        let name = form.text("name").trimmingCharacters(in: .whitespaces)
        if name.isEmpty || name.count > 64 || name.unicodeScalars.contains(where: CharacterSet.controlCharacters.contains) {
            errors["name"] = "Give a name of 1 to 64 characters, to tell your subscriptions apart."
        }
        var channel: Subscription.Channel?
        var secret: String?
        let target = form.text("target")
        do throws(ConfigurationError) {
            switch form.text("channel") {
            case "mail":
                guard mails else { throw ConfigurationError("This node sends no mail: its configuration names no notifications.mailFrom.") }
                channel = .mail(try NotificationTarget.mailAddress(target))
            case "webhook":
                let made = NotificationTarget.newWebhookSecret()
                channel = .webhook(url: try NotificationTarget.webhookURL(target, loopbackHTTP: false), secret: made)
                secret = made
            default:
                throw ConfigurationError("Choose e-mail or webhook.")
            }
        } catch {
            errors["target"] = error.description
        }
        let states = form.text("memberStates").split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        var filter = NotificationFilter()
        do throws(NotificationFilterError) {
            filter = try NotificationFilter(types: form.all("types"), memberStates: states, themes: form.all("themes"),
                                            classifications: form.all("classifications")).validated(knownThemes: knownThemes)
        } catch {
            errors[error.field] = error.description
        }
        let mode = Subscription.Mode(rawValue: form.text("mode")) ?? .immediate
        let hour = Int(form.text("digestHour")) ?? 7
        if !(0...23).contains(hour) { errors["mode"] = "The digest hour is 0 to 23 (UTC)." }
        guard errors.isEmpty, let channel else {
            return try page(owner: owner, form: form, errors: errors, csrf: csrf, status: .unprocessableContent)
        }
        let subscription = Subscription(id: "console:" + UUID().uuidString.lowercased(), name: name, owner: owner, channel: channel,
                                        filter: filter, mode: mode, digestHour: hour)
        try journal.notifications.add(subscription)
        guard let secret else { return Response(status: .seeOther, headers: [.location: ActionDone.subscribed.location("/notifications")]) }
        return try page(owner: owner, secret: secret, csrf: csrf, done: .subscribed)
    }

    /// Removes one of the user's own subscriptions.
    func remove(_ id: String, owner: String) throws -> Response {
        guard let subscription = try journal.notifications.subscriptions().first(where: { $0.id == id }), subscription.owner == owner else {
            return responses.error(.notFound, "You have no such subscription.")
        }
        try journal.notifications.remove(id: subscription.id)
        return Response(status: .seeOther, headers: [.location: ActionDone.unsubscribed.location("/notifications")])
    }
}

struct NotificationsPage: ConsolePage {
    let subscriptions: [SubscriptionStatus]
    let owner: String
    let themes: [String]
    let clearance: Classification
    let mails: Bool
    let form: FormValues
    let errors: [String: String]
    let secret: String?
    let csrf: String
    var done: ActionDone? = nil

    var title: String { "Notifications" }
    var marking: String? { nil }

    var body: HTML {
        var html = HTML()
        if let secret {
            html.raw("<div class=\"secret\" role=\"status\"><p>")
            html.text("The webhook's signing secret, shown this once: keep it where the receiver can read it. Each request carries "
                      + "webhook-id, webhook-timestamp and webhook-signature as the Standard Webhooks specification says.")
            html.raw("</p><p><code>")
            html.text(secret)
            html.raw("</code></p></div>")
        }
        html.element("p", "A notification says what arrived, its marks and a link here. It names the Member State and says what the "
                     + "message says only for an UNCLASSIFIED message, shareable (no TLP, CLEAR or GREEN), not sealed and under no "
                     + "Member State restriction.")
        html.element("h2", "Your subscriptions")
        if subscriptions.isEmpty {
            html.element("p", "None yet.", attributes: [("class", "empty")])
        } else {
            html.raw("<div class=\"scroll\"><table class=\"subscriptions\"><thead><tr>")
            for header in ["Subscription", "Sent to", "Of", "When", "Where it stands", ""] { html.element("th", header, attributes: [("scope", "col")]) }
            html.raw("</tr></thead><tbody>")
            for item in subscriptions {
                let subscription = item.subscription
                html.raw("<tr>")
                html.element("th", subscription.name, attributes: [("scope", "row")])
                html.element("td", Self.channel(subscription.channel))
                html.element("td", Self.filter(subscription.filter))
                html.element("td", subscription.mode == .daily ? "daily digest at \(Self.hour(subscription.digestHour)) UTC" : "as each arrives")
                html.element("td", Self.standing(item))
                html.raw("<td class=\"actions\">")
                if subscription.id.hasPrefix(Subscription.configuredPrefix) {
                    html.text("from the node's configuration")
                } else if subscription.owner == owner {
                    html.raw("<form method=\"post\"\(HTML.attributes([("action", "/notifications/\(subscription.id)/remove")]))>"
                             + PageLayout.csrfField(csrf)
                             + "<button type=\"submit\"\(HTML.attributes([("aria-label", "Remove the subscription \(subscription.name)")]))>Remove</button></form>")
                }
                html.raw("</td></tr>")
            }
            html.raw("</tbody></table></div>")
        }
        html.element("h2", "Add a subscription")
        if !errors.isEmpty {
            html.element("p", "The subscription was not added: see the fields marked below.", attributes: [("class", "errors"), ("role", "alert")])
        }
        html.raw("<form method=\"post\" action=\"/notifications\" class=\"compose\">" + PageLayout.csrfField(csrf))
        field("name", "Name") { html in
            html.raw("<input\(HTML.attributes([("type", "text"), ("name", "name"), ("id", "name"), ("maxlength", "64"), ("required", "required"), ("value", form.text("name"))]))>")
        }.append(to: &html)
        let channel = form.text("channel").isEmpty ? (mails ? "mail" : "webhook") : form.text("channel")
        group("channel", "Sent by", choices: [("mail", mails ? "e-mail" : "e-mail (this node sends no mail)"), ("webhook", "webhook")],
              chosen: [channel], type: "radio").append(to: &html)
        field("target", "E-mail address or webhook URL (https)") { html in
            html.raw("<input\(HTML.attributes([("type", "text"), ("name", "target"), ("id", "target"), ("required", "required"), ("value", form.text("target"))]))>")
        }.append(to: &html)
        group("types", "Of these types (none: every type)",
              choices: MessageType.allCases.filter { $0 != .unspecified }.map { ($0.name, Reading.typeName($0)) }, chosen: form.all("types")).append(to: &html)
        field("memberStates", "About these Member States or regions (ISO 3166-1 alpha-3 codes such as KEN, separated by spaces; empty: any)") { html in
            html.raw("<input\(HTML.attributes([("type", "text"), ("name", "memberStates"), ("id", "memberStates"), ("value", form.text("memberStates"))]))>")
        }.append(to: &html)
        if !themes.isEmpty {
            group("themes", "On these themes (none: any)", choices: themes.map { ($0, $0) }, chosen: form.all("themes")).append(to: &html)
        }
        let levels = Classification.allCases.filter { $0 != .unspecified && $0.rawValue <= clearance.rawValue }
        group("classifications", "Marked (none: any this console may show)", choices: levels.map { ($0.name, Reading.classification($0.name)) },
              chosen: form.all("classifications")).append(to: &html)
        let mode = form.text("mode").isEmpty ? "immediate" : form.text("mode")
        group("mode", "When", choices: [("immediate", "as each message arrives"), ("daily", "a daily digest")], chosen: [mode], type: "radio")
            .append(to: &html)
        html.raw(HTML.select("digestHour", label: "Daily digest at (UTC)", options: (0...23).map { ("\($0)", Self.hour($0)) },
                             selected: form.text("digestHour").isEmpty ? "7" : form.text("digestHour")))
        html.raw("<div class=\"buttons\"><button type=\"submit\">Add the subscription</button></div></form>")
        return html
    }

    /// A labelled field, with its error when it has one.
    private func field(_ name: String, _ label: String, _ input: (inout HTML) -> Void) -> HTML {
        var html = HTML(raw: "<div class=\"field\"><label\(HTML.attributes([("for", name)]))>")
        html.text(label)
        html.raw("</label>")
        input(&html)
        error(name, into: &html)
        html.raw("</div>")
        return html
    }

    /// A group of check boxes (or radio buttons) in a fieldset named by its legend.
    private func group(_ name: String, _ legend: String, choices: [(String, String)], chosen: [String], type: String = "checkbox") -> HTML {
        var html = HTML(raw: "<fieldset class=\"field\"><legend>")
        html.text(legend)
        html.raw("</legend><span class=\"choices\">")
        for (value, label) in choices {
            html.raw("<label class=\"flag\"><input\(HTML.attributes([("type", type), ("name", name), ("value", value)]))"
                     + "\(chosen.contains(value) ? " checked" : "")> ")
            html.text(label)
            html.raw("</label>")
        }
        html.raw("</span>")
        error(name, into: &html)
        html.raw("</fieldset>")
        return html
    }

    private func error(_ name: String, into html: inout HTML) {
        if let message = errors[name] { html.element("p", message, attributes: [("class", "error")]) }
    }

    static func hour(_ value: Int) -> String { value < 10 ? "0\(value):00" : "\(value):00" }

    static func channel(_ channel: Subscription.Channel) -> String {
        switch channel {
        case .mail(let address): "e-mail to \(address)"
        case .webhook(let url, _): "webhook \(url)"
        }
    }

    /// The filter in words: "country visit recommendations about KEN, marked CONFIDENTIAL".
    static func filter(_ filter: NotificationFilter) -> String {
        var parts = [filter.types.isEmpty ? "every message" : filter.types.map { Reading.typeName($0).lowercased() + "s" }.joined(separator: " or ")]
        if !filter.memberStates.isEmpty { parts.append("about " + filter.memberStates.map(Geography.displayName).joined(separator: ", ")) }
        if !filter.themes.isEmpty { parts.append("on " + filter.themes.joined(separator: ", ")) }
        if !filter.classifications.isEmpty { parts.append("marked " + filter.classifications.map(Reading.classification).joined(separator: " or ")) }
        return parts.joined(separator: ", ")
    }

    static func standing(_ item: SubscriptionStatus) -> String {
        var words = ["\(item.sent) sent", "\(item.waiting) waiting"]
        if item.failed > 0 { words.append("\(item.failed) given up") }
        var text = words.joined(separator: ", ")
        if let error = item.lastError, item.waiting > 0 || item.failed > 0 {
            text += "; last failure \(item.lastErrorAt.map(Reading.time) ?? ""): \(error)"
        }
        return text
    }
}

extension HTML {
    func append(to html: inout HTML) { html.raw(text) }
}
