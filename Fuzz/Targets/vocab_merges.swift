// vocab.json + merges.txt: the input is split at its first NUL byte into the
// two files (no NUL: all of it is merges.txt beside a fixed small vocab).
func fuzzVocabMerges(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0)
    let vocab: [UInt8] = cut.map { Array(bytes[..<$0]) } ?? Array("{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3}".utf8)
    let merges: [UInt8] = cut.map { Array(bytes[($0 + 1)...]) } ?? Array(bytes)
    _ = vocab.withUnsafeBufferPointer { fuzzFile($0.baseAddress ?? data, $0.count, name: "vocab.json") }
    let url = merges.withUnsafeBufferPointer { fuzzFile($0.baseAddress ?? data, $0.count, name: "merges.txt") }
    if let tokenizer = try? TokenizerLoader.load(from: url) {
        _ = tokenizer.encode("ab ab a b", addSpecialTokens: false)
    }
    return 0
}
