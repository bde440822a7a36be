import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// The broker's durable store (SQLite, WAL): every accepted publication once, and one delivery
/// queue entry per recipient with that recipient's own increasing sequence number. A
/// publication and its queue entries are committed in one transaction, and many publications
/// share a transaction (group commit); nothing is acknowledged before its commit.
public final class BrokerStore: CheckedStoreFile, Sendable {
    public var path: String { database.path }
    let database: StoreDatabase

    /// Opens (and when writable, creates) the store at `path`; `.readOnly` for inspection.
    public required init(path: String, access: StoreAccess = .readWrite) throws(StoreError) {
        database = try StoreDatabase(path: path, schema: Self.schema, access: access)
    }

    /// The store's schema. `message` holds every accepted publication once: the publisher's
    /// signed envelope bytes, the signed payload and the serialized Proof with every disclosure
    /// (PROTOCOL.md 7.2), the recipient count a resent publication is acknowledged with (that of
    /// its first storing, whatever the registry or the date say later: PROTOCOL.md 5.3) and,
    /// once revoked, the originator's signed Revocation, forwarded as it is (5.5). `delivery` is
    /// every node's queue; `audit` says who got what and why. `registry_audit` records every
    /// registry the broker applied or refused and what changed for which node, `rejudge` the
    /// queue entries still to be judged again after a change (4.5). Retention removes a message
    /// once nothing of it is queued, and `chain_link` keeps the hash the row after it links to, so
    /// the chain of what remains still verifies.
    static let schema = StoreSchema(kind: "broker store", applicationId: 0x4354_4253, version: 1, sql: """
        CREATE TABLE message (
            message_id TEXT PRIMARY KEY,
            originator TEXT NOT NULL,
            type TEXT NOT NULL,
            classification TEXT NOT NULL,
            received_at REAL NOT NULL,
            envelope BLOB NOT NULL,
            payload BLOB NOT NULL,
            hash BLOB NOT NULL,
            expires_at REAL,
            revoked_at REAL,
            revoke_reason TEXT,
            recipient_count INTEGER NOT NULL,
            proof BLOB NOT NULL,
            revocation BLOB,
            CHECK ((revoked_at IS NULL) = (revocation IS NULL))
        );
        CREATE TABLE recipient (
            node_id TEXT PRIMARY KEY,
            last_sequence INTEGER NOT NULL
        );
        CREATE TABLE delivery (
            node_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            message_id TEXT NOT NULL REFERENCES message(message_id),
            redacted_payload BLOB,
            redacted_paths TEXT,
            revocation_reason TEXT,
            PRIMARY KEY (node_id, sequence)
        ) WITHOUT ROWID;
        CREATE INDEX delivery_message ON delivery(message_id);
        CREATE TABLE audit (
            message_id TEXT NOT NULL REFERENCES message(message_id),
            node_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            rule TEXT,
            reason TEXT NOT NULL,
            recorded_at REAL NOT NULL
        );
        CREATE INDEX audit_message ON audit(message_id);
        CREATE TABLE registry_audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            reload INTEGER NOT NULL,
            recorded_at REAL NOT NULL,
            source TEXT NOT NULL,
            outcome TEXT NOT NULL,
            node_id TEXT,
            detail TEXT NOT NULL,
            registry BLOB
        );
        CREATE TABLE rejudge (
            node_id TEXT PRIMARY KEY,
            through INTEGER NOT NULL
        );
        CREATE TABLE chain_link (
            position INTEGER PRIMARY KEY,
            previous_hash BLOB NOT NULL
        );
        CREATE TABLE retention_total (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            removed INTEGER NOT NULL
        );
        """)

