import CTBusJournal
import CTBusNode
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import SwiftProtobuf
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The console's writing side over real HTTP, on a real bus: compose forms checked by the
/// same validator as `ctbus publish`, drafts, revocation, and the CSRF and origin checks that
/// keep another site from doing any of it.
@Suite("Console compose", .serialized, .busSlot)
struct ConsoleComposeTests {
    /// A browser's state as these tests keep it: the console's cookie, once it set one. Requests
    /// go over `RawHTTP`: no redirect followed, no cookie shared, a 401 seen as it is.
    final class Browser: @unchecked Sendable {
        let base: URL
        var cookie: String?

        init(_ base: URL) { self.base = base }

        func request(_ method: String, _ path: String, form: [(String, String)]? = nil, body: Data? = nil,
                     headers: [String: String] = [:]) async throws -> ConsoleTests.Page {
            var fields = headers
            if let cookie { fields["Cookie"] = "ctbus_csrf=\(cookie)" }
            var payload = body
            if let form {
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-._~")
                payload = Data(form.map { "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
                    .joined(separator: "&").utf8)
                fields["Content-Type"] = "application/x-www-form-urlencoded"
            }
            let port = base.port!
            let sendable = fields
            let sent = payload
            // Off the task threads: the console answering runs on them.
            let response = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RawHTTP.Response, any Error>) in
                DispatchQueue.global().async {
                    continuation.resume(with: Result {
                        try RawHTTP.exchange(port: port, method: method, target: path, headers: sendable, body: sent)
                    })
                }
            }
            if let set = response.headers["set-cookie"], let range = set.range(of: "ctbus_csrf=") {
                cookie = String(set[range.upperBound...].prefix { $0 != ";" })
            }
            return ConsoleTests.Page(status: response.status, headers: response.headers, body: String(decoding: response.body, as: UTF8.self))
        }

