#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads a Hugging Face `tokenizer.json` with a `BPE` model into a `BPETokenizer`.
///
/// Supported stages (anything else throws `TokenizerError.unsupported` naming it):
/// - normalizer: `Sequence`, `Prepend`, `Replace` (string pattern), `NFC`, or none;
/// - pre-tokenizer: `ByteLevel`, `Metaspace`, `Split` with the GPT-2, Llama 3, Qwen2 or o200k
///   pattern (`GPT2Splitter`, `CL100KSplitter`, `O200KSplitter`) or a literal string
///   (`LiteralSplitPreTokenizer`), `Sequence`, or none;
/// - model: `BPE` (`byte_fallback`, `fuse_unk`, `unk_token`, `ignore_merges`; merges as
///   `"a b"` strings or `["a", "b"]` pairs);
/// - decoder: `ByteLevel`, `Metaspace`, `Replace`, `ByteFallback`, `Fuse`, `Strip`, `Sequence`;
/// - post-processor: `TemplateProcessing`, `BertProcessing`, `RobertaProcessing`,
///   `ByteLevel`, `Sequence`, or none.
/// A `ByteLevel` pre-tokenizer makes the vocabulary byte-level: its spellings are mapped
/// back to raw bytes (`ByteLevelAlphabet`).
struct TokenizerJSONReader {
    let file: String

    static func read(_ url: URL) throws -> BPETokenizer {
        let bytes = try TextFile.readBytes(url)
        if let offset = TextFile.firstInvalidUTF8Offset(bytes) {
            throw TokenizerError.invalidUTF8(file: url.path, byteOffset: offset)
        }
        let json = try JSONReader.parse(bytes, file: url.path)
        let specials = try SpecialTokenNames.read(besides: url)
        return try TokenizerJSONReader(file: url.path).build(json, specials: specials)
    }

    // MARK: Whole file

    func build(_ json: JSONValue, specials: SpecialTokenNames?) throws -> BPETokenizer {
        guard json.members != nil else { throw invalid("(top level)", "must be a JSON object, found \(json.kindName)") }
        let normalizer = try readNormalizer(json["normalizer"], key: "normalizer")
        let preTokenizer = try readPreTokenizer(json["pre_tokenizer"], key: "pre_tokenizer")
        let byteLevel = preTokenizer.map(containsByteLevel) ?? false
        let decoder = try readDecoder(json["decoder"], key: "decoder")
        let listedTokens = try readAddedTokens(json["added_tokens"])

        guard let modelJSON = json["model"], modelJSON.members != nil else {
            throw invalid("model", json["model"] == nil ? "is missing" : "must be an object")
        }
        let type = modelJSON["type"]?.string ?? (modelJSON["merges"] != nil ? "BPE" : "(none)")
        guard type == "BPE" else { throw unsupported("model type '\(type)' (only BPE)") }
        let (spellings, model) = try readBPEModel(modelJSON, byteLevel: byteLevel)
        let addedTokens = Self.assignIDs(listedTokens, spellings: spellings)

        let postProcessor = try readPostProcessor(json["post_processor"], key: "post_processor",
                                                  spellings: spellings, added: addedTokens)
        var marker: [UInt8]? = nil
        if !byteLevel { marker = spaceMarker(json) ?? Array("▁".utf8) }

        func idOf(_ name: String) -> Int? {
            let bytes = Array(name.utf8)
            return addedTokens.first { $0.content == bytes }?.id ?? spellings.id(of: bytes)
        }
        // tokenizer_config.json decides where it names the token (null: none); otherwise
        // the template's leading special token, or the usual names among the special tokens.
        let specialNames = Set(addedTokens.filter(\.special).map { String(decoding: $0.content, as: UTF8.self) })
        let bos: Int? = switch specials?.bos {
        case .some(let name): name.flatMap(idOf)
        case .none: postProcessor.prefix.first
            ?? ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>"]
            .first(where: specialNames.contains).flatMap(idOf)
        }
        let eos: Int? = switch specials?.eos {
        case .some(let name): name.flatMap(idOf)
        case .none: ["</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"].first(where: specialNames.contains).flatMap(idOf)
        }
        return BPETokenizer(source: file, model: model, spellings: spellings, addedTokens: addedTokens,
                            normalizer: normalizer, preTokenizer: preTokenizer, decoder: decoder,
                            postProcessor: postProcessor, spaceMarker: marker,
                            bosTokenID: bos, eosTokenID: eos)
    }

    // MARK: Model