    /// Stores publications and their queue entries in one transaction: the signed bytes and proof
    /// once, and per recipient the restricted paths whose disclosures it must not get. Cumulative
    /// acknowledgements (node id: sequence) ride along in the same transaction.
    public func store(_ publications: [Publication], acknowledging acknowledgements: [String: UInt64] = [:],
                      now: Date = Date()) throws(StoreError) -> [StoreOutcome] {
        try database.write { db in
            var write = BrokerWrite(db, now: now)
            try write.acknowledge(acknowledgements)
            let outcomes = try publications.map { publication in try write.store(publication) }
            try write.finish()
            return outcomes
        }
    }

    /// The audit trail of one message: for every node, whether it received the message (whole
    /// or redacted) or was refused, by which rule, and when. Never the message's content.
    public func audit(messageId: String) throws(StoreError) -> AuditTrail? {
        try database.read { db in
            guard let message = try Row.fetchOne(db, sql: "SELECT originator, type, classification, received_at FROM message WHERE message_id = ?",
                                                 arguments: [messageId]) else { return nil }
            let entries = try AuditEntry.fetchAll(db, sql: "SELECT * FROM audit WHERE message_id = ? ORDER BY rowid", arguments: [messageId])
            return try AuditTrail(messageId: messageId, originator: message.decode(forColumn: "originator"),
                                  typeName: message.decode(forColumn: "type"), classificationName: message.decode(forColumn: "classification"),
                                  storedAt: Date(timeIntervalSince1970: message.decode(forColumn: "received_at")), entries: entries)
        }
    }

    /// Queues for `nodeId` every retained message that `entitle` grants it (the policy as it is
    /// now) and that is not queued for it already, oldest first, in one transaction. Returns how
    /// many were queued. For nodes that join late and ask for their backlog.
    public func queueBacklog(for nodeId: String,
                             entitle: (_ envelope: Data, _ payload: Data) -> Publication.Recipient?) throws(StoreError) -> Int {
        try database.write { db in
            var queued = 0
            var write = BrokerWrite(db, now: Date())
            // What is queued for the node already, read once by its key: a NOT EXISTS per message
            // searched the node's whole queue for each one (quadratic: a node away for 20,000
            // messages took minutes to say Hello).
            let alreadyQueued = try Set(String.fetchCursor(
                db.cachedStatement(sql: "SELECT message_id FROM delivery WHERE node_id = ?"), arguments: [nodeId]))
            // A cursor, not an array: the store may hold millions of messages.
            let rows = try Row.fetchCursor(db.cachedStatement(sql: """
                SELECT message_id, envelope, payload FROM message WHERE revoked_at IS NULL ORDER BY rowid
                """))
            while let row = try rows.next() {
                let messageId: String = try row.decode(forColumn: "message_id")
                guard !alreadyQueued.contains(messageId),
                      let recipient = entitle(try row.decode(forColumn: "envelope"), try row.decode(forColumn: "payload")), recipient.nodeId == nodeId else { continue }
                _ = try write.queue(messageId, for: recipient)
                let outcome: AuditEntry.Outcome = recipient.redactedPaths.isEmpty ? .delivered : .redacted
                try write.record([AuditEntry(nodeId: nodeId, outcome: outcome,
                                             rule: recipient.redactedPaths.isEmpty ? nil : .policy(.memberStateRestriction),
                                             reason: "backlog of a late joiner")], of: messageId)
                queued += 1
            }
            try write.finish()
            return queued
        }
    }

    /// Said when opening found that the last write had been torn by a crash (and dropped).
    public var recovery: String? { database.recovery }

    /// Checks the whole store: SQLite's integrity check, then the hash chain of stored
    /// messages, reporting the first broken link. Never crashes on a damaged file.
    public func verify() throws(StoreError) -> ChainReport {
        try database.read { db in BrokerChain.verify(db, recovery: database.recovery) }
    }

