import Foundation
import Testing
@testable import StreamLab

/// The committed tokenizer fixtures (Fixtures/tokenizers, see its README) and their
/// reference ids, loaded once per test process.
enum TokenizerFixtures {
    /// One tokenizer under test and the reference file with its expected ids.
    struct Kind: CustomTestStringConvertible, Sendable {
        enum Family: Sendable { case byteLevel, sentencePiece }
        let name: String
        /// Relative to Fixtures/tokenizers.
        let path: String
        let reference: String
        let family: Family
        /// The id `addSpecialTokens` puts in front, if any.
        let bos: Int?
        /// NFC normalizer: byte-level round trips give the NFC form of the text.
        var nfc = false
        /// The reference has `probes`: texts with the fixture's added tokens.
        var hasProbes = false

        var testDescription: String { name }
        var url: URL { FixturePaths.tokenizers.appendingPathComponent(path) }
    }

    static let tiktoken = Kind(name: "tiktoken gpt2", path: "gpt2.tiktoken",
                               reference: "reference-tiktoken-gpt2.json", family: .byteLevel, bos: nil)
    static let byteLevelJSON = Kind(name: "byte-level tokenizer.json", path: "bytelevel/tokenizer.json",
                                    reference: "reference-bytelevel.json", family: .byteLevel, bos: nil)
    static let vocabMerges = Kind(name: "vocab.json + merges.txt", path: "bytelevel/vocab.json",
                                  reference: "reference-bytelevel-vocab-merges.json", family: .byteLevel, bos: nil)
    static let neox = Kind(name: "byte-level + NFC (NeoX style)", path: "bytelevel-nfc/tokenizer.json",
                           reference: "reference-bytelevel-nfc.json", family: .byteLevel, bos: nil, nfc: true)
    static let llama3 = Kind(name: "Llama 3 style (cl100k split)", path: "llama3-style/tokenizer.json",
                             reference: "reference-llama3-style.json", family: .byteLevel, bos: 0)
    static let qwen2 = Kind(name: "Qwen2 style (split, NFC)", path: "qwen2-style/tokenizer.json",
                            reference: "reference-qwen2-style.json", family: .byteLevel, bos: nil, nfc: true)
    static let sentencePiece = Kind(name: "SentencePiece style (normalizers)", path: "sentencepiece/tokenizer.json",
                                    reference: "reference-sentencepiece.json", family: .sentencePiece, bos: 1)
    static let metaspace = Kind(name: "SentencePiece style (Metaspace)", path: "sentencepiece-metaspace/tokenizer.json",
                                reference: "reference-sentencepiece-metaspace.json", family: .sentencePiece, bos: 1)

    // Laid out like today's models' files (see Fixtures/tokenizers/README.md).
    static let gemma = Kind(name: "Gemma 1/2 style (Replace normalizer, no pre-tokenizer)", path: "gemma-style/tokenizer.json",
                            reference: "reference-gemma-style.json", family: .sentencePiece, bos: 2, hasProbes: true)
    static let gemma3 = Kind(name: "Gemma 3 style (literal Split)", path: "gemma3-style/tokenizer.json",
                             reference: "reference-gemma3-style.json", family: .sentencePiece, bos: 2, hasProbes: true)
    static let phi3 = Kind(name: "Phi-3 style (rstrip chat tokens)", path: "phi3-style/tokenizer.json",
                           reference: "reference-phi3-style.json", family: .sentencePiece, bos: 1, hasProbes: true)
    static let qwen3 = Kind(name: "Qwen3 style (non-special added tokens)", path: "qwen3-style/tokenizer.json",
                            reference: "reference-qwen3-style.json", family: .byteLevel, bos: nil, nfc: true,
                            hasProbes: true)
    static let olmo2 = Kind(name: "OLMo 2 style (cl100k split, Removed + invert)", path: "olmo2-style/tokenizer.json",
                            reference: "reference-olmo2-style.json", family: .byteLevel, bos: nil, hasProbes: true)
    static let phi4Mini = Kind(name: "Phi-4-mini style (o200k split)", path: "phi4-mini-style/tokenizer.json",
                               reference: "reference-phi4-mini-style.json", family: .byteLevel, bos: nil, hasProbes: true)
    static let gptj = Kind(name: "GPT-J style (extra tokens)", path: "gptj-style/tokenizer.json",
                           reference: "reference-gptj-style.json", family: .byteLevel, bos: nil, hasProbes: true)
    static let phi2 = Kind(name: "Phi-2 style (whitespace-run tokens)", path: "phi2-style/tokenizer.json",
                           reference: "reference-phi2-style.json", family: .byteLevel, bos: nil, hasProbes: true)