    private func readBPEModel(_ json: JSONValue, byteLevel: Bool) throws -> (SpellingTable, BPEModel) {
        guard let vocab = json["vocab"]?.members else {
            throw invalid("model.vocab", json["vocab"] == nil ? "is missing" : "must be an object of token -> id")
        }
        if let dropout = json["dropout"], !dropout.isNull, (dropout.int ?? 1) != 0 {
            throw unsupported("BPE dropout (model.dropout must be null)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = json[key], !value.isNull, value.string != "" {
                throw unsupported("model.\(key) (must be null)")
            }
        }
        var spellings = SpellingTable(expectedCount: vocab.count)
        for (token, value) in vocab {
            guard let id = value.int, id >= 0, id <= SpellingTable.maximumID else {
                throw invalid("model.vocab[\"\(token)\"]",
                              "must be an integer id from 0 to \(SpellingTable.maximumID), found \(value.preview)")
            }
            spellings.add(Array(token.utf8), id: id)
        }
        let tokens = byteLevel ? Self.rawByteTable(spellings) : spellings.table

        guard let mergesJSON = json["merges"]?.array else {
            throw invalid("model.merges", json["merges"] == nil ? "is missing" : "must be an array")
        }
        var merges = PairTable(minimumCapacity: mergesJSON.count)
        var rank: UInt32 = 0
        for (index, entry) in mergesJSON.enumerated() {
            let location = "model.merges[\(index)]"
            let left: String, right: String
            if let line = entry.string {
                if line.hasPrefix("#version") { continue }
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw invalid(location, "must be two tokens separated by one space, found \"\(line)\"")
                }
                left = String(parts[0]); right = String(parts[1])
            } else if let pair = entry.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                left = a; right = b
            } else {
                throw invalid(location, "must be \"a b\" or [\"a\", \"b\"], found \(entry.kindName)")
            }
            try addMerge(left, right, rank: rank, spellings: spellings, into: &merges,
                         file: file, location: location)
            rank += 1
        }

        var unknownID: Int32? = nil
        if let unk = json["unk_token"], !unk.isNull {
            guard let name = unk.string else { throw invalid("model.unk_token", "must be a string or null") }
            guard let id = spellings.id(of: Array(name.utf8)) else {
                throw invalid("model.unk_token", "names '\(name)', which is not in the vocabulary")
            }
            unknownID = Int32(id)
        }
        let model = BPEModel(units: byteLevel ? .bytes : .scalars, tokens: tokens, merges: merges,
                             byteFallback: json["byte_fallback"]?.bool ?? false, unknownID: unknownID,
                             fuseUnknown: json["fuse_unk"]?.bool ?? false,
                             ignoreMerges: json["ignore_merges"]?.bool ?? false)
        return (spellings, model)
    }

    /// Byte-level vocabularies: raw token bytes -> id. Spellings with characters outside
    /// the byte alphabet are left out: the model can never produce them.
    static func rawByteTable(_ spellings: SpellingTable) -> ByteStringTable {
        var table = ByteStringTable(minimumCapacity: spellings.idLimit)
        for id in 0..<spellings.idLimit {
            guard let spelling = spellings.spelling(of: id),
                  let raw = ByteLevelAlphabet.bytes(forSpelling: String(decoding: spelling, as: UTF8.self))
            else { continue }
            table.set(raw, Int32(id))
        }
        return table
    }

    // MARK: Added tokens

    private func readAddedTokens(_ json: JSONValue?) throws -> [AddedToken] {
        guard let json, !json.isNull else { return [] }
        guard let entries = json.array else { throw invalid("added_tokens", "must be an array") }
        return try entries.enumerated().map { index, entry in
            let key = "added_tokens[\(index)]"
            guard let id = entry["id"]?.int, id >= 0, id <= SpellingTable.maximumID else {
                throw invalid(key + ".id", "must be an integer from 0 to \(SpellingTable.maximumID)")
            }
            guard let content = entry["content"]?.string, !content.isEmpty else {
                throw invalid(key + ".content", "must be a non-empty string")
            }
            return AddedToken(content: Array(content.utf8), id: id,
                              special: entry["special"]?.bool ?? false,
                              singleWord: entry["single_word"]?.bool ?? false,
                              lstrip: entry["lstrip"]?.bool ?? false,
                              rstrip: entry["rstrip"]?.bool ?? false,
                              normalized: entry["normalized"]?.bool ?? !(entry["special"]?.bool ?? false))
        }
    }

    /// The ids `tokenizers` gives the added tokens when it reads the file (it warns about the
    /// listed ids but does not use them): a token the model vocabulary has keeps that entry's
    /// id; the others are numbered in file order from the number of vocabulary entries, even
    /// where that collides with an id the vocabulary uses. A repeated token takes the options
    /// of its last listing and keeps its first id.
    static func assignIDs(_ listed: [AddedToken], spellings: SpellingTable) -> [AddedToken] {
        var next = spellings.table.count
        var result: [AddedToken] = []
        var position: [[UInt8]: Int] = [:]
        for token in listed {
            if let index = position[token.content] {
                result[index] = token.withID(result[index].id)
                continue
            }
            let id: Int
            if let known = spellings.id(of: token.content) {
                id = known
            } else {
                id = next
                next += 1
            }
            position[token.content] = result.count
            result.append(token.withID(id))
        }
        return result
    }

    // MARK: Normalizers

    private func readNormalizer(_ json: JSONValue?, key: String) throws -> (any Normalizer)? {
        guard let json, !json.isNull else { return nil }
        let type = try typeName(json, key: key)
        switch type {
        case "Sequence":
            guard let list = json["normalizers"]?.array else { throw invalid(key + ".normalizers", "must be an array") }
            return SequenceNormalizer(stages: try list.enumerated().compactMap {
                try readNormalizer($1, key: "\(key).normalizers[\($0)]")
            })
        case "Prepend":
            guard let prefix = json["prepend"]?.string else { throw invalid(key + ".prepend", "must be a string") }
            return PrependNormalizer(prefix: Array(prefix.utf8))
        case "Replace":
            let (pattern, content) = try readReplace(json, key: key)
            return ReplaceNormalizer(pattern: pattern, content: content)
        case "NFC":
            return NFCNormalizer()
        default:
            throw unsupported("normalizer type '\(type)' at '\(key)'")
        }
    }

    private func readReplace(_ json: JSONValue, key: String) throws -> ([UInt8], [UInt8]) {
        guard let content = json["content"]?.string else { throw invalid(key + ".content", "must be a string") }
        if let pattern = json["pattern"]?["String"]?.string {
            return (Array(pattern.utf8), Array(content.utf8))
        }
        if json["pattern"]?["Regex"] != nil { throw unsupported("Replace with a regex pattern at '\(key)'") }
        throw invalid(key + ".pattern", "must be {\"String\": ...}")
    }

    // MARK: Pre-tokenizers

    private func readPreTokenizer(_ json: JSONValue?, key: String) throws -> (any PreTokenizer)? {
        guard let json, !json.isNull else { return nil }
        let type = try typeName(json, key: key)
        switch type {
        case "Sequence":
            guard let list = json["pretokenizers"]?.array else { throw invalid(key + ".pretokenizers", "must be an array") }
            return SequencePreTokenizer(stages: try list.enumerated().compactMap {
                try readPreTokenizer($1, key: "\(key).pretokenizers[\($0)]")
            })
        case "ByteLevel":
            return ByteLevelPreTokenizer(addPrefixSpace: json["add_prefix_space"]?.bool ?? true,
                                         useRegex: json["use_regex"]?.bool ?? true)
        case "Metaspace":
            let (replacement, scheme) = try readMetaspace(json, key: key)
            return MetaspacePreTokenizer(replacement: replacement, prependScheme: scheme,
                                         splitOnReplacement: json["split"]?.bool ?? true)
        case "Split":
            return try readSplit(json, key: key)
        default:
            throw unsupported("pre-tokenizer type '\(type)' at '\(key)'")
        }
    }

    /// `Split`: any behaviour with a literal string pattern; with a regex, the GPT-2, Llama 3,
    /// Qwen2 and o200k patterns, whose matches tile every text: `Isolated` then cuts the text
    /// into exactly the matches, as does `Removed` with `invert` (keep the matches, drop the
    /// nothing between them), the form tiktoken conversions write.
    private func readSplit(_ json: JSONValue, key: String) throws -> any PreTokenizer {
        guard let behaviorName = json["behavior"]?.string else { throw invalid(key + ".behavior", "must be a string") }
        guard let behavior = LiteralSplitPreTokenizer.Behavior(rawValue: behaviorName) else {
            throw invalid(key + ".behavior", "must be Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                          + "Contiguous, found \"\(behaviorName)\"")
        }
        let invert = json["invert"]?.bool ?? false
        if let literal = json["pattern"]?["String"]?.string {
            guard !literal.isEmpty else { throw unsupported("Split pre-tokenizer at '\(key)' with an empty pattern") }
            return LiteralSplitPreTokenizer(pattern: Array(literal.utf8), behavior: behavior, invert: invert)
        }
        guard let pattern = json["pattern"]?["Regex"]?.string else {
            throw invalid(key + ".pattern", "must be {\"String\": ...} or {\"Regex\": ...}")
        }
        let matchesOnly = behavior == .isolated || (behavior == .removed && invert)
        switch pattern {
        case Self.gpt2Pattern where matchesOnly: return GPT2SplitPreTokenizer()
        case CL100KSplitter.llama3Pattern where matchesOnly: return CL100KSplitPreTokenizer(maxDigits: 3)
        case CL100KSplitter.qwen2Pattern where matchesOnly: return CL100KSplitPreTokenizer(maxDigits: 1)
        case O200KSplitter.pattern where matchesOnly: return O200KSplitPreTokenizer()
        default:
            let shown = pattern.unicodeScalars.map { $0 == "\n" ? "\\n" : $0 == "\r" ? "\\r" : String($0) }.joined()
            throw unsupported("Split pre-tokenizer at '\(key)' with pattern \(shown) and behavior \(behaviorName)"
                              + (invert ? " (inverted)" : "") + " (implemented: the GPT-2, Llama 3, Qwen2 and o200k "
                              + "patterns with behavior Isolated, or Removed and inverted; any behavior with a "
                              + "literal string pattern)")
        }
    }

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    private func containsByteLevel(_ stage: any PreTokenizer) -> Bool {
        if stage is ByteLevelPreTokenizer { return true }
        if let sequence = stage as? SequencePreTokenizer { return sequence.stages.contains(where: containsByteLevel) }
        return false
    }

    private func readMetaspace(_ json: JSONValue, key: String) throws -> ([UInt8], MetaspacePreTokenizer.PrependScheme) {
        guard let replacement = json["replacement"]?.string, replacement.unicodeScalars.count == 1 else {
            throw invalid(key + ".replacement", "must be a one-character string")
        }
        let scheme: MetaspacePreTokenizer.PrependScheme
        if let name = json["prepend_scheme"]?.string {
            switch name {
            case "always": scheme = .always
            case "first": scheme = .first
            case "never": scheme = .never
            default: throw invalid(key + ".prepend_scheme", "must be \"always\", \"first\" or \"never\", found \"\(name)\"")
            }
        } else {
            scheme = (json["add_prefix_space"]?.bool ?? true) ? .always : .never
        }
        return (Array(replacement.utf8), scheme)
    }

    /// The space marker for display: a Metaspace replacement, or the content of a
    /// `Replace(" ", x)` normalizer.
    private func spaceMarker(_ json: JSONValue) -> [UInt8]? {
        func search(_ value: JSONValue?) -> [UInt8]? {
            guard let value else { return nil }
            if value["type"]?.string == "Metaspace", let r = value["replacement"]?.string { return Array(r.utf8) }
            if value["type"]?.string == "Replace", value["pattern"]?["String"]?.string == " ",
               let c = value["content"]?.string { return Array(c.utf8) }
            for list in ["normalizers", "pretokenizers"] {
                for item in value[list]?.array ?? [] { if let found = search(item) { return found } }
            }
            return nil
        }
        return search(json["pre_tokenizer"]) ?? search(json["normalizer"])
    }

    // MARK: Decoders

    private func readDecoder(_ json: JSONValue?, key: String) throws -> (any TokenDecoder)? {
        guard let json, !json.isNull else { return nil }
        let type = try typeName(json, key: key)
        switch type {
        case "Sequence":
            guard let list = json["decoders"]?.array else { throw invalid(key + ".decoders", "must be an array") }
            return SequenceDecoder(stages: try list.enumerated().compactMap {
                try readDecoder($1, key: "\(key).decoders[\($0)]")
            })
        case "ByteLevel":
            return ByteLevelDecoder()
        case "Metaspace":
            let (replacement, scheme) = try readMetaspace(json, key: key)
            return MetaspaceDecoder(replacement: replacement, prependNever: scheme == .never)
        case "Replace":
            let (pattern, content) = try readReplace(json, key: key)
            return ReplaceDecoder(pattern: pattern, content: content)
        case "ByteFallback":
            return ByteFallbackDecoder()
        case "Fuse":
            return FuseDecoder()
        case "Strip":
            guard let content = json["content"]?.string, content.unicodeScalars.count == 1 else {
                throw invalid(key + ".content", "must be a one-character string")
            }
            return StripDecoder(content: content.unicodeScalars.first!, start: json["start"]?.int ?? 0,
                                stop: json["stop"]?.int ?? 0)
        default:
            throw unsupported("decoder type '\(type)' at '\(key)'")
        }
    }

    // MARK: Post-processors

    private func readPostProcessor(_ json: JSONValue?, key: String, spellings: SpellingTable,
                                   added: [AddedToken]) throws -> TemplatePostProcessor {
        guard let json, !json.isNull else { return TemplatePostProcessor() }
        let type = try typeName(json, key: key)
        switch type {
        case "ByteLevel":
            return TemplatePostProcessor()
        case "Sequence":
            guard let list = json["processors"]?.array else { throw invalid(key + ".processors", "must be an array") }
            var result = TemplatePostProcessor()
            for (i, item) in list.enumerated() {
                result = try readPostProcessor(item, key: "\(key).processors[\(i)]", spellings: spellings, added: added)
                    .wrapping(result)
            }
            return result
        case "BertProcessing", "RobertaProcessing":
            guard let cls = json["cls"]?.array?.last?.int, let sep = json["sep"]?.array?.last?.int else {
                throw invalid(key, "needs cls and sep as [token, id]")
            }
            return TemplatePostProcessor(prefix: [cls], suffix: [sep])
        case "TemplateProcessing":
            guard let single = json["single"]?.array else { throw invalid(key + ".single", "must be an array") }
            var result = TemplatePostProcessor()
            var seenSequence = false
            for (i, piece) in single.enumerated() {
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let name = piece["SpecialToken"]?["id"]?.string else {
                    throw invalid("\(key).single[\(i)]", "must be {\"SpecialToken\": ...} or {\"Sequence\": ...}")
                }
                guard let ids = json["special_tokens"]?[name]?["ids"]?.array?.compactMap(\.int) else {
                    throw invalid("\(key).special_tokens", "has no ids for '\(name)'")
                }
                if seenSequence { result.suffix += ids } else { result.prefix += ids }
            }
            return result
        default:
            throw unsupported("post-processor type '\(type)' at '\(key)'")
        }
    }

    // MARK: Helpers

    private func typeName(_ json: JSONValue, key: String) throws -> String {
        guard let type = json["type"]?.string else { throw invalid(key + ".type", "is missing") }
        return type
    }

    private func invalid(_ key: String, _ reason: String) -> TokenizerError {
        .invalidEntry(file: file, key: key, reason: reason)
    }

    private func unsupported(_ feature: String) -> TokenizerError {
        .unsupported(file: file, feature: feature)
    }
}

