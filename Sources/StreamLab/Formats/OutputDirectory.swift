#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive, non-blocking lock on an output path: `flock` on the lock
/// file `<path>.lock` beside it. Held until `release()` (or deinit, or the
/// end of the process, when the kernel drops it); the lock file is removed on
/// release and on SIGINT/SIGTERM/SIGHUP.
public final class PathLock {
    public let lockPath: String
    private var fd: Int32 = -1

    /// Takes the lock; nil when another process (or another `PathLock` in this
    /// one) holds it. Throws when the lock file cannot be created.
    public init?(lockPath: String) throws {
        self.lockPath = lockPath
        // A holder removes the lock file when it releases; a file opened just
        // before that removal is stale, so the lock must be on the file that
        // is at the path now (same inode), else try again.
        for _ in 0..<8 {
            let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { throw OutputError.cannotWrite(path: lockPath, reason: String(cString: strerror(errno))) }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let busy = errno == EWOULDBLOCK || errno == EAGAIN
                let reason = String(cString: strerror(errno))
                close(fd)
                if busy { return nil }
                throw OutputError.cannotWrite(path: lockPath, reason: reason)
            }
            var held = stat(), current = stat()
            if fstat(fd, &held) == 0, stat(lockPath, &current) == 0, held.st_ino == current.st_ino, held.st_dev == current.st_dev {
                self.fd = fd
                AtomicFile.removeOnInterrupt(lockPath)
                return
            }
            close(fd)
        }
        return nil
    }

    deinit { release() }

    /// Removes the lock file and drops the lock (idempotent).
    public func release() {
        guard fd >= 0 else { return }
        unlink(lockPath)
        AtomicFile.keepOnInterrupt(lockPath)
        close(fd)
        fd = -1
    }
}

/// Whole-directory output: a directory built beside its destination and
/// swapped in at the end.
public enum OutputDirectory {
    /// Splits `path` (trailing slashes ignored) into its parent directory and
    /// its last component; nil when that component is empty, `.` or `..`
    /// (no sibling can be named after it).
    public static func split(_ path: String) -> (parent: String, name: String)? {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        let slash = p.lastIndex(of: "/")
        let name = String(slash.map { p[p.index(after: $0)...] } ?? p)
        guard !name.isEmpty, name != ".", name != ".." else { return nil }
        let parent = slash.map { $0 == p.startIndex ? "/" : String(p[..<$0]) } ?? "."
        return (parent, name)
    }

    public static func isDirectory(_ path: String) -> Bool {
        var s = stat()
        return stat(path, &s) == 0 && (s.st_mode & S_IFMT) == S_IFDIR
    }

    public static func exists(_ path: String) -> Bool {
        var s = stat()
        return lstat(path, &s) == 0
    }

    /// Creates `path` and its missing parents.
    public static func create(_ path: String) throws {
        if isDirectory(path) { return }
        if let (parent, _) = split(path), parent != path, !isDirectory(parent) { try create(parent) }
        if mkdir(path, 0o755) != 0 && !(errno == EEXIST && isDirectory(path)) {
            throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    /// Removes `path` and everything under it (symbolic links are removed, not followed).
    public static func remove(_ path: String) {
        var s = stat()
        guard lstat(path, &s) == 0 else { return }
        if (s.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { remove(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Moves the directory `source` to `destination`, replacing what is
    /// there: the old directory is first renamed aside, then `source` renamed
    /// into place, then the old one removed, with interrupting signals held
    /// back throughout, so `destination` is always the old or the new directory.
    public static func replace(_ destination: String, with source: String) throws {
        try AtomicFile.withSignalsDeferred {
            guard exists(destination) else {
                if rename(source, destination) != 0 {
                    throw OutputError.cannotWrite(path: destination, reason: String(cString: strerror(errno)))
                }
                return
            }
            guard let (parent, name) = split(destination) else {
                throw OutputError.cannotWrite(path: destination, reason: "not a directory name")
            }
            var template = Array("\(parent)/.\(name).replaced-XXXXXX".utf8CString)
            guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
                throw OutputError.cannotWrite(path: destination, reason: String(cString: strerror(errno)))
            }
            let aside = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            if rename(destination, aside) != 0 {
                let reason = String(cString: strerror(errno))
                rmdir(aside)
                throw OutputError.cannotWrite(path: destination, reason: reason)
            }
            if rename(source, destination) != 0 {
                let reason = String(cString: strerror(errno))
                rename(aside, destination)
                throw OutputError.cannotWrite(path: destination, reason: reason)
            }
            remove(aside)
        }
    }
}
