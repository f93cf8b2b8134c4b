#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A text file as byte tokens (vocabulary 256: token id = byte value), the
/// data of `stream-probe train`.
public struct ByteCorpus: Sendable {
    public let path: String
    public let bytes: [UInt8]

    /// Reads `path`; refuses unreadable and empty files.
    public init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError.unreadableCorpus(path: path, reason: "no such file")
        }
        if (try? FileManager.default.contentsOfDirectory(atPath: path)) != nil {
            throw TrainingError.unreadableCorpus(path: path, reason: "it is a directory")
        }
        let data: [UInt8]
        do { data = try FileBytes.read(path, limit: ReadLimit.corpus) } catch {
            throw TrainingError.unreadableCorpus(path: path, reason: "\(error)")
        }
        guard !data.isEmpty else { throw TrainingError.emptyCorpus(path: path) }
        bytes = data
    }

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }

    public var count: Int { bytes.count }

    /// A training batch: `batch` windows of `context + 1` bytes at uniformly
    /// random offsets; inputs are the first `context` bytes of each, targets
    /// the next byte at every position. Both `[batch * context]`.
    public func sample(batch: Int, context: Int, rng: inout SeededRandom) -> (tokens: [Int32], targets: [Int32]) {
        precondition(bytes.count >= context + 1)
        var tokens = [Int32](repeating: 0, count: batch * context)
        var targets = tokens
        for b in 0..<batch {
            let start = rng.integer(below: bytes.count - context)
            for t in 0..<context {
                tokens[b * context + t] = Int32(bytes[start + t])
                targets[b * context + t] = Int32(bytes[start + t + 1])
            }
        }
        return (tokens, targets)
    }

    /// Non-overlapping windows of `context` bytes over the first `limit`
    /// bytes (a last partial window is dropped); each window scores its
    /// positions 0..T-2 against the next byte in the window, as the held-out
    /// measure of docs/definitions.md (Training loss) does.
    public func evaluationWindows(context: Int, limit: Int? = nil) -> [[Int]] {
        let end = min(bytes.count, limit ?? bytes.count)
        var windows: [[Int]] = []
        var start = 0
        while start + context <= end {
            windows.append(bytes[start..<(start + context)].map { Int($0) })
            start += context
        }
        return windows
    }
}
