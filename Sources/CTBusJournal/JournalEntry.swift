import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// A message as the journal keeps it: the signed bytes, the payload as this node holds it and
/// the author's proof (PROTOCOL.md 7.2).
public struct JournalRecord: Sendable {
    /// `envelopeBytes` decoded, for the columns the journal indexes.
    public let envelope: Envelope
    /// The exact envelope bytes the originator signed.
    public let envelopeBytes: Data
    /// The payload as this node holds it: the signed payload with the disclosures it has put back.
    public let payload: Data
    /// The signed payload, when it differs from `payload` (a partial restriction cleared fields).
    public let signedPayload: Data?
    /// The serialized Proof, with the disclosures this node holds (a sealed message's travel
    /// sealed: none here).
    public let proof: Data
    /// A sealed message's content keys as opened here (32 bytes each: the payload's, then the
    /// disclosures'), so that the journal's copy can be checked against the sealed bytes signed.
    public let contentKeys: Data?

    public init(envelope: Envelope, envelopeBytes: Data, payload: Data, signedPayload: Data?, proof: Data, contentKeys: Data? = nil) {
        self.envelope = envelope
        self.envelopeBytes = envelopeBytes
        self.payload = payload
        self.signedPayload = signedPayload == payload ? nil : signedPayload
        self.proof = proof
        self.contentKeys = contentKeys
    }
}

/// A delivery on its way into the journal, checked.
public struct IncomingDelivery: Sendable {
    public let record: JournalRecord
    public let sequence: UInt64
    /// The restricted paths whose values this node did not get.
    public let redactedPaths: [String]

    public init(_ record: JournalRecord, sequence: UInt64, redactedPaths: [String] = []) {
        self.record = record
        self.sequence = sequence
        self.redactedPaths = redactedPaths
    }
}

/// A publication waiting for the broker's acknowledgement, as the bytes to send.
public struct OutboxItem: Sendable {
    /// The outbox's own order: later publications have higher numbers.
    public let seq: Int64
    public let messageId: String
    /// The signed envelope bytes.
    public let envelope: Data
    /// The signed payload.
    public let payload: Data
    /// The serialized Proof.
    public let proof: Data
}

extension OutboxItem: FetchableRecord {
    /// Reads a row of `JournalOutbox.items`, whose payload column is the signed payload.
    public init(row: Row) throws {
        seq = try row.decode(forColumn: "seq")
        messageId = try row.decode(forColumn: "message_id")
        envelope = try row.decode(forColumn: "envelope")
        payload = try row.decode(forColumn: "payload")
        proof = try row.decode(forColumn: "proof")
    }
}

/// Where a publication stands in the publishing node's journal.
public enum PublicationStatus: Sendable, Equatable {
    /// In the outbox, not acknowledged yet.
    case queued
    /// Stored by the broker.
    case acknowledged
    /// The broker refused it with this error code; it will not be sent again.
    case refused(code: String, detail: String)
}

public enum Direction: String, Sendable, CaseIterable {
    case sent, received
}

/// Which journal entries to list; nil fields do not filter.
public struct JournalFilter: Sendable {
    public var type: MessageType?
    public var originator: String?
    /// The Member State (or region) the message is about.
    public var subject: String?
    public var classification: Classification?
    public var direction: Direction?
    /// Created at or after.
    public var since: Date?
    /// Created before.
    public var until: Date?
    /// Newest first (the pages of a listing) instead of journal order.
    public var newestFirst = false
    /// Only entries before this position (the next page of a newest-first listing).
    public var before: Int64?
    /// At most this many entries.
    public var limit: Int?
    /// Only entries after this position.
    public var after: Int64?
    /// Full-text search: an FTS5 query (`JournalSearch.query` makes one from a person's
    /// words); only entries indexed so far can match (`JournalSearch.status`).
    public var words: String?
    /// Tagged with this theme (an envelope thematic tag or a payload thematic area); only
    /// entries indexed so far can match.
    public var theme: String?
    /// Only entries marked at most this (a console's clearance).
    public var atMost: Classification?

    /// The classification names marked at most `ceiling`, as the `classification` columns hold them.
    static func names(atMost ceiling: Classification) -> [String] {
        Classification.allCases.filter { $0 != .unspecified && $0.rawValue <= ceiling.rawValue }.map(\.name)
    }

    public init(type: MessageType? = nil, originator: String? = nil, subject: String? = nil,
                classification: Classification? = nil, direction: Direction? = nil,
                since: Date? = nil, until: Date? = nil, newestFirst: Bool = false, before: Int64? = nil, limit: Int? = nil) {
        self.type = type
        self.originator = originator
        self.subject = subject
        self.classification = classification
        self.direction = direction
        self.since = since
        self.until = until
        self.newestFirst = newestFirst
        self.before = before
        self.limit = limit
    }