        /// Opens a page with a form and returns the form's CSRF token.
        func token(_ path: String, headers: [String: String] = [:]) async throws -> String {
            let page = try await request("GET", path, headers: headers)
            let marker = "name=\"csrf\" value=\""
            let start = try #require(page.body.range(of: marker), "no CSRF field on \(path)")
            return String(page.body[start.upperBound...].prefix { $0 != "\"" })
        }
    }

    static func missionReport(_ token: String, summary: String = "Workshop on border management held with the national police.",
                              extra: [(String, String)] = []) -> [(String, String)] {
        [("csrf", token), ("mission_report.mission_id", "MISSION-2026-KEN-07"), ("mission_report.kind", "4"),
         ("mission_report.member_state", "KEN"), ("mission_report.dates.start", "2026-11-02"), ("mission_report.dates.end", "2026-11-03"),
         ("mission_report.participating_entities", "UNOCT\r\nCTED"), ("mission_report.summary", summary),
         ("envelope.thematic_tags", "border-security"), ("envelope.handling.classification", "UNCLASSIFIED"), ("action", "publish")] + extra
    }

    /// Every node of a bus running, and OCT's console (its keys and registry) served over it:
    /// `body` gets the console's address and the journals of OCT and wg-border.
    static func servingOCT(_ body: @escaping @Sendable (URL, NodeJournal, NodeJournal) async throws -> Void) async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let (oct, border) = (try bus.journal("oct"), try bus.journal("wg-border"))
        try await ConsoleTests.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct"),
                                       registry: bus.registry) { base in try await body(base, oct, border) }
    }

    /// The hidden fields of a page's form, as a browser would post them back.
    static func hiddenFields(_ body: String) -> [(String, String)] {
        let pattern = /<input type="hidden" name="([^"]*)" value="([^"]*)">/
        func unescape(_ text: Substring) -> String {
            text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&lt;", with: "<")
                .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
        }
        return body.matches(of: pattern).map { (unescape($0.output.1), unescape($0.output.2)) }
    }

    @Test("Review before publishing: Enter reviews and never publishes; the review says who receives it by the broker's own rules and queues nothing; Publish from it queues; what the broker would refuse (need to know, size) is refused at once by the form and the API")
    func reviewBeforePublishing() async throws {
        try await Self.servingOCT { base, oct, border in
            let browser = Browser(base)
            let token = try await browser.token("/compose/mission-report")
            let form = try await browser.request("GET", "/compose/mission-report")
            let buttons = form.body.ranges(of: "<button type=\"submit\"").map { String(form.body[$0.lowerBound...].prefix(80)) }
            #expect(buttons.first?.contains("value=\"review\">Review before publishing") == true, "Enter presses the first button: \(buttons)")
            #expect(!form.body.contains("value=\"publish\""), "the form itself cannot publish")

            // A CONFIDENTIAL report: the review names who gets it and who does not, and why.
            let fields = Self.missionReport(token).filter { !["action", "envelope.handling.classification"].contains($0.0) }
                + [("envelope.handling.classification", "CONFIDENTIAL"), ("action", "review")]
            let review = try await browser.request("POST", "/compose/mission-report", form: fields)
            #expect(review.status == 200 && review.body.contains("<h1>Review: mission report</h1>"), "\(review.body)")
            #expect(review.body.contains("Reaches cted, wg-border, wg-cft; not wg-rights: clearance."), "\(review.body)")
            #expect(review.body.contains("<th scope=\"row\">wg-rights</th><td>nothing</td><td>clearance: clearance UNCLASSIFIED is below CONFIDENTIAL</td>"))
            #expect(review.body.contains("<div class=\"marking\">CONFIDENTIAL</div>"))
            #expect(try oct.count() == 0 && oct.outbox.counts().waiting == 0, "a review queues nothing")
            // Enter in a field sends the first button's value; a form sent without one reviews too.
            let bare = try await browser.request("POST", "/compose/mission-report", form: fields.filter { $0.0 != "action" })
            #expect(try bare.status == 200 && bare.body.contains("Who receives it") && oct.count() == 0)

            // Publish from the review: its hidden fields carry the form.
            let hidden = Self.hiddenFields(review.body)
            #expect(hidden.contains { $0 == ("mission_report.summary", "Workshop on border management held with the national police.") })
            let published = try await browser.request("POST", "/compose/mission-report", form: hidden + [("action", "publish")])
            #expect(published.status == 303 && published.headers["location"]?.hasSuffix("?done=queued") == true)
            let id = String(try #require(published.headers["location"]).dropFirst("/messages/".count).prefix { $0 != "?" })
            #expect(try await Wait.until { try border.entry(messageId: id) != nil }, "the reviewed report reached wg-border")
            // Publish pressed twice on one review publishes once.
            let again = try await browser.request("POST", "/compose/mission-report", form: hidden + [("action", "publish")])
            #expect(again.status == 303 && again.headers["location"] == published.headers["location"])
            #expect(try oct.entries(matching: JournalFilter(type: .missionReport)).count == 1)
            // Change it: back to the form, filled in.
            let change = try await browser.request("POST", "/compose/mission-report", form: hidden + [("action", "edit")])
            #expect(change.status == 200 && change.body.contains("value=\"MISSION-2026-KEN-07\"") && change.body.contains("value=\"review\""))

            // What the broker would refuse is refused here, before the outbox: need to know...
            let secret = Self.missionReport(token).filter { !["action", "envelope.handling.classification"].contains($0.0) }
                + [("envelope.handling.classification", "STRICTLY_CONFIDENTIAL")]
            for action in ["review", "publish"] {
                let refused = try await browser.request("POST", "/compose/mission-report", form: secret + [("action", action)])
                #expect(refused.status == 422 && refused.body.contains("releasability list"), "\(action): \(refused.body)")
            }
            var api = SampleMessages.missionReport(handling: SampleMessages.handling(.strictlyConfidential))
            api.envelope.originator = "oct"
            let apiRefused = try await browser.request("POST", "/api/v1/messages", body: Data(try api.jsonString().utf8), headers: ["Content-Type": "application/json"])
            #expect(apiRefused.status == 422 && apiRefused.body.contains("NEED_TO_KNOW_REQUIRED"), "\(apiRefused.body)")
            // ...and size: a matrix whose frame would pass the broker's 1 MiB.
            var matrix = SampleMessages.activityMatrix(answering: [])
            let activity = matrix.activityMatrix.activities[0]
            matrix.activityMatrix.activities = (0..<5_000).map { index in
                var copy = activity
                copy.projectID = "UNCCT-\(index)"
                copy.title = String(repeating: "capacity building ", count: 12)
                return copy
            }
            matrix.envelope.originator = "oct"
            let large = try await browser.request("POST", "/api/v1/messages", body: Data(try matrix.jsonString().utf8), headers: ["Content-Type": "application/json"])
            #expect(large.status == 413 && large.body.contains("MESSAGE_TOO_LARGE"), "\(large.status) \(large.body.prefix(300))")
            #expect(try oct.outbox.counts().waiting + oct.count() == 1, "only the reviewed report was queued")
        }
    }

    @Test("Compose: each error next to its field and nothing written; a valid mission report leaves through the outbox and reaches another node")
    func compose() async throws {
        try await Self.servingOCT { base, oct, border in
            let browser = Browser(base)
            let index = try await browser.request("GET", "/compose")
            #expect(index.body.contains("/compose/mission-report") && index.body.contains("/compose/activity-matrix"))
            #expect(!index.body.contains("/compose/recommendation"), "OCT's role publishes no recommendation")
            #expect(try await browser.request("GET", "/compose/recommendation").status == 403)
            let token = try await browser.token("/compose/mission-report")
            let form = try await browser.request("GET", "/compose/mission-report")
            for id in ["wg-border", "cted", "compact-wg"] { #expect(form.body.contains("value=\"\(id)\""), "releasability offers \(id)") }
            #expect(form.body.contains("value=\"summary\""), "the redactable fields of a mission report are offered")

            // An empty form: every required field named, next to it; nothing written.
            let empty = try await browser.request("POST", "/compose/mission-report", form: [("csrf", token), ("action", "publish")])
            #expect(empty.status == 422)
            for field in ["mission_id", "kind", "dates", "participating_entities", "summary"] {
                #expect(empty.body.contains("id=\"f-mission_report.\(field)-error\""), "an error next to \(field)")
            }
            // Bad values: a date that is not one, a text over its bound, an unknown node.
            let cases: [(String, [(String, String)], String)] = [
                ("mission_report.dates", [("mission_report.dates.start", "2026-13-45")], "must be a date YYYY-MM-DD"),
                ("mission_report.summary", [("mission_report.summary", String(repeating: "x", count: WireLimits.textBytes + 1))],
                 "is longer than \(WireLimits.textBytes) bytes"),
                ("envelope.handling.releasability", [("envelope.handling.releasability", "nobody")], "neither a node nor a group"),
                ("envelope.handling.classification", [("envelope.handling.classification", "SECRET")], "must be one of"),
            ]
            for (field, values, rule) in cases {
                let names = Set(values.map(\.0))
                let sent = Self.missionReport(token).filter { !names.contains($0.0) } + values
                let page = try await browser.request("POST", "/compose/mission-report", form: sent)
                #expect(page.status == 422, "\(field)")
                let error = page.body.range(of: "id=\"f-\(field)-error\">").map { String(page.body[$0.upperBound...].prefix(160)) } ?? ""
                #expect(error.contains(rule), "\(field): \(error)")
                #expect(page.body.contains("value=\"MISSION-2026-KEN-07\""), "the values typed come back")
            }
            #expect(try oct.count() == 0 && oct.drafts.list().isEmpty)

            // A valid one: to the outbox, shown as sent, and out to the working group over the bus.
            let script = "<script>alert(1)</script> Workshop held."
            let published = try await browser.request("POST", "/compose/mission-report", form: Self.missionReport(token, summary: script))
            #expect(published.status == 303)
            let location = try #require(published.headers["location"])
            #expect(location.hasSuffix("?done=queued"), "the message page confirms the publication: \(location)")
            let id = String(location.dropFirst("/messages/".count).prefix { $0 != "?" })
            #expect(try await Wait.until { try border.entry(messageId: id) != nil }, "the mission report reached wg-border")
            #expect(try oct.outbox.status(messageId: id) != nil)
            let shown = try await browser.request("GET", location)
            #expect(shown.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !shown.body.contains("<script>"))
            #expect(shown.body.contains("<p class=\"done\" role=\"status\">Published: signed and queued"))
            // The confirmation comes from a fixed list: anything else in the address shows none.
            let other = try await browser.request("GET", "/messages/\(id)?done=%3Cb%3Epwned")
            #expect(other.status == 200 && !other.body.contains("class=\"done\"") && !other.body.contains("pwned"))
        }
    }

    @Test("A form without its token, with another browser's token, or from another site is refused (403) and writes nothing")
    func forgery() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = try NodeJournal(path: folder.appendingPathComponent("oct.journal.sqlite").path)
        try await ConsoleTests.serving(journal, node: "oct", clearance: .strictlyConfidential) { base in
            let browser = Browser(base)
            let token = try await browser.token("/compose/mission-report")
            let other = Browser(base)
            let otherToken = try await other.token("/compose/mission-report")
            #expect(token != otherToken)
            let attempts: [(String, [(String, String)], [String: String])] = [
                ("no token", Self.missionReport(token).filter { $0.0 != "csrf" }, [:]),
                ("another browser's token", Self.missionReport(otherToken), [:]),
                ("another origin", Self.missionReport(token), ["Origin": "http://evil.example"]),
                ("another site", Self.missionReport(token), ["Sec-Fetch-Site": "cross-site"]),
            ]
            for (what, form, headers) in attempts {
                let page = try await browser.request("POST", "/compose/mission-report", form: form, headers: headers)
                #expect(page.status == 403, "\(what)")
                #expect(page.body.contains("Refused"), "\(what)")
            }
            let bare = Browser(base) // no cookie at all
            let page = try await bare.request("POST", "/compose/mission-report", form: Self.missionReport(token))
            #expect(page.status == 403)
            #expect(try journal.count() == 0 && journal.drafts.list().isEmpty)
            // The same form, from this console with its token, goes through: the checks above refused for their reason.
            let same = try await browser.request("POST", "/compose/mission-report", form: Self.missionReport(token),
                                                 headers: ["Origin": base.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/"))])
            #expect(same.status == 303)
            #expect(try journal.count() == 1)
        }
    }

    @Test("Drafts saved from the form are listed, released (they reach the other node) or discarded; a published message is revoked from its page")
    func draftsAndRevocation() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        try await ConsoleTests.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct"), registry: bus.registry) { base in
            let browser = Browser(base)
            let token = try await browser.token("/compose/mission-report")
            var ids: [String] = []
            for _ in 0..<2 {
                let saved = try await browser.request("POST", "/compose/mission-report",
                                                      form: Self.missionReport(token).filter { $0.0 != "action" } + [("action", "draft")])
                #expect(saved.status == 303 && saved.headers["location"] == "/drafts?done=draft-saved")
            }
            ids = try oct.drafts.list().map(\.messageId)
            #expect(try ids.count == 2 && oct.count() == 0)
            let list = try await browser.request("GET", "/drafts?done=draft-saved")
            #expect(list.body.contains("Saved as a draft. Nothing was sent"))
            #expect(list.body.contains("Workshop"), "each draft is listed by what it says")
            for id in ids { #expect(list.body.contains("/drafts/\(id)/release") && list.body.contains("/drafts/\(id)/discard")) }

            let released = try await browser.request("POST", "/drafts/\(ids[0])/release", form: [("csrf", token)])
            #expect(released.status == 303 && released.headers["location"] == "/messages/\(ids[0])?done=released")
            #expect(try await Wait.until { try border.entry(messageId: ids[0]) != nil }, "the released draft reached wg-border")
            let discarded = try await browser.request("POST", "/drafts/\(ids[1])/discard", form: [("csrf", token)])
            #expect(discarded.status == 303)
            #expect(try oct.drafts.list().isEmpty && oct.entry(messageId: ids[1]) == nil)
            #expect(try await browser.request("POST", "/drafts/\(ids[1])/discard", form: [("csrf", token)]).status == 404)

            #expect(try await Wait.until { try oct.outbox.status(messageId: ids[0]) == .acknowledged })
            let page = try await browser.request("GET", "/messages/\(ids[0])")
            #expect(page.body.contains("/messages/\(ids[0])/revoke"))
            #expect(page.body.contains("<dt>Stored by the broker</dt><dd>") && !page.body.contains("<dt>Stored by the broker</dt><dd>not yet"),
                    "the publication's life shows its acknowledgement")
            // Revoking cannot be undone: without the confirmation box nothing is revoked.
            let unconfirmed = try await browser.request("POST", "/messages/\(ids[0])/revoke", form: [("csrf", token), ("reason", "sent too early")])
            #expect(unconfirmed.status == 400 && unconfirmed.body.contains("Nothing was revoked"))
            #expect(try oct.revocations.pending().isEmpty)
            let revoked = try await browser.request("POST", "/messages/\(ids[0])/revoke",
                                                    form: [("csrf", token), ("reason", "sent too early"), ("confirm", "yes")])
            #expect(revoked.status == 303 && revoked.headers["location"] == "/messages/\(ids[0])?done=revocation-queued")
            #expect(try await Wait.until { try border.entry(messageId: ids[0])?.revokedAt != nil }, "wg-border marks it revoked")
            // The broker's RevokeAck may reach oct after wg-border has the revocation.
            #expect(try await Wait.until { try oct.entry(messageId: ids[0])?.revokedAt != nil }, "oct has the broker's confirmation")
            let after = try await browser.request("GET", "/messages/\(ids[0])")
            #expect(after.body.contains("sent too early") && !after.body.contains("/revoke\""),
                    "oct was told: \(bus.node("oct")?.errorsReceived.map(\.description) ?? []); pending: \((try? oct.revocations.pending().count) ?? -1)")
            #expect(after.body.contains("confirmed by the broker"))
        }
        // A working group's console cannot revoke what CTED published (served without the
        // registry, so that its compose form, and a valid token, exist).
        let cted = try bus.publish(SampleMessages.recommendation(), from: "cted")
        #expect(try await Wait.until { try border.entry(messageId: cted) != nil })
        try await ConsoleTests.serving(border, node: "wg-border", clearance: .confidential, messageKeys: try bus.messageKeys(of: "wg-border")) { base in
            let browser = Browser(base)
            let token = try await browser.token("/compose/mission-report")
            let page = try await browser.request("GET", "/messages/\(cted)")
            #expect(!page.body.contains("/revoke"))
            #expect(try await browser.request("POST", "/messages/\(cted)/revoke", form: [("csrf", token)]).status == 403)
            #expect(try border.entry(messageId: cted)?.revokedAt == nil)
        }
    }
}

