/// Every bound on a string or repeated field that crosses the wire, in one place. The validator,
/// the broker and the node read their numbers from here, and `table` is what PROTOCOL.md's
/// section 5.6 lists (a test compares the two, so neither can drift).
public enum WireLimits {
    /// The broker's frame limit for a Publish unless its configuration says otherwise
    /// (`maxMessageBytes`); what a node checks before queueing, not knowing the broker's setting.
    public static let defaultMaxMessageBytes = 1 << 20
    /// Message ids, references and revocation targets: a UUID in canonical text form.
    public static let messageIdBytes = 36
    /// Node and group ids ("oct", "wg-border").
    public static let nodeIdBytes = 64
    /// Identifier-like fields: visit and mission ids, tags, thematic areas, entity names.
    public static let shortTextBytes = 256
    /// Free text: recommendation text, summaries, findings, titles.
    public static let textBytes = 32 * 1024
    /// `Revoke.reason` (and so `Revocation.reason`): a sentence for people.
    public static let revokeReasonBytes = 1024
    /// `Hello.agent`: a program name and version, for logs.
    public static let agentBytes = 256
    /// `ErrorReport.detail`: the broker never writes more.
    public static let errorDetailBytes = 1024
    /// The longest id the broker echoes in `ErrorReport.message_id` (a non-canonical spelling
    /// comes back as sent, so the client can find its entry; a longer one is not echoed).
    public static let echoedIdBytes = 64

    public static let thematicTags = 32
    public static let references = 1_000
    public static let releasability = 256
    public static let allowedNodes = 256
    /// `member_state_restriction.field_paths` and `Deliver.redacted_paths`.
    public static let fieldPaths = 16
    public static let resolutions = 64
    public static let pillars = 4
    public static let entities = 64
    /// Findings and follow-up actions of a mission report.
    public static let listEntries = 1_000
    public static let activities = 10_000
    public static let activityMemberStates = 256
    public static let recommendationIds = 256
    /// Publications under one batch signature (PROTOCOL.md 7.2): a path of at most 16 siblings.
    public static let batchLeaves = 65_536
    /// A batch id, a blinder and each sibling of a batch path: SHA-256 sized.
    public static let batchHashBytes = 32

    /// One row of PROTOCOL.md's limits table.
    public struct Row: Equatable, Sendable, CustomStringConvertible {
        public let field: String
        public let limit: String
        /// The refusal a publisher gets; nil for what the broker sends (a node may rely on it).
        public let code: ErrorCode?

        public var description: String { "| `\(field)` | \(limit) | \(code.map { "`\($0.name)`" } ?? "— (broker → node)") |" }
    }

    private static func bytes(_ count: Int) -> String { "\(count) bytes" }
    private static func entries(_ count: Int, each: String? = nil) -> String {
        each.map { "\(count) entries, each \($0)" } ?? "\(count) entries"
    }

    /// The table of PROTOCOL.md section 5.6, row for row. `maxMessageBytes` is the broker's
    /// configured frame limit; everything else is fixed by the protocol.
    public static let table: [Row] = {
        let id = "canonical UUID (\(messageIdBytes) bytes)"
        let node = "node or group id (\(nodeIdBytes) bytes)"
        let short = bytes(shortTextBytes)
        let text = bytes(textBytes)
        let failed = ErrorCode.validationFailed
        return [
            Row(field: "Frame carrying a Publish", limit: "`maxMessageBytes` (default 1 MiB)", code: .messageTooLarge),
            Row(field: "hello.agent", limit: bytes(agentBytes), code: failed),
            Row(field: "revoke.message_id", limit: id, code: failed),
            Row(field: "revoke.reason", limit: bytes(revokeReasonBytes), code: failed),
            Row(field: "envelope.message_id", limit: "canonical UUIDv7 (\(messageIdBytes) bytes)", code: failed),
            Row(field: "envelope.originator", limit: node, code: failed),
            Row(field: "envelope.subject", limit: "a known country or region code", code: failed),
            Row(field: "envelope.thematic_tags", limit: entries(thematicTags, each: short), code: failed),
            Row(field: "envelope.references", limit: entries(references), code: failed),
            Row(field: "envelope.references[].message_id", limit: id, code: failed),
            Row(field: "envelope.handling.releasability", limit: entries(releasability, each: node), code: failed),
            Row(field: "envelope.handling.declassify_on", limit: "date YYYY-MM-DD", code: failed),
            Row(field: "envelope.handling.member_state_restriction.state", limit: "ISO 3166-1 alpha-3", code: failed),
            Row(field: "envelope.handling.member_state_restriction.requested_on", limit: "date YYYY-MM-DD", code: failed),
            Row(field: "envelope.handling.member_state_restriction.field_paths",
                limit: entries(fieldPaths, each: "a redactable path of the type"), code: failed),
            Row(field: "envelope.handling.member_state_restriction.allowed_nodes", limit: entries(allowedNodes, each: node), code: failed),
            Row(field: "*.visit_id, *.mission_id, *.project_id, *.thematic_area", limit: short, code: failed),
            Row(field: "*.member_state, *.member_states[]", limit: "ISO 3166-1 alpha-3", code: failed),
            Row(field: "*.region", limit: "a known region code", code: failed),
            Row(field: "DateRange.start, DateRange.end", limit: "date YYYY-MM-DD", code: failed),
            Row(field: "country_visit_recommendation.resolutions_assessed", limit: entries(resolutions), code: failed),
            Row(field: "country_visit_recommendation.recommendation_text, .technical_assistance_need", limit: text, code: failed),
            Row(field: "*.pillars", limit: entries(pillars), code: failed),
            Row(field: "mission_report.participating_entities", limit: entries(entities, each: short), code: failed),
            Row(field: "mission_report.summary", limit: text, code: failed),
            Row(field: "mission_report.findings, .follow_up_actions", limit: entries(listEntries, each: text), code: failed),
            Row(field: "activity_matrix.activities", limit: entries(activities), code: failed),
            Row(field: "activity_matrix.activities[].title", limit: text, code: failed),
            Row(field: "activity_matrix.activities[].member_states", limit: entries(activityMemberStates), code: failed),
            Row(field: "activity_matrix.activities[].implementing_entities", limit: entries(entities, each: short), code: failed),
            Row(field: "activity_matrix.activities[].recommendation_ids", limit: entries(recommendationIds, each: id), code: failed),
            Row(field: "proof.batch.leaf_count", limit: "1 to \(batchLeaves)", code: .signatureInvalid),
            Row(field: "proof.batch.index", limit: "below `leaf_count`", code: .signatureInvalid),
            Row(field: "proof.batch.path", limit: "one entry per level of a tree of `leaf_count` leaves (16 at most), each \(bytes(batchHashBytes))",
                code: .signatureInvalid),
            Row(field: "proof.batch.batch_id, proof.batch.blinder", limit: bytes(batchHashBytes), code: .signatureInvalid),
            Row(field: "welcome.node_id", limit: node, code: nil),
            Row(field: "error.detail", limit: bytes(errorDetailBytes), code: nil),
            Row(field: "error.message_id", limit: "empty, or the id as the node sent it (\(echoedIdBytes) bytes at most)", code: nil),
            Row(field: "deliver.redacted_paths", limit: entries(fieldPaths), code: nil),
            Row(field: "deliver.revocation.reason", limit: bytes(revokeReasonBytes), code: nil),
        ]
    }()
}
