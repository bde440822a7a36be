import ArgumentParser
import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf

struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Read a node's journal.",
        subcommands: [List.self, Show.self, Export.self, Verify.self, Salvage.self, Backup.self])

    /// Where the journal is: a file, or the node configuration that names it.
    struct Location: ParsableArguments {
        @Option(name: .long, help: "The journal file (SQLite).")
        var journal: String?

        @Option(name: .long, help: "A node configuration file; its journal is read.")
        var nodeConfig: String?

        @Option(name: .long, help: "The registry whose signing keys check the signatures (default: the node configuration's registryFile).")
        var registry: String?

        init() {}

        init(journal: String?, nodeConfig: String?, registry: String?) {
            self.journal = journal
            self.nodeConfig = nodeConfig
            self.registry = registry
        }

        /// The registry that checks signatures: --registry, or the node configuration's; nil
        /// when neither names one.
        func loadRegistry() throws -> NodeRegistry? {
            if let registry {
                do {
                    return try NodeRegistry(json: try ConfigurationFile.read(registry, what: "registry"))
                } catch let error as RegistryError {
                    throw ConfigurationError("registry \(registry): \(error.description)")
                }
            }
            guard let nodeConfig else { return nil }
            return try NodeConfiguration.load(path: nodeConfig).loadRegistry()
        }

        /// The journal's path, from --journal or the node configuration.
        func path() throws -> String {
            switch (journal, nodeConfig) {
            case (let path?, nil): return path
            case (nil, let config?): return try NodeConfiguration.load(path: config).journalPath
            default: throw ValidationError("give either --journal or --node-config")
            }
        }

        /// Opens the journal read-only: inspection never writes to the file it inspects (no
        /// schema created, no checkpoint), and works on a write-protected copy or read-only media.
        func open() throws -> NodeJournal {
            let path = try path()
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigurationError("journal \(path) does not exist")
            }
            return try NodeJournal(path: path, access: .readOnly)
        }
    }

    struct Filters: ParsableArguments {
        @Option(help: "Only this type: COUNTRY_VISIT_RECOMMENDATION, MISSION_REPORT, ACTIVITY_MATRIX.")
        var type: String?

        @Option(help: "Only messages from this node id.")
        var originator: String?

        @Option(help: "Only messages about this Member State (ISO alpha-3) or region.")
        var memberState: String?

        @Option(help: "Only this classification: UNCLASSIFIED, CONFIDENTIAL, STRICTLY_CONFIDENTIAL.")
        var classification: String?

        @Option(help: "Only sent or received messages.")
        var direction: String?

        @Option(help: "Created on or after (YYYY-MM-DD or an ISO 8601 time).")
        var since: String?

        @Option(help: "Created before (YYYY-MM-DD or an ISO 8601 time).")
        var until: String?

        func filter() throws -> JournalFilter {
            var filter = JournalFilter()
            if let type {
                guard let value = MessageType(name: type) else { throw ValidationError("unknown type \(type)") }
                filter.type = value
            }
            if let classification {
                guard let value = Classification(name: classification) else {
                    throw ValidationError("unknown classification \(classification)")
                }
                filter.classification = value
            }
            if let direction {
                guard let value = Direction(rawValue: direction) else { throw ValidationError("direction is sent or received") }
                filter.direction = value
            }
            filter.originator = originator
            filter.subject = memberState
            filter.since = try since.map { try Self.time($0, option: "--since") }
            filter.until = try until.map { try Self.time($0, option: "--until") }
            return filter
        }

        static func time(_ text: String, option: String) throws -> Date {
            if let date = ISO8601DateFormatter().date(from: text) { return date }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withFullDate]
            if let date = formatter.date(from: text) { return date }
            throw ValidationError("\(option) takes YYYY-MM-DD or an ISO 8601 time such as 2026-03-01T12:00:00Z")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List journal entries, one a line.")
        @OptionGroup var location: Location
        @OptionGroup var filters: Filters

        @Flag(help: "Also list messages whose expiry date has passed (hidden by default).")
        var includeExpired = false

        @Flag(help: "Also list messages their originator revoked (hidden by default, kept for audit).")
        var includeRevoked = false

        @Option(help: "table (fits the terminal, or 100 columns), csv or json (full values).")
        var format: OutputFormat = .table

        func run() throws {
            try runReportingErrors {
                var entries = try location.open().entries(matching: try filters.filter())
                let now = Date()
                let expired = entries.filter { entry in
                    (try? entry.envelope()).map { ConfidentialityPolicy.isExpired($0, at: now) } ?? false
                }.map(\.messageId)
                if !includeExpired { entries.removeAll { expired.contains($0.messageId) } }
                let revoked = entries.filter { $0.revokedAt != nil }.count
                if !includeRevoked { entries.removeAll { $0.revokedAt != nil } }
                let rows = entries.map { JournalFormat.row($0, now: now) }
                switch format {
                case .table:
                    let table = TextTable(columns: JournalFormat.tableColumns, rows: rows.map(JournalFormat.tableRow))
                    print(table.render(width: TextTable.outputWidth()), terminator: "")
                case .csv: print(TextTable.csv(columns: JournalFormat.columns, rows: rows), terminator: "")
                case .json: print(try TextTable.json(columns: JournalFormat.columns, rows: rows))
                }
                var notes: [String] = []
                if !includeExpired, !expired.isEmpty { notes.append("\(expired.count) expired not shown (--include-expired)") }
                if !includeRevoked, revoked > 0 { notes.append("\(revoked) revoked not shown (--include-revoked)") }
                let hidden = notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")"
                FileHandle.standardError.write(Data("\(entries.count) entries\(hidden)\n".utf8))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one message as protobuf JSON.")
        @OptionGroup var location: Location

        @Argument(help: "The message id.")
        var messageId: String

        func run() throws {
            try runReportingErrors {
                guard let entry = try location.open().entry(messageId: MessageID.canonical(messageId)) else {
                    throw StoreError(.notFound, "no message \(messageId) in this journal")
                }
                print(try JournalFormat.json(try entry.message(), pretty: true))
                FileHandle.standardError.write(Data("\(JournalFormat.signatureNote(entry, registry: try location.loadRegistry()))\n".utf8))
                if let code = entry.refusedCode {
                    FileHandle.standardError.write(Data(
                        "note: the broker refused this publication (\(code): \(entry.refusedDetail ?? "")); it is not sent again\n".utf8))
                }
                if !entry.redactedPaths.isEmpty {
                    FileHandle.standardError.write(Data(
                        "note: \(entry.redactedPaths.joined(separator: ", ")) withheld from this node (Member State restriction)\n".utf8))
                }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print matching messages, one JSON object a line (JSON Lines): the message and its author's proof.",
            discussion: """
                Each line is {"message": <the message as protobuf JSON>, "proof": <the signed bytes, signature, \
                key id and disclosures in base64url>}. \
                Schemas/PROTOCOL.md 7.2 gives the bytes signed: anyone with the originator's public signing key \
                can verify a line without CTBus (Tests/signatures/verify_export.py does, in Python).
                """)
        @OptionGroup var location: Location
        @OptionGroup var filters: Filters

        func run() throws {
            try runReportingErrors {
                for entry in try location.open().entries(matching: try filters.filter()) {
                    print(try JournalFormat.exportLine(entry))
                }
            }
        }
    }
}

extension JournalCommand {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a journal's (or the broker store's) hash chain; exit 1 at the first broken link.")

        @Option(name: .long, help: "A journal file (SQLite).")
        var journal: String?

        @Option(name: .long, help: "A node configuration file; its journal is checked.")
        var nodeConfig: String?

        @Option(name: .long, help: "The broker's store (SQLite) instead of a journal.")
        var brokerStore: String?

        @Option(name: .long, help: "The registry whose signing keys check the signatures (default: the node configuration's registryFile).")
        var registry: String?

        func run() throws {
            try runReportingErrors {
                let report: ChainReport
                if let brokerStore {
                    guard journal == nil, nodeConfig == nil else { throw ValidationError("give one of --journal, --node-config, --broker-store") }
                    guard FileManager.default.fileExists(atPath: brokerStore) else {
                        throw ConfigurationError("broker store \(brokerStore) does not exist")
                    }
                    report = try BrokerStore(path: brokerStore, access: .readOnly).verify()
                } else {
                    report = try Location(journal: journal, nodeConfig: nodeConfig, registry: registry).open().verify()
                }
                if let recovery = report.recovery { print("note: \(recovery)") }
                if !report.damage.isEmpty {
                    print("DAMAGED: SQLite's integrity check reports:")
                    for line in report.damage { print("  \(line)") }
                }
                if let broken = report.firstBreak {
                    let id = broken.messageId.isEmpty ? "" : " (message \(broken.messageId))"
                    print("BROKEN at entry \(broken.position)\(id): \(broken.reason)")
                    print("entries before it are intact; entries from it on cannot be trusted")
                }
                guard report.isIntact else {
                    if brokerStore == nil {
                        print("`ctbus journal salvage` copies every entry that still verifies into a new journal")
                    }
                    throw ExitCode(1)
                }
                print("intact: \(report.entries) entries, every hash links to the one before, SQLite finds no damage")
                if report.removedByRetention > 0 {
                    print("retention: \(report.removedByRetention) messages left the store (the rows after them record the hashes they link to)")
                }
                guard brokerStore == nil else { return }
                let location = Location(journal: journal, nodeConfig: nodeConfig, registry: registry)
                guard let keys = try location.loadRegistry() else {
                    print("signatures: not checked: name the registry with --registry FILE (or give --node-config)")
                    return
                }
                let signatures = try location.open().verifySignatures(registry: keys)
                for failure in signatures.failures {
                    print("SIGNATURE FAILS at entry \(failure.position) (message \(failure.messageId)): \(failure.error)")
                }
                guard signatures.isIntact else { throw ExitCode(1) }
                var line = "signatures: \(signatures.verified) verify with the originators' keys in the registry"
                if signatures.redacted > 0 { line += " (\(signatures.redacted) redacted copies verify for the fields they hold)" }
                print(line)
            }
        }
    }
}

