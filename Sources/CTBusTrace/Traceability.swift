import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf

/// Recommendation-to-activity traceability (Security Council resolution 2395): from what one
/// node's journal holds, which of CTED's country visit recommendations are answered by OCT's
/// activities, per Member State and per thematic area. A pure function of the journal's messages
/// and a date: no I/O, so the command line, the console and the tests compute the same report.
///
/// The rules:
/// - Revoked and expired messages do not count (a revoked or expired recommendation is listed,
///   marked, and left out of every figure).
/// - Of the activity matrices of one originator for one reporting period, the latest (by
///   `created_at`, then id) supersedes the earlier ones.
/// - An activity answers a recommendation that its `recommendation_ids` names, or that its
///   matrix's envelope references with relation ANSWERS (then every activity of the matrix does).
/// - A recommendation is covered when at least one answering activity is ONGOING or COMPLETED;
///   coverage is the share of counted recommendations that are covered.
/// - A reference to a recommendation this node does not hold is counted as "not visible to this
///   node", never resolved or guessed.
/// - Mission reports whose envelope references a recommendation are listed beside it.
/// - Fields withheld for this node (a partial Member State restriction) show as withheld.
public enum Traceability {
    /// One journaled message as the report reads it.
    public struct Message: Sendable {
        public let envelope: Envelope
        public let payload: BusMessage.OneOf_Payload
        public let revoked: Bool
        public let redactedPaths: [String]

        public init(envelope: Envelope, payload: BusMessage.OneOf_Payload, revoked: Bool = false, redactedPaths: [String] = []) {
            self.envelope = envelope
            self.payload = payload
            self.revoked = revoked
            self.redactedPaths = redactedPaths
        }
    }

    /// What `thematicArea` and similar fields say when the node's copy has them withheld.
    public static let withheld = "(withheld)"

    public static func report(_ messages: [Message], at now: Date = Date(), memberState: String? = nil) -> TraceReport {
        var recommendations: [Message] = []
        var matrices: [Message] = []
        var missionReports: [Message] = []
        for message in messages {
            switch message.payload {
            case .countryVisitRecommendation: recommendations.append(message)
            case .activityMatrix: matrices.append(message)
            case .missionReport: missionReports.append(message)
            }
        }
        let counts = { (message: Message) in countsAt(now, message) }

        let inForce = matricesInForce(matrices, at: now)

        let recommendationIds = Set(recommendations.map(\.envelope.messageID))
        var answers: [String: [TraceReport.ActivityRef]] = [:]
        var notVisible: [TraceReport.NotVisible] = []
        for matrix in inForce {
            guard case .activityMatrix(let value) = matrix.payload else { continue }
            let matrixAnswers = matrix.envelope.references.filter { $0.relation == .answers }.map(\.messageID)
            for activity in value.activities {
                let reference = TraceReport.ActivityRef(matrixId: matrix.envelope.messageID, projectId: activity.projectID,
                                                        title: matrix.redactedPaths.contains("activities.title") ? withheld : activity.title,
                                                        status: activity.status.label)
                var answered = Set<String>()
                for id in activity.recommendationIds + matrixAnswers where answered.insert(id).inserted {
                    if recommendationIds.contains(id) {
                        answers[id, default: []].append(reference)
                    } else {
                        notVisible.append(TraceReport.NotVisible(matrixId: reference.matrixId, projectId: activity.projectID,
                                                                 recommendationId: id, memberStates: activity.memberStates))
                    }
                }
            }
        }
        var reportsOn: [String: [String]] = [:]
        for report in missionReports where counts(report) {
            for id in Set(report.envelope.references.map(\.messageID)) where recommendationIds.contains(id) {
                reportsOn[id, default: []].append(report.envelope.messageID)
            }
        }

        var lines: [TraceReport.Recommendation] = []
        for message in recommendations {
            guard case .countryVisitRecommendation(let value) = message.payload else { continue }
            if let memberState, value.memberState != memberState { continue }
            let id = message.envelope.messageID
            let answeredBy = answers[id] ?? []
            let state = message.revoked ? "revoked" : ConfidentialityPolicy.isExpired(message.envelope, at: now) ? "expired" : "active"
            let redacted = Set(message.redactedPaths)
            lines.append(TraceReport.Recommendation(
                id: id, visitId: value.visitID, memberState: value.memberState,
                text: redacted.contains("recommendation_text") ? withheld : value.recommendationText,
                thematicArea: redacted.contains("thematic_area") ? withheld : value.thematicArea,
                visitDate: redacted.contains("visit_dates") ? withheld : value.visitDates.start,
                publishedAt: message.envelope.createdAt.date,
                priority: redacted.contains("priority") ? withheld : value.priority.label,
                followUp: value.followUpStatus.label, state: state,
                covered: answeredBy.contains { $0.status == "ONGOING" || $0.status == "COMPLETED" },
                answeredBy: answeredBy, missionReports: reportsOn[id] ?? []))
        }
        lines.sort { ($0.memberState, $0.publishedAt, $0.id) < ($1.memberState, $1.publishedAt, $1.id) }
        if let memberState {
            notVisible.removeAll { !$0.memberStates.contains(memberState) }
        }
        let counted = lines.filter { $0.state == "active" }
        return TraceReport(
            generatedAt: now,
            byMemberState: groups(counted, by: \.memberState, at: now),
            byThematicArea: groups(counted, by: \.thematicArea, at: now),
            recommendations: lines, notVisible: notVisible)
    }

