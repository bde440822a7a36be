import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

@Suite("Message validation")
struct MessageValidatorTests {
    static func recommendation() -> BusMessage {
        var envelope = Envelope()
        envelope.messageID = MessageID.generate()
        envelope.type = .countryVisitRecommendation
        envelope.schemaVersion = 1
        envelope.createdAt = Google_Protobuf_Timestamp(date: Date())
        envelope.handling.classification = .unclassified
        envelope.subject = "KEN"
        var value = CountryVisitRecommendation()
        value.visitID = "V-1"
        value.memberState = "KEN"
        value.visitDates.start = "2026-03-09"
        value.visitDates.end = "2026-03-13"
        value.resolutionsAssessed = [1373]
        value.thematicArea = "border-security"
        value.recommendationText = "Text."
        value.priority = .high
        value.pillars = [.pillarIiPreventAndCombat]
        value.followUpStatus = .followUpOpen
        var message = BusMessage()
        message.envelope = envelope
        message.countryVisitRecommendation = value
        return message
    }

    /// Expects `VALIDATION_FAILED` whose detail starts with `field`.
    static func expectFailure(_ field: String, sourceLocation: SourceLocation = #_sourceLocation, _ change: (inout BusMessage) -> Void) {
        var message = recommendation()
        change(&message)
        do {
            try MessageValidator.validate(message)
            Issue.record("expected \(field) to be refused", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == .validationFailed, sourceLocation: sourceLocation)
            #expect(error.detail.hasPrefix(field + " "), "detail: \(error.detail)", sourceLocation: sourceLocation)
        }
    }

    @Test("A complete recommendation is valid")
    func valid() throws {
        try MessageValidator.validate(Self.recommendation())
        var indented = Self.recommendation()
        indented.countryVisitRecommendation.recommendationText = "\n\u{00A0} x"
        try MessageValidator.validate(indented)
    }

    @Test("Each broken rule is named by its field path")
    func brokenRules() {
        Self.expectFailure("envelope.message_id") { $0.envelope.messageID = "not-a-uuid" }
        Self.expectFailure("envelope.message_id") { $0.envelope.messageID = "01a2084a-c8b7-468a-b80c-b3f999e3ee91" } // v4
        Self.expectFailure("envelope.type") { $0.envelope.type = .missionReport }
        Self.expectFailure("envelope.schema_version") { $0.envelope.schemaVersion = 2 }
        Self.expectFailure("envelope.created_at") { $0.envelope.clearCreatedAt() }
        Self.expectFailure("envelope.handling") { $0.envelope.clearHandling() }
        Self.expectFailure("envelope.handling.classification") { $0.envelope.handling.classification = .unspecified }
        Self.expectFailure("envelope.handling.releasability[1]") { $0.envelope.handling.releasability = ["oct", "Bad Id"] }
        Self.expectFailure("envelope.handling.declassify_on") { $0.envelope.handling.declassifyOn = "2026-02-30" }
        Self.expectFailure("envelope.subject") { $0.envelope.subject = "Kenya" }
        Self.expectFailure("envelope.references[0].message_id") {
            var reference = Reference()
            reference.messageID = "x"
            reference.relation = .answers
            $0.envelope.references = [reference]
        }
        Self.expectFailure("envelope.expires_at") { $0.envelope.expiresAt = Google_Protobuf_Timestamp(seconds: 1) }
        Self.expectFailure("country_visit_recommendation.visit_id") { $0.countryVisitRecommendation.visitID = "  " }
        Self.expectFailure("country_visit_recommendation.member_state") { $0.countryVisitRecommendation.memberState = "ZZZ" }
        Self.expectFailure("country_visit_recommendation.visit_dates.end") { $0.countryVisitRecommendation.visitDates.end = "2026-03-01" }
        Self.expectFailure("country_visit_recommendation.visit_dates.start") { $0.countryVisitRecommendation.visitDates.start = "09/03/2026" }
        Self.expectFailure("country_visit_recommendation.resolutions_assessed") { $0.countryVisitRecommendation.resolutionsAssessed = [] }
        Self.expectFailure("country_visit_recommendation.recommendation_text") {
            $0.countryVisitRecommendation.recommendationText = String(repeating: "x", count: WireLimits.textBytes + 1)
        }
        Self.expectFailure("country_visit_recommendation.recommendation_text") {
            $0.countryVisitRecommendation.recommendationText = " \n\t\u{00A0}\u{2003}\r\n"
        }
        Self.expectFailure("country_visit_recommendation.priority") { $0.countryVisitRecommendation.priority = .unspecified }
        Self.expectFailure("country_visit_recommendation.technical_assistance_need") {
            $0.countryVisitRecommendation.technicalAssistanceNeeded = true
        }
        Self.expectFailure("country_visit_recommendation.pillars") { $0.countryVisitRecommendation.pillars = [] }
        Self.expectFailure("country_visit_recommendation.follow_up_status") {
            $0.countryVisitRecommendation.followUpStatus = .followUpUnspecified
        }
    }

