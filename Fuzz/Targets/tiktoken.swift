// tiktoken ranks files (base64 token, space, rank per line).
func fuzzTiktoken(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = fuzzFile(data, size, name: "ranks.tiktoken")
    if let tokenizer = try? TokenizerLoader.load(from: url) {
        let ids = tokenizer.encode("Hello, world! 123", addSpecialTokens: false)
        _ = try? tokenizer.decode(ids)
    }
    return 0
}
