import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

@Suite("Redaction")
struct RedactorTests {
    static func full(_ type: MessageType) -> BusMessage.OneOf_Payload {
        switch type {
        case .countryVisitRecommendation:
            var value = MessageValidatorTests.recommendation().countryVisitRecommendation
            value.technicalAssistanceNeed = "need"
            return .countryVisitRecommendation(value)
        case .missionReport:
            var value = MissionReport()
            value.summary = "s"
            value.findings = ["f"]
            value.followUpActions = ["a"]
            value.participatingEntities = ["CTED"]
            value.dates.start = "2026-01-01"
            value.dates.end = "2026-01-02"
            return .missionReport(value)
        default:
            var activity = ActivityMatrix.Activity()
            activity.title = "t"
            activity.budgetUsd = 10
            activity.implementingEntities = ["UNODC"]
            var value = ActivityMatrix()
            value.activities = [activity, activity]
            return .activityMatrix(value)
        }
    }

    @Test("Every redactable path really removes something, and nothing else changes", arguments: [
        MessageType.countryVisitRecommendation, .missionReport, .activityMatrix,
    ])
    func everyPathRemovesItsField(type: MessageType) throws {
        let original = Self.full(type)
        let paths = RedactablePaths.paths(for: type)
        #expect(!paths.isEmpty)
        for path in paths {
            let redacted = Redactor.redact(original, paths: [path])
            #expect(redacted != original, "\(path) removed nothing")
            // Redacting the same path twice changes nothing more.
            #expect(Redactor.redact(redacted, paths: [path]) == redacted)
        }
        #expect(Redactor.redact(original, paths: []) == original)
    }

    @Test("The restricted text is gone from the redacted bytes")
    func restrictedTextGone() throws {
        var value = MessageValidatorTests.recommendation().countryVisitRecommendation
        value.recommendationText = "ONLY-FOR-OCT"
        let redacted = try Redactor.redact(.countryVisitRecommendation(value), paths: ["recommendation_text"]).serialized()
        #expect(!String(decoding: redacted, as: UTF8.self).contains("ONLY-FOR-OCT"))
        #expect(try CountryVisitRecommendation(serializedBytes: redacted).visitID == value.visitID)
    }
}
