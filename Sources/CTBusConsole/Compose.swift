import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import MultipartKit
import NIOCore
import NIOHTTP1
import SwiftProtobuf

/// A submitted HTML form (`application/x-www-form-urlencoded`): every name with its values, in
/// the order sent (a group of check boxes sends one name several times).
struct FormValues: Sendable {
    private(set) var values: [String: [String]] = [:]

    init(_ pairs: [(String, String)] = []) {
        for (name, value) in pairs { values[name, default: []].append(value) }
    }

    /// Parses a form body; a pair that is not percent-encoded correctly is bad input.
    init(urlEncoded body: String) throws(ConsoleInputError) {
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) throws(ConsoleInputError) -> String {
                guard let text = part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw ConsoleInputError("the form is not encoded as a browser encodes it")
                }
                return text
            }
            let name = try decode(parts[0])
            let value = parts.count > 1 ? try decode(parts[1]) : ""
            values[name, default: []].append(value)
        }
    }

    /// Parses a `multipart/form-data` body (a form with a file), with MultipartKit. A file's
    /// content is the field's value; it must be UTF-8 text.
    init(multipart body: ByteBuffer, boundary: String) throws(ConsoleInputError) {
        let parser = MultipartParser(boundary: boundary)
        var parts: [MultipartPart] = []
        var headers = HTTPHeaders()
        var content = ByteBuffer()
        parser.onHeader = { name, value in headers.add(name: name, value: value) }
        parser.onBody = { chunk in content.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(MultipartPart(headers: headers, body: content))
            headers = HTTPHeaders()
            content = ByteBuffer()
        }
        do {
            try parser.execute(body)
        } catch {
            throw ConsoleInputError("the form is not multipart/form-data as a browser sends it")
        }
        for part in parts {
            guard let name = part.name else { continue }
            guard let text = String(bytes: part.body.readableBytesView, encoding: .utf8) else {
                throw ConsoleInputError("\(name.prefix(80)): the file is not UTF-8 text (save the spreadsheet as CSV UTF-8)")
            }
            values[name, default: []].append(text)
        }
    }

    /// The `boundary` parameter of a multipart content type.
    static func boundary(ofContentType type: String) -> String? {
        for parameter in type.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty || value.utf8.count > 70 ? nil : value
            }
        }
        return nil
    }

    mutating func set(_ name: String, _ value: String) { values[name] = [value] }

    mutating func remove(_ name: String) { values[name] = nil }

    /// The first value, trimmed of white space at both ends ("" when absent).
    func text(_ name: String) -> String {
        values[name]?.first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// Every non-empty value of a name (check boxes), trimmed.
    func all(_ name: String) -> [String] {
        (values[name] ?? []).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The non-empty lines of a text area, trimmed ("one a line" fields).
    func lines(_ name: String) -> [String] {
        (values[name]?.first ?? "").split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// Comma-separated items of a one-line field.
    func items(_ name: String) -> [String] {
        text(name).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// Input the console refuses, with the reason a person can act on (shown on the page or in the
/// JSON error; never the content of a message).
public struct ConsoleInputError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What the compose form needs to know about the bus: the node, its clearance, and the ids
/// from the registry (nil without one: releasability is then typed in and the broker decides).
struct ComposeContext: Sendable {
    var nodeId: String
    var clearance: Classification
    var mayPublish: Set<MessageType>
    var nodeIds: [String]?
    var groupIds: [String]?

    init(nodeId: String, clearance: Classification, registry: NodeRegistry?) {
        self.nodeId = nodeId
        self.clearance = clearance
        if let registry {
            mayPublish = registry.entry(id: nodeId)?.profile.mayPublish ?? []
            nodeIds = registry.entries.map(\.profile.id).sorted()
            groupIds = Set(registry.entries.flatMap(\.profile.groups)).sorted()
        } else {
            mayPublish = Set(MessageType.allCases.filter { $0 != .unspecified })
        }
    }

    /// The levels this node may mark a message with (never above its own clearance).
    var levels: [Classification] {
        [Classification.unclassified, .confidential, .strictlyConfidential].filter { $0.rawValue <= clearance.rawValue }
    }
}

/// The compose form of each message type: its fields (named by their path in the message, so
/// that a `MessageValidator` error lands next to the field it names), and the message built from
/// a submitted form.
enum ComposeForm {
    struct Field: Sendable {
        enum Kind: Sendable {
            case text
            case textarea
            /// One value a line (repeated strings).
            case lines
            case date
            /// Two dates, `NAME.start` and `NAME.end`.
            case range
            case choice([(value: String, label: String)])
            case flag
            case choices([(value: String, label: String)])
            /// A file to upload (the form is then sent as multipart/form-data).
            case file(accept: String)
        }

        var name: String
        var label: String
        var kind: Kind
        var hint: String? = nil
        var required = false

        /// Whether the form left this field empty.
        func isEmpty(in form: FormValues) -> Bool {
            switch kind {
            case .range: form.text(name + ".start").isEmpty && form.text(name + ".end").isEmpty
            case .choices: form.all(name).isEmpty
            default: form.text(name).isEmpty
            }
        }
    }

    /// The types in URLs: /compose/recommendation, /compose/mission-report, /compose/activity-matrix.
    static let slugs: [(slug: String, type: MessageType, title: String)] = [
        ("recommendation", .countryVisitRecommendation, "Country visit recommendation"),
        ("mission-report", .missionReport, "Mission report"),
        ("activity-matrix", .activityMatrix, "Activity matrix"),
    ]

    static func type(slug: String) -> MessageType? { slugs.first { $0.slug == slug }?.type }
    static func slug(_ type: MessageType) -> String { slugs.first { $0.type == type }?.slug ?? "" }
    static func title(_ type: MessageType) -> String { slugs.first { $0.type == type }?.title ?? type.name }

    static let pillars: [(value: String, label: String)] = [
        ("1", "I · conditions conducive to terrorism"), ("2", "II · preventing and combating terrorism"),
        ("3", "III · building States' capacity"), ("4", "IV · human rights and the rule of law"),
    ]

    static func payloadFields(_ type: MessageType) -> [Field] {
        switch type {
        case .countryVisitRecommendation:
            let p = "country_visit_recommendation"
            return [
                Field(name: "\(p).member_state", label: "Member State", kind: .text, hint: "ISO 3166-1 alpha-3, such as KEN", required: true),
                Field(name: "\(p).visit_id", label: "Visit", kind: .text, hint: "such as CTED-2026-KEN", required: true),
                Field(name: "\(p).visit_dates", label: "Visit dates", kind: .range, required: true),
                Field(name: "\(p).resolutions_assessed", label: "Resolutions assessed", kind: .text, hint: "comma-separated, such as 1373, 2396", required: true),
                Field(name: "\(p).thematic_area", label: "Thematic area", kind: .text, hint: "such as border-security", required: true),
                Field(name: "\(p).recommendation_text", label: "Recommendation", kind: .textarea, required: true),
                Field(name: "\(p).priority", label: "Priority", kind: .choice([("", "choose"), ("1", "low"), ("2", "medium"), ("3", "high")]), required: true),
                Field(name: "\(p).technical_assistance_needed", label: "Technical assistance needed", kind: .flag),
                Field(name: "\(p).technical_assistance_need", label: "Assistance needed", kind: .textarea),
                Field(name: "\(p).pillars", label: "Global Strategy pillars", kind: .choices(pillars), required: true),
                Field(name: "\(p).gender_cross_cutting", label: "Gender cross-cutting", kind: .flag),
                Field(name: "\(p).children_cross_cutting", label: "Children cross-cutting", kind: .flag),
                Field(name: "\(p).follow_up_status", label: "Follow-up",
                      kind: .choice([("1", "open"), ("2", "in progress"), ("3", "implemented"), ("4", "closed")])),
            ]
        case .missionReport:
            let p = "mission_report"
            return [
                Field(name: "\(p).mission_id", label: "Mission", kind: .text, hint: "such as MISSION-2026-KEN-01", required: true),
                Field(name: "\(p).kind", label: "Kind", kind: .choice([("", "choose"), ("1", "assessment visit"), ("2", "follow-up visit"),
                                                                      ("3", "joint visit"), ("4", "workshop")]), required: true),
                Field(name: "\(p).member_state", label: "Member State", kind: .text, hint: "ISO alpha-3; or a region below"),
                Field(name: "\(p).region", label: "Region", kind: .text, hint: "a region code, when not one Member State"),
                Field(name: "\(p).dates", label: "Dates", kind: .range, required: true),
                Field(name: "\(p).participating_entities", label: "Participating entities", kind: .lines, hint: "one a line", required: true),
                Field(name: "\(p).summary", label: "Summary", kind: .textarea, required: true),
                Field(name: "\(p).findings", label: "Findings", kind: .lines, hint: "one a line"),
                Field(name: "\(p).follow_up_actions", label: "Follow-up actions", kind: .lines, hint: "one a line"),
            ]
        case .activityMatrix:
            let p = "activity_matrix"
            return [
                Field(name: "\(p).reporting_period", label: "Reporting period", kind: .range, required: true),
                Field(name: "\(p).activities_file", label: "Activities: the spreadsheet as a CSV file", kind: .file(accept: ".csv,text/csv"),
                      hint: "UTF-8, header first, one activity a row; columns: " + ActivityMatrixCSV.columns.joined(separator: ", ")),
                Field(name: "\(p).activities", label: "…or paste the CSV here", kind: .textarea),
            ]
        default:
            return []
        }
    }

    static let referenceRelation: [MessageType: (Reference.Relation, String)] = [
        .countryVisitRecommendation: (.followsUp, "Follows up"),
        .missionReport: (.reportsOn, "Reports on"),
        .activityMatrix: (.answers, "Answers"),
    ]

    static func envelopeFields(_ type: MessageType, context: ComposeContext) -> [Field] {
        let relation = referenceRelation[type]?.1 ?? "Refers to"
        var fields = [
            Field(name: "envelope.thematic_tags", label: "Themes", kind: .text, hint: "comma-separated"),
            Field(name: "envelope.references", label: relation, kind: .lines, hint: "message ids, one a line"),
        ]
        if type == .countryVisitRecommendation { fields[0].hint = "comma-separated; the thematic area when left empty" }
        return fields
    }

    static func handlingFields(_ type: MessageType, context: ComposeContext) -> [Field] {
        let h = "envelope.handling"
        let r = "\(h).member_state_restriction"
        func ids(_ list: [String]?) -> Field.Kind { list.map { .choices($0.map { ($0, $0) }) } ?? .text }
        var targets: [String]?
        if let nodes = context.nodeIds, let groups = context.groupIds { targets = nodes + groups }
        return [
            Field(name: "\(h).classification", label: "Classification", kind: .choice(context.levels.map { ($0.name, $0.name) })),
            Field(name: "\(h).releasability", label: "Releasable to", kind: ids(targets),
                  hint: context.nodeIds == nil ? "node or group ids, comma-separated; empty: every entitled node"
                                               : "nodes and groups; none ticked: every entitled node"),
            Field(name: "\(h).tlp", label: "TLP", kind: .choice([("0", "none")] + TlpLabel.allCases.filter { $0 != .tlpUnspecified }
                .map { ("\($0.rawValue)", $0.label) })),
            Field(name: "\(h).declassify_on", label: "Declassify on", kind: .date),
            Field(name: "\(r).scope", label: "Member State restriction",
                  kind: .choice([("", "none"), ("1", "the whole message"), ("2", "the parts ticked below")])),
            Field(name: "\(r).state", label: "Requested by (State)", kind: .text, hint: "ISO alpha-3"),
            Field(name: "\(r).requested_on", label: "Requested on", kind: .date),
            Field(name: "\(r).field_paths", label: "Parts withheld", kind: .choices(RedactablePaths.paths(for: type).sorted().map { ($0, $0) })),
            Field(name: "\(r).allowed_nodes", label: "Nodes that may see them", kind: ids(context.nodeIds),
                  hint: context.nodeIds == nil ? "node ids, comma-separated" : nil),
        ]
    }

    static func allFields(_ type: MessageType, context: ComposeContext) -> [Field] {
        payloadFields(type) + envelopeFields(type, context: context) + handlingFields(type, context: context)
    }

    /// Errors of a form, by field name; `general` holds those that name no field of the form.
    struct Errors: Sendable {
        var byField: [String: String] = [:]
        var general: [String] = []
        var isEmpty: Bool { byField.isEmpty && general.isEmpty }

        /// Puts a validator error next to the field its path names: the field itself, or the
        /// field holding the element or part it names (`findings[2]`, `dates.end`).
        mutating func add(_ error: BusError, fields: [Field], subjectField: String?) {
            guard let violation = error.violation else {
                general.append(error.detail)
                return
            }
            let (path, rule) = (violation.path, violation.rule)
            if path == "envelope.subject", let subjectField {
                byField[subjectField] = byField[subjectField] ?? "must be an ISO 3166-1 alpha-3 code (or a region code)"
                return
            }
            let field = fields.filter { path == $0.name || path.hasPrefix($0.name + ".") || path.hasPrefix($0.name + "[") }
                .max { $0.name.count < $1.name.count }
            if let field {
                let detail = path == field.name ? rule : "\(path.dropFirst(field.name.count).drop { $0 == "." }) \(rule)"
                byField[field.name] = byField[field.name] ?? detail
            } else {
                general.append(error.detail)
            }
        }
    }

    /// The message a submitted form describes, with the node's checks (schema rules, registry
    /// ids, clearance) run; or every error found, by field.
    static func message(_ type: MessageType, form: FormValues, context: ComposeContext,
                        now: Date = Date()) -> Result<BusMessage, ErrorsBox> {
        var reader = FormReader(form: form)
        var message = BusMessage()
        // The review page carries the id it showed, so that pressing Publish twice publishes
        // once (the journal refuses a second message under one id); a form has none.
        let reviewed = MessageID.canonical(form.text("envelope.message_id"))
        message.envelope.messageID = MessageID.isUUID(reviewed) ? reviewed : MessageID.generate(now: now)
        message.envelope.type = type
        message.envelope.schemaVersion = MessageValidator.schemaVersion
        message.envelope.createdAt = Google_Protobuf_Timestamp(date: now)
        message.envelope.originator = context.nodeId
        let subjectField = readPayload(type, into: &message, &reader, now: now)

        // Envelope: themes and references.
        let tags = form.items("envelope.thematic_tags")
        if !tags.isEmpty {
            message.envelope.thematicTags = tags
        } else if case .countryVisitRecommendation(let value) = message.payload, !value.thematicArea.isEmpty {
            message.envelope.thematicTags = [value.thematicArea]
        }
        if let relation = referenceRelation[type]?.0 {
            for id in form.lines("envelope.references") where !message.envelope.references.contains(where: { $0.messageID == id }) {
                message.envelope.references.append(Reference(to: id, relation))
            }
        }
        // Errors found while reading the form come first; the validator adds the first rule it
        // finds broken, next to its field, unless that field already has one.
        message.envelope.handling = readHandling(&reader, context: context)
        var errors = reader.errors
        for field in payloadFields(type) where field.required && errors.byField[field.name] == nil && field.isEmpty(in: form) {
            errors.byField[field.name] = "is required"
        }
        if !context.mayPublish.contains(type) {
            errors.general.append("this node's role may not publish \(title(type).lowercased())s")
        }
        do {
            try MessageValidator.validate(message)
            try ConfidentialityPolicy.checkOriginatorClearance(message.envelope, nodeId: context.nodeId, clearance: context.clearance)
        } catch {
            errors.add(error, fields: allFields(type, context: context), subjectField: subjectField)
        }
        return errors.isEmpty ? .success(message) : .failure(ErrorsBox(errors))
    }

    /// A submitted form's fields as values, noting each field that does not read.
    struct FormReader {
        let form: FormValues
        var errors = Errors()

        func range(_ name: String) -> DateRange? {
            let start = form.text("\(name).start"), end = form.text("\(name).end")
            guard !start.isEmpty || !end.isEmpty else { return nil }
            var value = DateRange()
            value.start = start
            value.end = end
            return value
        }

        mutating func enumValue(_ name: String) -> Int? {
            let text = form.text(name)
            guard !text.isEmpty else { return 0 }
            guard let number = Int(text), (0...64).contains(number) else {
                errors.byField[name] = "is not one of the choices"
                return nil
            }
            return number
        }

        mutating func pillars(_ name: String) -> [StrategyPillar] {
            var pillars: [StrategyPillar] = []
            for text in form.all(name) {
                guard let number = Int(text), let pillar = StrategyPillar(rawValue: number), pillar != .pillarUnspecified else {
                    errors.byField[name] = "is not one of the choices"
                    continue
                }
                pillars.append(pillar)
            }
            return pillars
        }
    }

    /// Reads the payload of `type` into `message` (and its subject); returns the field the
    /// subject came from, for the validator's errors about it.
    private static func readPayload(_ type: MessageType, into message: inout BusMessage, _ reader: inout FormReader, now: Date) -> String? {
        switch type {
        case .countryVisitRecommendation:
            let value = readRecommendation(&reader)
            message.envelope.subject = value.memberState
            message.countryVisitRecommendation = value
            return "country_visit_recommendation.member_state"
        case .missionReport:
            let value = readMissionReport(&reader)
            message.envelope.subject = value.memberState.isEmpty ? value.region : value.memberState
            message.missionReport = value
            return value.memberState.isEmpty && !value.region.isEmpty ? "mission_report.region" : "mission_report.member_state"
        case .activityMatrix:
            readActivityMatrix(into: &message, &reader, now: now)
            return nil
        default:
            reader.errors.general.append("there is no form for \(type.name)")
            return nil
        }
    }

    private static func readRecommendation(_ reader: inout FormReader) -> CountryVisitRecommendation {
        let p = "country_visit_recommendation"
        let form = reader.form
        var value = CountryVisitRecommendation()
        value.memberState = form.text("\(p).member_state").uppercased()
        value.visitID = form.text("\(p).visit_id")
        if let dates = reader.range("\(p).visit_dates") { value.visitDates = dates }
        for item in form.items("\(p).resolutions_assessed") {
            guard let number = UInt32(item) else {
                reader.errors.byField["\(p).resolutions_assessed"] = "\"\(item.prefix(20))\" is not a resolution number"
                break
            }
            value.resolutionsAssessed.append(number)
        }
        value.thematicArea = form.text("\(p).thematic_area")
        value.recommendationText = form.text("\(p).recommendation_text")
        value.priority = Priority(rawValue: reader.enumValue("\(p).priority") ?? 0) ?? .unspecified
        value.technicalAssistanceNeeded = !form.text("\(p).technical_assistance_needed").isEmpty
        value.technicalAssistanceNeed = form.text("\(p).technical_assistance_need")
        value.pillars = reader.pillars("\(p).pillars")
        value.genderCrossCutting = !form.text("\(p).gender_cross_cutting").isEmpty
        value.childrenCrossCutting = !form.text("\(p).children_cross_cutting").isEmpty
        value.followUpStatus = .init(rawValue: reader.enumValue("\(p).follow_up_status") ?? 0) ?? .followUpUnspecified
        return value
    }

    private static func readMissionReport(_ reader: inout FormReader) -> MissionReport {
        let p = "mission_report"
        let form = reader.form
        var value = MissionReport()
        value.missionID = form.text("\(p).mission_id")
        value.kind = .init(rawValue: reader.enumValue("\(p).kind") ?? 0) ?? .unspecified
        value.memberState = form.text("\(p).member_state").uppercased()
        value.region = form.text("\(p).region").uppercased()
        if let dates = reader.range("\(p).dates") { value.dates = dates }
        value.participatingEntities = form.lines("\(p).participating_entities")
        value.summary = form.text("\(p).summary")
        value.findings = form.lines("\(p).findings")
        value.followUpActions = form.lines("\(p).follow_up_actions")
        return value
    }

    /// The matrix's activities come as CSV, pasted or as a file; its envelope's subject, themes
    /// and references follow from them.
    private static func readActivityMatrix(into message: inout BusMessage, _ reader: inout FormReader, now: Date) {
        let p = "activity_matrix"
        let form = reader.form
        let pasted = form.values["\(p).activities"]?.first ?? ""
        let csv = pasted.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? form.values["\(p).activities_file"]?.first ?? "" : pasted
        if csv.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            reader.errors.byField["\(p).activities"] = "is required: choose the matrix's CSV file, or paste it here"
        } else {
            let (activities, problems) = ActivityMatrixCSV.read(csv: csv)
            if problems.isEmpty {
                let built = ActivityMatrixCSV.message(activities: activities, period: reader.range("\(p).reporting_period") ?? DateRange(),
                                                      handling: Handling(), now: now)
                message.envelope.subject = built.envelope.subject
                message.envelope.thematicTags = built.envelope.thematicTags
                message.envelope.references = built.envelope.references
                message.activityMatrix = built.activityMatrix
                if reader.range("\(p).reporting_period") == nil { message.activityMatrix.clearReportingPeriod() }
            } else {
                // Every problem at once, by row and column, listed at the top of the form.
                reader.errors.byField["\(p).activities"] = problems.count == 1 ? problems[0].description
                    : "\(problems.count) problems in the CSV, listed at the top of the form"
                if problems.count > 1 { reader.errors.general += problems.prefix(200).map { "CSV \($0)" } }
            }
        }
        if message.payload == nil {
            var matrix = ActivityMatrix()
            if let period = reader.range("\(p).reporting_period") { matrix.reportingPeriod = period }
            message.activityMatrix = matrix
        }
    }

    /// The handling block: classification within the node's clearance, releasability and
    /// restriction names from the registry, TLP, declassification.
    private static func readHandling(_ reader: inout FormReader, context: ComposeContext) -> Handling {
        let h = "envelope.handling"
        let form = reader.form
        var handling = Handling()
        let level = form.text("\(h).classification")
        if let value = Classification(name: level), context.levels.contains(value) {
            handling.classification = value
            handling.sealed = value == .strictlyConfidential // always sealed to its recipients (PROTOCOL.md 7.5)
        } else {
            reader.errors.byField["\(h).classification"] = level.isEmpty ? "is required"
                : "must be one of \(context.levels.map(\.name).joined(separator: ", ")) (this node's clearance is \(context.clearance.name))"
        }
        handling.releasability = context.nodeIds == nil ? form.items("\(h).releasability") : form.all("\(h).releasability")
        if let nodes = context.nodeIds, let groups = context.groupIds {
            let known = Set(nodes + groups)
            if let unknown = handling.releasability.first(where: { !known.contains($0) }) {
                reader.errors.byField["\(h).releasability"] = "\"\(unknown.prefix(64))\" is neither a node nor a group of the registry"
            }
        }
        handling.tlp = TlpLabel(rawValue: reader.enumValue("\(h).tlp") ?? 0) ?? .tlpUnspecified
        handling.declassifyOn = form.text("\(h).declassify_on")
        if let restriction = readRestriction(&reader, context: context) { handling.memberStateRestriction = restriction }
        return handling
    }

    private static func readRestriction(_ reader: inout FormReader, context: ComposeContext) -> MemberStateRestriction? {
        let r = "envelope.handling.member_state_restriction"
        let form = reader.form
        guard !form.text("\(r).scope").isEmpty else {
            if !form.text("\(r).state").isEmpty || !form.all("\(r).field_paths").isEmpty || !form.all("\(r).allowed_nodes").isEmpty {
                reader.errors.byField["\(r).scope"] = "choose whether the whole message or the parts ticked are restricted"
            }
            return nil
        }
        var restriction = MemberStateRestriction()
        restriction.scope = .init(rawValue: reader.enumValue("\(r).scope") ?? 0) ?? .unspecified
        restriction.state = form.text("\(r).state").uppercased()
        restriction.requestedOn = form.text("\(r).requested_on")
        restriction.fieldPaths = form.all("\(r).field_paths")
        restriction.allowedNodes = context.nodeIds == nil ? form.items("\(r).allowed_nodes") : form.all("\(r).allowed_nodes")
        if let nodes = context.nodeIds, let unknown = restriction.allowedNodes.first(where: { !nodes.contains($0) }) {
            reader.errors.byField["\(r).allowed_nodes"] = "\"\(unknown.prefix(64))\" is not a node of the registry"
        }
        return restriction
    }

    /// `Errors` as an `Error`, for `Result`.
    struct ErrorsBox: Error, Sendable {
        let errors: Errors
        init(_ errors: Errors) { self.errors = errors }
    }
}
