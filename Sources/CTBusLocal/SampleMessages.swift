import CTBusSchema
import Foundation
import SwiftProtobuf

/// Realistic messages of each type, for the demo, the tests and the benchmark. Every message
/// they make passes `MessageValidator`.
public enum SampleMessages {
    /// The handling block most messages use: a classification and an optional list.
    public static func handling(_ classification: Classification, releasableTo list: [String] = []) -> Handling {
        var handling = Handling()
        handling.classification = classification
        handling.releasability = list
        handling.sealed = classification == .strictlyConfidential // required there
        return handling
    }

    static func envelope(_ type: MessageType, subject: String, handling: Handling, tags: [String]) -> Envelope {
        var envelope = Envelope()
        envelope.messageID = MessageID.generate()
        envelope.type = type
        envelope.schemaVersion = MessageValidator.schemaVersion
        envelope.createdAt = Google_Protobuf_Timestamp(date: Date())
        envelope.handling = handling
        envelope.subject = subject
        envelope.thematicTags = tags
        // The node whose role publishes the type (a test publishing from another node sets its own).
        envelope.originator = type == .activityMatrix ? "oct" : "cted"
        return envelope
    }

    static func range(_ start: String, _ end: String) -> DateRange {
        var range = DateRange()
        range.start = start
        range.end = end
        return range
    }

    /// A CTED country visit recommendation.
    public static func recommendation(memberState: String = "KEN", handling: Handling = handling(.unclassified),
                                      thematicArea: String = "border-security",
                                      text: String = "Strengthen the use of advance passenger information at all international airports.",
                                      tags: [String]? = nil) -> BusMessage {
        var recommendation = CountryVisitRecommendation()
        recommendation.visitID = "CTED-VISIT-2026-\(memberState)"
        recommendation.memberState = memberState
        recommendation.visitDates = range("2026-03-09", "2026-03-13")
        recommendation.resolutionsAssessed = [1373, 2178, 2396]
        recommendation.thematicArea = thematicArea
        recommendation.recommendationText = text
        recommendation.priority = .high
        recommendation.technicalAssistanceNeeded = true
        recommendation.technicalAssistanceNeed = "Training of border officials on API/PNR data analysis."
        recommendation.pillars = [.pillarIiPreventAndCombat, .pillarIiiStateCapacity]
        recommendation.genderCrossCutting = true
        recommendation.childrenCrossCutting = false
        recommendation.followUpStatus = .followUpOpen
        var message = BusMessage()
        message.envelope = envelope(.countryVisitRecommendation, subject: memberState, handling: handling,
                                    tags: tags ?? [thematicArea])
        message.countryVisitRecommendation = recommendation
        return message
    }

    /// `message` with a PARTIAL Member State restriction: `fields` are withheld from every node
    /// outside `allowed`, at `state`'s request.
    public static func restricted(_ message: BusMessage, state: String, fields: [String], allowed: [String]) -> BusMessage {
        var message = message
        var restriction = MemberStateRestriction()
        restriction.state = state
        restriction.requestedOn = "2026-03-01"
        restriction.scope = .partial
        restriction.fieldPaths = fields
        restriction.allowedNodes = allowed
        message.envelope.handling.memberStateRestriction = restriction
        return message
    }

    /// A mission report (CTED or OCT).
    public static func missionReport(memberState: String = "KEN", handling: Handling = handling(.unclassified),
                                     tags: [String] = ["border-security"], reportsOn visit: String? = nil,
                                     summaryBytes: Int? = nil) -> BusMessage {
        var report = MissionReport()
        report.missionID = "MISSION-2026-\(memberState)-01"
        report.kind = .assessmentVisit
        report.memberState = memberState
        report.dates = range("2026-03-09", "2026-03-13")
        report.participatingEntities = ["CTED", "UNOCT", "UNODC"]
        if let summaryBytes {
            report.summary = String(repeating: "s", count: summaryBytes)
        } else {
            report.summary = "Assessment of the implementation of resolutions 1373 and 2396, with a focus on border management."
        }
        report.findings = ["Advance passenger information is collected at two of five international airports."]
        report.followUpActions = ["Joint OCT-CTED workshop on API/PNR in the third quarter."]
        var message = BusMessage()
        message.envelope = envelope(.missionReport, subject: memberState, handling: handling, tags: tags)
        if let visit {
            message.envelope.references = [Reference(to: visit, .reportsOn)]
        }
        message.missionReport = report
        return message
    }

    /// OCT's activity matrix, with one activity answering each recommendation id given.
    public static func activityMatrix(answering recommendationIds: [String], memberState: String = "KEN",
                                      handling: Handling = handling(.unclassified),
                                      tags: [String] = ["border-security"]) -> BusMessage {
        var matrix = ActivityMatrix()
        matrix.reportingPeriod = range("2026-01-01", "2026-06-30")
        var activity = ActivityMatrix.Activity()
        activity.projectID = "UNCCT-BSM-2026-014"
        activity.title = "Border security and management: API/PNR capacity building"
        activity.memberStates = [memberState]
        activity.pillars = [.pillarIiiStateCapacity]
        activity.thematicArea = "border-security"
        activity.implementingEntities = ["UNOCT/UNCCT", "UNODC"]
        activity.status = .ongoing
        activity.period = range("2026-04-01", "2026-12-31")
        activity.budgetUsd = 450_000
        activity.recommendationIds = recommendationIds
        matrix.activities = [activity]
        var message = BusMessage()
        message.envelope = envelope(.activityMatrix, subject: memberState, handling: handling, tags: tags)
        message.envelope.references = recommendationIds.map { Reference(to: $0, .answers) }
        message.activityMatrix = matrix
        return message
    }
}
