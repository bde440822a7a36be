import CTBusSchema
import Foundation
import GRDB

/// The writes of one broker store transaction: publications linked into the hash chain, queue
/// entries with each recipient's next sequence, audit lines, cumulative acknowledgements. Each
/// node's last sequence is read once and written once per transaction (`finish`), not per
/// message, and the chain's last hash is read once and carried along.
struct BrokerWrite {
    private let db: Database
    private let now: Date
    private var lastSequence: [String: Int64] = [:]
    private var previousHash: Data?

    init(_ db: Database, now: Date) {
        self.db = db
        self.now = now
    }

    /// Stores one publication with its queue entries and audit lines, or says why not.
    mutating func store(_ publication: Publication) throws -> StoreOutcome {
        if let stored = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT originator, envelope, payload, recipient_count, proof FROM message WHERE message_id = ?
            """), arguments: [publication.messageId]) {
            let same = try stored.decode(String.self, forColumn: "originator") == publication.originator
                && stored.decode(Data.self, forColumn: "envelope") == publication.envelope
                && stored.decode(Data.self, forColumn: "payload") == publication.payload
                && stored.decode(Data.self, forColumn: "proof") == publication.proof
            guard same else {
                // Counted in the message's audit trail: a client bug or an attack (never the body).
                try record([AuditEntry(nodeId: publication.originator, outcome: .conflict, rule: .conflictingDuplicate,
                                       reason: "published a different message under this id; refused")], of: publication.messageId)
                return .conflict
            }
            return .alreadyStored(recipientCount: try stored.decode(forColumn: "recipient_count"))
        }
        let previous = try previousHash ?? BrokerChain.lastHash(in: db)
        let hash = HashChain.link(previous: previous, fields: BrokerChain.chainFields(
            messageId: publication.messageId, originator: publication.originator,
            envelope: publication.envelope, payload: publication.payload, proof: publication.proof))
        try db.cachedStatement(sql: """
            INSERT INTO message (message_id, originator, type, classification, received_at, envelope, payload, hash, expires_at,
                                 recipient_count, proof)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [publication.messageId, publication.originator, publication.typeName,
                             publication.classificationName, now.timeIntervalSince1970,
                             publication.envelope, publication.payload, hash, publication.expiresAt?.timeIntervalSince1970,
                             publication.recipients.count, publication.proof])
        previousHash = hash
        let queued = try publication.recipients.map { recipient in try queue(publication.messageId, for: recipient) }
        try record(publication.audit, of: publication.messageId)
        return .stored(sequences: queued)
    }

    /// Appends a queue entry with the recipient's next sequence number, and returns the number.
    mutating func queue(_ messageId: String, for recipient: Publication.Recipient, revocationReason: String? = nil) throws -> UInt64 {
        let current = try lastSequence[recipient.nodeId]
            ?? Int64.fetchOne(db.cachedStatement(sql: "SELECT last_sequence FROM recipient WHERE node_id = ?"), arguments: [recipient.nodeId])
            ?? 0
        let sequence = current + 1
        lastSequence[recipient.nodeId] = sequence
        try db.cachedStatement(sql: """
            INSERT INTO delivery (node_id, sequence, message_id, redacted_payload, redacted_paths, revocation_reason)
            VALUES (?, ?, ?, ?, ?, ?)
            """).execute(arguments: [recipient.nodeId, sequence, messageId, nil,
                             recipient.redactedPaths.isEmpty ? nil : recipient.redactedPaths.joined(separator: ","),
                             revocationReason])
        return UInt64(sequence)
    }

    /// Appends audit lines, up to 256 rows in one statement (far below SQLite's limit on
    /// parameters).
    func record(_ entries: [AuditEntry], of messageId: String) throws {
        for start in stride(from: 0, to: entries.count, by: 256) {
            let chunk = entries[start..<min(entries.count, start + 256)]
            let rows = Array(repeating: "(?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            var arguments = StatementArguments()
            for entry in chunk {
                arguments += [messageId, entry.nodeId, entry.outcome.rawValue, entry.rule?.rawValue, entry.reason, now.timeIntervalSince1970]
            }
            try db.cachedStatement(sql: "INSERT INTO audit (message_id, node_id, outcome, rule, reason, recorded_at) VALUES \(rows)")
                .execute(arguments: arguments)
        }
    }

    /// Removes each node's queue entries up to and including its acknowledged sequence.
    func acknowledge(_ acknowledgements: [String: UInt64]) throws {
        for (nodeId, sequence) in acknowledgements {
            try db.cachedStatement(sql: "DELETE FROM delivery WHERE node_id = ? AND sequence <= ?")
                .execute(arguments: [nodeId, Int64(bitPattern: sequence)])
        }
    }

    /// Writes the sequences handed out; the transaction is complete after it.
    func finish() throws {
        for (nodeId, sequence) in lastSequence {
            try db.cachedStatement(sql: """
                INSERT INTO recipient (node_id, last_sequence) VALUES (?, ?)
                ON CONFLICT (node_id) DO UPDATE SET last_sequence = excluded.last_sequence
                """).execute(arguments: [nodeId, sequence])
        }
    }
}