    /// What the broker checks before it writes to its store (`ChainVerifier.startProblem`).
    /// Throws `StoreError.damaged` naming the file and what helps.
    public func checkAtStart() throws(StoreError) -> String? {
        let (problem, skipped) = try database.read { db in
            ChainVerifier.startCheck(db, table: "message", what: "message", schema: Self.schema,
                                     full: { db in BrokerChain.verify(db, recovery: nil) }, lastTwo: BrokerChain.lastTwo,
                                     decode: BrokerChain.chainRow)
        }
        guard let problem else { return skipped }
        throw StoreError(.damaged, "broker store \(path) is damaged: \(problem). Nothing was written to it. "
                         + "See `ctbus journal verify --broker-store \(path)`, and restore the store from a backup "
                         + "(docs/operations.md, Damaged files)")
    }

    /// Queue entries of `nodeId` after `sequence`, in order, at most `limit`.
    public func pendingDeliveries(for nodeId: String, after sequence: UInt64, limit: Int) throws(StoreError) -> [QueuedDelivery] {
        try database.read { db in
            try QueuedDelivery.fetchAll(db.cachedStatement(sql: """
                SELECT d.sequence, d.message_id, m.envelope, coalesce(d.redacted_payload, m.payload) AS payload, d.redacted_paths,
                       d.revocation_reason, m.originator, m.expires_at, m.proof, m.revocation
                FROM delivery d JOIN message m ON m.message_id = d.message_id
                WHERE d.node_id = ? AND d.sequence > ? ORDER BY d.sequence LIMIT ?
                """), arguments: [nodeId, Int64(bitPattern: sequence), limit])
        }
    }

    /// Removes the queue entries of `nodeId` up to and including `sequence` (cumulative ack).
    /// Returns how many were removed.
    @discardableResult
    public func acknowledge(nodeId: String, through sequence: UInt64) throws(StoreError) -> Int {
        try database.write { db in
            try db.execute(sql: "DELETE FROM delivery WHERE node_id = ? AND sequence <= ?",
                           arguments: [nodeId, Int64(bitPattern: sequence)])
            return db.changesCount
        }
    }

