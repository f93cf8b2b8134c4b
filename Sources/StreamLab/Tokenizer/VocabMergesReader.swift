#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads GPT-2's slow-tokenizer files, `vocab.json` (spelling -> id) and `merges.txt`
/// (one `a b` rule per line, lowest rank first, an optional `#version` header), into a
/// byte-level `BPETokenizer`: GPT-2 pre-tokenizer without a prefix space, `ByteLevel`
/// decoder. `<|endoftext|>`, when in the vocabulary, is a special token and BOS/EOS.
/// GPT-1's files (word-end `</w>` tokens) are refused as unsupported rather than misread.
enum VocabMergesReader {
    static func read(vocabulary: URL, merges mergesURL: URL) throws -> BPETokenizer {
        let vocabFile = vocabulary.path
        let bytes = try TextFile.readBytes(vocabulary)
        if let offset = TextFile.firstInvalidUTF8Offset(bytes) {
            throw TokenizerError.invalidUTF8(file: vocabFile, byteOffset: offset)
        }
        guard let entries = try JSONReader.parse(bytes, file: vocabFile).members else {
            throw TokenizerError.invalidEntry(file: vocabFile, key: "(top level)", reason: "must be an object of token -> id")
        }
        var spellings = SpellingTable(expectedCount: entries.count)
        if entries.contains(where: { $0.key.hasSuffix("</w>") }) {
            // GPT-1 (openai-gpt) files: word-final `</w>` tokens, lower-casing, another pre-tokenizer.
            throw TokenizerError.unsupported(
                file: vocabFile, feature: "vocabulary with word-end '</w>' tokens (GPT-1 / openai-gpt style BPE)")
        }
        for (token, value) in entries {
            guard let id = value.int, id >= 0, id <= SpellingTable.maximumID else {
                throw TokenizerError.invalidEntry(file: vocabFile, key: token,
                                                  reason: "must be an integer id from 0 to \(SpellingTable.maximumID), found \(value.preview)")
            }
            spellings.add(Array(token.utf8), id: id)
        }

        let mergesFile = mergesURL.path
        let mergeBytes = try TextFile.readBytes(mergesURL)
        if let offset = TextFile.firstInvalidUTF8Offset(mergeBytes) {
            throw TokenizerError.invalidUTF8(file: mergesFile, byteOffset: offset)
        }
        var merges = PairTable(minimumCapacity: entries.count)
        var rank: UInt32 = 0
        for (index, line) in mergeBytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            var line = line
            if line.last == 0x0D { line = line.dropLast() }
            if line.isEmpty || line.starts(with: Array("#version".utf8)) { continue }
            let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformedLine(
                    file: mergesFile, line: index + 1,
                    reason: "expected two tokens separated by one space, found \"\(String(decoding: line, as: UTF8.self))\"")
            }
            try addMerge(String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self),
                         rank: rank, spellings: spellings, into: &merges, file: mergesFile,
                         location: "line \(index + 1)")
            rank += 1
        }

        let model = BPEModel(units: .bytes, tokens: TokenizerJSONReader.rawByteTable(spellings), merges: merges,
                             byteFallback: false, unknownID: nil, fuseUnknown: false, ignoreMerges: false)
        var added: [AddedToken] = []
        let endOfText = spellings.id(of: Array(TiktokenReader.endOfText.utf8))
        if let endOfText {
            added.append(AddedToken(content: Array(TiktokenReader.endOfText.utf8), id: endOfText, special: true,
                                    singleWord: false, lstrip: false, rstrip: false, normalized: false))
        }
        return BPETokenizer(source: vocabFile, model: model, spellings: spellings, addedTokens: added,
                            normalizer: nil,
                            preTokenizer: ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
                            decoder: ByteLevelDecoder(), postProcessor: TemplatePostProcessor(),
                            spaceMarker: nil, bosTokenID: endOfText, eosTokenID: endOfText)
    }
}
