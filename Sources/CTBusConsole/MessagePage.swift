import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf

/// One message, for people: a line saying what it is, what became of it (revoked, refused, parts
/// withheld), its content laid out for reading (`MessageContent`), the messages it refers to and
/// those referring to it by what they say; for this node's own publication, its life so far and
/// the form that revokes it; and last the details (id, marks, signature, journal position, hash).
struct MessagePage: ConsolePage {
    let entry: JournalEntry
    let message: BusMessage
    /// The signature checked against the node's registry; nil when the console has no registry.
    let signature: SignatureState?
    let registry: NodeRegistry?
    /// The messages in this journal that point at this one.
    let referrers: [(entry: JournalEntry, relation: Reference.Relation)]
    /// Set when this node published the message.
    let publication: OwnPublication?
    /// What this console may show of each message this one names (references, answered recommendations).
    let referenced: [String: MessageContent.Referenced]
    /// The action just done that led here, confirmed at the top of the page.
    var done: ActionDone? = nil

    /// The State at whose request parts of this copy are withheld.
    private var withheldFor: String {
        let handling = message.envelope.handling
        return handling.hasMemberStateRestriction ? handling.memberStateRestriction.state : "a Member State"
    }

    /// What the page shows of a message this node published.
    struct OwnPublication {
        /// A revocation queued and not confirmed by the broker yet.
        let pendingRevocation: (reason: String, lastSentAt: Date?)?
        let csrf: String
    }

    var title: String { "\(Reading.typeName(message.envelope.type)) · \(message.envelope.subject)" }

    /// The page names its references and referrers by what they say: their markings count too.
    var marking: String? {
        let named = referenced.values.compactMap { reference -> String? in
            if case .shown(_, _, let classification) = reference { classification } else { nil }
        }
        return PageLayout.marking([entry.classificationName] + referrers.map(\.entry.classificationName) + named)
    }

    var body: HTML {
        var html = HTML(raw: "<p class=\"lead\">" + lead + "</p>")
        html.raw(fate().text)
        html.raw(MessageContent(payload: message.payload, withheld: Set(entry.redactedPaths), withheldFor: withheldFor,
                                referenced: referenced).html.text)
        html.raw(links().text)
        if let publication {
            html.raw(Self.publication(entry, revocation: publication.pendingRevocation).text)
            if entry.revokedAt == nil, entry.refusedCode == nil, publication.pendingRevocation == nil {
                html.element("h2", "Revoke")
                html.raw(Self.revokeForm(entry.messageId, csrf: publication.csrf).text)
            }
        }
        html.element("h2", "Details")
        html.raw(facts().text)
        return html
    }

    /// What the message is, from whom, about where (a link to that State's file) and when, and
    /// its marks, in a sentence (markup).
    private var lead: String {
        let envelope = message.envelope
        var marks = [Reading.classification(entry.classificationName)]
        if envelope.handling.tlp != .tlpUnspecified { marks.append(Reading.tlp(envelope.handling.tlp)) }
        let verb = entry.direction == .sent ? "published by" : "from"
        return HTML.escape("\(Reading.typeName(envelope.type)) \(verb) \(entry.originator) about ")
            + HTML.link(CountryFilePage.href(envelope.subject), Geography.displayName(envelope.subject))
            + HTML.escape(", created \(Reading.time(entry.createdAt)). \(marks.joined(separator: " · ")).")
    }

    /// A reference's relation in words, read from the referring message ("answers") or from the
    /// message referred to ("answered by").
    static func relationName(_ relation: Reference.Relation, reverse: Bool) -> String {
        switch relation {
        case .answers: reverse ? "answered by" : "answers"
        case .reportsOn: reverse ? "reported on by" : "reports on"
        case .followsUp: reverse ? "followed up by" : "follows up"
        case .supersedes: reverse ? "superseded by" : "supersedes"
        default: reverse ? "referred to by" : "refers to"
        }
    }

    /// The envelope's facts, the signature and the entry's place in the journal.
    private func facts() -> HTML {
        let envelope = message.envelope
        var facts: [(String, String)] = [
            ("Message id", envelope.messageID), ("Type", Reading.typeName(envelope.type)), ("From", entry.originator),
            ("Direction", entry.direction.rawValue), ("Member State or region", envelope.subject),
            ("Created", Reading.time(entry.createdAt)),
        ] + Reading.marks(envelope)
        if envelope.hasExpiresAt { facts.append(("Expires", Reading.time(envelope.expiresAt.date))) }
        if !envelope.thematicTags.isEmpty { facts.append(("Themes", envelope.thematicTags.joined(separator: ", "))) }
        facts.append(("Signature", signature?.summary ?? "not checked: this console has no registry"))
        facts.append(("Journal position", "\(entry.position)"))
        facts.append(("Hash", entry.hash.hex))
        var html = HTML(raw: "<dl class=\"facts\">")
        for (name, value) in facts { html.element("dt", name); html.element("dd", value) }
        html.raw("</dl>")
        return html
    }

