import CTBusSchema
import CTBusLocal
import CTBusTesting
import CTBusTrace
import Foundation
import SwiftProtobuf
import Testing

/// The traceability rules on hand-made journals: each test changes one thing and checks the figure
/// a CTED analyst or an OCT programme manager would read.
@Suite("Traceability")
struct TraceabilityTests {
    static let now = Date(timeIntervalSince1970: 1_790_000_000) // 2026-09-21

    static func message(_ bus: BusMessage, originator: String, daysAgo: Double = 10, revoked: Bool = false,
                        redacted: [String] = []) -> Traceability.Message {
        var envelope = bus.envelope
        envelope.originator = originator
        envelope.createdAt = Google_Protobuf_Timestamp(date: now.addingTimeInterval(-daysAgo * 86_400))
        return Traceability.Message(envelope: envelope, payload: bus.payload!, revoked: revoked, redactedPaths: redacted)
    }

    static func recommendation(_ state: String = "KEN", theme: String = "border-security", daysAgo: Double = 30) -> Traceability.Message {
        message(SampleMessages.recommendation(memberState: state, thematicArea: theme), originator: "cted", daysAgo: daysAgo)
    }

    /// A matrix of one activity with `status`, answering `ids` through `recommendation_ids` only.
    static func matrix(answering ids: [String], status: ActivityMatrix.Status = .ongoing, daysAgo: Double = 5,
                       period: (String, String) = ("2026-01-01", "2026-06-30"), byReference: Bool = false) -> Traceability.Message {
        var bus = SampleMessages.activityMatrix(answering: byReference ? [] : ids)
        bus.envelope.references = byReference ? ids.map { Reference(to: $0, .answers) } : []
        bus.activityMatrix.reportingPeriod.start = period.0
        bus.activityMatrix.reportingPeriod.end = period.1
        bus.activityMatrix.activities[0].status = status
        return message(bus, originator: "oct", daysAgo: daysAgo)
    }

    @Test("Coverage per Member State and theme counts ongoing and completed activities; the oldest uncovered has an age")
    func coverage() {
        let covered = Self.recommendation("KEN", daysAgo: 40)
        let planned = Self.recommendation("KEN", theme: "terrorist-financing", daysAgo: 30)
        let none = Self.recommendation("NGA", daysAgo: 20)
        let report = Traceability.report([covered, planned, none,
                                          Self.matrix(answering: [covered.envelope.messageID]),
                                          Self.matrix(answering: [planned.envelope.messageID], status: .planned,
                                                      period: ("2026-07-01", "2026-12-31"))], at: Self.now)
        let kenya = report.byMemberState.first { $0.name == "KEN" }
        #expect(kenya?.recommendations == 2 && kenya?.covered == 1 && kenya?.coverage == 0.5)
        #expect(kenya?.uncovered == [planned.envelope.messageID])
        #expect(kenya?.oldestUncoveredDays == 30)
        #expect(report.byMemberState.first { $0.name == "NGA" }?.oldestUncoveredDays == 20)
        #expect(report.byThematicArea.map(\.name) == ["border-security", "terrorist-financing"])
        #expect(report.byThematicArea[0].covered == 1 && report.byThematicArea[0].recommendations == 2)
        let line = report.recommendations.first { $0.id == planned.envelope.messageID }
        #expect(line?.answeredBy.map(\.status) == ["PLANNED"] && line?.covered == false)
    }

    @Test("The latest matrix of a reporting period supersedes the earlier ones of that period")
    func supersession() {
        let recommendation = Self.recommendation()
        let id = recommendation.envelope.messageID
        let earlier = Self.matrix(answering: [id], status: .completed, daysAgo: 9)
        let later = Self.matrix(answering: [], daysAgo: 2) // the same period: the activity no longer answers it
        var report = Traceability.report([recommendation, earlier, later], at: Self.now)
        #expect(report.recommendations[0].answeredBy.isEmpty)
        #expect(report.byMemberState[0].covered == 0)
        // Another period does not supersede.
        let otherPeriod = Self.matrix(answering: [], daysAgo: 1, period: ("2026-07-01", "2026-12-31"))
        report = Traceability.report([recommendation, earlier, otherPeriod], at: Self.now)
        #expect(report.recommendations[0].answeredBy.map(\.matrixId) == [earlier.envelope.messageID])
        // A revoked later matrix gives the earlier one back.
        var revoked = later
        revoked = Traceability.Message(envelope: revoked.envelope, payload: revoked.payload, revoked: true)
        report = Traceability.report([recommendation, earlier, revoked], at: Self.now)
        #expect(report.byMemberState[0].covered == 1)
    }

    @Test("An envelope reference of relation ANSWERS makes the matrix's activities answer the recommendation")
    func answersByReference() {
        let recommendation = Self.recommendation()
        let report = Traceability.report([recommendation, Self.matrix(answering: [recommendation.envelope.messageID], byReference: true)],
                                         at: Self.now)
        #expect(report.recommendations[0].covered)
    }

    @Test("A reference to a recommendation this node does not hold is counted as not visible, never resolved")
    func notVisible() {
        let unseen = MessageID.generate()
        let report = Traceability.report([Self.matrix(answering: [unseen])], at: Self.now)
        #expect(report.recommendations.isEmpty && report.byMemberState.isEmpty)
        #expect(report.notVisible.map(\.recommendationId) == [unseen])
        #expect(report.notVisible[0].memberStates == ["KEN"])
    }

    @Test("Revoked and expired recommendations are listed, marked, and left out of every figure")
    func revokedAndExpired() {
        let active = Self.recommendation()
        var revoked = Self.recommendation()
        revoked = Traceability.Message(envelope: revoked.envelope, payload: revoked.payload, revoked: true)
        var expiring = Self.recommendation()
        var envelope = expiring.envelope
        envelope.expiresAt = Google_Protobuf_Timestamp(date: Self.now.addingTimeInterval(-3_600))
        expiring = Traceability.Message(envelope: envelope, payload: expiring.payload)
        let report = Traceability.report([active, revoked, expiring], at: Self.now)
        #expect(report.byMemberState[0].recommendations == 1)
        #expect(Set(report.recommendations.map(\.state)) == ["active", "revoked", "expired"])
    }

    @Test("Mission reports that reference a recommendation are listed beside it; withheld fields show as withheld")
    func missionReportsAndRedaction() {
        let recommendation = Self.recommendation()
        var redacted = Self.recommendation("TUN")
        redacted = Traceability.Message(envelope: redacted.envelope, payload: redacted.payload,
                                        redactedPaths: ["thematic_area", "priority"])
        let report = Self.message(SampleMessages.missionReport(reportsOn: recommendation.envelope.messageID), originator: "cted")
        let trace = Traceability.report([recommendation, redacted, report], at: Self.now)
        #expect(trace.recommendations.first { $0.id == recommendation.envelope.messageID }?.missionReports == [report.envelope.messageID])
        let tunisia = trace.recommendations.first { $0.memberState == "TUN" }
        #expect(tunisia?.thematicArea == Traceability.withheld && tunisia?.priority == Traceability.withheld)
        #expect(trace.byThematicArea.map(\.name).contains(Traceability.withheld))
    }

    @Test("--member-state keeps one Member State")
    func oneMemberState() {
        let report = Traceability.report([Self.recommendation("KEN"), Self.recommendation("NGA")], at: Self.now, memberState: "NGA")
        #expect(report.recommendations.map(\.memberState) == ["NGA"])
        #expect(report.byMemberState.map(\.name) == ["NGA"])
    }
}
