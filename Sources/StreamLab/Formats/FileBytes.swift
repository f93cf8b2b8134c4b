#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole small file (a config, an index, a tokenizer, a corpus) with
/// POSIX calls. Foundation's `Data(contentsOf:)` leaks a page-sized buffer on
/// an empty file on Linux (found by the config fuzzer); this has no such case.
enum FileBytes {
    /// Why a file could not be read, as a short phrase for an error message.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Whether anything is at `path`, a dangling or looping symbolic link included
    /// (so that reading it reports the real reason rather than "does not exist").
    static func entryExists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Opens `path` for reading if it is a regular file (never blocking on a
    /// FIFO or a device: the check happens before any read), returning the
    /// descriptor and the file's size. The caller closes the descriptor.
    /// - Throws: `Failure`: missing, a directory, not a regular file, permission.
    static func openRegular(_ path: String) throws -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        if fd < 0 { throw Failure(description: errno == ELOOP ? "a symbolic link loop" : String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: reason)
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG else {
            close(fd)
            switch kind {
            case S_IFDIR: throw Failure(description: "it is a directory")
            case S_IFIFO: throw Failure(description: "it is a FIFO (named pipe), not a regular file")
            case S_IFCHR, S_IFBLK: throw Failure(description: "it is a device, not a regular file")
            case S_IFSOCK: throw Failure(description: "it is a socket, not a regular file")
            default: throw Failure(description: "it is not a regular file")
            }
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(info.st_size))
    }

    /// The bytes of the regular file at `path`, at most `limit` of them (a
    /// bound suited to the kind of file, so a huge or growing file is refused
    /// instead of exhausting memory).
    /// - Throws: `Failure` with the reason (missing, not a regular file, too large, I/O).
    static func read(_ path: String, limit: Int) throws -> [UInt8] {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        func tooLarge() -> Failure {
            Failure(description: "it is larger than the \(limit / (1 << 20)) MiB this kind of file may have")
        }
        if size > limit { throw tooLarge() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: String(cString: strerror(errno)))
            }
            if n == 0 { return bytes }
            if bytes.count + n > limit { throw tooLarge() }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }
}

/// Size bounds of whole-file reads, by kind of file.
enum ReadLimit {
    /// `config.json`, a shard index, a tokenizer's config: 64 MiB.
    static let json = 64 << 20
    /// Tokenizer files (`tokenizer.json`, vocab + merges, `.tiktoken`) and texts read whole: 1 GiB.
    static let tokenizer = 1 << 30
    /// A training corpus, held in memory while training: 4 GiB.
    static let corpus = 4 << 30
}

/// POSIX `read`, named apart from `FileBytes.read`.
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.read(fd, buffer, count)
    #elseif canImport(Musl)
    return Musl.read(fd, buffer, count)
    #else
    return Glibc.read(fd, buffer, count)
    #endif
}
