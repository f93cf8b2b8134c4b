// tokenizer.json loading (byte-level and SentencePiece-style), then a short
// encode / decode with whatever loaded.
func fuzzTokenizerJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = fuzzFile(data, size, name: "tokenizer.json")
    if let tokenizer = try? TokenizerLoader.load(from: url) {
        let ids = tokenizer.encode("Hello, wörld! 123 \n\t <s> ", addSpecialTokens: true)
        _ = try? tokenizer.decode(ids)
        _ = tokenizer.displayText(of: 0)
    }
    return 0
}
