/// Normalizer stages of a `tokenizer.json` pipeline. They rewrite each stretch of text
/// between added tokens (UTF-8 in, UTF-8 out) before pre-tokenization.
protocol Normalizer: Sendable {
    func normalize(_ text: [UInt8]) -> [UInt8]
}

/// `Prepend`: puts `prefix` in front of non-empty text (Llama 2's `▁`).
struct PrependNormalizer: Normalizer {
    let prefix: [UInt8]

    func normalize(_ text: [UInt8]) -> [UInt8] {
        text.isEmpty ? text : prefix + text
    }
}

/// `Replace` with a string pattern: every non-overlapping occurrence, left to right.
/// (Also the `Replace` decoder, see `ReplaceDecoder`.)
struct ReplaceNormalizer: Normalizer {
    let pattern: [UInt8]
    let content: [UInt8]

    func normalize(_ text: [UInt8]) -> [UInt8] {
        replaceAll(text, pattern, content)
    }
}

/// `Sequence`: the stages in order.
struct SequenceNormalizer: Normalizer {
    let stages: [any Normalizer]

    func normalize(_ text: [UInt8]) -> [UInt8] {
        stages.reduce(text) { $1.normalize($0) }
    }
}

/// `text` with every non-overlapping occurrence of `pattern` replaced by `content`.
/// On valid UTF-8 a byte match is a match of whole scalars, so this is the scalar-level
/// replacement `tokenizers` performs.
func replaceAll(_ text: [UInt8], _ pattern: [UInt8], _ content: [UInt8]) -> [UInt8] {
    guard !pattern.isEmpty, text.count >= pattern.count else { return text }
    var out: [UInt8] = []
    out.reserveCapacity(text.count + text.count / 4)
    let first = pattern[0]
    var i = 0
    let n = text.count, m = pattern.count
    while i < n {
        if text[i] == first, i + m <= n, text[i..<(i + m)].elementsEqual(pattern) {
            out.append(contentsOf: content)
            i += m
        } else {
            out.append(text[i])
            i += 1
        }
    }
    return out
}

/// `NFC`: canonical composition (GPT-NeoX / Pythia, Qwen2), with the Swift runtime's
/// normalization, the one `String` comparison uses.
struct NFCNormalizer: Normalizer {
    func normalize(_ text: [UInt8]) -> [UInt8] {
        String(decoding: text, as: UTF8.self)._nfcCodeUnits
    }
}
