import CTBusJournal
import CTBusSchema
import Foundation
import SwiftProtobuf

/// The words a notification may carry, and the one rule that decides them: a notification says
/// what arrived (type, marks, originator, time) and links to the console; it names the Member
/// State and says what the message says only for a message marked UNCLASSIFIED, shareable by
/// its TLP (none, CLEAR or GREEN), not sealed, under no Member State restriction and with
/// nothing withheld from this node's copy. Mail and webhooks are rendered from `Notified`
/// alone, never from the message.
public struct Notified: Equatable, Sendable {
    public let messageId: String
    public let type: MessageType
    public let classification: String
    public let tlp: String?
    public let sealed: Bool
    public let originator: String
    public let receivedAt: Date
    public let link: String
    /// Only when the message may be told in the open (see the type's rule).
    public let memberState: String?
    public let summary: String?

    /// Whether a message may be told in the open.
    public static func mayTellContent(_ envelope: Envelope, withheld: [String]) -> Bool {
        let handling = envelope.handling
        return handling.classification == .unclassified && !handling.sealed && !handling.hasMemberStateRestriction
            && withheld.isEmpty && [.tlpUnspecified, .tlpClear, .tlpGreen].contains(handling.tlp)
    }

    /// What a notification says of a journaled message; nil when its envelope cannot be read
    /// (journal verify reports such an entry).
    public init?(_ message: JournaledMessage, consoleURL: String, wording: NotificationWording) {
        guard let envelope = try? Envelope(serializedBytes: message.envelope) else { return nil }
        let open = Self.mayTellContent(envelope, withheld: message.redactedPaths)
        messageId = message.messageId
        type = envelope.type
        classification = envelope.handling.classification.name
        tlp = envelope.handling.tlp == .tlpUnspecified ? nil : "TLP:\(envelope.handling.tlp.label)"
        sealed = envelope.handling.sealed
        originator = envelope.originator
        receivedAt = message.recordedAt
        link = consoleURL + "/messages/" + (message.messageId.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")
        memberState = open && !envelope.subject.isEmpty ? envelope.subject : nil
        summary = open ? wording.summary(try? BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: message.payload), message.redactedPaths) : nil
    }
}

/// How messages are said in words people read (the console's), given to the notifier.
public struct NotificationWording: Sendable {
    public let summary: @Sendable (BusMessage.OneOf_Payload?, [String]) -> String
    public let typeName: @Sendable (MessageType) -> String
    public let time: @Sendable (Date) -> String
    public let stateName: @Sendable (String) -> String

    public init(summary: @escaping @Sendable (BusMessage.OneOf_Payload?, [String]) -> String,
                typeName: @escaping @Sendable (MessageType) -> String,
                time: @escaping @Sendable (Date) -> String,
                stateName: @escaping @Sendable (String) -> String = Geography.displayName) {
        self.summary = summary
        self.typeName = typeName
        self.time = time
        self.stateName = stateName
    }
}

/// A sending as a mail and as a webhook body, within the sizes they should keep: a mail of at
/// most `mailBytes` lists at most `mailListed` messages, a webhook body at most `webhookListed`,
/// and both say how many more there are and where to see them.
public struct NotificationRendering: Sendable {
    public let nodeId: String
    public let consoleURL: String
    public let wording: NotificationWording
    public var mailListed = 200
    public var mailBytes = 64 * 1024
    public var webhookListed = 50

    public init(nodeId: String, consoleURL: String, wording: NotificationWording) {
        self.nodeId = nodeId
        self.consoleURL = consoleURL
        self.wording = wording
    }

    public func notified(_ sending: NotificationSending) -> [Notified] {
        sending.messages.compactMap { Notified($0, consoleURL: consoleURL, wording: wording) }
    }

    // MARK: Mail

