/// The vocabulary as its file spells it ("Ġthe", "▁the", "<0x0A>"): id <-> spelling.
struct SpellingTable: Sendable {
    /// The largest token id a file may use: four times the largest real vocabularies
    /// (about 256k). Tables are indexed by id, so a hostile id of 10^9 in a 200-byte
    /// file would otherwise allocate gigabytes.
    static let maximumID = (1 << 20) - 1

    private var arena: [UInt8] = []
    /// Per id: start in `arena` and length, or (-1, 0) for ids no token has.
    private var starts: [Int32] = []
    private var lengths: [Int32] = []
    private(set) var table: ByteStringTable

    init(expectedCount: Int) {
        table = ByteStringTable(minimumCapacity: expectedCount)
        arena.reserveCapacity(expectedCount * 8)
    }

    /// One more than the largest id.
    var idLimit: Int { starts.count }

    mutating func add(_ spelling: UnsafeBufferPointer<UInt8>, id: Int) {
        if id >= starts.count {
            starts.append(contentsOf: repeatElement(-1, count: id + 1 - starts.count))
            lengths.append(contentsOf: repeatElement(0, count: id + 1 - lengths.count))
        }
        starts[id] = Int32(arena.count)
        lengths[id] = Int32(spelling.count)
        arena.append(contentsOf: spelling)
        table.set(spelling, Int32(id))
    }

    mutating func add(_ spelling: [UInt8], id: Int) {
        spelling.withUnsafeBufferPointer { add($0, id: id) }
    }

    func spelling(of id: Int) -> ArraySlice<UInt8>? {
        guard id >= 0, id < starts.count, starts[id] >= 0 else { return nil }
        let start = Int(starts[id])
        return arena[start..<(start + Int(lengths[id]))]
    }

    func id(of spelling: [UInt8]) -> Int? { table.get(spelling).map(Int.init) }
}

/// `TemplateProcessing` (and friends) for a single sequence: the ids put around it
/// when `addSpecialTokens` is true.
struct TemplatePostProcessor: Sendable {
    var prefix: [Int] = []
    var suffix: [Int] = []

    /// `self` applied after `inner` (a `Sequence` of processors).
    func wrapping(_ inner: TemplatePostProcessor) -> TemplatePostProcessor {
        TemplatePostProcessor(prefix: prefix + inner.prefix, suffix: inner.suffix + suffix)
    }
}

/// A BPE tokenizer assembled from `tokenizer.json`-style stages:
/// added tokens -> normalizer -> pre-tokenizer -> BPE model -> post-processor, and
/// ids -> token texts -> decoder. tiktoken files and vocab.json + merges.txt are read
/// into the same pipeline (`TiktokenReader`, `VocabMergesReader`).
final class BPETokenizer: Tokenizer {
    /// The file it was read from, for messages.
    let source: String
    let model: BPEModel
    let spellings: SpellingTable
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let decoder: (any TokenDecoder)?
    let postProcessor: TemplatePostProcessor
    /// Added tokens matched in the raw input, and those matched after normalization.
    let rawAddedTokens: AddedTokenMatcher
    let normalizedAddedTokens: AddedTokenMatcher
    let addedByID: [Int: AddedToken]
    /// The character standing for a space in SentencePiece-style vocabularies (`▁`).
    let spaceMarker: [UInt8]?

    let vocabularySize: Int
    let bosTokenID: Int?
    let eosTokenID: Int?

    init(source: String, model: BPEModel, spellings: SpellingTable, addedTokens: [AddedToken],
         normalizer: (any Normalizer)?, preTokenizer: (any PreTokenizer)?, decoder: (any TokenDecoder)?,
         postProcessor: TemplatePostProcessor, spaceMarker: [UInt8]?,
         bosTokenID: Int?, eosTokenID: Int?) {
        self.source = source
        self.model = model
        self.spellings = spellings
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.decoder = decoder
        self.postProcessor = postProcessor
        self.spaceMarker = spaceMarker
        // Two passes, as in `tokenizers`: first the tokens matched in the raw input, then, in
        // each stretch between them, the "normalized" ones (also when there is no normalizer).
        rawAddedTokens = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedAddedTokens = AddedTokenMatcher(addedTokens.filter(\.normalized))
        var byID: [Int: AddedToken] = [:]
        for token in addedTokens { byID[token.id] = token }
        addedByID = byID
        vocabularySize = max(spellings.idLimit, (addedTokens.map(\.id).max() ?? -1) + 1)
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
    }

    // MARK: Encoding

