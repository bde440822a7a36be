import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// How a node journal's entries are written into and read from its hash chain: each entry is
/// linked to the one before it, over the fields that say what the message was and how it came.
enum JournalChain {
    /// Journals a publication as sent and queues it in the outbox.
    static func insertSent(_ db: Database, _ record: JournalRecord, after previous: inout Data, now: Date) throws {
        try insert(db, direction: .sent, record, sequence: nil, after: &previous, now: now)
        try db.cachedStatement(sql: "INSERT INTO outbox (message_id, queued_at) VALUES (?, ?)")
            .execute(arguments: [record.envelope.messageID, now.timeIntervalSince1970])
    }

    /// The hash of the journal's last entry, which the next entry links to.
    static func lastHash(in db: Database) throws -> Data {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM entry ORDER BY position DESC LIMIT 1")) ?? HashChain.genesis
    }

    /// Appends an entry linked to `previous` (the last entry's hash, read once per transaction
    /// and carried along), which then becomes this entry's hash.
    static func insert(_ db: Database, direction: Direction, _ record: JournalRecord,
                       sequence: UInt64?, redactedPaths: [String] = [], after previous: inout Data, now: Date) throws {
        let envelope = record.envelope
        let redacted = redactedPaths.joined(separator: ",")
        let hash = HashChain.link(previous: previous, fields: chainFields(
            messageId: envelope.messageID, direction: direction.rawValue, envelope: record.envelopeBytes, payload: record.payload,
            redacted: redacted, proof: record.proof, signedPayload: record.signedPayload, contentKeys: record.contentKeys))
        try db.cachedStatement(sql: """
            INSERT INTO entry (message_id, direction, type, originator, classification, subject, created_at,
                               recorded_at, acknowledged_at, broker_sequence, envelope, payload, redacted_paths, hash,
                               proof, signed_payload, content_keys)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [
                envelope.messageID, direction.rawValue, envelope.type.name, envelope.originator,
                envelope.handling.classification.name, envelope.subject,
                envelope.createdAt.date.timeIntervalSince1970, now.timeIntervalSince1970,
                direction == .received ? now.timeIntervalSince1970 : nil,
                sequence.map { Int64(bitPattern: $0) }, record.envelopeBytes, record.payload,
                redacted.isEmpty ? nil : redacted, hash, record.proof, record.signedPayload, record.contentKeys,
            ])
        previous = hash
    }

    /// What an entry's hash covers: everything that says what the message was and how it came,
    /// its proof included. Bookkeeping that changes later (acknowledgement time, revocation) is
    /// outside the chain; a revocation carries its own signature.
    static func chainFields(messageId: String, direction: String, envelope: Data, payload: Data, redacted: String,
                            proof: Data, signedPayload: Data?, contentKeys: Data?) -> [Data] {
        [Data(messageId.utf8), Data(direction.utf8), envelope, payload, Data(redacted.utf8), proof, signedPayload ?? Data(), contentKeys ?? Data()]
    }

    static func chainRow(_ row: Row) throws -> ChainRow {
        let messageId = try row.decode(String.self, forColumn: "message_id")
        return ChainRow(position: try row.decode(forColumn: "position"), messageId: messageId, fields: chainFields(
            messageId: messageId, direction: try row.decode(forColumn: "direction"), envelope: try row.decode(forColumn: "envelope"),
            payload: try row.decode(forColumn: "payload"), redacted: try row.decode(String?.self, forColumn: "redacted_paths") ?? "",
            proof: try row.decode(forColumn: "proof"), signedPayload: try row.decode(forColumn: "signed_payload"),
            contentKeys: try row.decode(forColumn: "content_keys")),
            hash: try row.decode(forColumn: "hash"))
    }

    /// The chain's view of a whole entry row, after checking that the row reads as every command
    /// reads it and that the columns copied from the envelope (which the chain does not cover)
    /// still say what the envelope says.
    static func checkedChainRow(_ row: Row) throws -> ChainRow {
        let item = try chainRow(row)
        let entry = try JournalEntry(row: row)
        let envelope = try entry.envelope()
        guard Direction(rawValue: try row.decode(forColumn: "direction")) != nil else {
            throw StoreError(.damaged, "entry \(entry.position): its direction is neither sent nor received")
        }
        let disagreeing = [("message_id", envelope.messageID == entry.messageId), ("type", envelope.type.name == entry.typeName),
                           ("subject", envelope.subject == entry.subject), ("originator", envelope.originator == entry.originator),
                           ("classification", envelope.handling.classification.name == entry.classificationName),
                           ("created_at", entry.createdAt.isStoredTime(of: envelope.createdAt.date))]
            .filter { !$0.1 }.map(\.0)
        guard disagreeing.isEmpty else {
            throw StoreError(.damaged, "entry \(entry.position): its \(disagreeing.joined(separator: ", ")) disagree with its envelope")
        }
        return item
    }
}
