import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

extension NodeJournal {
    /// Journals deliveries in one transaction (one fsync for the batch); returns how many were
    /// new. Duplicates (a message id already journaled) are skipped.
    @discardableResult
    public func recordDeliveries(_ deliveries: [IncomingDelivery], now: Date = Date()) throws(StoreError) -> Int {
        try database.write { db in
            var fresh = 0
            var previous = try Self.lastHash(in: db)
            for delivery in deliveries {
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM entry WHERE message_id = ?"),
                                     arguments: [delivery.record.envelope.messageID]) == true {
                    continue
                }
                try Self.insert(db, direction: .received, delivery.record, sequence: delivery.sequence,
                                redactedPaths: delivery.redactedPaths, after: &previous, now: now)
                fresh += 1
            }
            return fresh
        }
    }

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
}