/// Registers the merge `left right` with `rank`; throws if it names unknown tokens.
func addMerge(_ left: String, _ right: String, rank: UInt32, spellings: SpellingTable,
              into merges: inout PairTable, file: String, location: String) throws {
    let a = Array(left.utf8), b = Array(right.utf8)
    func lookup(_ spelling: [UInt8]) throws -> Int {
        guard let id = spellings.id(of: spelling) else {
            throw TokenizerError.unknownMergeToken(file: file, location: location, merge: left + " " + right,
                                                   token: String(decoding: spelling, as: UTF8.self))
        }
        return id
    }
    let leftID = try lookup(a), rightID = try lookup(b), mergedID = try lookup(a + b)
    merges.set(Int32(leftID), Int32(rightID), rank: rank, merged: Int32(mergedID))
}

/// `bos_token` / `eos_token` of a `tokenizer_config.json` beside a tokenizer file:
/// nil when the key is absent, `.some(nil)` when it is null.
struct SpecialTokenNames {
    var bos: String??
    var eos: String??

    /// nil if there is no tokenizer_config.json in the same directory.
    static func read(besides url: URL) throws -> SpecialTokenNames? {
        let config = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: config.path) else { return nil }
        let bytes = try TextFile.readBytes(config)
        if let offset = TextFile.firstInvalidUTF8Offset(bytes) {
            throw TokenizerError.invalidUTF8(file: config.path, byteOffset: offset)
        }
        let json = try JSONReader.parse(bytes, file: config.path)
        func name(_ key: String) -> String?? {
            guard let value = json[key] else { return nil }
            return .some(value.string ?? value["content"]?.string)
        }
        return SpecialTokenNames(bos: name("bos_token"), eos: name("eos_token"))
    }
}
