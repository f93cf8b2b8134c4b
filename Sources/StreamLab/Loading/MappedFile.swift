#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Pages are read on first touch, so
/// opening a multi-gigabyte checkpoint costs nothing until tensors are used.
public final class MappedFile: @unchecked Sendable {
    /// The file's path, for error messages.
    public let path: String
    /// File size in bytes.
    public let count: Int
    /// Start of the mapping (nil for an empty file).
    public let base: UnsafeRawPointer?

    /// Maps `path` read-only.
    /// - Throws: `LoadError.cannotOpen` when the file is missing or unreadable.
    public init(path: String) throws {
        self.path = path
        let opened: (fd: Int32, size: Int)
        do { opened = try FileBytes.openRegular(path) } catch {
            throw LoadError.cannotOpen(path: path, reason: "\(error)")
        }
        let fd = opened.fd
        defer { close(fd) }
        count = opened.size
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw LoadError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The bytes `range` (must lie inside the file).
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}
