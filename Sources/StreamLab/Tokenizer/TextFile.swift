#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reading text files for tokenization (`--text-file`): strict UTF-8, no newline
/// translation, a byte-order mark is kept as U+FEFF (as Python's `open(encoding="utf-8")`).
public enum TextFile {
    /// The file's contents as a `String`, its Unicode scalars exactly as stored.
    ///
    /// Throws `TokenizerError.fileNotFound`, `.unreadable`, or `.invalidUTF8(file:byteOffset:)`
    /// naming the first byte of the first ill-formed sequence (overlong forms, surrogates
    /// and code points above U+10FFFF are ill-formed too).
    public static func readUTF8(_ url: URL) throws -> String {
        let bytes = try readBytes(url)
        if let offset = firstInvalidUTF8Offset(bytes) {
            throw TokenizerError.invalidUTF8(file: url.path, byteOffset: offset)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes of a file, with tokenizer errors for missing or unreadable files.
    static func readBytes(_ url: URL) throws -> [UInt8] {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizerError.fileNotFound(file: url.path)
        }
        if isDirectory {
            throw TokenizerError.unreadable(file: url.path, reason: "it is a directory")
        }
        do {
            return try FileBytes.read(url.path, limit: ReadLimit.tokenizer)
        } catch {
            throw TokenizerError.unreadable(file: url.path, reason: "\(error)")
        }
    }

    /// Offset of the first byte of the first ill-formed UTF-8 sequence, nil if the
    /// bytes are well-formed UTF-8 (Unicode 16, table 3-7).
    public static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { firstInvalidUTF8Offset($0) }
    }

    static func firstInvalidUTF8Offset(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = b.count
        var i = 0
        while i < n {
            let c0 = b[i]
            if c0 < 0x80 { i += 1; continue }
            // Second-byte range and sequence length for each valid lead byte.
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch c0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            guard i + 1 < n, b[i + 1] >= low, b[i + 1] <= high else { return i }
            var k = 2
            while k < length {
                guard i + k < n, b[i + k] & 0xC0 == 0x80 else { return i }
                k += 1
            }
            i += length
        }
        return nil
    }
}
