import Foundation
import GRDB

/// A journal or broker store that cannot be opened or used: a clear, typed error for people
/// (corrupted file, wrong file, disk full), never carrying message content.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        /// The file is not a CTBus store (or is damaged beyond what SQLite accepts).
        case corrupted
        /// The store could not be opened or written (permissions, disk full, locked too long).
        case unavailable
        /// A message id is already in the journal.
        case duplicate
        /// The entry asked for is not there.
        case notFound = "not-found"
        /// Another process (a running daemon) holds the file's lock.
        case inUse = "in-use"
        /// The file is damaged: SQLite's own check or the hash chain found it (see `ctbus journal verify`).
        case damaged
        /// The file is another kind of CTBus file, or holds another schema version.
        case schema
        /// The file holds no schema yet: a new file, or one another process is creating.
        case notCreated = "not-created"
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    /// Turns an SQLite failure into the store's terms.
    static func wrap(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return StoreError(.corrupted, "\(path) is not a CTBus store or is damaged (\(error.resultCode)); "
                                  + "`ctbus journal verify` says what is wrong, `ctbus journal salvage` keeps what is intact")
            default:
                return StoreError(.unavailable, "\(path): \(error.message ?? "\(error.resultCode)")")
            }
        }
        return StoreError(.unavailable, "\(path): \(error)")
    }
}
