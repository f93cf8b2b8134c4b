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
/// the SIGINT/SIGTERM handler (`AtomicFile.installInterruptCleanup`).
public final class AtomicFile {
    public let path: String
    let temporaryPath: String
    private var fd: Int32
    private var finished = false

    /// Creates the temporary file next to `path`.
    public init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        if name.isEmpty { throw OutputError.cannotWrite(path: path, reason: "not a file name") }
        var template = Array("\(directory.isEmpty ? "/" : directory)/.\(name).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd < 0 {
            throw OutputError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        self.fd = fd
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
        TemporaryFiles.shared.add(temporaryPath)
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
        if fsync(fd) != 0 && errno != EINVAL {
            let reason = String(cString: strerror(errno))
            abandon()
            throw OutputError.cannotWrite(path: path, reason: reason)
        }
        close(fd)
        fd = -1
        if rename(temporaryPath, path) != 0 {
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
