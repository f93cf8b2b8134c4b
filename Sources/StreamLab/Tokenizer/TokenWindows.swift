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
/// cut into windows of `length` tokens every `stride` tokens. Memory stays
/// bounded by one chunk and one window, so a file of many gigabytes streams.
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
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.fileNotFound(file: path)
        }
        guard !isDirectory, let handle = fopen(path, "rb") else {
            throw TokenizerError.unreadable(file: path, reason: isDirectory ? "it is a directory" : String(cString: strerror(errno)))
        }
        file = handle
        var info = stat()
        totalBytes = stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    deinit { if let file { fclose(file) } }

    /// Failure met while reading (invalid UTF-8); iteration stops at it.
    public private(set) var error: TokenizerError?

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
                if window.count >= 2 { return window }
                continue
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

    private func readChunk() {
        guard error == nil, let file else { finished = true; return }
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, chunkBytes, file) }
        let atEnd = n < chunkBytes
        pending += buffer[0..<n]
        var cut = pending.count
        if !atEnd {
            // Cut after the last "\n" followed by a visible ASCII byte.
            var i = pending.count - 2
            while i >= 0 && !(pending[i] == 0x0A && pending[i + 1] > 0x20 && pending[i + 1] < 0x7F) { i -= 1 }
            if i < 0 { return }               // no safe cut yet: read more
            cut = i + 1
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