    /// Whether a message counts in the figures at `now`: neither revoked nor expired.
    static func countsAt(_ now: Date, _ message: Message) -> Bool {
        !message.revoked && !ConfidentialityPolicy.isExpired(message.envelope, at: now)
    }

    /// The matrices in force: per originator and reporting period, the latest one that counts,
    /// oldest first.
    static func matricesInForce(_ matrices: [Message], at now: Date) -> [Message] {
        var latest: [String: Message] = [:]
        for matrix in matrices where countsAt(now, matrix) {
            guard case .activityMatrix(let value) = matrix.payload else { continue }
            let key = "\(matrix.envelope.originator)|\(value.reportingPeriod.start)|\(value.reportingPeriod.end)"
            if let current = latest[key], !isLater(matrix.envelope, than: current.envelope) { continue }
            latest[key] = matrix
        }
        return latest.values.sorted { isLater($1.envelope, than: $0.envelope) }
    }

    /// Everything one node's journal says about one Member State, for its country file: the
    /// traceability report of its recommendations, those grouped by visit in time, the
    /// activities of the matrices in force that name it, and the mission reports about it,
    /// oldest first. `messages` must hold the recommendations and matrices (as for `report`)
    /// and every mission report about the State.
    public static func countryFile(_ messages: [Message], memberState: String, at now: Date = Date()) -> CountryFile {
        let report = report(messages, at: now, memberState: memberState)
        var visits: [String: [TraceReport.Recommendation]] = [:]
        for line in report.recommendations { visits[line.visitId, default: []].append(line) }
        let orderedVisits = visits.map { id, lines in
            CountryFile.Visit(id: id, firstDay: lines.map(\.visitDate).filter { $0 != withheld }.min() ?? "",
                              recommendations: lines.sorted { ($0.publishedAt, $0.id) < ($1.publishedAt, $1.id) })
        }.sorted { ($0.firstDay, $0.id) < ($1.firstDay, $1.id) }

        let answered = Dictionary(grouping: report.recommendations.flatMap { line in line.answeredBy.map { ($0.matrixId + "|" + $0.projectId, line.id) } },
                                  by: \.0).mapValues { Set($0.map(\.1)).count }
        var activities: [CountryFile.Activity] = []
        for matrix in matricesInForce(messages.filter { if case .activityMatrix = $0.payload { true } else { false } }, at: now) {
            guard case .activityMatrix(let value) = matrix.payload else { continue }
            for activity in value.activities where activity.memberStates.contains(memberState) {
                activities.append(CountryFile.Activity(
                    matrixId: matrix.envelope.messageID, projectId: activity.projectID,
                    title: matrix.redactedPaths.contains("activities.title") ? withheld : activity.title,
                    status: activity.status.label, start: activity.period.start, end: activity.period.end,
                    thematicArea: activity.thematicArea,
                    answers: answered[matrix.envelope.messageID + "|" + activity.projectID] ?? 0))
            }
        }
        activities.sort { ($0.start, $0.projectId) < ($1.start, $1.projectId) }

        var reports: [CountryFile.MissionReportLine] = []
        for message in messages where !message.revoked {
            guard case .missionReport(let value) = message.payload,
                  value.memberState == memberState || message.envelope.subject == memberState else { continue }
            let redacted = Set(message.redactedPaths)
            reports.append(CountryFile.MissionReportLine(
                id: message.envelope.messageID, missionId: value.missionID, kind: value.kind, start: redacted.contains("dates") ? "" : value.dates.start,
                end: redacted.contains("dates") ? "" : value.dates.end, summary: redacted.contains("summary") ? withheld : value.summary,
                publishedAt: message.envelope.createdAt.date))
        }
        reports.sort { ($0.start, $0.publishedAt) < ($1.start, $1.publishedAt) }
        return CountryFile(memberState: memberState, report: report, visits: orderedVisits, activities: activities, missionReports: reports)
    }

    private static func groups(_ lines: [TraceReport.Recommendation], by key: KeyPath<TraceReport.Recommendation, String>,
                               at now: Date) -> [TraceReport.Group] {
        Dictionary(grouping: lines, by: { $0[keyPath: key] }).map { name, members in
            let open = members.filter { !$0.covered }
            let oldest = open.map(\.publishedAt).min()
            return TraceReport.Group(
                name: name, recommendations: members.count, covered: members.count - open.count,
                uncovered: open.map(\.id),
                oldestUncoveredDays: oldest.map { max(0, Int(now.timeIntervalSince($0) / 86_400)) })
        }.sorted { $0.name < $1.name }
    }