extension JournalCommand {
    struct Salvage: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy every entry of a damaged journal that still verifies into a new journal.",
            discussion: """
                With the node stopped (a journal that verifies is left alone): the damaged journal (and its -wal and -shm) is moved aside to \
                JOURNAL.damaged-TIME, untouched, and a new journal takes its place holding every entry that \
                still verifies, the outbox and the drafts. Started again, the node asks the broker once for its \
                backlog, which brings back the received messages the damage took. With --out the new journal \
                is written there instead and the damaged one stays where it is.
                """)

        @OptionGroup var location: JournalCommand.Location

        @Option(help: "Write the new journal here and leave the damaged one in place.")
        var out: String?

        func run() throws {
            try runReportingErrors {
                let path = try location.path()
                guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("journal \(path) does not exist") }
                guard !FileLock.isHeld(path) else {
                    throw StoreError(.inUse, "a node is running on \(path); stop it first")
                }
                // A file of another kind or schema version is refused before anything is moved aside.
                try NodeJournal.refuseOtherSchema(path: path)
                // An intact journal is left as it is: salvaging it again changes nothing.
                if let report = try? NodeJournal(path: path, access: .readOnly).verify(), report.isIntact {
                    print("journal \(path) verifies (\(report.entries) entries): nothing to salvage")
                    return
                }
                let source: String
                let target: String
                if let out {
                    (source, target) = (path, out)
                } else {
                    let format = ISO8601DateFormatter()
                    format.formatOptions.insert(.withFractionalSeconds)
                    let stamp = format.string(from: Date()).replacingOccurrences(of: ":", with: "")
                    source = "\(path).damaged-\(stamp)"
                    for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                        try FileManager.default.moveItem(atPath: path + suffix, toPath: source + suffix)
                    }
                    target = path
                }
                let report = try JournalSalvage.salvage(from: source, into: target)
                print("salvaged \(report.kept) entries into \(target); the damaged journal is kept at \(source)")
                print("outbox: \(report.outbox) publications to send; drafts: \(report.drafts)")
                if let tail = report.unreadableTail { print("could not read: \(tail)") }
                for lost in report.lost {
                    let id = lost.messageId.isEmpty ? "id unreadable" : lost.messageId
                    print("lost entry \(lost.position) (\(id), \(lost.direction ?? "direction unreadable")): \(lost.reason)")
                }
                for id in report.revocationsLost {
                    print("revocation lost for \(id): its signed statement does not read, so the entry is kept as not revoked; "
                          + "`ctbus audit \(id)` at the broker shows whether it was revoked")
                }
                if !report.lost.isEmpty || report.unreadableTail != nil {
                    print("received messages come back from the broker's backlog when the node starts; "
                          + "lost sent messages are in the broker's store (`ctbus audit ID`)")
                }
            }
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, csv, json
}

