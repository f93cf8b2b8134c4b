/// An added token of a `tokenizer.json` (`added_tokens`), or tiktoken's `<|endoftext|>`:
/// matched literally in the input before any other stage, with `tokenizers`' options.
struct AddedToken: Sendable {
    let content: [UInt8]
    let id: Int
    let special: Bool
    /// Only matches when neither preceded nor followed by a word character (`\w`).
    let singleWord: Bool
    /// The match swallows the whitespace on its left / right.
    let lstrip: Bool
    let rstrip: Bool
    /// Matched in the normalized text (true) or the raw input (false).
    let normalized: Bool

    /// The same token under another id.
    func withID(_ id: Int) -> AddedToken {
        AddedToken(content: content, id: id, special: special, singleWord: singleWord, lstrip: lstrip,
                   rstrip: rstrip, normalized: normalized)
    }
}

/// Finds added tokens in text as `tokenizers`' `AddedVocabulary` does: its Aho-Corasick
/// automaton reports non-overlapping leftmost-longest matches of the token texts, and each
/// match is then judged and widened:
/// - a `single_word` match that touches a word character is dropped, and the search goes on
///   after it (a shorter token at the same place is not tried);
/// - `lstrip` / `rstrip` widen the match over the whitespace beside it, which the emitted
///   token swallows; the search still goes on from the end of the token text itself.
struct AddedTokenMatcher: Sendable {
    enum Segment {
        case text(Range<Int>)
        case token(Int)
    }

    let tokens: [AddedToken]
    /// For each first byte, the indices of the tokens starting with it, longest first.
    private let candidates: [[Int]]

    init(_ tokens: [AddedToken]) {
        let tokens = tokens.filter { !$0.content.isEmpty }
        var candidates = [[Int]](repeating: [], count: 256)
        for (i, token) in tokens.enumerated() {
            candidates[Int(token.content[0])].append(i)
        }
        for b in 0..<256 {
            candidates[b].sort { tokens[$0].content.count > tokens[$1].content.count }
        }
        self.tokens = tokens
        self.candidates = candidates
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Calls `body` with the stretches of text between tokens (non-empty ones only) and
    /// with the tokens, in order.
    func split(_ text: UnsafeBufferPointer<UInt8>, _ body: (Segment) -> Void) {
        let n = text.count
        guard !tokens.isEmpty else {
            if n > 0 { body(.text(0..<n)) }
            return
        }
        var emitted = 0   // end of what has been handed to body (`start_offset` in `tokenizers`)
        var i = 0         // where the automaton searches next
        while i < n {
            guard let token = longestMatch(text, at: i) else {
                i += 1
                continue
            }
            let matchEnd = i + token.content.count
            if token.singleWord {
                let before = i == 0 || !isWordCharacter(lastScalar(text, before: i))
                let after = matchEnd == n || !isWordCharacter(firstScalar(text, from: matchEnd))
                if !before || !after {
                    i = matchEnd
                    continue
                }
            }
            var start = i
            var stop = matchEnd
            if token.lstrip {
                start = max(emitted, startOfTrailingWhitespace(text, before: start))
            }
            if token.rstrip {
                stop = endOfLeadingWhitespace(text, from: stop)
            }
            if emitted < start { body(.text(emitted..<start)) }
            body(.token(token.id))
            // As in `tokenizers`, even when a match inside whitespace an earlier `rstrip`
            // swallowed moves it back.
            emitted = stop
            i = matchEnd
        }
        if emitted < n { body(.text(emitted..<n)) }
    }

    /// The longest token whose text starts at `i`, if any.
    private func longestMatch(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> AddedToken? {
        let n = text.count
        for index in candidates[Int(text[i])] {
            let token = tokens[index]
            let m = token.content.count
            guard i + m <= n else { continue }
            var equal = true
            for k in 1..<m where text[i + k] != token.content[k] { equal = false; break }
            if equal { return token }
        }
        return nil
    }

    /// Rust regex's `\w`, which `tokenizers` uses for `single_word`: Alphabetic, marks,
    /// decimal digits, connector punctuation and the joiners.
    private func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    private func lastScalar(_ text: UnsafeBufferPointer<UInt8>, before end: Int) -> Unicode.Scalar {
        var start = end - 1
        while start > 0 && text[start] & 0xC0 == 0x80 { start -= 1 }
        return decodeScalar(text, start)
    }

    private func firstScalar(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Unicode.Scalar {
        decodeScalar(text, start)
    }

    private func startOfTrailingWhitespace(_ text: UnsafeBufferPointer<UInt8>, before end: Int) -> Int {
        var position = end
        while position > 0 {
            var start = position - 1
            while start > 0 && text[start] & 0xC0 == 0x80 { start -= 1 }
            guard decodeScalar(text, start).properties.isWhitespace else { break }
            position = start
        }
        return position
    }

    private func endOfLeadingWhitespace(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var position = start
        while position < text.count {
            let scalar = decodeScalar(text, position)
            guard scalar.properties.isWhitespace else { break }
            position += scalar.utf8.count
        }
        return position
    }
}

/// The scalar whose UTF-8 starts at `i` of valid UTF-8 `text`.
func decodeScalar(_ text: UnsafeBufferPointer<UInt8>, _ i: Int) -> Unicode.Scalar {
    let b0 = UInt32(text[i])
    let value: UInt32
    if b0 < 0x80 {
        value = b0
    } else if b0 < 0xE0 {
        value = (b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F)
    } else if b0 < 0xF0 {
        value = (b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F)
    } else {
        value = (b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6
            | UInt32(text[i + 3] & 0x3F)
    }
    return Unicode.Scalar(value) ?? "\u{FFFD}"
}
