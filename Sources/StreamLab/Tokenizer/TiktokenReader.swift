#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads a tiktoken ranks file (`base64(token) rank` per line, as `gpt2.tiktoken`) into
/// a byte-level `BPETokenizer` that encodes exactly as tiktoken's GPT-2 encoding:
/// - the pre-tokenizer is GPT-2's pattern (files of more than 60,000 ranks, such as
///   cl100k_base or o200k_base, which tiktoken pairs with other patterns, are refused);
/// - a token's id is its rank; `<|endoftext|>` gets the id after the largest rank (50256
///   for GPT-2), as tiktoken's `gpt2` encoding defines it, and is also BOS and EOS;
/// - merging is tiktoken's: a piece that is a token is that token, otherwise the
///   adjacent pair whose concatenation has the lowest rank merges first. That is the
///   `BPEModel` algorithm with a rule for every split of every token into two tokens.
enum TiktokenReader {
    static let endOfText = "<|endoftext|>"

    static func read(_ url: URL) throws -> BPETokenizer {
        let file = url.path
        let bytes = try TextFile.readBytes(url)
        var raw = ByteStringTable(minimumCapacity: bytes.count / 12)
        var rawBytesByID: [[UInt8]?] = []
        var lineOfRank: [Int32] = []   // 0 = rank not seen

        var lineNumber = 0
        var lineStart = 0
        var decoded: [UInt8] = []
        while lineStart < bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let line = bytes[lineStart..<contentEnd]
            lineStart = lineEnd + 1
            if line.isEmpty { continue }

            guard let space = line.firstIndex(of: 0x20), !line[(space + 1)...].contains(0x20),
                  space > line.startIndex, space + 1 < line.endIndex else {
                throw TokenizerError.malformedLine(file: file, line: lineNumber,
                                                   reason: "expected 'base64-token rank', found \"\(preview(line))\"")
            }
            guard Base64.decode(line[..<space], into: &decoded) else {
                throw TokenizerError.malformedLine(file: file, line: lineNumber,
                                                   reason: "invalid base64 token \"\(preview(line[..<space]))\"")
            }
            var rank = 0
            for digit in line[(space + 1)...] {
                guard digit >= 0x30 && digit <= 0x39, rank <= SpellingTable.maximumID else {
                    throw TokenizerError.malformedLine(
                        file: file, line: lineNumber,
                        reason: "rank must be an integer from 0 to \(SpellingTable.maximumID), found \"\(preview(line[(space + 1)...]))\"")
                }
                rank = rank * 10 + Int(digit - 0x30)
            }
            if rank > SpellingTable.maximumID {
                throw TokenizerError.malformedLine(
                    file: file, line: lineNumber,
                    reason: "rank must be an integer from 0 to \(SpellingTable.maximumID), found \"\(preview(line[(space + 1)...]))\"")
            }
            if rank >= lineOfRank.count {
                lineOfRank.append(contentsOf: repeatElement(0, count: rank + 1 - lineOfRank.count))
            }
            if lineOfRank[rank] != 0 {
                throw TokenizerError.malformedLine(file: file, line: lineNumber,
                                                   reason: "rank \(rank) was already given on line \(lineOfRank[rank])")
            }
            lineOfRank[rank] = Int32(lineNumber)
            if let earlier = raw.set(decoded, Int32(rank)) {
                throw TokenizerError.malformedLine(file: file, line: lineNumber,
                                                   reason: "token already listed with rank \(earlier)")
            }
            if rank >= rawBytesByID.count {
                rawBytesByID.append(contentsOf: repeatElement(nil, count: rank + 1 - rawBytesByID.count))
            }
            rawBytesByID[rank] = decoded
        }
        guard !rawBytesByID.isEmpty else {
            throw TokenizerError.malformedLine(file: file, line: max(lineNumber, 1), reason: "the file lists no tokens")
        }
        if rawBytesByID.count > 60_000 {
            // cl100k_base / o200k_base split text with other patterns and have other special
            // tokens; encoding them with GPT-2's pattern would give wrong ids silently.
            throw TokenizerError.unsupported(
                file: file, feature: "tiktoken ranks file with \(rawBytesByID.count) tokens (only GPT-2-pattern "
                    + "encodings such as gpt2 / r50k_base / p50k_base are implemented)")
        }