enum JournalFormat {
    /// One line of `journal export`: the message as protobuf JSON and its author's proof, the
    /// exact signed bytes in base64url (RFC 4648 section 5, no padding), as PROTOCOL.md 7.2 names them.
    static func exportLine(_ entry: JournalEntry) throws -> String {
        let message = try json(try entry.message(), pretty: false)
        let signed = try entry.signed()
        var proof: [String: Any] = [
            "originator": entry.originator,
            "keyId": signed.proof.keyID,
            "signature": MessageKeys.text(signed.proof.signature),
            "envelope": MessageKeys.text(signed.signedEnvelope),
            "payload": MessageKeys.text(signed.payload),
            "digests": signed.proof.digests.map(MessageKeys.text),
            "disclosures": signed.proof.disclosures.map { disclosure -> [String: Any] in
                ["salt": MessageKeys.text(disclosure.salt), "path": disclosure.path, "index": Int(disclosure.index),
                 "value": MessageKeys.text(disclosure.value)]
            },
            "withheld": entry.redactedPaths,
        ]
        // A sealed message's content keys as this node opened them: with them anyone holding the
        // export can check that its plaintext is what the signed ciphertext holds (PROTOCOL.md 7.5).
        if let keys = entry.contentKeys { proof["contentKeys"] = MessageKeys.text(keys) }
        // Signed in a batch: the signature is the batch root's, and the path leads there from
        // this entry's signed bytes (PROTOCOL.md 7.2, batch signatures).
        if signed.proof.hasBatch {
            let batch = signed.proof.batch
            proof["batch"] = ["batchId": MessageKeys.text(batch.batchID), "leafCount": Int(batch.leafCount), "index": Int(batch.index),
                              "blinder": MessageKeys.text(batch.blinder), "path": batch.path.map(MessageKeys.text)] as [String: Any]
        }
        let proofJSON = try JSONSerialization.data(withJSONObject: proof, options: [.sortedKeys, .withoutEscapingSlashes])
        return #"{"message":\#(message),"proof":\#(String(decoding: proofJSON, as: UTF8.self))}"#
    }

