import CTBusSchema
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Journals and stores hold CONFIDENTIAL and STRICTLY_CONFIDENTIAL content: they are created
/// for their owner alone (files 0600, folders 0700) whatever the umask, and a daemon refuses to
/// run on one that other local users can read, as ssh refuses a secret key they can read.
public enum PrivateFiles {
    /// Creates `path` and its missing parents with mode 0700. An existing folder is left as it is.
    public static func makeFolder(_ path: String) throws(StoreError) {
        var missing: [String] = []
        var current = (path as NSString).standardizingPath
        while !current.isEmpty, current != "/", !FileManager.default.fileExists(atPath: current) {
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for folder in missing.reversed() {
            guard mkdir(folder, 0o700) == 0 || errno == EEXIST else {
                throw StoreError(.unavailable, "cannot create the folder \(folder): \(String(cString: strerror(errno)))")
            }
            chmod(folder, 0o700) // mkdir applies the umask; the mode must not depend on it
        }
    }

    /// Creates an empty file with mode 0600 when `path` does not exist (SQLite then gives its
    /// -wal and -shm files the same mode). Returns whether it created the file.
    @discardableResult
    public static func createFile(_ path: String) throws(StoreError) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw StoreError(.unavailable, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o600)
        close(fd)
        return true
    }

    /// The file's permission bits, or nil when it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    /// Throws a ConfigurationError naming the file and the fix when `path` (or, for a
    /// database, its -wal and -shm files) can be read or written by other users. A missing file
    /// passes: it will be created private.
    public static func requirePrivate(_ path: String, what: String, withDatabaseFiles: Bool = false) throws(ConfigurationError) {
        let paths = withDatabaseFiles ? [path, path + "-wal", path + "-shm"] : [path]
        for file in paths {
            guard let mode = mode(of: file), mode & 0o077 != 0 else { continue }
            let octal = String(mode, radix: 8)
            throw ConfigurationError(
                "\(what) \(file) can be read by other users (mode \(octal)); it holds confidential material. "
                + "Fix: chmod 600 '\(file)' (and chmod 700 its folder), then start again")
        }
    }
}

/// An exclusive lock on a journal or store, held by the one daemon that writes it: a lock file
/// beside it (`PATH.lock`, mode 0600) locked with `flock` and holding the owner's pid. The
/// kernel releases the lock when the process ends, however it ends.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var descriptor: Int32
    /// Whether this lock made the lock file (a failed start then removes it again).
    private let created: Bool

    /// The lock file guarding `file`.
    public static func lockPath(for file: String) -> String { file + ".lock" }

    /// Takes the lock for `file` on behalf of `owner` ("node wg-border", "the broker"), or
    /// throws `StoreError.inUse` naming the process that holds it.
    public init(guarding file: String, owner: String) throws(StoreError) {
        path = Self.lockPath(for: file)
        try PrivateFiles.makeFolder((path as NSString).deletingLastPathComponent)
        created = !FileManager.default.fileExists(atPath: path)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(.unavailable, "cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o600)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.pid(in: fd)
            close(fd)
            throw StoreError(.inUse, "\(owner) is already running\(holder.map { " (pid \($0))" } ?? ""): \(file) is locked by it (\(path))")
        }
        ftruncate(fd, 0)
        let text = "\(getpid())\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        descriptor = fd
    }

    /// Whether a process holds the lock of `file` now (without taking it or creating anything).
    public static func isHeld(_ file: String) -> Bool {
        let fd = open(lockPath(for: file), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return true }
        flock(fd, LOCK_UN)
        return false
    }

    /// The pid of the process holding the lock of `file` now, or nil when none holds it.
    public static func holder(of file: String) -> Int? {
        let fd = open(lockPath(for: file), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) != 0 else {
            flock(fd, LOCK_UN)
            return nil
        }
        return pid(in: fd)
    }

    private static func pid(in fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Releases the lock (the file stays: removing it could race with a process starting).
    public func release() {
        lock.withLock {
            guard descriptor >= 0 else { return }
            flock(descriptor, LOCK_UN)
            close(descriptor)
            descriptor = -1
        }
    }

    /// Releases the lock after a failed start, removing the lock file if this start made it:
    /// a start that fails leaves nothing behind.
    public func discard() {
        lock.withLock {
            guard descriptor >= 0 else { return }
            if created { unlink(path) }
            flock(descriptor, LOCK_UN)
            close(descriptor)
            descriptor = -1
        }
    }

    deinit { release() }
}