    /// Revoked, refused by the broker, parts withheld at a Member State's request.
    private func fate() -> HTML {
        var html = HTML()
        if let revoked = entry.revocationSummary(registry: registry) {
            html.element("p", "This message was \(revoked).", attributes: [("class", "revoked")])
        }
        if let code = entry.refusedCode {
            html.element("p", "The broker refused this publication (\(code): \(entry.refusedDetail ?? "")); it is not sent again.",
                         attributes: [("class", "refused")])
        }
        if !entry.redactedPaths.isEmpty {
            let names = entry.redactedPaths.map { MessageContent.label(message.envelope.type, $0) }
            html.element("p", "Withheld from this node's copy at the request of \(withheldFor): \(names.joined(separator: ", ")).",
                         attributes: [("class", "withheld")])
        }
        return html
    }

    /// The messages this one refers to, and those referring to it.
    private func links() -> HTML {
        var html = HTML()
        let references = message.envelope.references
        if !references.isEmpty {
            html.element("h2", "References")
            html.raw("<ul>")
            for reference in references {
                html.raw("<li>")
                html.text(Self.relationName(reference.relation, reverse: false) + " ")
                switch referenced[reference.messageID] {
                case .shown(let summary, let typeName, _)?:
                    html.text(typeName.lowercased() + ": ")
                    html.raw(HTML.link(PageLayout.messageHref(reference.messageID), summary))
                case .notVisible?, nil:
                    html.element("span", "a message not visible to this node", attributes: [("class", "not-visible")])
                }
                html.raw("</li>")
            }
            html.raw("</ul>")
        }
        if !referrers.isEmpty {
            html.element("h2", "Referred to by")
            html.raw("<ul class=\"referrers\">")
            for item in referrers {
                html.raw("<li>")
                html.text("\(Self.relationName(item.relation, reverse: true)) ")
                html.text("\(Reading.typeName(item.entry.typeName).lowercased()) from \(item.entry.originator): ")
                html.raw(HTML.link(PageLayout.messageHref(item.entry.messageId),
                                   Reading.summary((try? item.entry.message())?.payload, withheld: item.entry.redactedPaths)))
                html.text(" (\(Reading.time(item.entry.createdAt)))")
                html.raw("</li>")
            }
            html.raw("</ul>")
        }
        return html
    }

    /// The life of this node's own publication, as its journal records it: queued, acknowledged
    /// by the broker (or refused), revocation sent and confirmed. Who received it, who got a
    /// redacted copy and who was refused by which rule is the broker's audit (`ctbus audit`).
    static func publication(_ entry: JournalEntry, revocation: (reason: String, lastSentAt: Date?)?) -> HTML {
        var facts: [(String, String)] = [("Queued in the outbox", Reading.time(entry.recordedAt))]
        if let code = entry.refusedCode {
            facts.append(("Broker", "refused it: \(code)"))
        } else {
            facts.append(("Stored by the broker", entry.acknowledgedAt.map(Reading.time) ?? "not yet: the node daemon sends it"))
        }
        if let revoked = entry.revokedAt {
            facts.append(("Revoked", "\(Reading.time(revoked)), confirmed by the broker"))
        } else if let revocation {
            facts.append(("Revocation", revocation.lastSentAt.map { "sent at \(Reading.time($0)), waiting for the broker to confirm it" }
                          ?? "queued; the node daemon sends it"))
            facts.append(("Reason given", revocation.reason))
        }
        var html = HTML()
        html.element("h2", "Publication")
        html.raw("<dl class=\"facts publication\">")
        for (name, value) in facts { html.element("dt", name); html.element("dd", value) }
        html.raw("</dl>")
        // The page runs no script, so it does not change by itself: while something waits for the
        // broker, a link reads it again (the page states, when it loads, what the journal says).
        let waiting = (entry.refusedCode == nil && entry.acknowledgedAt == nil) || (entry.revokedAt == nil && revocation != nil)
        if waiting {
            html.raw("<p class=\"pages\">" + HTML.link(PageLayout.messageHref(entry.messageId), "Check again") + " (as of "
                     + HTML.escape(Reading.time(Date())) + ")</p>")
        }
        html.element("p", "Who received it, who got a copy with parts withheld and who was refused by which rule: "
                     + "the broker's audit (ctbus audit on the broker's host).", attributes: [("class", "hint")])
        return html
    }

    /// The revocation form shown on a message this node published and has not revoked. Revoking
    /// cannot be undone, so the form asks for a confirmation box to be ticked (checked again by
    /// the server: a form sent without it revokes nothing).
    static func revokeForm(_ messageId: String, csrf: String) -> HTML {
        var html = HTML(raw: "<form method=\"post\" class=\"revoke\"\(HTML.attributes([("action", PageLayout.messageHref(messageId) + "/revoke")]))>")
        html.raw(PageLayout.csrfField(csrf))
        html.raw("<label for=\"reason\">Reason</label><input type=\"text\" id=\"reason\" name=\"reason\" maxlength=\"1024\">")
        html.raw("<label class=\"confirm\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> "
                 + "Every node that received it is told it is revoked; this cannot be undone.</label>")
        html.raw("<button type=\"submit\">Revoke this message</button></form>")
        return html
    }
}
