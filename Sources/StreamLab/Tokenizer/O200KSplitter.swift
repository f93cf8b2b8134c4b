/// The pre-tokenizer split of tiktoken's `o200k_base` family (GPT-4o, gpt-oss, Phi-4-mini),
/// as their `tokenizer.json` ships it in a `Split` pre-tokenizer:
///
///     [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
///     |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
///     |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// (one line in the file). A hand-written scanner with the backtracking semantics of the
/// regex engines (leftmost-first alternation, greedy quantifiers that give back): letter runs
/// split where lower case turns to upper (`camelCase` -> `camel`, `Case`; `HTTPServer` stays
/// one piece), contractions are suffixes of the word before them (`don't`), and marks count
/// as letters of both cases. Character classes are those of `GPT2Splitter` (Unicode 16, see
/// there), refined by general category; the contractions fold case as `CL100KSplitter`'s do.
struct O200KSplitter: Sendable {
    static let pattern =
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"#
        + #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"#
        + #"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Class bits of a scalar (`O200KClassTable`).
    static let upper: UInt8 = 1      // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    static let lower: UInt8 = 2      // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    static let letter: UInt8 = 4     // \p{L}
    static let number: UInt8 = 8     // \p{N}
    static let space: UInt8 = 16     // \s

    /// Calls `body(start, end)` with the byte range of each piece of `text` (valid UTF-8),
    /// in order; the pieces tile the text.
    func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let n = text.count
        guard n > 0 else { return }
        let upper = Self.upper, lower = Self.lower, letter = Self.letter, number = Self.number, space = Self.space
        O200KClassTable.classes.withUnsafeBufferPointer { table in
            @inline(__always) func scalar(_ i: Int) -> (UInt32, Int) {
                let s = decodeScalar(text, i)
                return (s.value, s.utf8.count)
            }
            @inline(__always) func classOf(_ v: UInt32) -> UInt8 {
                v < UInt32(table.count) ? table[Int(v)] : O200KClassTable.classify(v)
            }
            @inline(__always) func isNewline(_ v: UInt32) -> Bool { v == 0x0A || v == 0x0D }
            /// [^\r\n\p{L}\p{N}]
            @inline(__always) func isPrefix(_ v: UInt32, _ c: UInt8) -> Bool {
                !isNewline(v) && c & (letter | number) == 0
            }
            /// [^\s\p{L}\p{N}]
            @inline(__always) func isOther(_ c: UInt8) -> Bool { c & (space | letter | number) == 0 }
            /// The start of the scalar before byte offset `i` (> 0).
            @inline(__always) func previous(_ i: Int) -> Int {
                var j = i - 1
                while j > 0 && text[j] & 0xC0 == 0x80 { j -= 1 }
                return j
            }
            /// End of the run of scalars with any of `bits` from `i`.
            @inline(__always) func run(_ i: Int, _ bits: UInt8) -> Int {
                var j = i
                while j < n {
                    let (w, wlen) = scalar(j)
                    if classOf(w) & bits == 0 { break }
                    j += wlen
                }
                return j
            }
            /// (?i:'s|'t|'re|'ve|'m|'ll|'d)? at `i`: its length in bytes (0 if none).
            func contraction(_ i: Int) -> Int {
                guard i + 1 < n, text[i] == 0x27 else { return 0 }
                @inline(__always) func folded(_ v: UInt32) -> UInt32 {
                    if v >= 0x41 && v <= 0x5A { return v + 0x20 }
                    if v == 0x17F { return 0x73 }  // ſ folds to s
                    return v
                }
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
            /// U*L+C? from `j`: the end of the match, or -1. U* is greedy and gives back
            /// scalars until L+ can start: L+ starts at the last scalar of class L among the
            /// U run and the scalar after it.
            func upperThenLower(_ j: Int) -> Int {
                let k = run(j, upper)
                var m = -1
                if k < n && classOf(scalar(k).0) & lower != 0 {
                    m = k
                } else {
                    var p = k
                    while p > j {
                        p = previous(p)
                        if classOf(scalar(p).0) & lower != 0 { m = p; break }
                    }
                }
                if m < 0 { return -1 }
                let e = run(m, lower)
                return e + contraction(e)
            }
            /// U+L*C? from `j`: the end of the match, or -1.
            func upperRunThenLower(_ j: Int) -> Int {
                guard j < n, classOf(scalar(j).0) & upper != 0 else { return -1 }
                let e = run(run(j, upper), lower)
                return e + contraction(e)
            }

            var i = 0
            while i < n {
                let (v, len) = scalar(i)
                let cls = classOf(v)
                let prefix = isPrefix(v, cls)
                // Alternatives 1 and 2, each first with the optional prefix scalar, then without.
                var end = -1
                if prefix { end = upperThenLower(i + len) }
                if end < 0 { end = upperThenLower(i) }
                if end < 0 && prefix { end = upperRunThenLower(i + len) }
                if end < 0 { end = upperRunThenLower(i) }
                if end >= 0 { body(i, end); i = end; continue }
                // \p{N}{1,3}
                if cls & number != 0 {
                    var j = i + len, count = 1
                    while j < n && count < 3 {
                        let (w, wlen) = scalar(j)
                        if classOf(w) & number == 0 { break }
                        j += wlen
                        count += 1
                    }
                    body(i, j); i = j; continue
                }
                // " ?[^\s\p{L}\p{N}]+[\r\n/]*"
                var otherStart = -1
                if isOther(cls) {
                    otherStart = i
                } else if v == 0x20 && i + 1 < n && isOther(classOf(scalar(i + 1).0)) {
                    otherStart = i + 1
                }
                if otherStart >= 0 {
                    var j = otherStart
                    while j < n {
                        let (w, wlen) = scalar(j)
                        if !isOther(classOf(w)) { break }
                        j += wlen
                    }
                    while j < n && (text[j] == 0x0A || text[j] == 0x0D || text[j] == 0x2F) { j += 1 }
                    body(i, j); i = j; continue
                }
                // Whitespace at i (the only class left).
                precondition(cls & space != 0, "o200k classes are exhaustive")
                var j = i, last = i, lastNewlineEnd = -1
                while j < n {
                    let (w, wlen) = scalar(j)
                    if classOf(w) & space == 0 { break }
                    last = j
                    j += wlen
                    if isNewline(w) { lastNewlineEnd = j }
                }
                // \s*[\r\n]+ : up to and including the last newline of the run.
                if lastNewlineEnd > 0 { body(i, lastNewlineEnd); i = lastNewlineEnd; continue }
                // \s+(?!\S) | \s+
                let stop = (j == n || last == i) ? j : last
                body(i, stop)
                i = stop
            }
        }
    }
}

/// o200k class bits of Unicode scalars (see `O200KSplitter`): a table for the first two
/// planes and a direct computation above.
enum O200KClassTable {
    /// Class bits per scalar value below 0x20000 (surrogates: none).
    static let classes: [UInt8] = (0..<UInt32(0x20000)).map { classify($0) }

    static func classify(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        let properties = scalar.properties
        if let age = properties.age, age.major > 16 || (age.major == 16 && age.minor > 0) {
            return 0
        }
        switch properties.generalCategory {
        case .uppercaseLetter, .titlecaseLetter:
            return O200KSplitter.upper | O200KSplitter.letter
        case .lowercaseLetter:
            return O200KSplitter.lower | O200KSplitter.letter
        case .modifierLetter, .otherLetter:
            return O200KSplitter.upper | O200KSplitter.lower | O200KSplitter.letter
        case .nonspacingMark, .spacingMark, .enclosingMark:
            return O200KSplitter.upper | O200KSplitter.lower
        case .decimalNumber, .letterNumber, .otherNumber:
            return O200KSplitter.number
        default:
            return properties.isWhitespace ? O200KSplitter.space : 0
        }
    }
}