    public init(type: MessageType? = nil, after: Int64) {
        self.type = type
        self.after = after
    }
}

/// One message in a journal.
public struct JournalEntry: Sendable, FetchableRecord {
    public let position: Int64
    public let messageId: String
    public let direction: Direction
    public let typeName: String
    public let originator: String
    public let classificationName: String
    public let subject: String
    public let createdAt: Date
    public let recordedAt: Date
    public let acknowledgedAt: Date?
    public let brokerSequence: Int64?
    /// The envelope's wire bytes as journaled.
    public let envelopeBytes: Data
    /// The payload's wire bytes, exactly as published (or as redacted for this node).
    public let payload: Data
    /// Fields the broker removed for this node under a partial Member State restriction (the
    /// journal records that a redaction happened and which paths, never the removed values).
    public let redactedPaths: [String]
    /// Set when the originator revoked the message (it stays in the journal, for audit).
    public let revokedAt: Date?
    public let revokeReason: String?
    /// The originator's signed revocation, serialized (nil when not revoked).
    public let revocation: Data?
    /// For a publication of this node the broker refused for good: the error code and detail
    /// (it is not sent again).
    public let refusedCode: String?
    public let refusedDetail: String?
    /// The entry's link in the journal's hash chain.
    public let hash: Data
    /// The author's proof (serialized Proof with the disclosures this node holds).
    public let proof: Data
    /// The payload the signature covers, when it differs from `payload`.
    public let signedPayload: Data?
    /// A sealed message's content keys as opened by this node (`JournalRecord.contentKeys`).
    public let contentKeys: Data?

    /// Decodes a row; a NULL or a value of the wrong type (a damaged file) throws. Fetched as a
    /// record (`JournalEntry.fetchAll`), each column is found through the statement's index of
    /// names; a row copied out of its statement would search its columns by name one by one.
    public init(row: Row) throws {
        position = try row.decode(forColumn: "position")
        messageId = try row.decode(forColumn: "message_id")
        let directionName: String = try row.decode(forColumn: "direction")
        guard let direction = Direction(rawValue: directionName) else {
            throw StoreError(.damaged, "journal entry \(messageId): direction is neither sent nor received")
        }
        self.direction = direction
        typeName = try row.decode(forColumn: "type")
        originator = try row.decode(forColumn: "originator")
        classificationName = try row.decode(forColumn: "classification")
        subject = try row.decode(forColumn: "subject")
        createdAt = Date(timeIntervalSince1970: try row.decode(forColumn: "created_at"))
        recordedAt = Date(timeIntervalSince1970: try row.decode(forColumn: "recorded_at"))
        acknowledgedAt = try row.decode(Double?.self, forColumn: "acknowledged_at").map(Date.init(timeIntervalSince1970:))
        brokerSequence = try row.decode(forColumn: "broker_sequence")
        envelopeBytes = try row.decode(forColumn: "envelope")
        payload = try row.decode(forColumn: "payload")
        redactedPaths = try row.decode(String?.self, forColumn: "redacted_paths")?.split(separator: ",").map(String.init) ?? []
        revokedAt = try row.decode(Double?.self, forColumn: "revoked_at").map(Date.init(timeIntervalSince1970:))
        revokeReason = try row.decode(forColumn: "revoke_reason")
        hash = try row.decode(Data.self, forColumn: "hash")
        refusedCode = try row.decode(String?.self, forColumn: "refused_code")
        refusedDetail = try row.decode(String?.self, forColumn: "refused_detail")
        proof = try row.decode(forColumn: "proof")
        signedPayload = try row.decode(forColumn: "signed_payload")
        contentKeys = try row.decode(forColumn: "content_keys")
        revocation = try row.decode(forColumn: "revocation")
    }

    /// The envelope, decoded.
    public func envelope() throws(BusError) -> Envelope {
        do {
            return try Envelope(serializedBytes: envelopeBytes)
        } catch {
            throw BusError(.malformedFrame, "journal entry \(messageId): envelope does not decode")
        }
    }

    /// The whole message, decoded (for `journal show` and `export`).
    public func message() throws(BusError) -> BusMessage {
        let envelope = try envelope()
        var message = BusMessage()
        message.envelope = envelope
        message.payload = try BusMessage.OneOf_Payload.decode(type: envelope.type, bytes: payload)
        return message
    }
}
