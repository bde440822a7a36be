import CTBusConsole
import CTBusJournal
import CTBusLocal
import CTBusNotify
import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

/// The pure parts of notifications, row by row: filters and their errors, targets, the
/// retry schedule, the Standard Webhooks signature, and what a mail may say.
@Suite("Notification rules")
struct NotificationRulesTests {
    @Test("The Standard Webhooks test vector, and a changed byte gives another signature")
    func webhookVector() throws {
        let key = try NotificationTarget.webhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let body = Data(#"{"test": 2432232314}"#.utf8)
        #expect(WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, key: key)
                == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(WebhookSignature.sign(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_331, body: body, key: key)
                != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(throws: ConfigurationError.self) { try NotificationTarget.webhookKey("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") }
        #expect(throws: ConfigurationError.self) { try NotificationTarget.webhookKey("whsec_c2hvcnQ=") } // 5 bytes
        #expect(try NotificationTarget.webhookKey(NotificationTarget.newWebhookSecret()).count == 32)
    }

    @Test("Filters: each list that is not empty must hold one of the message's values", arguments: [
        (NotificationFilter(), true),
        (NotificationFilter(types: ["COUNTRY_VISIT_RECOMMENDATION"]), true),
        (NotificationFilter(types: ["MISSION_REPORT"]), false),
        (NotificationFilter(memberStates: ["NGA", "KEN"]), true),
        (NotificationFilter(memberStates: ["NGA"]), false),
        (NotificationFilter(themes: ["Border-Security"]), true),
        (NotificationFilter(themes: ["financing"]), false),
        (NotificationFilter(classifications: ["CONFIDENTIAL"]), true),
        (NotificationFilter(types: ["COUNTRY_VISIT_RECOMMENDATION"], classifications: ["UNCLASSIFIED"]), false),
    ])
    func filters(filter: NotificationFilter, matches: Bool) {
        let message = SampleMessages.recommendation(memberState: "KEN", handling: SampleMessages.handling(.confidential))
        let facts = NotificationFilter.Facts(envelope: message.envelope, payload: message.payload, themes: ["border-security"])
        #expect(filter.matches(facts) == matches)
    }

    @Test("An activity matrix is about every State its activities name")
    func matrixStates() {
        let matrix = SampleMessages.activityMatrix(answering: [], memberState: "SOM")
        let facts = NotificationFilter.Facts(envelope: matrix.envelope, payload: matrix.payload, themes: [])
        #expect(NotificationFilter(memberStates: ["SOM"]).matches(facts))
    }

    @Test("A filter naming an unknown type, classification, State or theme is refused with what was expected; known names are written as messages write them", arguments: [
        (NotificationFilter(types: ["MEMO"]), "types: \"MEMO\" is unknown; expected COUNTRY_VISIT_RECOMMENDATION, MISSION_REPORT, ACTIVITY_MATRIX"),
        (NotificationFilter(memberStates: ["Kenya"]), "memberStates: \"Kenya\" is unknown; expected an ISO 3166-1 alpha-3 code (KEN) or a region code"),
        (NotificationFilter(themes: ["piracy"]), "themes: \"piracy\" is unknown; expected border-security, financing"),
        (NotificationFilter(classifications: ["SECRET"]), "classifications: \"SECRET\" is unknown; expected UNCLASSIFIED, CONFIDENTIAL, STRICTLY_CONFIDENTIAL"),
    ])
    func unknownNames(filter: NotificationFilter, error: String) {
        #expect(Self.error(filter) == error)
    }

    static func error(_ filter: NotificationFilter) -> String? {
        do { _ = try filter.validated(knownThemes: ["border-security", "financing"]); return nil } catch { return error.description }
    }

    @Test("Known names are written as the messages write them, once each")
    func normalised() throws {
        let filter = try NotificationFilter(types: ["mission-report", "MISSION_REPORT"], memberStates: ["ken"], themes: ["BORDER-security"],
                                            classifications: ["confidential"]).validated(knownThemes: ["border-security"])
        #expect(filter == NotificationFilter(types: ["MISSION_REPORT"], memberStates: ["KEN"], themes: ["border-security"], classifications: ["CONFIDENTIAL"]))
    }

    @Test("Targets: one address on one line; https, or http only to this machine; no credentials in a URL", arguments: [
        ("desk@oct.example", true, false), ("desk@oct.example\nBcc: all@example.org", false, false), ("a@b@c.example", false, false),
        ("two@x.example, three@x.example", false, false), ("nobody", false, false),
        ("https://hooks.example.org/ctbus", true, true), ("http://127.0.0.1:9000/h", true, true), ("http://localhost/h", true, true),
        ("http://hooks.example.org/ctbus", false, true), ("https://user:pw@hooks.example.org/", false, true), ("ftp://x.example/", false, true),
    ])
    func targets(text: String, valid: Bool, webhook: Bool) {
        let result = webhook ? Result { () throws(ConfigurationError) in try NotificationTarget.webhookURL(text) }
            : Result { () throws(ConfigurationError) in try NotificationTarget.mailAddress(text) }
        #expect(((try? result.get()) != nil) == valid, "\(text)")
        if webhook, text.hasPrefix("http://"), valid {
            #expect((try? NotificationTarget.webhookURL(text, loopbackHTTP: false)) == nil, "only the configuration may name http to this machine")
        }
    }

    @Test("Retries: the first wait doubles up to the longest, its second half drawn at random; a Retry-After that asks longer is kept; none once the attempts are used")
    func retries() {
        let policy = RetryPolicy(first: .seconds(5), longest: .seconds(60), attempts: 6)
        #expect(policy.wait(afterAttempts: 1, jitter: 0) == .milliseconds(2_500))
        #expect(policy.wait(afterAttempts: 1, jitter: 0.999_999)! > .milliseconds(4_999))
        #expect(policy.wait(afterAttempts: 2, jitter: 0) == .seconds(5))
        #expect(policy.wait(afterAttempts: 3, jitter: 1) == .seconds(20))
        #expect(policy.wait(afterAttempts: 5, jitter: 1) == .seconds(60))
        #expect(policy.wait(afterAttempts: 2, asked: .seconds(120), jitter: 0) == .seconds(120))
        #expect(policy.wait(afterAttempts: 6, jitter: 0) == nil)
    }

    @Test("A digest larger than a mail should be lists what fits under 64 KiB and says how many more")
    func largeDigest() throws {
        let subscription = Subscription(id: "config:daily", name: "daily", owner: "configuration", channel: .mail("d@oct.example"),
                                        filter: NotificationFilter(), mode: .daily)
        let messages = try (0..<500).map { index in
            let message = SampleMessages.recommendation(text: String(repeating: "Recommendation \(index) ", count: 20))
            return JournaledMessage(messageId: message.envelope.messageID, recordedAt: Date(), envelope: try message.envelope.serializedData(),
                                    payload: try #require(message.payload).serialized(), redactedPaths: [])
        }
        let rendering = NotificationRendering(nodeId: "oct", consoleURL: "https://console.example.org", wording: NotificationWords.wording)
        let mail = rendering.mail(NotificationSending(id: "digest-1", subscription: subscription, attempts: 0, firstQueued: Date(), messages: messages),
                                  from: "oct@example.org", to: "d@oct.example", at: Date(timeIntervalSince1970: 1_796_000_000))
        #expect(mail.utf8.count <= 64 * 1024)
        #expect(mail.contains("Daily digest: 500 messages"))
        let more = try #require(mail.range(of: #"…and (\d+) more"#, options: .regularExpression))
        let listed = mail.components(separatedBy: "https://console.example.org/messages/").count - 1
        #expect(mail[more].contains("\(500 - listed)") && listed > 50 && listed <= 200, "\(listed)")
        #expect(mail.contains("Message-ID: <digest-1.oct@ctbus.invalid>") && mail.contains("Date: Mon, 30 Nov 2026"))
        #expect(mail.split(whereSeparator: \.isNewline).allSatisfy { $0.count <= 78 || $0.hasPrefix("Subject:") })
    }
}
