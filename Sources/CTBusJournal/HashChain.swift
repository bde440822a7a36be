import Crypto
import Foundation

/// The tamper-evident chain of journal entries (and of the broker's stored messages): every
/// entry's hash is SHA-256 over the previous entry's hash and the entry's own fields, each with
/// its length, so changing, removing or reordering an entry breaks every link after it.
public enum HashChain {
    /// The "previous hash" of the first entry.
    public static let genesis = Data(repeating: 0, count: 32)

    public static func link(previous: Data, fields: [Data]) -> Data {
        var hasher = SHA256()
        hasher.update(data: previous)
        for field in fields {
            var length = UInt64(field.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(data: field)
        }
        return Data(hasher.finalize())
    }
}

/// What `verify` found.
public struct ChainReport: Sendable, Equatable {
    public struct Break: Sendable, Equatable {
        /// The entry's position in the journal (or row in the store), from 1.
        public let position: Int64
        public let messageId: String
        public let reason: String
    }

    /// Entries checked.
    public let entries: Int
    /// The first broken link, nil when the whole chain holds.
    public let firstBreak: Break?
    /// Said when opening found and discarded the torn end of an interrupted write.
    public let recovery: String?

    public var isIntact: Bool { firstBreak == nil }
}