    @Test("Member State restrictions: scope, state and field paths are checked")
    func restrictions() {
        func restricted(_ scope: MemberStateRestriction.Scope, paths: [String], state: String = "KEN") -> (inout BusMessage) -> Void {
            { message in
                var restriction = MemberStateRestriction()
                restriction.state = state
                restriction.requestedOn = "2026-03-01"
                restriction.scope = scope
                restriction.fieldPaths = paths
                restriction.allowedNodes = ["oct"]
                message.envelope.handling.memberStateRestriction = restriction
            }
        }
        Self.expectFailure("envelope.handling.member_state_restriction.field_paths",
                           restricted(.partial, paths: []))
        Self.expectFailure("envelope.handling.member_state_restriction.field_paths[0]",
                           restricted(.partial, paths: ["visit_id"]))
        Self.expectFailure("envelope.handling.member_state_restriction.field_paths",
                           restricted(.whole, paths: ["recommendation_text"]))
        Self.expectFailure("envelope.handling.member_state_restriction.scope", restricted(.unspecified, paths: []))
        Self.expectFailure("envelope.handling.member_state_restriction.state",
                           restricted(.partial, paths: ["recommendation_text"], state: "EAST_AFRICA"))
        var fine = Self.recommendation()
        restricted(.partial, paths: ["recommendation_text"])(&fine)
        #expect(throws: Never.self) { try MessageValidator.validate(fine) }
    }

    @Test("Calendar dates: real dates only, leap years included")
    func calendarDates() {
        #expect(CalendarDate.parse("2028-02-29") == 20280229)
        #expect(CalendarDate.parse("2026-02-29") == nil)
        #expect(CalendarDate.parse("2026-13-01") == nil)
        #expect(CalendarDate.parse("2026-1-01") == nil)
        #expect(CalendarDate.parse("2026-04-31") == nil)
    }

    @Test("Message ids are UUIDv7 and increase with time")
    func messageIds() {
        let earlier = MessageID.generate(now: Date(timeIntervalSince1970: 1_700_000_000))
        let later = MessageID.generate(now: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(MessageID.isUUIDv7(earlier))
        #expect(MessageID.isUUIDv7(later))
        #expect(earlier < later)
        #expect(!MessageID.isUUIDv7(UUID().uuidString.lowercased()))
    }

    @Test("Ids have one canonical spelling: lower-case and hyphenated; every other spelling is refused")
    func canonicalSpelling() {
        let id = MessageID.generate()
        #expect(MessageID.isUUIDv7(id) && MessageID.isUUID(id))
        for other in [id.uppercased(), "{\(id)}", "urn:uuid:\(id)", id.replacingOccurrences(of: "-", with: ""), id + "0",
                      String(id.dropLast()), id.prefix(9) + "A" + id.dropFirst(10)] {
            #expect(!MessageID.isUUID(String(other)), "\(other)")
        }
        #expect(MessageID.canonical(id.uppercased()) == id)
        #expect(MessageID.canonical("not-an-id") == "not-an-id")
        var message = Self.recommendation()
        message.envelope.messageID = id.uppercased()
        // The field and the rule come apart as values, and together as the detail people read.
        #expect(throws: BusError(violating: "envelope.message_id", "must be a UUIDv7 in canonical text form (lower-case, hyphenated)")) {
            try MessageValidator.validate(message)
        }
    }
}