        // Every split of a token into two tokens is a merge rule, ranked by the token.
        // The splits are found in time linear in the token's length: walking a trie of
        // all tokens along the token gives every prefix that is a token, walking a
        // trie of the reversed tokens along it backwards every suffix that is one.
        var forward = ByteTrie(), backward = ByteTrie()
        for (id, token) in rawBytesByID.enumerated() {
            guard let token else { continue }
            forward.insert(token, id: Int32(id))
            backward.insert(token.reversed(), id: Int32(id))
        }
        var merges = PairTable(minimumCapacity: rawBytesByID.count * 4)
        var spellings = SpellingTable(expectedCount: rawBytesByID.count)
        var suffixIDs: [Int32] = []
        for (id, token) in rawBytesByID.enumerated() {
            guard let token else { continue }
            spellings.add(ByteLevelAlphabet.spellingUTF8(of: token), id: id)
            guard token.count > 1 else { continue }
            let n = token.count
            // suffixIDs[k]: the id of token[k...] if it is a token, else -1.
            suffixIDs.removeAll(keepingCapacity: true)
            suffixIDs.append(contentsOf: repeatElement(-1, count: n + 1))
            backward.walk(token.reversed()) { length, suffixID in suffixIDs[n - length] = suffixID }
            forward.walk(token) { k, leftID in
                if k < n, suffixIDs[k] >= 0 { merges.set(leftID, suffixIDs[k], rank: UInt32(id), merged: Int32(id)) }
            }
        }
        let endOfTextID = rawBytesByID.count
        let model = BPEModel(units: .bytes, tokens: raw, merges: merges, byteFallback: false,
                             unknownID: nil, fuseUnknown: false, ignoreMerges: true)
        let special = AddedToken(content: Array(endOfText.utf8), id: endOfTextID, special: true,
                                 singleWord: false, lstrip: false, rstrip: false, normalized: false)
        return BPETokenizer(source: file, model: model, spellings: spellings, addedTokens: [special],
                            normalizer: nil,
                            preTokenizer: ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
                            decoder: ByteLevelDecoder(), postProcessor: TemplatePostProcessor(),
                            spaceMarker: nil, bosTokenID: endOfTextID, eosTokenID: endOfTextID)
    }

    private static func preview(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes.prefix(40), as: UTF8.self)
        return bytes.count > 40 ? text + "..." : text
    }
}

/// Standard base64 (RFC 4648, `+/`, optional `=` padding).
enum Base64 {
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        return table
    }()

    /// Decodes `text` into `out` (replacing its contents); false if it is not base64.
    static func decode(_ text: ArraySlice<UInt8>, into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        var end = text.endIndex
        var padding = 0
        while end > text.startIndex && text[end - 1] == UInt8(ascii: "=") && padding < 2 {
            end -= 1
            padding += 1
        }
        let count = end - text.startIndex
        if padding > 0 && (count + padding) % 4 != 0 { return false }
        if count % 4 == 1 { return false }
        var accumulator: UInt32 = 0
        var bits = 0
        let values = Self.values
        for c in text[text.startIndex..<end] {
            let v = values[Int(c)]
            if v == 0xFF { return false }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return !out.isEmpty
    }
}

/// A trie of byte strings, each ending node holding a token id; children in
/// one hash table keyed by (node, byte).
struct ByteTrie {
    private var children: [UInt64: Int32] = [:]
    private var ids: [Int32] = [-1]                  // per node; node 0 is the root

    mutating func insert(_ bytes: some Sequence<UInt8>, id: Int32) {
        var node: Int32 = 0
        for b in bytes {
            let key = UInt64(node) << 8 | UInt64(b)
            if let child = children[key] {
                node = child
            } else {
                let child = Int32(ids.count)
                ids.append(-1)
                children[key] = child
                node = child
            }
        }
        ids[Int(node)] = id
    }

    /// Calls `found(length, id)` for every prefix of `bytes` that is a string of the trie.
    func walk(_ bytes: some Sequence<UInt8>, _ found: (Int, Int32) -> Void) {
        var node: Int32 = 0, length = 0
        for b in bytes {
            guard let child = children[UInt64(node) << 8 | UInt64(b)] else { return }
            node = child
            length += 1
            if ids[Int(node)] >= 0 { found(length, ids[Int(node)]) }
        }
    }
}
