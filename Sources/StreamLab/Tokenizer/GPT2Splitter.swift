/// The GPT-2 pre-tokenizer: splits text into the pieces that BPE encodes one at a time,
/// exactly as the pattern
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// does under leftmost-first alternation, the semantics of tiktoken (fancy-regex) and of
/// Hugging Face `tokenizers` (Oniguruma), which use this same pattern for GPT-2 and for
/// the `ByteLevel` pre-tokenizer. A hand-written scanner over Unicode scalars instead of
/// a regex engine, with these character classes:
/// - `\p{L}`: general category L (Lu Ll Lt Lm Lo); `\p{N}`: N (Nd Nl No);
/// - `\s`: the White_Space property (which both engines use, and which excludes
///   U+001C...U+001F, U+180E and U+200B);
/// - code points first assigned after Unicode 16.0 count as unassigned (neither letter,
///   number nor space): both reference engines carry Unicode 16 tables while the Swift
///   runtime has newer ones. This rule was checked against tiktoken 0.14 and `tokenizers`
///   0.23 over all 1,112,064 scalars.
/// The contractions are ASCII and case-sensitive (`'S` is not one), as in the pattern.
enum GPT2Splitter {
    /// Character class codes.
    static let other: UInt8 = 0, letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 3

    /// Calls `body(start, end)` with the byte range of each piece of `text` (valid UTF-8),
    /// in order; the pieces tile the text.
    static func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        guard let p = text.baseAddress, text.count > 0 else { return }
        let n = text.count
        UnicodeClassTable.classes.withUnsafeBufferPointer { table in
            @inline(__always) func decode(_ i: Int) -> (UInt32, Int) {
                let b0 = UInt32(p[i])
                if b0 < 0x80 { return (b0, 1) }
                if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
                if b0 < 0xF0 {
                    return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
                }
                return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
                    | UInt32(p[i + 3] & 0x3F), 4)
            }
            @inline(__always) func classOf(_ v: UInt32) -> UInt8 {
                v < UInt32(table.count) ? table[Int(v)] : UnicodeClassTable.classify(v)
            }
            /// End of the run of scalars of class `cls` starting at `j`.
            @inline(__always) func extend(_ start: Int, _ cls: UInt8) -> Int {
                var j = start
                while j < n {
                    let (v, len) = decode(j)
                    if classOf(v) != cls { break }
                    j += len
                }
                return j
            }

            var i = 0
            while i < n {
                let b = p[i]
                // 's 't 're 've 'm 'll 'd
                if b == 0x27, i + 1 < n {
                    let c1 = p[i + 1]
                    if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 {  // s t m d
                        body(i, i + 2); i += 2; continue
                    }
                    if i + 2 < n {
                        let c2 = p[i + 2]
                        if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {
                            body(i, i + 3); i += 3; continue  // re ve ll
                        }
                    }
                }
                // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the optional space
                if b == 0x20, i + 1 < n {
                    let (v, len) = decode(i + 1)
                    let cls = classOf(v)
                    if cls != space {
                        let end = extend(i + 1 + len, cls)
                        body(i, end); i = end; continue
                    }
                }
                let (v, len) = decode(i)
                let cls = classOf(v)
                if cls != space {
                    let end = extend(i + len, cls)
                    body(i, end); i = end; continue
                }
                // \s+(?!\S) | \s+ : a whitespace run followed by a non-space keeps its
                // last scalar for the next piece, unless it is that scalar alone.
                var j = i + len
                var last = i
                while j < n {
                    let (w, wlen) = decode(j)
                    if classOf(w) != space { break }
                    last = j
                    j += wlen
                }
                let end = (j == n || last == i) ? j : last
                body(i, end)
                i = end
            }
        }
    }
}

/// GPT-2 character classes of Unicode scalars (see `GPT2Splitter`): a table for the
/// first two planes, where nearly all text lives, and a direct computation above.
enum UnicodeClassTable {
    /// Class code per scalar value below 0x20000 (surrogates: other).
    static let classes: [UInt8] = (0..<UInt32(0x20000)).map { classify($0) }

    static func classify(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return GPT2Splitter.other }
        let properties = scalar.properties
        if let age = properties.age, age.major > 16 || (age.major == 16 && age.minor > 0) {
            return GPT2Splitter.other
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return GPT2Splitter.letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return GPT2Splitter.number
        default:
            return properties.isWhitespace ? GPT2Splitter.space : GPT2Splitter.other
        }
    }
}
