import Foundation
import SwiftProtobuf

/// The rules beyond the types (PROTOCOL.md 5.4), in one place: the publishing node runs
/// them before a message enters its outbox and the broker runs them again on every publication.
/// The first broken rule is reported as `VALIDATION_FAILED` with the field path and the rule,
/// never the field's value.
public enum MessageValidator {
    public static let schemaVersion: UInt32 = 1

    /// Validates a whole message as `ctbus publish` reads it. The originator may be empty there:
    /// the broker sets it.
    public static func validate(_ message: BusMessage) throws(BusError) {
        guard message.hasEnvelope else { throw failure("envelope", "is required") }
        guard let payload = message.payload else {
            throw failure("payload", "one of country_visit_recommendation, mission_report, activity_matrix is required")
        }
        try validate(envelope: message.envelope, payload: payload)
    }

    /// Validates the envelope of a sealed publication, whose payload the broker cannot read: the
    /// envelope's rules, and the restriction's paths against the envelope's type.
    public static func validate(sealedEnvelope envelope: Envelope) throws(BusError) {
        try validateEnvelope(envelope, payloadType: envelope.type)
        try validateRestrictionPaths(envelope, type: envelope.type)
    }

    /// Validates an envelope with its decoded payload.
    public static func validate(envelope: Envelope, payload: BusMessage.OneOf_Payload) throws(BusError) {
        try validateEnvelope(envelope, payloadType: payload.messageType)
        switch payload {
        case .countryVisitRecommendation(let value): try validate(value, at: "country_visit_recommendation")
        case .missionReport(let value): try validate(value, at: "mission_report")
        case .activityMatrix(let value): try validate(value, at: "activity_matrix")
        }
        try validateRestrictionPaths(envelope, type: payload.messageType)
    }

