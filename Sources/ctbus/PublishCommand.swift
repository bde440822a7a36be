import ArgumentParser
import CTBusJournal
import CTBusNode
import CTBusSchema
import Foundation

struct PublishCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Validate messages (protobuf JSON) and put them in a node's outbox.",
        discussion: """
            Works while the node daemon or the broker is down: the daemon sends the message when it \
            can. The message id, schema version, creation time and type are filled in when missing; \
            the originator is the node's id (a file naming another originator is refused). Prints the message id. With --draft the message \
            stays in the journal only (it never leaves the node); --release ID sends it later. Several files are checked first and \
            queued together, all or none, and signed with one signature per batch of up to 256 (Schemas/PROTOCOL.md 7.2).
            """)

    @Option(name: .long, help: "The publishing node's configuration file.")
    var nodeConfig: String

    @Flag(help: "Keep the message as a draft in the journal; it is not sent until --release.")
    var draft = false

    @Option(help: "Release the draft with this message id: it goes to the outbox and out.")
    var release: String?

    @Argument(help: "Message files, protobuf JSON as in Schemas/examples/.")
    var files: [String] = []

    @OptionGroup var matrix: MatrixOptions

    func validate() throws {
        if release != nil && (!files.isEmpty || draft || matrix.activityMatrixCsv != nil) {
            throw ValidationError("--release takes a message id and no file")
        }
        if !files.isEmpty && matrix.activityMatrixCsv != nil { throw ValidationError("give message files or --activity-matrix-csv, not both") }
        if release == nil && files.isEmpty && matrix.activityMatrixCsv == nil {
            throw ValidationError("give a message file, --activity-matrix-csv FILE, or --release ID")
        }
    }

    func run() throws {
        try runReportingErrors {
            let configuration = try NodeConfiguration.load(path: nodeConfig)
            let journal = try NodeJournal(path: configuration.journalPath)
            // Signed here, with the node's key (and sealed to the recipients its registry copy
            // gives, when the message asks): the outbox keeps the signed bytes.
            let registry = try configuration.loadRegistry()
            let signingKey = { () throws in try NodeMessageKeys(configuration: configuration, registry: registry).signing }
            // With the registry copy, what the broker would refuse is refused here, before the outbox.
            let admission = registry.map { Publisher.AdmissionCheck(nodeId: configuration.nodeId, registry: $0) }
            if let release {
                try Publisher.releaseDraft(MessageID.canonical(release), from: journal, clearance: configuration.clearanceLevel,
                                           signingKey: try signingKey(), registry: registry, admission: admission)
                print(release)
                return
            }
            var messages: [BusMessage]
            if let csv = matrix.activityMatrixCsv {
                var message = try matrix.message(csvFile: csv)
                message.envelope.originator = configuration.nodeId
                messages = [message]
            } else {
                messages = try files.map { file in
                    do {
                        return try Publisher.prepare(json: try ConfigurationFile.read(file, what: "message file"), nodeId: configuration.nodeId)
                    } catch let error as BusError where files.count > 1 {
                        throw BusError(error.code, "\(file): \(error.detail)", messageId: error.messageId, violation: error.violation)
                    }
                }
            }
            let ids = draft ? try messages.map { try Publisher.saveDraft($0, into: journal, clearance: configuration.clearanceLevel) }
                : try Publisher.enqueue(messages, into: journal, clearance: configuration.clearanceLevel, signingKey: try signingKey(),
                                        registry: registry, admission: admission)
            for id in ids { print(id) }
        }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check message files (protobuf JSON) against the schema rules.")

    @Argument(help: "Message files.")
    var files: [String]

    func run() throws {
        try runReportingErrors {
            for file in files {
                let json = try ConfigurationFile.read(file, what: "message file")
                do {
                    let message = try Publisher.prepare(json: json, nodeId: nil)
                    print("\(file): valid \(message.envelope.type.name)")
                } catch let error as BusError {
                    throw BusError(error.code, "\(file): \(error.detail)")
                }
            }
        }
    }
}

/// `ctbus publish --activity-matrix-csv FILE`: the activities from a spreadsheet, the rest from options.
struct MatrixOptions: ParsableArguments {
    @Option(help: "Publish an activity matrix whose activities are the rows of this CSV file (columns in docs/traceability.md).")
    var activityMatrixCsv: String?

    @Option(help: "With --activity-matrix-csv: the reporting period, START..END (YYYY-MM-DD..YYYY-MM-DD).")
    var reportingPeriod: String?

    @Option(help: "With --activity-matrix-csv: UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL.")
    var classification = "UNCLASSIFIED"

    @Option(help: "With --activity-matrix-csv: node or group ids the matrix is releasable to (comma-separated).")
    var releasableTo: String?

    @Option(help: "With --activity-matrix-csv: the TLP label: CLEAR, GREEN, AMBER, AMBER+STRICT or RED.")
    var tlp: String?

    func message(csvFile path: String) throws -> BusMessage {
        guard let period = reportingPeriod else { throw ValidationError("--activity-matrix-csv needs --reporting-period START..END") }
        let parts = period.components(separatedBy: "..")
        guard parts.count == 2 else { throw ValidationError("--reporting-period takes START..END, such as 2026-01-01..2026-06-30") }
        var range = DateRange()
        range.start = parts[0]
        range.end = parts[1]
        guard let level = Classification(name: classification) else {
            throw ValidationError("--classification takes UNCLASSIFIED, CONFIDENTIAL or STRICTLY_CONFIDENTIAL")
        }
        var handling = Handling()
        handling.classification = level
        handling.releasability = releasableTo.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        if let tlp {
            guard let label = TlpLabel.allCases.first(where: { $0.label == tlp.uppercased() }) else {
                throw ValidationError("--tlp takes CLEAR, GREEN, AMBER, AMBER+STRICT or RED")
            }
            handling.tlp = label
        }
        let data = try ConfigurationFile.read(path, what: "activity matrix CSV")
        guard let text = String(data: data, encoding: .utf8) else {
            throw BusError(.validationFailed, "activity matrix CSV: \(path) is not UTF-8 text")
        }
        let activities = try ActivityMatrixCSV.activities(csv: text)
        return ActivityMatrixCSV.message(activities: activities, period: range, handling: handling)
    }
}
