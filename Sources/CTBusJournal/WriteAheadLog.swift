import Foundation

/// Reads an SQLite write-ahead log's frame headers (https://sqlite.org/fileformat.html, "WAL
/// file format") to tell, before SQLite opens the database, whether the last write was torn
/// by a crash: frames after the last commit frame, or a partial frame at the end. SQLite
/// discards those itself when it recovers; this lets the store say so.
enum WriteAheadLog {
    /// A sentence describing what recovery will discard, or nil when the log ends cleanly.
    static func tornTail(ofDatabaseAt path: String) -> String? {
        unfinishedBytes(ofDatabaseAt: path).map {
            "the last write before a crash was incomplete: \($0) bytes of an unfinished transaction were discarded; the store holds every complete entry"
        }
    }

    /// How many bytes at the end of the log belong to no committed transaction, or nil when the
    /// log ends cleanly (or there is none).
    static func unfinishedBytes(ofDatabaseAt path: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: path + "-wal"), data.count >= 32 else { return nil }
        func word(_ offset: Int) -> UInt32 {
            data[data.startIndex + offset..<data.startIndex + offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        let magic = word(0)
        guard magic == 0x377F0682 || magic == 0x377F0683 else { return nil }
        let pageSize = Int(word(8) == 1 ? 65_536 : word(8))
        guard pageSize >= 512 else { return nil }
        let salts = (word(16), word(20))
        let frameSize = 24 + pageSize
        var offset = 32
        var lastCommitEnd = 32
        var endedOnStaleFrame = false
        while offset + frameSize <= data.count {
            // Frames with other salts belong to an older generation of the log: SQLite ignores them.
            guard (word(offset + 8), word(offset + 12)) == salts else {
                endedOnStaleFrame = true
                break
            }
            offset += frameSize
            if word(offset - frameSize + 4) != 0 { lastCommitEnd = offset }
        }
        let end = endedOnStaleFrame ? offset : data.count
        let discarded = end - lastCommitEnd
        return discarded > 0 ? discarded : nil
    }
}
