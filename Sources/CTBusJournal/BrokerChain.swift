import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// The broker store's hash chain: what each message's link covers, and how `verify` and the
/// start-up check read the chain back. Retention removes messages from the middle; the row after
/// a removed one keeps the hash it links to in `chain_link`.
enum BrokerChain {
    /// The columns of a message row the chain reads, with the link a removed predecessor left.
    static let select = """
        SELECT m.rowid AS position, m.message_id, m.originator, m.envelope, m.payload, m.hash, m.proof, l.previous_hash
        """
    static let from = "FROM message m LEFT JOIN chain_link l ON l.position = m.rowid"

    /// What a message's link covers: the signed bytes as published, and who published them.
    static func chainFields(messageId: String, originator: String, envelope: Data, payload: Data, proof: Data) -> [Data] {
        [Data(messageId.utf8), Data(originator.utf8), envelope, payload, proof]
    }

    /// The hash the next stored message links to.
    static func lastHash(in db: Database) throws -> Data {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT hash FROM message ORDER BY rowid DESC LIMIT 1")) ?? HashChain.genesis
    }

    /// Checks the whole chain and every other table (`BrokerStore.verify`).
    static func verify(_ db: Database, recovery: String?) -> ChainReport {
        var report = ChainVerifier.verify(
            db, sql: "\(select), m.type, m.classification, m.received_at, m.expires_at, m.revoked_at, m.revoke_reason \(from) ORDER BY m.rowid",
            recovery: recovery, what: "message", schema: BrokerStore.schema, decode: checkedChainRow, otherTables: checkOtherTables)
        report.removedByRetention = (try? BrokerRetention.removedTotal(in: db)) ?? 0
        return report
    }

    /// The last two links, for the check at start.
    static let lastTwo = "\(select) \(from) ORDER BY m.rowid DESC LIMIT 2"

    static func chainRow(_ row: Row) throws -> ChainRow {
        let messageId: String = try row.decode(forColumn: "message_id")
        return ChainRow(position: try row.decode(forColumn: "position"), messageId: messageId, fields: chainFields(
            messageId: messageId, originator: try row.decode(forColumn: "originator"), envelope: try row.decode(forColumn: "envelope"),
            payload: try row.decode(forColumn: "payload"), proof: try row.decode(forColumn: "proof")),
            hash: try row.decode(forColumn: "hash"), linksTo: try row.decode(Data?.self, forColumn: "previous_hash"))
    }

    /// The chain's view of a message row, after reading the rest of the row as the broker does
    /// and checking that the columns copied from the envelope (type, classification, expiry:
    /// `audit` shows and retention reads them) still say what the hashed envelope says.
    static func checkedChainRow(_ row: Row) throws -> ChainRow {
        let type: String = try row.decode(forColumn: "type")
        let classification: String = try row.decode(forColumn: "classification")
        let expiresAt = try row.decode(Double?.self, forColumn: "expires_at")
        _ = try (row.decode(Double.self, forColumn: "received_at"), row.decode(Double?.self, forColumn: "revoked_at"),
                 row.decode(String?.self, forColumn: "revoke_reason"))
        let item = try chainRow(row)
        if let envelope = try? Envelope(serializedBytes: try row.decode(Data.self, forColumn: "envelope")) {
            let expiry = envelope.hasExpiresAt ? envelope.expiresAt.date : nil
            let disagreeing = [("type", type == envelope.type.name),
                               ("classification", classification == envelope.handling.classification.name),
                               ("expires_at", expiry.map { expected in expiresAt.map { Date(timeIntervalSince1970: $0).isStoredTime(of: expected) } ?? false } ?? (expiresAt == nil))]
                .filter { !$0.1 }.map(\.0)
            guard disagreeing.isEmpty else {
                throw StoreError(.damaged, "message \(item.position): its \(disagreeing.joined(separator: ", ")) disagree with its envelope")
            }
        }
        return item
    }
    /// Reads the delivery queues, the audit trail and the sequence counters as the broker and
    /// `ctbus audit` read them.
    static func checkOtherTables(_ db: Database) -> [String] {
        [
            ChainVerifier.unreadable("delivery queue", sql: "SELECT * FROM delivery", in: db) { row in
                _ = try (row.decode(String.self, forColumn: "node_id"), row.decode(Int64.self, forColumn: "sequence"),
                         row.decode(String.self, forColumn: "message_id"), row.decode(Data?.self, forColumn: "redacted_payload"),
                         row.decode(String?.self, forColumn: "redacted_paths"), row.decode(String?.self, forColumn: "revocation_reason"))
            },
            ChainVerifier.unreadable("audit trail", sql: "SELECT * FROM audit", in: db) { row in
                _ = try (row.decode(String.self, forColumn: "message_id"), row.decode(String.self, forColumn: "node_id"),
                         row.decode(String.self, forColumn: "outcome"), row.decode(String?.self, forColumn: "rule"),
                         row.decode(String.self, forColumn: "reason"), row.decode(Double.self, forColumn: "recorded_at"))
            },
            ChainVerifier.unreadable("sequence counters", sql: "SELECT * FROM recipient", in: db) { row in
                _ = try (row.decode(String.self, forColumn: "node_id"), row.decode(Int64.self, forColumn: "last_sequence"))
            },
            ChainVerifier.unreadable("registry audit", sql: "SELECT * FROM registry_audit", in: db) { row in
                _ = try (row.decode(Int64.self, forColumn: "seq"), row.decode(Int64.self, forColumn: "reload"),
                         row.decode(Double.self, forColumn: "recorded_at"), row.decode(String.self, forColumn: "source"),
                         row.decode(String.self, forColumn: "outcome"), row.decode(String?.self, forColumn: "node_id"),
                         row.decode(String.self, forColumn: "detail"), row.decode(Data?.self, forColumn: "registry"))
            },
            ChainVerifier.unreadable("chain links", sql: "SELECT * FROM chain_link", in: db) { row in
                _ = try (row.decode(Int64.self, forColumn: "position"), row.decode(Data.self, forColumn: "previous_hash"))
            },
            ChainVerifier.unreadable("retention total", sql: "SELECT * FROM retention_total", in: db) { row in
                _ = try row.decode(Int.self, forColumn: "removed")
            },
        ].compactMap { $0 }
    }
}
