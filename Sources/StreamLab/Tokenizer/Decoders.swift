/// Decoder stages of a `tokenizer.json` pipeline. Like `tokenizers`' `decode_chain`, each
/// stage maps the list of token texts (UTF-8) to a new list; the result is concatenated.
protocol TokenDecoder: Sendable {
    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]]
}

/// `ByteLevel`: alphabet characters back to bytes (a token with a character outside the
/// alphabet keeps its UTF-8), all tokens joined, invalid UTF-8 replaced by U+FFFD.
struct ByteLevelDecoder: TokenDecoder {
    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        var bytes: [UInt8] = []
        for token in tokens {
            let spelling = String(decoding: token, as: UTF8.self)
            bytes.append(contentsOf: ByteLevelAlphabet.bytes(forSpelling: spelling) ?? token)
        }
        return [Array(String(decoding: bytes, as: UTF8.self).utf8)]
    }
}

/// `Replace` with a string pattern, in each token.
struct ReplaceDecoder: TokenDecoder {
    let pattern: [UInt8]
    let content: [UInt8]

    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        tokens.map { replaceAll($0, pattern, content) }
    }
}

/// `ByteFallback`: runs of `<0xNN>` tokens become the text of their bytes, or one U+FFFD
/// per byte token if those bytes are not valid UTF-8.
struct ByteFallbackDecoder: TokenDecoder {
    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if TextFile.firstInvalidUTF8Offset(pending) == nil {
                out.append(pending)
            } else {
                for _ in pending { out.append(Array("\u{FFFD}".utf8)) }
            }
            pending.removeAll()
        }
        for token in tokens {
            if let byte = Self.fallbackByte(token) {
                pending.append(byte)
            } else {
                flush()
                out.append(token)
            }
        }
        flush()
        return out
    }

    /// The byte of a `<0xNN>` token (parsed as Rust's `u8::from_str_radix` would, which
    /// admits a leading `+`), nil for other tokens.
    static func fallbackByte(_ token: [UInt8]) -> UInt8? {
        guard token.count == 6, token[0] == 0x3C, token[1] == 0x30, token[2] == 0x78, token[5] == 0x3E else {
            return nil
        }
        func digit(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: return b - 0x30
            case 0x41...0x46: return b - 0x41 + 10
            case 0x61...0x66: return b - 0x61 + 10
            default: return nil
            }
        }
        if token[3] == 0x2B { return digit(token[4]) }
        guard let hi = digit(token[3]), let lo = digit(token[4]) else { return nil }
        return hi << 4 | lo
    }
}

/// `Fuse`: all tokens joined into one.
struct FuseDecoder: TokenDecoder {
    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        [tokens.flatMap { $0 }]
    }
}

/// `Strip`: removes up to `start` leading and `stop` trailing `content` characters
/// from each token.
struct StripDecoder: TokenDecoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int

    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        tokens.map { token in
            let scalars = Array(String(decoding: token, as: UTF8.self).unicodeScalars)
            var startCut = 0
            while startCut < min(start, scalars.count), scalars[startCut] == content { startCut += 1 }
            var stopCut = scalars.count
            var removed = 0
            while removed < min(stop, scalars.count - startCut), scalars[stopCut - 1] == content {
                stopCut -= 1
                removed += 1
            }
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars[startCut..<stopCut])
            return Array(String(s).utf8)
        }
    }
}

/// `Metaspace`: `replacement` becomes a space, except in the first token (unless
/// `prepend_scheme` is `never`), where it is removed, wherever it occurs.
struct MetaspaceDecoder: TokenDecoder {
    let replacement: [UInt8]
    let prependNever: Bool

    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        tokens.enumerated().map { i, token in
            replaceAll(token, replacement, i == 0 && !prependNever ? [] : [0x20])
        }
    }
}

/// `Sequence`: the stages in order.
struct SequenceDecoder: TokenDecoder {
    let stages: [any TokenDecoder]

    func decodeChain(_ tokens: [[UInt8]]) -> [[UInt8]] {
        stages.reduce(tokens) { $1.decodeChain($0) }
    }
}
