import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

/// Who is told when a message arrives (subscriptions), and what is still to tell them (the
/// notification queue). A delivery's notifications are queued in the transaction that journals
/// it, so that a journaled message is never left untold and a message not journaled is never
/// told. A sending is one notification, or one day's digest of a subscription; it takes its id
/// on its first attempt and keeps it, with the same notifications, across retries and restarts,
/// so a receiver can recognise a sending it got twice (a crash after the relay took it and
/// before the journal said so).
public struct JournalNotifications: Sendable {
    let database: StoreDatabase

    /// Subscriptions that are not removed, oldest first.
    public func subscriptions() throws(StoreError) -> [Subscription] {
        try database.read { db in try Self.subscriptions(db) }
    }

    static func subscriptions(_ db: Database) throws -> [Subscription] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM subscription ORDER BY created_at, id")).map(Subscription.init(row:))
    }

    /// Adds a subscription (a person's, from the console); `.duplicate` when its id is taken.
    public func add(_ subscription: Subscription, now: Date = Date()) throws(StoreError) {
        try database.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM subscription WHERE id = ?", arguments: [subscription.id]) == true {
                throw StoreError(.duplicate, "subscription \(subscription.id) exists")
            }
            try subscription.insert(db, now: now)
        }
    }

    /// Removes a subscription and what it had still to send; what was sent stays in the history.
    /// Returns false when there was no such subscription.
    @discardableResult
    public func remove(id: String) throws(StoreError) -> Bool {
        try database.write { db in
            try db.execute(sql: "DELETE FROM notification WHERE subscription_id = ? AND sent_at IS NULL", arguments: [id])
            try db.execute(sql: "DELETE FROM subscription WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    /// Makes the configuration's subscriptions (ids starting `config:`) exactly `configured`:
    /// new ones added, changed ones replaced, those no longer configured removed with what they
    /// had still to send. The console's subscriptions are untouched.
    public func replaceConfigured(_ configured: [Subscription], now: Date = Date()) throws(StoreError) {
        precondition(configured.allSatisfy { $0.id.hasPrefix(Subscription.configuredPrefix) })
        try database.write { db in
            let existing = try Self.subscriptions(db).filter { $0.id.hasPrefix(Subscription.configuredPrefix) }
            for old in existing where !configured.contains(old) {
                if !configured.contains(where: { $0.id == old.id }) {
                    try db.execute(sql: "DELETE FROM notification WHERE subscription_id = ? AND sent_at IS NULL", arguments: [old.id])
                }
                try db.execute(sql: "DELETE FROM subscription WHERE id = ?", arguments: [old.id])
            }
            for subscription in configured where !existing.contains(subscription) {
                try subscription.insert(db, now: now)
            }
        }
    }

    /// Queues, for a message just journaled at `position`, one notification per subscription
    /// whose filter it passes. Runs inside the transaction that journals the message.
    /// `subscriptions`: read once per transaction.
    static func enqueue(_ db: Database, position: Int64, record: JournalRecord, subscriptions: [Subscription], now: Date) throws {
        guard !subscriptions.isEmpty else { return }
        let payload = subscriptions.contains { $0.filter.needsPayload }
            ? try? BusMessage.OneOf_Payload.decode(type: record.envelope.type, bytes: record.payload) : nil
        let themes = subscriptions.contains { !$0.filter.themes.isEmpty } ? JournalSearch.themes(envelope: record.envelope, payload: payload) : []
        let facts = NotificationFilter.Facts(envelope: record.envelope, payload: payload, themes: themes)
        let insert = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO notification (subscription_id, position, queued_at, due_at) VALUES (?, ?, ?, ?)
            """)
        for subscription in subscriptions where subscription.filter.matches(facts) {
            let due = subscription.mode == .daily ? Subscription.nextDigest(after: now, hour: subscription.digestHour) : now
            try insert.execute(arguments: [subscription.id, position, now.timeIntervalSince1970, due.timeIntervalSince1970])
        }
    }

    /// The sendings due at `now`, at most `limit`: first those already tried (the same
    /// notifications under the same id), then new ones: each immediate notification alone, and
    /// each digest subscription's due notifications together, at most `digestLimit` (a larger
    /// backlog goes in the next sending). Ids are given in the transaction that reads them.
    public func due(now: Date = Date(), limit: Int = 16, digestLimit: Int = 5_000) throws(StoreError) -> [NotificationSending] {
        // Read first: the notifier asks every second, and the node loop should not wait for a
        // write lock taken for nothing.
        let time = now.timeIntervalSince1970
        guard try database.read({ db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM notification WHERE sent_at IS NULL AND failed_at IS NULL AND due_at <= ? LIMIT 1"),
                              arguments: [time]) == true
        }) else { return [] }
        return try database.write { db in
            var ids = try String.fetchAll(db, sql: """
                SELECT sending FROM notification
                WHERE sending IS NOT NULL AND sent_at IS NULL AND failed_at IS NULL AND due_at <= ?
                GROUP BY sending ORDER BY min(due_at) LIMIT ?
                """, arguments: [time, limit])
            let immediate = try Int64.fetchAll(db, sql: """
                SELECT n.id FROM notification n CROSS JOIN subscription s ON s.id = n.subscription_id
                WHERE n.sending IS NULL AND n.sent_at IS NULL AND n.failed_at IS NULL AND n.due_at <= ? AND s.mode = 'immediate'
                ORDER BY n.id LIMIT ?
                """, arguments: [time, limit - ids.count])
            for id in immediate {
                let sending = Self.newSendingId("notification")
                try db.execute(sql: "UPDATE notification SET sending = ? WHERE id = ?", arguments: [sending, id])
                ids.append(sending)
            }
            let digests = try Row.fetchAll(db, sql: """
                SELECT n.subscription_id, min(n.id) AS first FROM notification n CROSS JOIN subscription s ON s.id = n.subscription_id
                WHERE n.sending IS NULL AND n.sent_at IS NULL AND n.failed_at IS NULL AND n.due_at <= ? AND s.mode = 'daily'
                GROUP BY n.subscription_id ORDER BY first LIMIT ?
                """, arguments: [time, limit - ids.count])
            for row in digests {
                let sending = Self.newSendingId("digest")
                try db.execute(sql: """
                    UPDATE notification SET sending = ? WHERE id IN (
                        SELECT id FROM notification WHERE subscription_id = ? AND sending IS NULL AND sent_at IS NULL
                            AND failed_at IS NULL AND due_at <= ? ORDER BY id LIMIT ?)
                    """, arguments: [sending, row["subscription_id"] as String, time, digestLimit])
                ids.append(sending)
            }
            let subscriptions = Dictionary(try Self.subscriptions(db).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            return try ids.compactMap { id in try Self.sending(db, id: id, subscriptions: subscriptions) }
        }
    }

    /// A sending's id: random, so that no journal (a new one, a salvaged one, one restored from
    /// a backup) ever gives a receiver an id it saw for another sending; no '.' in it (the
    /// Standard Webhooks signature joins id, time and body with dots).
    static func newSendingId(_ kind: String) -> String {
        kind + "-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    private static func sending(_ db: Database, id: String, subscriptions: [String: Subscription]) throws -> NotificationSending? {
        let rows = try Row.fetchAll(db, sql: """
            SELECT n.subscription_id, n.attempts, n.queued_at, e.message_id, e.recorded_at, e.envelope, e.payload, e.redacted_paths
            FROM notification n CROSS JOIN entry e ON e.position = n.position
            WHERE n.sending = ? ORDER BY n.id
            """, arguments: [id])
        guard let first = rows.first, let subscription = subscriptions[first["subscription_id"]] else { return nil }
        return NotificationSending(id: id, subscription: subscription, attempts: first["attempts"],
                                   firstQueued: Date(timeIntervalSince1970: first["queued_at"]),
                                   messages: try rows.map { row in
            JournaledMessage(messageId: row["message_id"], recordedAt: Date(timeIntervalSince1970: row["recorded_at"]),
                             envelope: try row.decode(forColumn: "envelope"), payload: try row.decode(forColumn: "payload"),
                             redactedPaths: (try row.decode(String?.self, forColumn: "redacted_paths")).map { $0.split(separator: ",").map(String.init) } ?? [])
        })
    }

    /// Records that the receiver took a sending.
    public func sent(_ sending: String, at now: Date = Date()) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "UPDATE notification SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE sending = ? AND sent_at IS NULL",
                           arguments: [now.timeIntervalSince1970, sending])
        }
    }

    /// Records a failed attempt: tried again at `retryAt`, or given up for good when nil.
    /// `error`: what went wrong, in words that carry no content of the messages.
    public func failed(_ sending: String, error: String, retryAt: Date?, at now: Date = Date()) throws(StoreError) {
        try database.write { db in
            if let retryAt {
                try db.execute(sql: "UPDATE notification SET attempts = attempts + 1, last_error = ?, last_attempt_at = ?, due_at = ? WHERE sending = ? AND sent_at IS NULL",
                               arguments: [error, now.timeIntervalSince1970, retryAt.timeIntervalSince1970, sending])
            } else {
                try db.execute(sql: "UPDATE notification SET attempts = attempts + 1, last_error = ?, last_attempt_at = ?, failed_at = ? WHERE sending = ? AND sent_at IS NULL",
                               arguments: [error, now.timeIntervalSince1970, now.timeIntervalSince1970, sending])
            }
        }
    }

    /// Forgets sent notifications sent before `date`; returns how many. Pending and failed ones stay.
    @discardableResult
    public func forgetSent(before date: Date) throws(StoreError) -> Int {
        try database.write { db in
            try db.execute(sql: "DELETE FROM notification WHERE sent_at < ?", arguments: [date.timeIntervalSince1970])
            return db.changesCount
        }
    }

    /// Where each subscription stands: notifications waiting, sent, given up, and the last
    /// failure's words and time.
    public func status() throws(StoreError) -> [SubscriptionStatus] {
        try database.read { db in
            let counts = try Row.fetchAll(db, sql: """
                SELECT subscription_id,
                       sum(sent_at IS NULL AND failed_at IS NULL) AS waiting,
                       sum(sent_at IS NOT NULL) AS sent,
                       sum(failed_at IS NOT NULL) AS failed,
                       max(sent_at) AS last_sent
                FROM notification GROUP BY subscription_id
                """)
            let byId = Dictionary(counts.map { (($0["subscription_id"] as String), $0) }, uniquingKeysWith: { first, _ in first })
            return try Self.subscriptions(db).map { subscription in
                let row = byId[subscription.id]
                let last = try Row.fetchOne(db, sql: """
                    SELECT last_error, last_attempt_at, attempts FROM notification
                    WHERE subscription_id = ? AND last_error IS NOT NULL ORDER BY last_attempt_at DESC LIMIT 1
                    """, arguments: [subscription.id])
                return SubscriptionStatus(subscription: subscription, waiting: row?["waiting"] ?? 0, sent: row?["sent"] ?? 0,
                                          failed: row?["failed"] ?? 0,
                                          lastSent: (row?["last_sent"] as Double?).map(Date.init(timeIntervalSince1970:)),
                                          lastError: last?["last_error"],
                                          lastErrorAt: (last?["last_attempt_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                                          attempts: last?["attempts"] ?? 0)
            }
        }
    }

    /// Notifications waiting and given up, over every subscription (the metrics).
    public func counts() throws(StoreError) -> (waiting: Int, failed: Int) {
        try database.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(sent_at IS NULL AND failed_at IS NULL), 0) AS waiting, coalesce(sum(failed_at IS NOT NULL), 0) AS failed FROM notification
                """)
            return (row?["waiting"] ?? 0, row?["failed"] ?? 0)
        }
    }

    /// The tables: `subscription` (filter as JSON; `secret` a webhook's signing secret) and
    /// `notification`, one per message and subscription, with the sending it went out in.
    static let schema = """
        CREATE TABLE subscription (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN ('mail', 'webhook')),
            target TEXT NOT NULL,
            secret TEXT,
            filter TEXT NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('immediate', 'daily')),
            digest_hour INTEGER NOT NULL CHECK (digest_hour BETWEEN 0 AND 23),
            created_at REAL NOT NULL,
            CHECK ((channel = 'webhook') = (secret IS NOT NULL))
        );
        CREATE TABLE notification (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subscription_id TEXT NOT NULL,
            position INTEGER NOT NULL REFERENCES entry(position),
            queued_at REAL NOT NULL,
            due_at REAL NOT NULL,
            sending TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_attempt_at REAL,
            sent_at REAL,
            failed_at REAL,
            UNIQUE (subscription_id, position)
        );
        CREATE INDEX notification_due ON notification(due_at) WHERE sent_at IS NULL AND failed_at IS NULL;
        CREATE INDEX notification_sending ON notification(sending) WHERE sending IS NOT NULL;
        """
}