    static let all = [tiktoken, byteLevelJSON, vocabMerges, neox, llama3, qwen2, sentencePiece, metaspace,
                      gemma, gemma3, phi3, qwen3, olmo2, phi4Mini, gptj, phi2]
    static let byteLevelKinds = all.filter { $0.family == .byteLevel }
    static let sentencePieceKinds = all.filter { $0.family == .sentencePiece }

    /// Reference data written by make_tokenizer_reference.py.
    struct Reference: Decodable, Sendable {
        let lines: [[Int]]
        let whole: [Int]
        let decoded: [String]?
        let decoded_with_bos: [String]?
        let decoded_whole: String?
        /// Texts with the fixture's added tokens (the fixtures of today's models only).
        let probes: [Probe]?
    }

    /// A probe text and its reference ids (`encode(text, add_special_tokens=True)`).
    struct Probe: Decodable, Sendable {
        let text: String
        let ids: [Int]
    }

    // One lazily loaded tokenizer per kind, so that tests of the quick kinds need not wait
    // for the 50k-token GPT-2 vocabulary (about a second to load in a debug build).
    private static let tiktokenLoaded = Result { try TokenizerLoader.load(from: tiktoken.url) }
    private static let byteLevelJSONLoaded = Result { try TokenizerLoader.load(from: byteLevelJSON.url) }
    private static let vocabMergesLoaded = Result { try TokenizerLoader.load(from: vocabMerges.url) }
    private static let neoxLoaded = Result { try TokenizerLoader.load(from: neox.url) }
    private static let llama3Loaded = Result { try TokenizerLoader.load(from: llama3.url) }
    private static let qwen2Loaded = Result { try TokenizerLoader.load(from: qwen2.url) }
    private static let sentencePieceLoaded = Result { try TokenizerLoader.load(from: sentencePiece.url) }
    private static let metaspaceLoaded = Result { try TokenizerLoader.load(from: metaspace.url) }
    private static let gemmaLoaded = Result { try TokenizerLoader.load(from: gemma.url) }
    private static let gemma3Loaded = Result { try TokenizerLoader.load(from: gemma3.url) }
    private static let phi3Loaded = Result { try TokenizerLoader.load(from: phi3.url) }
    private static let qwen3Loaded = Result { try TokenizerLoader.load(from: qwen3.url) }
    private static let olmo2Loaded = Result { try TokenizerLoader.load(from: olmo2.url) }
    private static let phi4MiniLoaded = Result { try TokenizerLoader.load(from: phi4Mini.url) }
    private static let gptjLoaded = Result { try TokenizerLoader.load(from: gptj.url) }
    private static let phi2Loaded = Result { try TokenizerLoader.load(from: phi2.url) }

    static func tokenizer(_ kind: Kind) throws -> any Tokenizer {
        switch kind.path {
        case tiktoken.path: return try tiktokenLoaded.get()
        case byteLevelJSON.path: return try byteLevelJSONLoaded.get()
        case vocabMerges.path: return try vocabMergesLoaded.get()
        case neox.path: return try neoxLoaded.get()
        case llama3.path: return try llama3Loaded.get()
        case qwen2.path: return try qwen2Loaded.get()
        case sentencePiece.path: return try sentencePieceLoaded.get()
        case metaspace.path: return try metaspaceLoaded.get()
        case gemma.path: return try gemmaLoaded.get()
        case gemma3.path: return try gemma3Loaded.get()
        case phi3.path: return try phi3Loaded.get()
        case qwen3.path: return try qwen3Loaded.get()
        case olmo2.path: return try olmo2Loaded.get()
        case phi4Mini.path: return try phi4MiniLoaded.get()
        case gptj.path: return try gptjLoaded.get()
        case phi2.path: return try phi2Loaded.get()
        default: return try TokenizerLoader.load(from: kind.url)
        }
    }

    static func reference(_ kind: Kind) throws -> Reference {
        let data = try Data(contentsOf: FixturePaths.tokenizers.appendingPathComponent(kind.reference))
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    /// conformance.txt exactly as stored, and its lines: split on "\n" only, the final
    /// newline not starting a line (as the generator splits it).
    static let conformanceText: String = {
        let bytes = (try? Data(contentsOf: FixturePaths.tokenizers.appendingPathComponent("conformance.txt"))) ?? Data()
        return String(decoding: bytes, as: UTF8.self)
    }()

    static let conformanceLines: [String] = {
        var parts = Array(conformanceText.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
        if parts.last?.isEmpty == true { parts.removeLast() }
        return parts.map { String(decoding: $0, as: UTF8.self) }
    }()
}

/// Exact comparison by Unicode scalars (Swift's `==` identifies canonically equivalent strings).
func sameScalars(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.elementsEqual(b.unicodeScalars)
}
