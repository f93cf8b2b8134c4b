/// GPT-2's reversible map between bytes and printable characters (`bytes_to_unicode`).
///
/// Byte-level BPE vocabularies (`vocab.json`, `tokenizer.json` with a `ByteLevel`
/// pre-tokenizer) spell every token with one character per byte: printable Latin-1
/// bytes stand for themselves, the other 68 bytes for U+0100...U+0143 (space is `Ġ`,
/// newline `Ċ`). StreamLab keeps byte-level tokens as raw bytes and uses this map only
/// at the edges: reading vocabularies, writing vocabulary spellings, and decoding.
enum ByteLevelAlphabet {
    /// The character standing for each byte, [256].
    static let characterForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte a character stands for, nil for characters outside the alphabet.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 256 {
            let printable = (0x21...0x7E).contains(v) || (0xA1...0xAC).contains(v) || (0xAE...0xFF).contains(v)
            return printable ? UInt8(v) : nil
        }
        if v >= 256 && v < 256 + 68 { return byteForShiftedCharacter[Int(v - 256)] }
        return nil
    }

    /// The bytes a vocabulary spelling stands for, or nil if some character is not in
    /// the alphabet (such a token can only be an added token, matched literally).
    static func bytes(forSpelling spelling: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(spelling.utf8.count)
        for scalar in spelling.unicodeScalars {
            guard let b = byte(for: scalar) else { return nil }
            out.append(b)
        }
        return out
    }

    /// The UTF-8 of each byte's character. [256]
    static let utf8ForByte: [[UInt8]] = characterForByte.map { Array(String($0).utf8) }

    /// The UTF-8 of the vocabulary spelling of raw token bytes.
    static func spellingUTF8(of bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(contentsOf: utf8ForByte[Int(b)]) }
        return out
    }

    /// The vocabulary spelling of raw token bytes (`" the"` -> `"Ġthe"`).
    static func spelling(of bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(characterForByte[Int(b)]) }
        return String(s)
    }

    private static let byteForShiftedCharacter: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 68)
        for b in 0..<256 {
            let v = characterForByte[b].value
            if v >= 256 { table[Int(v - 256)] = UInt8(b) }
        }
        return table
    }()
}