/// A subscription: who is told, how, of which arriving messages, and when.
public struct Subscription: Sendable, Equatable {
    /// The ids of subscriptions from the node's configuration start with this; the console's
    /// with `console:`.
    public static let configuredPrefix = "config:"

    public enum Channel: Sendable, Equatable {
        /// An e-mail address, through the host's sendmail.
        case mail(String)
        /// An endpoint and the Standard Webhooks secret its requests are signed with (`whsec_…`).
        case webhook(url: String, secret: String)
    }

    public enum Mode: String, Sendable, Codable, CaseIterable {
        /// Each message as it arrives.
        case immediate
        /// One digest a day, at the configured hour.
        case daily
    }

    public let id: String
    public let name: String
    /// "configuration", or the console user who added it.
    public let owner: String
    public let channel: Channel
    public let filter: NotificationFilter
    public let mode: Mode
    /// The hour (UTC, 0 to 23) a daily digest goes out.
    public let digestHour: Int

    public init(id: String, name: String, owner: String, channel: Channel, filter: NotificationFilter, mode: Mode, digestHour: Int = 7) {
        precondition((0...23).contains(digestHour))
        self.id = id
        self.name = name
        self.owner = owner
        self.channel = channel
        self.filter = filter
        self.mode = mode
        self.digestHour = digestHour
    }