    /// Revokes a message on behalf of `originator`: marks it, keeps `revocation` (its signed
    /// statement, serialized) to forward, and queues the revocation for every node the audit
    /// trail shows it went to, in one transaction.
    public func revoke(messageId: String, by originator: String, reason: String, revocation: Data,
                       now: Date = Date()) throws(StoreError) -> RevokeOutcome {
        try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT originator, revoked_at FROM message WHERE message_id = ?",
                                             arguments: [messageId]) else { return .notFound }
            guard try row.decode(forColumn: "originator") == originator else { return .notOriginator }
            if try row.decode(Double?.self, forColumn: "revoked_at") != nil { return .alreadyRevoked }
            try db.execute(sql: "UPDATE message SET revoked_at = ?, revoke_reason = ?, revocation = ? WHERE message_id = ?",
                           arguments: [now.timeIntervalSince1970, reason, revocation, messageId])
            // The nodes that hold it: whose latest line is a delivery (not one whose queued copy was
            // later withdrawn, dropped or expired: a refusal after the delivery line).
            let recipients = try String.fetchAll(db, sql: """
                SELECT node_id FROM audit a WHERE message_id = ? AND outcome IN ('delivered', 'redacted')
                  AND NOT EXISTS (SELECT 1 FROM audit b WHERE b.message_id = a.message_id AND b.node_id = a.node_id
                                  AND b.outcome = 'refused' AND b.rowid > a.rowid)
                GROUP BY node_id ORDER BY node_id
                """, arguments: [messageId])
            var write = BrokerWrite(db, now: now)
            for node in recipients {
                _ = try write.queue(messageId, for: Publication.Recipient(nodeId: node), revocationReason: reason)
            }
            try write.record(recipients.map { AuditEntry(nodeId: $0, outcome: .revoked, rule: nil, reason: "revoked by \(originator): \(reason)") },
                             of: messageId)
            try write.finish()
            return .revoked(recipients: recipients.count)
        }
    }

    /// Removes one queue entry without delivering it (it expired) and records why.
    public func discard(nodeId: String, sequence: UInt64, messageId: String, audit: AuditEntry) throws(StoreError) {
        try database.write { db in
            try db.cachedStatement(sql: "DELETE FROM delivery WHERE node_id = ? AND sequence = ?").execute(arguments: [nodeId, Int64(bitPattern: sequence)])
            try BrokerWrite(db, now: Date()).record([audit], of: messageId)
        }
    }

    /// Records cumulative acknowledgements of several nodes in one transaction.
    public func acknowledge(_ acknowledgements: [String: UInt64]) throws(StoreError) {
        try database.write { db in try BrokerWrite(db, now: Date()).acknowledge(acknowledgements) }
    }

    /// How many deliveries wait for `nodeId`.
    public func queueDepth(for nodeId: String) throws(StoreError) -> Int {
        try database.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM delivery WHERE node_id = ?", arguments: [nodeId]) ?? 0
        }
    }

    /// Per node, the deliveries not acknowledged yet and when the oldest of their messages
    /// arrived. A read transaction: in WAL mode it never waits for the broker's writes, nor
    /// they for it (the metrics and status pages read it while the broker works).
    public func queueFigures() throws(StoreError) -> [String: (depth: Int, oldest: Date?)] {
        try database.read { db in
            var figures: [String: (depth: Int, oldest: Date?)] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT delivery.node_id, count(*) AS depth, min(message.received_at) AS oldest FROM delivery
                JOIN message ON message.message_id = delivery.message_id GROUP BY delivery.node_id
                """) {
                let oldest = try row.decode(Double?.self, forColumn: "oldest").map(Date.init(timeIntervalSince1970:))
                figures[try row.decode(String.self, forColumn: "node_id")] = (try row.decode(Int.self, forColumn: "depth"), oldest)
            }
            return figures
        }
    }

    /// How many publications the store holds.
    public func messageCount() throws(StoreError) -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM message") ?? 0 }
    }

    /// One bounded retention pass (`BrokerRetention`); call again while the report is not empty.
    public func compact(policy: RetentionPolicy, registryNodes: Set<String>, now: Date = Date(),
                        batch: Int = 500) throws(StoreError) -> CompactionReport {
        try BrokerRetention(database: database).compact(policy: policy, registryNodes: registryNodes, now: now, batch: batch)
    }

    /// The file's pages: all of them, and those free for reuse (SQLite reuses freed pages before
    /// it grows the file).
    public func pageFigures() throws(StoreError) -> (pages: Int, free: Int) {
        try database.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
        }
    }

    /// How many messages retention removed, in all (`messageCount` says how many are held).
    public func removedByRetention() throws(StoreError) -> Int {
        try database.read { db in try BrokerRetention.removedTotal(in: db) }
    }
}

/// A publication the broker accepted, ready to store.
public struct Publication: Sendable {
    public struct Recipient: Sendable {
        public let nodeId: String
        /// The restricted paths whose disclosures this recipient does not get (partial Member
        /// State restriction); empty: it gets the whole message.
        public let redactedPaths: [String]

        public init(nodeId: String, redactedPaths: [String] = []) {
            self.nodeId = nodeId
            self.redactedPaths = redactedPaths
        }
    }

    public let messageId: String
    public let originator: String
    public let typeName: String
    public let classificationName: String
    public let expiresAt: Date?
    /// The envelope bytes the publisher signed, forwarded unchanged.
    public let envelope: Data
    /// The signed payload (restricted fields cleared).
    public let payload: Data
    /// The serialized Proof with every disclosure.
    public let proof: Data
    public let recipients: [Recipient]
    /// The decision for every node of the registry, for the audit trail.
    public let audit: [AuditEntry]

    /// `envelope` is the decoded form of `signedEnvelope`, for the columns the store indexes.
    public init(envelope: Envelope, signedEnvelope: Data, payload: Data, proof: Data, recipients: [Recipient], audit: [AuditEntry] = []) {
        messageId = envelope.messageID
        originator = envelope.originator
        typeName = envelope.type.name
        classificationName = envelope.handling.classification.name
        expiresAt = envelope.hasExpiresAt ? envelope.expiresAt.date : nil
        self.envelope = signedEnvelope
        self.payload = payload
        self.proof = proof
        self.recipients = recipients
        self.audit = audit
    }
}

/// A queue entry on its way to a node.
public struct QueuedDelivery: Sendable {
    public let sequence: UInt64
    public let messageId: String
    public let envelope: Data
    public let payload: Data
    public let redactedPaths: [String]
    /// Set when this entry carries the revocation of the message, not the message.
    public let revocationReason: String?
    public let originator: String
    /// The message's expiry (envelope.expires_at), if it has one.
    public let expiresAt: Date?
    /// The serialized Proof with every disclosure.
    public let proof: Data
    /// With `revocationReason`: the originator's signed Revocation, serialized.
    public let revocation: Data?
}

extension QueuedDelivery: FetchableRecord {
    /// Reads a row of `BrokerStore.pendingDeliveries`, whose payload column is this node's copy.
    public init(row: Row) throws {
        sequence = UInt64(bitPattern: try row.decode(Int64.self, forColumn: "sequence"))
        messageId = try row.decode(forColumn: "message_id")
        envelope = try row.decode(forColumn: "envelope")
        payload = try row.decode(forColumn: "payload")
        redactedPaths = try row.decode(String?.self, forColumn: "redacted_paths")?.split(separator: ",").map(String.init) ?? []
        revocationReason = try row.decode(forColumn: "revocation_reason")
        originator = try row.decode(forColumn: "originator")
        expiresAt = try row.decode(Double?.self, forColumn: "expires_at").map(Date.init(timeIntervalSince1970:))
        proof = try row.decode(forColumn: "proof")
        revocation = try row.decode(forColumn: "revocation")
    }
}

/// One line of a message's audit trail.
public struct AuditEntry: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case delivered
        /// Delivered with fields removed (partial Member State restriction).
        case redacted
        case refused
        /// The originator revoked the message; the node is told.
        case revoked
        /// This node published a different message under the stored id (CONFLICTING_DUPLICATE).
        case conflict
    }

    public let nodeId: String
    public let outcome: Outcome
    /// The rule that refused the node (`clearance`, `releasability`, ...), redacted its copy
    /// (`member-state-restriction`) or refused a conflicting duplicate; nil when delivered whole.
    public let rule: AuditRule?
    public let reason: String
    public let recordedAt: Date

    public init(nodeId: String, outcome: Outcome, rule: AuditRule?, reason: String, recordedAt: Date = Date()) {
        self.nodeId = nodeId
        self.outcome = outcome
        self.rule = rule
        self.reason = reason
        self.recordedAt = recordedAt
    }
}

extension AuditEntry: FetchableRecord {
    /// Reads a row of the `audit` table; an outcome or rule this build does not know is damage.
    public init(row: Row) throws {
        let messageId: String = try row.decode(forColumn: "message_id")
        let outcomeName: String = try row.decode(forColumn: "outcome")
        guard let outcome = Outcome(rawValue: outcomeName) else {
            throw StoreError(.damaged, "an audit line of \(messageId) has an outcome this version does not know")
        }
        let rule = try row.decode(String?.self, forColumn: "rule").map { name throws(StoreError) in
            guard let rule = AuditRule(rawValue: name) else {
                throw StoreError(.damaged, "an audit line of \(messageId) names a rule this version does not know")
            }
            return rule
        }
        self.init(nodeId: try row.decode(forColumn: "node_id"), outcome: outcome, rule: rule, reason: try row.decode(forColumn: "reason"),
                  recordedAt: Date(timeIntervalSince1970: try row.decode(forColumn: "recorded_at")))
    }
}

/// Who received a message and who was refused, by which rule.
public struct AuditTrail: Sendable {
    public let messageId: String
    public let originator: String
    public let typeName: String
    public let classificationName: String
    public let storedAt: Date
    public let entries: [AuditEntry]
}
