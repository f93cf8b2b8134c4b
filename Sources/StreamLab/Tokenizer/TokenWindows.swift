#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The token windows of a text file, produced while the file is read: the
/// text is read in chunks of `chunkBytes`, each cut just after a newline that
/// is followed by a visible ASCII character, checked as UTF-8, tokenized, and
/// cut into windows of `length` tokens every `stride` tokens. A text with no
/// such newline in two chunks (one long line, CJK lines) is cut after its last
/// newline, else its last space, else at the last UTF-8 character boundary,
/// so memory stays bounded by two chunks and the windows whatever the text.
///
/// For GPT-2-style byte-level BPE the cut points are pre-tokenizer boundaries,
/// so the tokens equal those of the whole text. A SentencePiece-style
/// tokenizer prepends `▁` to each chunk; files above one chunk (16 MB) may
/// therefore differ there by a token per chunk.
public final class TokenWindows: Sequence, IteratorProtocol {
    public let path: String
    public let length: Int
    public let stride: Int
    /// File size in bytes, and bytes consumed so far (for progress).
    public let totalBytes: Int
    public private(set) var bytesRead = 0
    /// Tokens produced so far.
    public private(set) var tokenCount = 0

    private let tokenizer: any Tokenizer
    private let chunkBytes: Int
    private var file: UnsafeMutablePointer<FILE>?
    private var pending: [UInt8] = []
    private var tokens: [Int] = []
    private var position = 0              // start of the next window in `tokens`
    private var finished = false
    private var done = false

    /// Opens `url`; throws `TokenizerError.fileNotFound` / `.unreadable`.
    public init(url: URL, tokenizer: any Tokenizer, length: Int, stride: Int, chunkBytes: Int = 16 << 20) throws {
        precondition(length > 0 && stride > 0 && chunkBytes > 0)
        path = url.path
        self.tokenizer = tokenizer
        self.length = length
        self.stride = stride
        self.chunkBytes = chunkBytes
        guard FileManager.default.fileExists(atPath: path) else {
            throw TokenizerError.fileNotFound(file: path)
        }
        let opened: (fd: Int32, size: Int)
        do { opened = try FileBytes.openRegular(path) } catch {
            throw TokenizerError.unreadable(file: path, reason: "\(error)")
        }
        guard let handle = fdopen(opened.fd, "rb") else {
            close(opened.fd)
            throw TokenizerError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        file = handle
        totalBytes = opened.size
    }

    deinit { if let file { fclose(file) } }

    /// Failure met while reading (invalid UTF-8); iteration stops at it.
    public private(set) var error: TokenizerError?

    /// With a shard, only windows w with w mod count == index are returned
    /// (the others are still cut, so every shard numbers the windows alike).
    public var shard: Shard?
    /// Windows cut so far, in every shard.
    public private(set) var windowsCut = 0
    private var hasher = SHA256()
    private var digest: String?

    /// SHA-256 of the file's bytes, once every window has been read (kept only for a shard).
    public var textSHA256: String? {
        guard shard != nil, done && error == nil else { return nil }
        if digest == nil { digest = hasher.finish() }
        return digest
    }

    /// The next window, or nil at the end (check `error` afterwards). Windows
    /// start every `stride` tokens; the last one is the first that reaches the
    /// end of the text, kept if it has at least two tokens (as `Windows.split`).
    public func next() -> [Int]? {
        while !done {
            let available = tokens.count - position
            if available >= length && (available > length || finished) || (finished && available > 0) {
                let end = Swift.min(position + length, tokens.count)
                let window = Array(tokens[position..<end])
                if finished && end == tokens.count { done = true } else { position += stride }
                compact()
                guard window.count >= 2 else { continue }
                windowsCut += 1
                if let shard, (windowsCut - 1) % shard.count != shard.index { continue }
                return window
            }
            if finished { done = true; break }
            readChunk()
        }
        return nil
    }

    /// Drops consumed tokens so memory stays bounded.
    private func compact() {
        if position > 1 << 20 {
            let drop = Swift.min(position, tokens.count)
            tokens.removeFirst(drop)
            position -= drop
        }
    }

    /// Where to cut a buffer with no newline-before-visible-ASCII: after the
    /// last newline, else after the last space, else before the last byte that
    /// starts a UTF-8 character (never inside one).
    static func fallbackCut(_ bytes: [UInt8]) -> Int {
        if let i = bytes.lastIndex(of: 0x0A), i > 0 { return i + 1 }
        if let i = bytes.lastIndex(of: 0x20), i > 0 { return i + 1 }
        var i = bytes.count - 1
        while i > 0 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
        return i > 0 ? i : bytes.count
    }

    private func readChunk() {
        guard error == nil, let file else { finished = true; return }
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, chunkBytes, file) }
        if shard != nil { hasher.update(buffer[0..<n]) }              // the identity of a shard's text
        let atEnd = n < chunkBytes
        pending += buffer[0..<n]
        var cut = pending.count
        if !atEnd {
            // Cut after the last "\n" followed by a visible ASCII byte.
            var i = pending.count - 2
            while i >= 0 && !(pending[i] == 0x0A && pending[i + 1] > 0x20 && pending[i + 1] < 0x7F) { i -= 1 }
            if i >= 0 {
                cut = i + 1
            } else if pending.count < 2 * chunkBytes {
                return                        // no safe cut yet: read more
            } else {
                cut = Self.fallbackCut(pending)
            }
        }
        let chunk = Array(pending[0..<cut])
        if let bad = TextFile.firstInvalidUTF8Offset(chunk) {
            error = .invalidUTF8(file: path, byteOffset: bytesRead + bad)
            finished = true
            return
        }
        bytesRead += cut
        pending.removeFirst(cut)
        let ids = tokenizer.encode(String(decoding: chunk, as: UTF8.self), addSpecialTokens: false)
        tokens += ids
        tokenCount += ids.count
        if atEnd {
            finished = true
            if !pending.isEmpty, error == nil {
                if let bad = TextFile.firstInvalidUTF8Offset(pending) {
                    error = .invalidUTF8(file: path, byteOffset: bytesRead + bad)
                    return
                }
            }
        }
    }
}

/// One of n shards of a sweep over text windows: the windows w with
/// w mod count == index (0-based), so n processes together cover the text once.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else {
            throw TokenizerError.badShard("\(index)/\(count)")
        }
        self.index = index
        self.count = count
    }

    /// "i/n".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else { throw TokenizerError.badShard(text) }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }
}