    /// What `journal show` says of an entry's signature (on standard error, beside the message).
    static func signatureNote(_ entry: JournalEntry, registry: NodeRegistry?) -> String {
        guard let registry else {
            return "signature: not checked: name the registry with --registry FILE (or give --node-config)"
                + (entry.revocationSummary(registry: nil).map { "\n\($0)" } ?? "")
        }
        return "signature: \(entry.signatureState(registry: registry).summary)"
            + (entry.revocationSummary(registry: registry).map { "\n\($0)" } ?? "")
    }

    static let columns = ["id", "created", "direction", "type", "classification", "subject", "from", "notes"]

    /// The table's headers: shorter than the field names where the values are short.
    static let tableColumns = ["id", "created (UTC)", "dir", "type", "class", "subject", "from", "notes"]

    /// A row in the table's shorter forms: the time to the minute, in/out, the type in words.
    static func tableRow(_ row: [String]) -> [String] {
        var row = row
        row[1] = String(row[1].prefix(16)).replacingOccurrences(of: "T", with: " ")
        row[2] = row[2] == Direction.sent.rawValue ? "out" : "in"
        row[3] = switch row[3] {
        case MessageType.countryVisitRecommendation.name: "recommendation"
        case MessageType.missionReport.name: "mission report"
        case MessageType.activityMatrix.name: "activity matrix"
        default: row[3]
        }
        return row
    }

    /// One entry as the columns of `journal list`.
    static func row(_ entry: JournalEntry, now: Date = Date()) -> [String] {
        let time = ISO8601DateFormatter().string(from: entry.createdAt)
        let envelope = try? entry.envelope()
        var classification = entry.classificationName
        var notes: [String] = []
        if let handling = envelope?.handling, ConfidentialityPolicy.effectiveClassification(handling, at: now) != handling.classification {
            classification = "UNCLASSIFIED*" // declassified on handling.declassify_on
            notes.append("declassified \(handling.declassifyOn), was \(handling.classification.name)")
        }
        if let tlp = envelope?.handling.tlp, tlp != .tlpUnspecified { notes.append("TLP:\(tlp.label)") }
        if let envelope, ConfidentialityPolicy.isExpired(envelope, at: now) { notes.append("expired") }
        if entry.revokedAt != nil { notes.append("revoked: \(entry.revokeReason ?? "")") }
        if !entry.redactedPaths.isEmpty { notes.append("redacted: \(entry.redactedPaths.joined(separator: ", "))") }
        if let code = entry.refusedCode {
            notes.append("REFUSED \(code): \(entry.refusedDetail ?? ""); not sent again")
        } else if entry.direction == .sent && entry.acknowledgedAt == nil {
            notes.append("not acknowledged")
        }
        return [entry.messageId, time, entry.direction.rawValue, entry.typeName, classification, entry.subject, entry.originator,
                notes.joined(separator: "; ")]
    }

    /// Protobuf JSON with the schema's field names.
    static func json(_ message: BusMessage, pretty: Bool) throws -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        let compact = try message.jsonString(options: options)
        return pretty ? indent(compact) : compact
    }

    /// Indents compact JSON two spaces a level, keeping the fields in schema order (a JSON
    /// round trip through Foundation would reorder them).
    static func indent(_ json: String) -> String {
        var output = ""
        var depth = 0
        var inString = false
        var escaped = false
        var opened = false // just after "{" or "[": the line break waits, so "{}" stays "{}"
        func newline() { output += "\n" + String(repeating: "  ", count: depth) }
        for character in json {
            if inString {
                output.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
                continue
            }
            let closing = character == "}" || character == "]"
            if opened, !closing { newline() }
            opened = false
            switch character {
            case "\"":
                inString = true
                output.append(character)
            case "{", "[":
                output.append(character)
                depth += 1
                opened = true
            case "}", "]":
                depth -= 1
                if output.last != "{" && output.last != "[" { newline() }
                output.append(character)
            case ",":
                output.append(character)
                newline()
            case ":":
                output += ": "
            default:
                output.append(character)
            }
        }
        return output
    }
}
