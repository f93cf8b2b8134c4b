/// The pre-tokenizer split of tiktoken's `cl100k_base` family, as Llama 3 (`\p{N}{1,3}`)
/// and Qwen2 (`\p{N}`) ship it in a `Split` pre-tokenizer:
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// A hand-written leftmost-first scanner like `GPT2Splitter`, with its character classes
/// (and its Unicode 16 rule). The contractions are case-insensitive with Unicode simple
/// case folding, so `'S` and `'ſ` (long s) count too.
struct CL100KSplitter: Sendable {
    /// 3 for Llama 3 / cl100k, 1 for Qwen2.
    let maxDigits: Int

    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Calls `body(start, end)` with the byte range of each piece of `text` (valid UTF-8).
    func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let n = text.count
        guard n > 0 else { return }
        let letter = GPT2Splitter.letter, number = GPT2Splitter.number, space = GPT2Splitter.space
        UnicodeClassTable.classes.withUnsafeBufferPointer { table in
            @inline(__always) func scalar(_ i: Int) -> (UInt32, Int) {
                let s = decodeScalar(text, i)
                return (s.value, s.utf8.count)
            }
            @inline(__always) func classOf(_ v: UInt32) -> UInt8 {
                v < UInt32(table.count) ? table[Int(v)] : UnicodeClassTable.classify(v)
            }
            @inline(__always) func isNewline(_ v: UInt32) -> Bool { v == 0x0A || v == 0x0D }
            /// Folds to ASCII lower case for the contraction letters (ſ folds to s).
            @inline(__always) func folded(_ v: UInt32) -> UInt32 {
                if v >= 0x41 && v <= 0x5A { return v + 0x20 }
                if v == 0x17F { return 0x73 }
                return v
            }
            /// Length in bytes of a contraction at `i` (after the apostrophe), 0 if none.
            func contraction(_ i: Int) -> Int {
                guard i + 1 < n else { return 0 }
                let (a, alen) = scalar(i + 1)
                switch folded(a) {
                case 0x73, 0x74, 0x6D, 0x64: return 1 + alen  // s t m d
                case 0x72, 0x76, 0x6C:  // r v l
                    guard i + 1 + alen < n else { return 0 }
                    let (b, blen) = scalar(i + 1 + alen)
                    let fa = folded(a), fb = folded(b)
                    if (fa == 0x72 && fb == 0x65) || (fa == 0x76 && fb == 0x65) || (fa == 0x6C && fb == 0x6C) {
                        return 1 + alen + blen
                    }
                    return 0
                default: return 0
                }
            }

            var i = 0
            while i < n {
                let (v, len) = scalar(i)
                let cls = classOf(v)
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if v == 0x27 {
                    let c = contraction(i)
                    if c > 0 { body(i, i + c); i += c; continue }
                }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                var start = i
                if cls == letter {
                    start = i
                } else if cls != number && !isNewline(v) && i + len < n && classOf(scalar(i + len).0) == letter {
                    start = i + len
                } else {
                    start = -1
                }
                if start >= 0 {
                    var j = start
                    while j < n {
                        let (w, wlen) = scalar(j)
                        if classOf(w) != letter { break }
                        j += wlen
                    }
                    body(i, j); i = j; continue
                }
                // \p{N}{1,maxDigits}
                if cls == number {
                    var j = i + len, count = 1
                    while j < n && count < maxDigits {
                        let (w, wlen) = scalar(j)
                        if classOf(w) != number { break }
                        j += wlen
                        count += 1
                    }
                    body(i, j); i = j; continue
                }
                // " ?[^\s\p{L}\p{N}]+[\r\n]*"
                var otherStart = -1
                if cls == GPT2Splitter.other {
                    otherStart = i
                } else if v == 0x20 && i + 1 < n && classOf(scalar(i + 1).0) == GPT2Splitter.other {
                    otherStart = i + 1
                }
                if otherStart >= 0 {
                    var j = otherStart
                    while j < n {
                        let (w, wlen) = scalar(j)
                        if classOf(w) != GPT2Splitter.other { break }
                        j += wlen
                    }
                    while j < n && (text[j] == 0x0A || text[j] == 0x0D) { j += 1 }
                    body(i, j); i = j; continue
                }
                // Whitespace at i (the only class left).
                precondition(cls == space, "GPT-2 classes are exhaustive")
                var j = i, last = i, lastNewlineEnd = -1
                while j < n {
                    let (w, wlen) = scalar(j)
                    if classOf(w) != space { break }
                    last = j
                    j += wlen
                    if isNewline(w) { lastNewlineEnd = j }
                }
                // \s*[\r\n]+ : up to and including the last newline of the run.
                if lastNewlineEnd > 0 { body(i, lastNewlineEnd); i = lastNewlineEnd; continue }
                // \s+(?!\S) | \s+
                let end = (j == n || last == i) ? j : last
                body(i, end)
                i = end
            }
        }
    }
}
