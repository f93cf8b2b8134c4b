// The GPT-2 pre-tokenizer scanner on arbitrary bytes (as UTF-8 text, and the
// raw bytes directly): pieces must tile the input exactly.
func fuzzPretokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var utf8 = Array(text.utf8)
    var covered = 0
    utf8.withUnsafeMutableBufferPointer { buffer in
        GPT2Splitter.split(UnsafeBufferPointer(buffer)) { start, end in
            precondition(start == covered && end > start, "pieces do not tile the text")
            covered = end
        }
    }
    precondition(covered == utf8.count, "pieces do not cover the text")
    return 0
}