    /// Whether `a` was published after `b` (by creation time, then id: UUIDv7 ids grow with time).
    static func isLater(_ a: Envelope, than b: Envelope) -> Bool {
        let (left, right) = (a.createdAt.date, b.createdAt.date)
        return left != right ? left > right : a.messageID > b.messageID
    }
}

/// What one node's journal says about one Member State (`Traceability.countryFile`).
public struct CountryFile: Sendable {
    /// One CTED visit and the recommendations it gave, in the order they were published.
    public struct Visit: Sendable {
        public let id: String
        /// The first day of the visit (YYYY-MM-DD), "" when withheld.
        public let firstDay: String
        public let recommendations: [TraceReport.Recommendation]
    }

    /// An activity of a matrix in force that names the State.
    public struct Activity: Sendable {
        public let matrixId: String
        public let projectId: String
        public let title: String
        /// PLANNED, ONGOING, COMPLETED or SUSPENDED.
        public let status: String
        public let start: String
        public let end: String
        public let thematicArea: String
        /// How many of the State's recommendations (visible here) it answers.
        public let answers: Int
    }

    public struct MissionReportLine: Sendable {
        public let id: String
        public let missionId: String
        public let kind: MissionReport.Kind
        public let start: String
        public let end: String
        /// The summary, or "(withheld)".
        public let summary: String
        public let publishedAt: Date
    }

    public let memberState: String
    public let report: TraceReport
    /// Oldest first.
    public let visits: [Visit]
    /// By the start of their period.
    public let activities: [Activity]
    /// By the start of their dates; revoked reports left out.
    public let missionReports: [MissionReportLine]
}

/// The traceability report: coverage per Member State and per thematic area, every
/// recommendation with what answers it, and the references this node cannot follow.
public struct TraceReport: Codable, Sendable, Equatable {
    public struct ActivityRef: Codable, Sendable, Equatable {
        public let matrixId: String
        public let projectId: String
        public let title: String
        /// PLANNED, ONGOING, COMPLETED or SUSPENDED.
        public let status: String
    }

    public struct Recommendation: Codable, Sendable, Equatable {
        public let id: String
        public let visitId: String
        public let memberState: String
        /// The recommendation's text, or "(withheld)".
        public let text: String
        public let thematicArea: String
        /// The first day of the visit (YYYY-MM-DD), or "(withheld)".
        public let visitDate: String
        public let publishedAt: Date
        public let priority: String
        public let followUp: String
        /// active, revoked or expired; only active recommendations count in the figures.
        public let state: String
        /// At least one answering activity is ONGOING or COMPLETED.
        public let covered: Bool
        public let answeredBy: [ActivityRef]
        /// Mission reports whose envelope references this recommendation.
        public let missionReports: [String]
    }

    public struct Group: Codable, Sendable, Equatable {
        /// The Member State or thematic area.
        public let name: String
        public let recommendations: Int
        public let covered: Int
        /// The ids of the recommendations without an ongoing or completed activity.
        public let uncovered: [String]
        /// Days since the oldest uncovered recommendation was published; nil when all are covered.
        public let oldestUncoveredDays: Int?

        /// covered / recommendations, from 0 to 1.
        public var coverage: Double { recommendations == 0 ? 0 : Double(covered) / Double(recommendations) }
    }

    /// An activity answering a recommendation this node does not hold (not released to it, or
    /// not published yet): counted, never resolved.
    public struct NotVisible: Codable, Sendable, Equatable {
        public let matrixId: String
        public let projectId: String
        public let recommendationId: String
        public let memberStates: [String]
    }

    public let generatedAt: Date
    public let byMemberState: [Group]
    public let byThematicArea: [Group]
    public let recommendations: [Recommendation]
    public let notVisible: [NotVisible]
}

extension ActivityMatrix.Status {
    var label: String {
        switch self {
        case .planned: "PLANNED"
        case .ongoing: "ONGOING"
        case .completed: "COMPLETED"
        case .suspended: "SUSPENDED"
        case .unspecified, .UNRECOGNIZED: "UNSPECIFIED"
        }
    }
}

extension Priority {
    var label: String {
        switch self {
        case .low: "LOW"
        case .medium: "MEDIUM"
        case .high: "HIGH"
        case .unspecified, .UNRECOGNIZED: Traceability.withheld
        }
    }
}

extension CountryVisitRecommendation.FollowUpStatus {
    var label: String {
        switch self {
        case .followUpOpen: "OPEN"
        case .followUpInProgress: "IN_PROGRESS"
        case .followUpImplemented: "IMPLEMENTED"
        case .followUpClosed: "CLOSED"
        case .followUpUnspecified, .UNRECOGNIZED: "UNSPECIFIED"
        }
    }
}
