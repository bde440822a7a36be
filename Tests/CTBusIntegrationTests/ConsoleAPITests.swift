import CTBusConsole
import CTBusJournal
import CTBusSchema
import CTBusLocal
import CTBusTesting
import Foundation
import SwiftProtobuf
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The console's JSON API on a real bus, and the committed OpenAPI document checked against
/// what the running server answers (Tests/api/check_openapi.py, with Debian's python3-jsonschema).
@Suite("Console API", .serialized, .busSlot)
struct ConsoleAPITests {
    struct Observation: Encodable {
        let method: String
        let path: String
        let status: Int
        let contentType: String
        let body: String

        enum CodingKeys: String, CodingKey { case method, path, status, contentType = "content_type", body }
    }

    /// Records every answer with the document's path template, for the OpenAPI check.
    final class Client: @unchecked Sendable {
        let browser: ConsoleComposeTests.Browser
        var observations: [Observation] = []

        init(_ base: URL) { browser = ConsoleComposeTests.Browser(base) }

        func call(_ method: String, _ template: String, _ path: String, json: String? = nil, contentType: String = "application/json",
                  headers: [String: String] = [:]) async throws -> (status: Int, body: [String: Any], headers: [String: String]) {
            var allHeaders = headers
            if json != nil { allHeaders["Content-Type"] = contentType }
            let page = try await browser.request(method.uppercased(), path, body: json.map { Data($0.utf8) }, headers: allHeaders)
            observations.append(Observation(method: method, path: template, status: page.status,
                                            contentType: page.headers["content-type"] ?? "", body: page.body))
            let object = (try? JSONSerialization.jsonObject(with: Data(page.body.utf8))) as? [String: Any] ?? [:]
            return (page.status, object, page.headers)
        }
    }

    static func errorCode(_ body: [String: Any]) -> String? { (body["error"] as? [String: Any])?["code"] as? String }

    static func detail(_ body: [String: Any]) -> String? {
        (body["error"] as? [String: Any])?["detail"] as? String
    }

