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

    static let all = [tiktoken, byteLevelJSON, vocabMerges, neox, llama3, qwen2, sentencePiece, metaspace]
    static let byteLevelKinds = all.filter { $0.family == .byteLevel }
    static let sentencePieceKinds = all.filter { $0.family == .sentencePiece }

    /// Reference data written by make_tokenizer_reference.py.
    struct Reference: Decodable, Sendable {
        let lines: [[Int]]
        let whole: [Int]
        let decoded: [String]?
        let decoded_with_bos: [String]?
        let decoded_whole: String?
    }

    private static let loaded: [String: any Tokenizer] = {
        var result: [String: any Tokenizer] = [:]
        for kind in all { result[kind.name] = try? TokenizerLoader.load(from: kind.url) }
        return result
    }()

    static func tokenizer(_ kind: Kind) throws -> any Tokenizer {
        if let t = loaded[kind.name] { return t }
        return try TokenizerLoader.load(from: kind.url)  // rethrows the error for the report
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
