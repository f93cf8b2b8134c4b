#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors writing output files.
public enum OutputError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(path: String, reason: String)
    case tooLarge(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason): return "cannot write '\(path)': \(reason)"
        case let .tooLarge(path, reason): return "cannot write '\(path)': \(reason)"
        }
    }
}

/// A file written under a temporary name in the destination's directory and
/// renamed into place only when complete, so a failed or interrupted run never
/// leaves a partial output. Temporary files of interrupted runs are removed by
/// the signal handler (`AtomicFile.installInterruptCleanup`).
///
/// What is at the destination is respected: a symbolic link is followed and
/// the file it names is replaced (the link stays); a character device
/// (`/dev/null`) or a FIFO with a reader is written in place, never replaced;
/// a directory, a socket or a block device is refused.
public final class AtomicFile {
    public let path: String
    /// The file that is replaced: `path` with symbolic links followed.
    let target: String
    /// Empty when writing in place.
    let temporaryPath: String
    /// Writing straight into a device or FIFO.
    let inPlace: Bool
    private var fd: Int32
    private var finished = false

    /// Opens the output: a temporary file next to the (link-resolved) destination,
    /// or the device / FIFO itself.
    public init(path: String) throws {
        self.path = path
        let target = try Self.resolveLinks(path)
        self.target = target
        var info = stat()
        if stat(target, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            let kind = info.st_mode & S_IFMT
            switch kind {
            case S_IFCHR, S_IFIFO:
                let fd = open(target, O_WRONLY | (kind == S_IFIFO ? O_NONBLOCK : 0))
                if fd < 0 {
                    let reason = errno == ENXIO ? "it is a FIFO with no reader" : String(cString: strerror(errno))
                    throw OutputError.cannotWrite(path: path, reason: reason)
                }
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
                self.fd = fd
                temporaryPath = ""
                inPlace = true
                return
            case S_IFDIR: throw OutputError.cannotWrite(path: path, reason: "it is a directory")
            default: throw OutputError.cannotWrite(path: path, reason: "it is not a regular file, a character device or a FIFO")
            }
        }
        let slash = target.lastIndex(of: "/")
        let directory = slash.map { String(target[..<$0]) } ?? "."
        let name = slash.map { String(target[target.index(after: $0)...]) } ?? target
        if name.isEmpty { throw OutputError.cannotWrite(path: path, reason: "not a file name") }
        var template = Array("\(directory.isEmpty ? "/" : directory)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 {
            throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        self.fd = fd
        inPlace = false
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
        TemporaryFiles.shared.add(temporaryPath)
    }

    /// `path` with every symbolic link along its last component followed
    /// (a dangling link resolves to the file it would name).
    static func resolveLinks(_ path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, Int(PATH_MAX))
            guard n > 0 else { return current }
            let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.hasPrefix("/") {
                current = link
            } else {
                let slash = current.lastIndex(of: "/")
                current = slash.map { String(current[...$0]) + link } ?? link
            }
        }
        throw OutputError.cannotWrite(path: path, reason: "a symbolic link loop")
    }

    deinit {
        if !finished { abandon() }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc_write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                abandon()
                throw OutputError.cannotWrite(path: path, reason: reason)
            }
            offset += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ text: String) throws {
        try write(Array(text.utf8))
    }

    /// Flushes, closes and renames into place.
    public func commit() throws {
        guard !finished else { return }
        // Test seam: hold the finished temporary file for a while, so a test
        // can interrupt the process at the worst moment.
        if let pause = getenv("STREAMLAB_TEST_PAUSE_BEFORE_COMMIT").flatMap({ Double(String(cString: $0)) }), pause > 0 {
            usleep(UInt32(min(pause, 60) * 1_000_000))
        }
        if inPlace {
            close(fd)
            fd = -1
            finished = true
            return
        }
        if fsync(fd) != 0 && errno != EINVAL {
            let reason = String(cString: strerror(errno))
            abandon()
            throw OutputError.cannotWrite(path: path, reason: reason)
        }
        close(fd)
        fd = -1
        if rename(temporaryPath, target) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            finished = true
            TemporaryFiles.shared.remove(temporaryPath)
            throw OutputError.cannotWrite(path: path, reason: reason)
        }
        finished = true
        TemporaryFiles.shared.remove(temporaryPath)
    }

    /// Removes the temporary file.
    public func abandon() {
        guard !finished else { return }
        if fd >= 0 { close(fd); fd = -1 }
        if inPlace { finished = true; return }
        unlink(temporaryPath)
        finished = true
        TemporaryFiles.shared.remove(temporaryPath)
    }

    /// Writes `text` to `path` atomically.
    public static func write(_ text: String, to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.write(text)
        try file.commit()
    }

    /// Removes temporary files when a signal ends the process (SIGINT, SIGTERM,
    /// SIGHUP, SIGQUIT, SIGUSR1/2, SIGALRM, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF),
    /// then exits with 128 + signal, without a backtrace. Call once from a CLI.
    public static func installInterruptCleanup() {
        // A parent may have started us with these signals blocked (threads of
        // a test runner often block everything): unblock them.
        let terminating = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF]
        var set = sigset_t()
        sigemptyset(&set)
        for sig in terminating { sigaddset(&set, sig) }
        sigprocmask(SIG_UNBLOCK, &set, nil)
        for sig in terminating {
            // A signal the parent set to be ignored stays ignored (nohup, `trap '' XFSZ`).
            let previous = signal(sig, SIG_IGN)
            if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            signal(sig) { sig in
                // While a directory is being swapped into place the signal waits
                // (`withSignalsDeferred`), so the swap is never left half done.
                if TemporaryFiles.shared.flags[0] != 0 {
                    TemporaryFiles.shared.flags[1] = sig
                    return
                }
                TemporaryFiles.shared.removeAllForSignal()
                _exit(128 + sig)
            }
        }
    }

    /// Runs `body` with SIGINT, SIGTERM and SIGHUP held back: one that
    /// arrives meanwhile takes effect (cleanup, exit) when `body` returns.
    public static func withSignalsDeferred<T>(_ body: () throws -> T) rethrows -> T {
        let flags = TemporaryFiles.shared.flags
        flags[0] = 1
        defer {
            flags[0] = 0
            let pending = flags[1]
            if pending != 0 {
                TemporaryFiles.shared.removeAllForSignal()
                _exit(128 + pending)
            }
        }
        return try body()
    }
}