    static func json(_ message: BusMessage) throws -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return try message.jsonString(options: options)
    }

    @Test("List, show, trace and publish over JSON on a real bus; every answer matches docs/openapi.json, and every operation there is called")
    func api() async throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        try bus.startBroker()
        try bus.startAllNodes()
        #expect(await bus.waitUntilConnected())
        let kenya = try bus.publish(SampleMessages.recommendation(memberState: "KEN"), from: "cted")
        _ = try bus.publish(SampleMessages.recommendation(memberState: "NGA"), from: "cted")
        let oct = try bus.journal("oct")
        let border = try bus.journal("wg-border")
        #expect(try await Wait.until { try oct.count() == 2 })

        let observations = try await ConsoleTests.serving(oct, node: "oct", clearance: .strictlyConfidential, messageKeys: try bus.messageKeys(of: "oct"), registry: bus.registry) { base in
            let client = Client(base)
            let list = try await client.call("get", "/api/v1/messages", "/api/v1/messages")
            #expect(list.status == 200 && (list.body["messages"] as? [[String: Any]])?.count == 2)
            let page = try await client.call("get", "/api/v1/messages", "/api/v1/messages?limit=1")
            let before = try #require(page.body["next_before"] as? Int)
            let older = try await client.call("get", "/api/v1/messages", "/api/v1/messages?limit=1&before=\(before)")
            #expect((older.body["messages"] as? [[String: Any]])?.first?["subject"] as? String == "KEN" && older.body["next_before"] == nil)
            let filtered = try await client.call("get", "/api/v1/messages", "/api/v1/messages?member_state=KEN&type=COUNTRY_VISIT_RECOMMENDATION")
            #expect((filtered.body["messages"] as? [[String: Any]])?.map { $0["message_id"] as? String } == [kenya])
            let searched = try await client.call("get", "/api/v1/messages", "/api/v1/messages?q=passenger%20informa&member_state=NGA")
            #expect((searched.body["messages"] as? [[String: Any]])?.count == 1 && searched.body["unindexed_entries"] as? Int == 0)
            let wrong = try await client.call("get", "/api/v1/messages", "/api/v1/messages?type=NOTHING")
            #expect(wrong.status == 400 && Self.errorCode(wrong.body) == "BAD_REQUEST")
            #expect(try await client.call("get", "/api/v1/messages", "/api/v1/messages?limit=0").status == 400)

            let shown = try await client.call("get", "/api/v1/messages/{id}", "/api/v1/messages/\(kenya)")
            #expect(shown.status == 200)
            let envelope = ((shown.body["message"] as? [String: Any])?["envelope"] as? [String: Any])
            #expect(envelope?["message_id"] as? String == kenya)
            let missing = try await client.call("get", "/api/v1/messages/{id}", "/api/v1/messages/\(MessageID.generate())")
            #expect(missing.status == 404 && Self.errorCode(missing.body) == "NOT_FOUND")

            // Publishing: a valid mission report goes out over the bus; a draft stays.
            var sample = SampleMessages.missionReport(memberState: "KEN", tags: ["border-security"])
            let asCted = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: try Self.json(sample))
            #expect(Self.errorCode(asCted.body) == "NOT_PERMITTED", "a message naming another originator is refused, not rewritten")
            sample.envelope.originator = ""
            let report = try Self.json(sample)
            let published = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: report)
            #expect(published.status == 201 && published.body["status"] as? String == "queued")
            let id = try #require(published.body["message_id"] as? String)
            #expect(published.headers["location"] == "/api/v1/messages/\(id)")
            #expect(try await Wait.until { try border.entry(messageId: id) != nil }, "the report reached wg-border")
            var draftSample = SampleMessages.missionReport(memberState: "NGA")
            draftSample.envelope.originator = ""
            let draft = try await client.call("post", "/api/v1/messages", "/api/v1/messages?draft=true", json: try Self.json(draftSample))
            #expect(draft.status == 201 && draft.body["status"] as? String == "draft")
            #expect(try oct.drafts.list().count == 1)
            let duplicate = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: report)
            #expect(duplicate.status == 409 || duplicate.status == 422, "a second publication of one id")

            // Refusals: nothing written for any of them.
            let count = try oct.count()
            var invalid = SampleMessages.missionReport()
            invalid.missionReport.summary = ""
            invalid.envelope.originator = ""
            let refused = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: try Self.json(invalid))
            #expect(refused.status == 422 && Self.errorCode(refused.body) == "VALIDATION_FAILED")
            #expect(((refused.body["error"] as? [String: Any])?["detail"] as? String)?.hasPrefix("mission_report.summary") == true)
            var recommendation = SampleMessages.recommendation()
            recommendation.envelope.originator = ""
            let role = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: try Self.json(recommendation))
            #expect(role.status == 403 && Self.errorCode(role.body) == "NOT_PERMITTED" && Self.detail(role.body)?.contains("role") == true)
            let form = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: report, contentType: "text/plain")
            #expect(form.status == 415)
            let foreign = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: report,
                                                headers: ["Origin": "http://evil.example"])
            #expect(foreign.status == 403 && Self.errorCode(foreign.body) == "CROSS_ORIGIN")
            let garbage = try await client.call("post", "/api/v1/messages", "/api/v1/messages", json: "{\"envelope\": 5")
            #expect(garbage.status == 422)
            #expect(try oct.count() == count)

            let trace = try await client.call("get", "/api/v1/trace", "/api/v1/trace")
            #expect(trace.status == 200 && (trace.body["recommendations"] as? [Any])?.count == 2)
            let kenyan = try await client.call("get", "/api/v1/trace", "/api/v1/trace?member_state=ken")
            #expect((kenyan.body["recommendations"] as? [Any])?.count == 1)
            #expect(try await client.call("get", "/api/v1/trace", "/api/v1/trace?member_state=K").status == 400)
            return client.observations
        }

        // The document, checked by a script that uses nothing of this project.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-api-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try JSONEncoder().encode(observations).write(to: file)
        let check = try await CommandLineTests.run([
            CommandLineTests.root.appendingPathComponent("Tests/api/check_openapi.py").path,
            CommandLineTests.root.appendingPathComponent("docs/openapi.json").path, file.path,
        ], executable: URL(fileURLWithPath: "/usr/bin/python3"))
        #expect(check.status == 0, "\(check.errors)")
        #expect(check.output.contains("\(observations.count) answers checked"))
    }
}