    /// The mail (RFC 5322, UTF-8 text, lines of at most 78 characters where words allow),
    /// headers and body, to give to sendmail -t.
    public func mail(_ sending: NotificationSending, from: String, to: String, at now: Date) -> String {
        let items = notified(sending)
        let digest = sending.subscription.mode == .daily
        let subject: String
        var body: [String] = []
        if !digest, let item = items.first {
            let marks = ([item.classification] + (item.tlp.map { [$0] } ?? [])).joined(separator: ", ")
            let about = item.memberState.map { " (\($0))" } ?? ""
            subject = "[CTBus \(nodeId)] \(wording.typeName(item.type))\(about), \(marks)"
            body.append(contentsOf: wrap("\(article(wording.typeName(item.type))) \(wording.typeName(item.type).lowercased()) arrived at node \(nodeId)."))
            body.append("")
            body.append(contentsOf: lines(item))
        } else {
            let day = wording.time(now).components(separatedBy: ",").first ?? ""
            subject = "[CTBus \(nodeId)] Daily digest: \(count(items.count, "message")), \(day)"
            body.append(contentsOf: wrap("\(count(items.count, "message")) arrived at node \(nodeId) for this subscription: \(tally(items))."))
            var size = body.joined(separator: "\n").utf8.count
            var listed = 0
            for item in items where listed < mailListed {
                let block = [""] + lines(item)
                let blockSize = block.joined(separator: "\n").utf8.count + 1
                guard size + blockSize < mailBytes - 4_096 else { break }
                body += block
                size += blockSize
                listed += 1
            }
            if listed < items.count {
                body.append("")
                body.append(contentsOf: wrap("…and \(items.count - listed) more, not listed here. The journal lists them all: \(consoleURL)/journal"))
            }
        }
        body.append("")
        body.append(contentsOf: wrap("A notification names the Member State and says what a message says only when the message is UNCLASSIFIED, "
                                     + "shareable (TLP:CLEAR or GREEN), not sealed and under no Member State restriction; open the console for the rest."))
        body.append("-- ")
        body.append(contentsOf: wrap("Subscription \"\(sending.subscription.name)\" at node \(nodeId): \(consoleURL)/notifications"))
        let headers = [
            "From: \(from)",
            "To: \(to)",
            "Subject: \(asciiHeader(subject))",
            "Date: \(rfc5322Date(now))",
            "Message-ID: <\(sending.id).\(nodeId)@ctbus.invalid>",
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        return (headers + [""] + body.map(limitLine)).joined(separator: "\n") + "\n"
    }

    /// One message's lines in a mail.
    func lines(_ item: Notified) -> [String] {
        var lines = ["\(wording.typeName(item.type)), \(([item.classification] + (item.tlp.map { [$0] } ?? [])).joined(separator: ", "))"
                     + (item.sealed ? ", sealed" : "")]
        lines.append("  From \(item.originator), received \(wording.time(item.receivedAt))")
        if let state = item.memberState { lines.append("  About \(wording.stateName(state))") }
        if let summary = item.summary { lines += wrap(summary, indent: "  ") }
        lines.append("  \(item.link)")
        return lines
    }

    // MARK: Webhook

    /// The webhook's JSON body (Standard Webhooks' `type`, `timestamp`, `data`).
    public func webhookBody(_ sending: NotificationSending, at now: Date) -> Data {
        let items = notified(sending)
        let listed = items.prefix(webhookListed)
        let event = WebhookEvent(type: sending.subscription.mode == .daily ? "ctbus.digest" : "ctbus.message.arrived",
                                 timestamp: UTCTime.iso8601(now),
                                 data: .init(node: nodeId, subscription: sending.subscription.name, count: items.count,
                                             messages: listed.map { item in
            .init(messageId: item.messageId, type: item.type.name, classification: item.classification, tlp: item.tlp,
                  sealed: item.sealed, originator: item.originator, receivedAt: UTCTime.iso8601(item.receivedAt),
                  memberState: item.memberState, summary: item.summary, link: item.link)
        }, more: items.count - listed.count, journal: "\(consoleURL)/journal"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return (try? encoder.encode(event)) ?? Data("{}".utf8)
    }

    struct WebhookEvent: Encodable {
        let type: String
        let timestamp: String
        let data: Body

        struct Body: Encodable {
            let node: String
            let subscription: String
            let count: Int
            let messages: [Item]
            let more: Int
            let journal: String
        }

        struct Item: Encodable {
            let messageId, type, classification: String
            let tlp: String?
            let sealed: Bool
            let originator, receivedAt: String
            let memberState, summary: String?
            let link: String
        }
    }

    // MARK: Words

    func count(_ number: Int, _ noun: String) -> String { number == 1 ? "1 \(noun)" : "\(number) \(noun)s" }

    func article(_ words: String) -> String { "AEIOU".contains(words.first ?? "x") ? "An" : "A" }

    /// "2 country visit recommendations, 1 mission report".
    func tally(_ items: [Notified]) -> String {
        var counts: [(MessageType, Int)] = []
        for item in items {
            if let index = counts.firstIndex(where: { $0.0 == item.type }) { counts[index].1 += 1 } else { counts.append((item.type, 1)) }
        }
        return counts.map { count($0.1, wording.typeName($0.0).lowercased()) }.joined(separator: ", ")
    }

    /// `text` in lines of at most 78 characters, cut between words.
    func wrap(_ text: String, indent: String = "") -> [String] {
        var lines: [String] = []
        var line = indent
        for word in text.split(separator: " ") {
            if line.count > indent.count, line.count + 1 + word.count > 78 {
                lines.append(line)
                line = indent
            }
            line += (line.count > indent.count ? " " : "") + word
        }
        if line.count > indent.count { lines.append(line) }
        return lines
    }

    /// A line cut to 900 bytes: SMTP allows 998 characters, and a word longer than a line
    /// (a link, say) is not cut by `wrap`.
    func limitLine(_ line: String) -> String {
        guard line.utf8.count > 900 else { return line }
        var cut = ""
        for character in line {
            guard cut.utf8.count + character.utf8.count <= 899 else { break }
            cut.append(character)
        }
        return cut + "…"
    }

    /// A header value in ASCII: anything else as RFC 2047 UTF-8 base64.
    func asciiHeader(_ text: String) -> String {
        let line = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        guard line.unicodeScalars.contains(where: { !$0.isASCII }) else { return line }
        return "=?utf-8?B?\(Data(line.utf8).base64EncodedString())?="
    }

    /// "Sun, 06 Dec 2026 04:12:00 +0000".
    func rfc5322Date(_ date: Date) -> String {
        let f = UTCTime.fields(date)
        let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        let weekday = days[Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) % 7]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekday), \(two(f.day)) \(months[f.month - 1]) \(f.year) \(two(f.hour)):\(two(f.minute)):\(two(f.second)) +0000"
    }
}