extension ConsoleComposeTests {
    static func multipart(_ fields: [(String, String)], file: (name: String, content: Data)) -> (body: Data, contentType: String) {
        let boundary = "----ctbus\(UUID().uuidString.prefix(8))"
        var body = Data()
        for (name, value) in fields {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.name)\"; filename=\"matrix.csv\"\r\nContent-Type: text/csv\r\n\r\n".utf8))
        body.append(file.content)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    @Test("An activity matrix uploaded as a CSV file: a wrong row is named next to the field and the file's text comes back; a file that is not UTF-8 is refused; a good one is published")
    func matrixUpload() async throws {
        let folder = try JournalIntegrityTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let journal = try NodeJournal(path: folder.appendingPathComponent("oct.journal.sqlite").path)
        try await ConsoleTests.serving(journal, node: "oct", clearance: .strictlyConfidential) { base in
            let browser = Browser(base)
            let token = try await browser.token("/compose/activity-matrix")
            let fields = [("csrf", token), ("activity_matrix.reporting_period.start", "2026-01-01"),
                          ("activity_matrix.reporting_period.end", "2026-06-30"), ("envelope.handling.classification", "UNCLASSIFIED"),
                          ("action", "publish")]
            let header = "project_id,title,member_states,pillars,status\n"
            let wrong = Self.multipart(fields, file: ("activity_matrix.activities_file", Data((header + "P-1,Training,KEN,II,ONGOING\nP-2,Workshop,XX,II,ONGOING\n").utf8)))
            let refused = try await browser.request("POST", "/compose/activity-matrix", body: wrong.body, headers: ["Content-Type": wrong.contentType])
            #expect(refused.status == 422)
            let error = refused.body.range(of: "id=\"f-activity_matrix.activities-error\">").map { String(refused.body[$0.upperBound...].prefix(200)) } ?? ""
            #expect(error.contains("row 3") && error.contains("member_states"), "\(error)")
            // Every wrong cell at once, by row and column, listed at the top of the form.
            let several = Self.multipart(fields, file: ("activity_matrix.activities_file", Data((header + "P-1,,Kenya,V,STARTED\n").utf8)))
            let listed = try await browser.request("POST", "/compose/activity-matrix", body: several.body, headers: ["Content-Type": several.contentType])
            #expect(listed.status == 422 && listed.body.contains("4 problems in the CSV, listed at the top of the form"), "\(listed.body)")
            for line in ["CSV row 2, column pillars: &quot;V&quot; is not a pillar", "CSV row 2, column status: must be PLANNED",
                         "CSV row 2, column title: is required", "CSV row 2, column member_states: &quot;Kenya&quot; must be an ISO 3166-1 alpha-3 code"] {
                #expect(listed.body.contains("<li>" + line), "\(line)")
            }
            #expect(refused.body.contains("P-2,Workshop,XX"), "the file's text is shown again in the text area")

            let latin1 = Self.multipart(fields, file: ("activity_matrix.activities_file", Data([0x50, 0x2D, 0x31, 0xE9, 0xFF, 0x0A])))
            let binary = try await browser.request("POST", "/compose/activity-matrix", body: latin1.body, headers: ["Content-Type": latin1.contentType])
            #expect(binary.status == 400 && binary.body.contains("not UTF-8"))
            #expect(try journal.count() == 0)

            let good = Self.multipart(fields, file: ("activity_matrix.activities_file", Data((header + "P-1,Training,KEN,II,ONGOING\n").utf8)))
            let published = try await browser.request("POST", "/compose/activity-matrix", body: good.body, headers: ["Content-Type": good.contentType])
            #expect(published.status == 303)
            #expect(try journal.entries(matching: JournalFilter(type: .activityMatrix)).count == 1)
            // No daemon runs here: the page says the broker does not have it yet, and offers to check again.
            let page = try await browser.request("GET", try #require(published.headers["location"]))
            #expect(page.body.contains("<dt>Stored by the broker</dt><dd>not yet: the node daemon sends it</dd>") && page.body.contains(">Check again</a>"))
        }
    }
}
