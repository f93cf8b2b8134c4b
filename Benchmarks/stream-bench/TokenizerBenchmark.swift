import Foundation
import StreamLab

/// Tokenizer throughput: encodes the whole `corpus` (UTF-8 text) in one call with the
/// tokenizer at `vocabulary` (a `.tiktoken` ranks file, a `tokenizer.json`, or a model
/// directory), on the calling thread. Loading is not timed; the encode is run three
/// times and the fastest counts. Prints nothing.
///
/// - Returns: megabytes (10^6 bytes of UTF-8) encoded per second, and the number of ids.
func runTokenizerBenchmark(corpus: URL, vocabulary: URL) throws -> (megabytesPerSecond: Double, tokens: Int) {
    let tokenizer = try TokenizerLoader.load(from: vocabulary)
    let text = try TextFile.readUTF8(corpus)
    let megabytes = Double(text.utf8.count) / 1e6
    var best = Double.infinity
    var tokens = 0
    for _ in 0..<3 {
        let start = ContinuousClock.now
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        let elapsed = start.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        best = min(best, seconds)
        tokens = ids.count
    }
    return (megabytes / best, tokens)
}