    /// The first time after `now` that the clock (UTC) shows `hour` o'clock.
    public static func nextDigest(after now: Date, hour: Int) -> Date {
        let day = 86_400.0
        let today = (now.timeIntervalSince1970 / day).rounded(.down) * day + Double(hour) * 3_600
        return Date(timeIntervalSince1970: today > now.timeIntervalSince1970 ? today : today + day)
    }

    init(row: Row) throws {
        id = row["id"]
        name = row["name"]
        owner = row["owner"]
        let target: String = row["target"]
        channel = row["channel"] == "webhook" ? .webhook(url: target, secret: row["secret"]) : .mail(target)
        filter = try JSONDecoder().decode(NotificationFilter.self, from: Data((row["filter"] as String).utf8))
        mode = Mode(rawValue: row["mode"]) ?? .immediate
        digestHour = row["digest_hour"]
    }

    func insert(_ db: Database, now: Date) throws {
        let (kind, target, secret): (String, String, String?) = switch channel {
        case .mail(let address): ("mail", address, nil)
        case .webhook(let url, let secret): ("webhook", url, secret)
        }
        let filterJSON = String(decoding: try JSONEncoder().encode(filter), as: UTF8.self)
        try db.execute(sql: """
            INSERT INTO subscription (id, name, owner, channel, target, secret, filter, mode, digest_hour, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, name, owner, kind, target, secret, filterJSON, mode.rawValue, digestHour, now.timeIntervalSince1970])
    }
}

/// One mail or webhook request: a notification, or a digest of several.
public struct NotificationSending: Sendable {
    /// Stays the same across attempts (the webhook id; the mail's Message-ID).
    public let id: String
    public let subscription: Subscription
    /// Attempts made so far.
    public let attempts: Int
    public let firstQueued: Date
    public let messages: [JournaledMessage]

    public init(id: String, subscription: Subscription, attempts: Int, firstQueued: Date, messages: [JournaledMessage]) {
        self.id = id
        self.subscription = subscription
        self.attempts = attempts
        self.firstQueued = firstQueued
        self.messages = messages
    }
}

/// A journaled message as a notification reads it: the hashed bytes and what was withheld.
public struct JournaledMessage: Sendable {
    public let messageId: String
    public let recordedAt: Date
    public let envelope: Data
    public let payload: Data
    public let redactedPaths: [String]

    public init(messageId: String, recordedAt: Date, envelope: Data, payload: Data, redactedPaths: [String]) {
        self.messageId = messageId
        self.recordedAt = recordedAt
        self.envelope = envelope
        self.payload = payload
        self.redactedPaths = redactedPaths
    }
}

public struct SubscriptionStatus: Sendable {
    public let subscription: Subscription
    public let waiting: Int
    public let sent: Int
    public let failed: Int
    public let lastSent: Date?
    public let lastError: String?
    public let lastErrorAt: Date?
    public let attempts: Int
}