extension AtomicFile {
    /// Registers a file to unlink (`directory` false) or an empty directory
    /// to remove (`directory` true) if the process is interrupted.
    public static func removeOnInterrupt(_ path: String, directory: Bool = false) {
        if directory { TemporaryFiles.shared.addDirectory(path) } else { TemporaryFiles.shared.add(path) }
    }

    /// Undoes `removeOnInterrupt`.
    public static func keepOnInterrupt(_ path: String) {
        TemporaryFiles.shared.remove(path)
    }
}

@inline(__always) private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Paths of temporary files currently being written, for the signal handler.
/// A fixed C array guarded by a spin flag keeps the handler async-signal-safe
/// (no allocation, no locks that a handler could deadlock on).
final class TemporaryFiles: @unchecked Sendable {
    static let shared = TemporaryFiles()
    private let capacity = 64
    /// Slots 0..<capacity: files to unlink; capacity..<2*capacity: directories to rmdir (if empty).
    private let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    /// [0]: signals deferred (non-zero while a swap runs); [1]: the signal that arrived meanwhile.
    let flags: UnsafeMutablePointer<Int32>
    private var lock = pthread_mutex_t()

    private init() {
        slots = .allocate(capacity: 2 * capacity)
        slots.initialize(repeating: nil, count: 2 * capacity)
        flags = .allocate(capacity: 2)
        flags.initialize(repeating: 0, count: 2)
        pthread_mutex_init(&lock, nil)
    }

    func add(_ path: String) { insert(path, from: 0) }

    func addDirectory(_ path: String) { insert(path, from: capacity) }

    private func insert(_ path: String, from start: Int) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        for i in start..<(start + capacity) where slots[i] == nil {
            slots[i] = strdup(path)
            return
        }
    }

    func remove(_ path: String) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        for i in 0..<(2 * capacity) {
            if let p = slots[i], String(cString: p) == path {
                slots[i] = nil
                free(p)
            }
        }
    }

    /// Unlinks every registered file, then removes the registered directories
    /// that are empty by then; only async-signal-safe calls.
    func removeAllForSignal() {
        for i in 0..<capacity { if let p = slots[i] { unlink(p) } }
        for i in capacity..<(2 * capacity) { if let p = slots[i] { rmdir(p) } }
    }
}
