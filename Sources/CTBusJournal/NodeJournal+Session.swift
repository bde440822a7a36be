import CTBusSchema
import Foundation
import GRDB
import SwiftProtobuf

extension NodeJournal {
    /// Records that the node daemon's session with the broker opened or closed (the console's
    /// status page reads it). Written only when the state changes.
    public func recordSession(open: Bool, at now: Date = Date()) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('session', ?)",
                           arguments: ["\(open ? "open" : "closed") \(now.timeIntervalSince1970)"])
        }
    }

    /// The last session state the node daemon recorded, and since when; nil if it never did.
    public func session() throws(StoreError) -> (open: Bool, since: Date)? {
        try database.read { db in
            guard let value = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'session'") else { return nil }
            let parts = value.split(separator: " ")
            guard parts.count == 2, let seconds = Double(parts[1]) else { return nil }
            return (parts[0] == "open", Date(timeIntervalSince1970: seconds))
        }
    }

    /// When the broker last acknowledged a publication of this node; nil if never.
    public func lastAcknowledgement() throws(StoreError) -> Date? {
        try database.read { db in
            try Double.fetchOne(db, sql: "SELECT max(acknowledged_at) FROM entry WHERE direction = ?", arguments: [Direction.sent.rawValue]).map(Date.init(timeIntervalSince1970:))
        }
    }

    // MARK: Backlog

    /// Whether this node should ask the broker for its backlog: it never did, and its journal
    /// has received nothing yet (a node that joined late, or a fresh journal).
    public func needsBacklog() throws(StoreError) -> Bool {
        try database.read { db in
            // A salvaged journal asks once more, for what the damage took (see `salvage`).
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM meta WHERE key = 'backlog-after-salvage'") ?? false { return true }
            let asked = try Bool.fetchOne(db, sql: "SELECT 1 FROM meta WHERE key = 'backlog-requested'") ?? false
            let received = try Bool.fetchOne(db, sql: "SELECT 1 FROM entry WHERE direction = ? LIMIT 1", arguments: [Direction.received.rawValue]) ?? false
            return !asked && !received
        }
    }

    /// Records that the broker answered a backlog request.
    public func markBacklogRequested(now: Date = Date()) throws(StoreError) {
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('backlog-requested', ?)",
                           arguments: [UTCTime.iso8601(now)])
            try db.execute(sql: "DELETE FROM meta WHERE key = 'backlog-after-salvage'")
        }
    }
}