    func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        var text = text
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var scratch = BPEScratch()
        text.withUTF8 { input in
            rawAddedTokens.split(input) { segment in
                switch segment {
                case .token(let id):
                    ids.append(id)
                case .text(let range):
                    encodeSegment(UnsafeBufferPointer(rebasing: input[range]), isFirst: range.lowerBound == 0,
                                  &ids, &scratch)
                }
            }
        }
        if addSpecialTokens && !(postProcessor.prefix.isEmpty && postProcessor.suffix.isEmpty) {
            ids = postProcessor.prefix + ids + postProcessor.suffix
        }
        return ids
    }

    /// Text between raw-matched added tokens: normalize, match normalized added tokens,
    /// pre-tokenize, encode each piece.
    private func encodeSegment(_ segment: UnsafeBufferPointer<UInt8>, isFirst: Bool,
                               _ ids: inout [Int], _ scratch: inout BPEScratch) {
        guard let normalizer else {
            splitNormalized(segment, isFirst: isFirst, &ids, &scratch)
            return
        }
        let normalized = normalizer.normalize(Array(segment))
        normalized.withUnsafeBufferPointer { splitNormalized($0, isFirst: isFirst, &ids, &scratch) }
    }

    private func splitNormalized(_ buffer: UnsafeBufferPointer<UInt8>, isFirst: Bool,
                                 _ ids: inout [Int], _ scratch: inout BPEScratch) {
        guard !normalizedAddedTokens.isEmpty else {
            encodePieces(buffer, isFirst: isFirst, &ids, &scratch)
            return
        }
        normalizedAddedTokens.split(buffer) { part in
            switch part {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                encodePieces(UnsafeBufferPointer(rebasing: buffer[range]),
                             isFirst: isFirst && range.lowerBound == 0, &ids, &scratch)
            }
        }
    }

    private func encodePieces(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
                              _ ids: inout [Int], _ scratch: inout BPEScratch) {
        if let preTokenizer {
            preTokenizer.split(text, isFirst: isFirst) { piece, _ in
                model.encode(piece, into: &ids, scratch: &scratch)
            }
        } else {
            model.encode(text, into: &ids, scratch: &scratch)
        }
    }

    // MARK: Decoding

    func decode(_ ids: [Int]) throws -> String {
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let added = addedByID[id] {
                tokens.append(added.content)
            } else if let spelling = spellings.spelling(of: id) {
                tokens.append(Array(spelling))
            } else {
                throw TokenizerError.unknownTokenID(id, vocabularySize: vocabularySize)
            }
        }
        guard let decoder else {
            // `tokenizers` without a decoder joins the tokens with spaces.
            return tokens.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        }
        return String(decoding: decoder.decodeChain(tokens).joined(), as: UTF8.self)
    }

    func displayText(of id: Int) -> String {
        if let added = addedByID[id] { return String(decoding: added.content, as: UTF8.self) }
        guard let spelling = spellings.spelling(of: id) else { return "<unk:\(id)>" }
        let text = String(decoding: spelling, as: UTF8.self)
        switch model.units {
        case .bytes:
            guard let raw = ByteLevelAlphabet.bytes(forSpelling: text) else { return text }
            return escapingInvalidUTF8(raw)
        case .scalars:
            if let byte = ByteFallbackDecoder.fallbackByte(Array(spelling)), model.byteFallbackIDs?[Int(byte)] == Int32(id) {
                return byte < 0x80 ? String(Unicode.Scalar(byte)) : text
            }
            guard let marker = spaceMarker else { return text }
            return String(decoding: replaceAll(Array(spelling), marker, [0x20]), as: UTF8.self)
        }
    }

    func id(ofTokenText text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        for token in rawAddedTokens.tokens + normalizedAddedTokens.tokens where token.content == bytes {
            return token.id
        }
        if let id = spellings.id(of: bytes) { return id }
        switch model.units {
        case .bytes:
            return model.tokens.get(bytes).map(Int.init)
        case .scalars:
            if bytes.count == 1, let fallback = model.byteFallbackIDs, fallback[Int(bytes[0])] >= 0,
               model.tokens.get(bytes) == nil {
                return Int(fallback[Int(bytes[0])])
            }
            guard let marker = spaceMarker else { return nil }
            return spellings.id(of: replaceAll(bytes, [0x20], marker))
        }
    }
}

/// Bytes as text, with each byte that is not part of a valid UTF-8 sequence written `\xE2`.
func escapingInvalidUTF8(_ bytes: [UInt8]) -> String {
    var out = ""
    var rest = bytes[...]
    while !rest.isEmpty {
        let valid = rest.withUnsafeBufferPointer { TextFile.firstInvalidUTF8Offset($0) } ?? rest.count
        out += String(decoding: rest.prefix(valid), as: UTF8.self)
        rest = rest.dropFirst(valid)
        if let bad = rest.first {
            out += "\\x" + (bad < 16 ? "0" : "") + String(bad, radix: 16, uppercase: true)
            rest = rest.dropFirst()
        }
    }
    return out
}