    /// A Member State restriction names only redactable paths of the message's type.
    static func validateRestrictionPaths(_ envelope: Envelope, type: MessageType) throws(BusError) {
        guard envelope.handling.hasMemberStateRestriction else { return }
        let known = RedactablePaths.paths(for: type)
        try list(envelope.handling.memberStateRestriction.fieldPaths, at: "envelope.handling.member_state_restriction.field_paths",
                 max: WireLimits.fieldPaths) { path, itemPath throws(BusError) in
            guard known.contains(path) else {
                throw failure(itemPath, "is not a field of \(type.name) (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
    }

    // MARK: Envelope

    static func validateEnvelope(_ envelope: Envelope, payloadType: MessageType) throws(BusError) {
        guard MessageID.isUUIDv7(envelope.messageID) else {
            throw failure("envelope.message_id", "must be a UUIDv7 in canonical text form (lower-case, hyphenated)")
        }
        guard envelope.type != .unspecified, case .some = MessageType(rawValue: envelope.type.rawValue),
              MessageType.allCases.contains(envelope.type) else {
            throw failure("envelope.type", "must name a known message type")
        }
        guard envelope.type == payloadType else {
            throw failure("envelope.type", "is \(envelope.type.name) but the payload is \(payloadType.name)")
        }
        guard envelope.schemaVersion == schemaVersion else {
            throw failure("envelope.schema_version", "must be \(schemaVersion)")
        }
        if !envelope.originator.isEmpty { try nodeId(envelope.originator, at: "envelope.originator") }
        guard envelope.hasCreatedAt, envelope.createdAt.seconds > 0 else {
            throw failure("envelope.created_at", "is required")
        }
        try validateHandling(envelope.handling, present: envelope.hasHandling)
        guard Geography.isCountryCode(envelope.subject) || Geography.isRegionCode(envelope.subject) else {
            throw failure("envelope.subject", "must be an ISO 3166-1 alpha-3 code or a known region code")
        }
        try list(envelope.thematicTags, at: "envelope.thematic_tags", max: WireLimits.thematicTags) { tag, path throws(BusError) in
            try shortText(tag, at: path)
        }
        try list(envelope.references, at: "envelope.references", max: WireLimits.references) { reference, path throws(BusError) in
            guard MessageID.isUUID(reference.messageID) else { throw failure("\(path).message_id", canonicalUUID) }
            guard reference.relation != .unspecified else { throw failure("\(path).relation", "is required") }
        }
        if envelope.hasExpiresAt {
            guard envelope.expiresAt.date > envelope.createdAt.date else {
                throw failure("envelope.expires_at", "must be after created_at")
            }
        }
    }

    static func validateHandling(_ handling: Handling, present: Bool) throws(BusError) {
        guard present else { throw failure("envelope.handling", "is required") }
        switch handling.classification {
        case .unclassified, .confidential, .strictlyConfidential: break
        default: throw failure("envelope.handling.classification", "must be UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL")
        }
        if handling.classification == .strictlyConfidential, !handling.sealed {
            throw failure("envelope.handling.sealed", "is required for STRICTLY_CONFIDENTIAL: the content crosses the broker sealed to its recipients")
        }
        try list(handling.releasability, at: "envelope.handling.releasability", max: WireLimits.releasability) { entry, path throws(BusError) in
            try nodeId(entry, at: path)
        }
        if case .UNRECOGNIZED = handling.tlp { throw failure("envelope.handling.tlp", "is not a TLP 2.0 label") }
        if !handling.declassifyOn.isEmpty { try date(handling.declassifyOn, at: "envelope.handling.declassify_on") }
        if handling.hasMemberStateRestriction {
            let restriction = handling.memberStateRestriction
            let path = "envelope.handling.member_state_restriction"
            guard Geography.isCountryCode(restriction.state) else {
                throw failure("\(path).state", "must be an ISO 3166-1 alpha-3 code")
            }
            try date(restriction.requestedOn, at: "\(path).requested_on")
            switch restriction.scope {
            case .whole:
                guard restriction.fieldPaths.isEmpty else {
                    throw failure("\(path).field_paths", "must be empty for a WHOLE restriction")
                }
            case .partial:
                guard !restriction.fieldPaths.isEmpty else {
                    throw failure("\(path).field_paths", "must name at least one field for a PARTIAL restriction")
                }
            default:
                throw failure("\(path).scope", "must be WHOLE or PARTIAL")
            }
            try list(restriction.allowedNodes, at: "\(path).allowed_nodes", max: WireLimits.allowedNodes) { node, nodePath throws(BusError) in
                try nodeId(node, at: nodePath)
            }
        }
    }

    // MARK: Payloads

    static func validate(_ value: CountryVisitRecommendation, at path: String) throws(BusError) {
        try shortText(value.visitID, at: "\(path).visit_id", required: true)
        try country(value.memberState, at: "\(path).member_state")
        try range(value.visitDates, present: value.hasVisitDates, at: "\(path).visit_dates")
        guard !value.resolutionsAssessed.isEmpty else {
            throw failure("\(path).resolutions_assessed", "must name at least one Security Council resolution")
        }
        try list(value.resolutionsAssessed, at: "\(path).resolutions_assessed", max: WireLimits.resolutions) { number, itemPath throws(BusError) in
            guard (1...9999).contains(number) else { throw failure(itemPath, "is not a resolution number") }
        }
        try shortText(value.thematicArea, at: "\(path).thematic_area", required: true)
        try text(value.recommendationText, at: "\(path).recommendation_text", required: true)
        guard value.priority != .unspecified, Priority.allCases.contains(value.priority) else {
            throw failure("\(path).priority", "must be LOW, MEDIUM or HIGH")
        }
        if value.technicalAssistanceNeeded {
            try text(value.technicalAssistanceNeed, at: "\(path).technical_assistance_need", required: true)
        } else {
            try text(value.technicalAssistanceNeed, at: "\(path).technical_assistance_need")
        }
        try pillars(value.pillars, at: "\(path).pillars")
        guard value.followUpStatus != .followUpUnspecified,
              CountryVisitRecommendation.FollowUpStatus.allCases.contains(value.followUpStatus) else {
            throw failure("\(path).follow_up_status", "is required")
        }
    }

    static func validate(_ value: MissionReport, at path: String) throws(BusError) {
        try shortText(value.missionID, at: "\(path).mission_id", required: true)
        guard value.kind != .unspecified, MissionReport.Kind.allCases.contains(value.kind) else {
            throw failure("\(path).kind", "is required")
        }
        if value.memberState.isEmpty && value.region.isEmpty {
            throw failure("\(path).member_state", "or region is required")
        }
        if !value.memberState.isEmpty { try country(value.memberState, at: "\(path).member_state") }
        if !value.region.isEmpty, !Geography.isRegionCode(value.region) {
            throw failure("\(path).region", "must be a known region code")
        }
        try range(value.dates, present: value.hasDates, at: "\(path).dates")
        guard !value.participatingEntities.isEmpty else {
            throw failure("\(path).participating_entities", "must name at least one entity")
        }
        try list(value.participatingEntities, at: "\(path).participating_entities", max: WireLimits.entities) { entity, itemPath throws(BusError) in
            try shortText(entity, at: itemPath, required: true)
        }
        try text(value.summary, at: "\(path).summary", required: true)
        try list(value.findings, at: "\(path).findings", max: WireLimits.listEntries) { finding, itemPath throws(BusError) in
            try text(finding, at: itemPath, required: true)
        }
        try list(value.followUpActions, at: "\(path).follow_up_actions", max: WireLimits.listEntries) { action, itemPath throws(BusError) in
            try text(action, at: itemPath, required: true)
        }
    }

    /// The activity matrix rules alone (the CSV import checks each row with them).
    public static func validate(_ value: ActivityMatrix, at path: String) throws(BusError) {
        try range(value.reportingPeriod, present: value.hasReportingPeriod, at: "\(path).reporting_period")
        guard !value.activities.isEmpty else { throw failure("\(path).activities", "must hold at least one activity") }
        try list(value.activities, at: "\(path).activities", max: WireLimits.activities) { activity, itemPath throws(BusError) in
            try shortText(activity.projectID, at: "\(itemPath).project_id", required: true)
            try text(activity.title, at: "\(itemPath).title", required: true)
            try list(activity.memberStates, at: "\(itemPath).member_states", max: WireLimits.activityMemberStates) { state, statePath throws(BusError) in
                try country(state, at: statePath)
            }
            if !activity.region.isEmpty, !Geography.isRegionCode(activity.region) {
                throw failure("\(itemPath).region", "must be a known region code")
            }
            guard !activity.memberStates.isEmpty || !activity.region.isEmpty else {
                throw failure("\(itemPath).member_states", "or region is required")
            }
            try pillars(activity.pillars, at: "\(itemPath).pillars")
            try shortText(activity.thematicArea, at: "\(itemPath).thematic_area")
            try list(activity.implementingEntities, at: "\(itemPath).implementing_entities", max: WireLimits.entities) { entity, entityPath throws(BusError) in
                try shortText(entity, at: entityPath, required: true)
            }
            guard activity.status != .unspecified, ActivityMatrix.Status.allCases.contains(activity.status) else {
                throw failure("\(itemPath).status", "is required")
            }
            if activity.hasPeriod { try range(activity.period, present: true, at: "\(itemPath).period") }
            guard activity.budgetUsd >= 0 else { throw failure("\(itemPath).budget_usd", "must not be negative") }
            try list(activity.recommendationIds, at: "\(itemPath).recommendation_ids", max: WireLimits.recommendationIds) { id, idPath throws(BusError) in
                guard MessageID.isUUID(id) else { throw failure(idPath, "must be a message id: \(canonicalUUID)") }
            }
        }
    }

    // MARK: Commands

    /// Validates a Revoke: its target in canonical form, its reason within bounds. The broker
    /// runs it before looking the target up; `ctbus revoke` runs it before queueing.
    public static func validate(_ revoke: Revoke) throws(BusError) {
        guard MessageID.isUUID(revoke.messageID) else {
            throw BusError(violating: "revoke.message_id", canonicalUUID, messageId: echoable(revoke.messageID))
        }
        guard revoke.reason.utf8.count <= WireLimits.revokeReasonBytes else {
            throw BusError(violating: "revoke.reason", "is longer than \(WireLimits.revokeReasonBytes) bytes", messageId: revoke.messageID)
        }
    }

    /// Validates a Hello's bounded fields (the version is the session's business).
    public static func validate(_ hello: Hello) throws(BusError) {
        guard hello.agent.utf8.count <= WireLimits.agentBytes else {
            throw failure("hello.agent", "is longer than \(WireLimits.agentBytes) bytes")
        }
    }

    /// The id to echo in an ErrorReport: as the client sent it, unless it is empty or too long
    /// to be any id (then nil: the report carries none).
    public static func echoable(_ messageId: String) -> String? {
        messageId.isEmpty || messageId.utf8.count > WireLimits.echoedIdBytes ? nil : messageId
    }

    static let canonicalUUID = "must be a UUID in canonical text form (lower-case, hyphenated)"

    // MARK: Rules shared by several fields

    static func failure(_ field: String, _ rule: String) -> BusError {
        BusError(violating: field, rule)
    }

    static func list<Element>(_ items: [Element], at path: String, max: Int,
                              _ check: (Element, String) throws(BusError) -> Void) throws(BusError) {
        guard items.count <= max else { throw failure(path, "has \(items.count) entries, at most \(max) allowed") }
        for (index, item) in items.enumerated() { try check(item, "\(path)[\(index)]") }
    }

    static func text(_ value: String, at path: String, required: Bool = false) throws(BusError) {
        if required, isBlank(value) { throw failure(path, "is required") }
        guard value.utf8.count <= WireLimits.textBytes else { throw failure(path, "is longer than \(WireLimits.textBytes) bytes") }
    }

    static func shortText(_ value: String, at path: String, required: Bool = false) throws(BusError) {
        if required, isBlank(value) { throw failure(path, "is required") }
        guard value.utf8.count <= WireLimits.shortTextBytes else {
            throw failure(path, "is longer than \(WireLimits.shortTextBytes) bytes")
        }
    }

    /// Empty or only white space (Unicode White_Space, which includes line breaks). Stops at the
    /// first other character: a long text costs nothing here (trimming would copy it).
    static func isBlank(_ value: String) -> Bool {
        value.unicodeScalars.allSatisfy(\.properties.isWhitespace)
    }

    /// Node and group ids: lowercase letters, digits and '-', 1 to 64 long ("oct", "wg-border").
    public static func isNodeId(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= WireLimits.nodeIdBytes
            && value.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "-") }
    }

    static func nodeId(_ value: String, at path: String) throws(BusError) {
        guard isNodeId(value) else { throw failure(path, "must be a node or group id (a-z, 0-9, '-', at most \(WireLimits.nodeIdBytes))") }
    }

    static func country(_ value: String, at path: String) throws(BusError) {
        guard Geography.isCountryCode(value) else { throw failure(path, "must be an ISO 3166-1 alpha-3 code") }
    }

    static func pillars(_ values: [StrategyPillar], at path: String) throws(BusError) {
        guard !values.isEmpty else { throw failure(path, "must name at least one Global Strategy pillar") }
        try list(values, at: path, max: WireLimits.pillars) { pillar, itemPath throws(BusError) in
            guard pillar != .pillarUnspecified, StrategyPillar.allCases.contains(pillar) else {
                throw failure(itemPath, "is not a Global Strategy pillar")
            }
        }
    }

    static func range(_ value: DateRange, present: Bool, at path: String) throws(BusError) {
        guard present else { throw failure(path, "is required") }
        let start = try date(value.start, at: "\(path).start")
        let end = try date(value.end, at: "\(path).end")
        guard start <= end else { throw failure("\(path).end", "is before start") }
    }

    /// Parses an ISO 8601 calendar date (YYYY-MM-DD) into a comparable number (YYYYMMDD).
    @discardableResult
    static func date(_ value: String, at path: String) throws(BusError) -> Int {
        guard let number = CalendarDate.parse(value) else { throw failure(path, "must be a date YYYY-MM-DD") }
        return number
    }
}

/// Calendar dates as the schemas write them (YYYY-MM-DD).
public enum CalendarDate {
    /// The date as YYYYMMDD, or nil when `text` is not a real calendar date.
    public static func parse(_ text: String) -> Int? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 10, utf8[4] == UInt8(ascii: "-"), utf8[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var result = 0
            for byte in utf8[range] {
                guard (48...57).contains(byte) else { return nil }
                result = result * 10 + Int(byte - 48)
            }
            return result
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              year >= 1945, (1...12).contains(month) else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return nil }
        return year * 10_000 + month * 100 + day
    }

    /// Today's date in UTC as YYYYMMDD (`UTCTime`: the policy runs on many threads).
    public static func today(_ now: Date = Date()) -> Int {
        let fields = UTCTime.fields(now)
        return fields.year * 10_000 + fields.month * 100 + fields.day
    }
}
