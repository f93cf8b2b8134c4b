import Foundation
import Testing
@testable import StreamLab

/// Bad input gives one clear error naming the file, line, key, token or id at fault.
/// The inputs are committed in Fixtures/tokenizers/bad (make_bad.py writes them).
@Suite("Tokenizer errors")
struct TokenizerErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        /// Relative to Fixtures/tokenizers/bad.
        let path: String
        /// Fragments the message must contain, in order.
        let message: [String]
        var testDescription: String { path }
    }

    static let loadCases: [Case] = [
        Case(path: "does-not-exist/tokenizer.json",
             message: ["does-not-exist/tokenizer.json", "no such file or directory"]),
        Case(path: "malformed-json/tokenizer.json",
             message: ["malformed-json/tokenizer.json line 2, column 20: malformed JSON",
                       "expected a member name in quotes, found '}'"]),
        Case(path: "missing-model/tokenizer.json", message: ["missing-model/tokenizer.json", "'model' is missing"]),
        Case(path: "vocab-not-object/tokenizer.json",
             message: ["vocab-not-object/tokenizer.json", "'model.vocab' must be an object of token -> id"]),
        Case(path: "negative-vocab-id/tokenizer.json",
             message: ["'model.vocab[\"a\"]' must be an integer id from 0 to 1048575, found -1"]),
        Case(path: "huge-vocab-id/tokenizer.json",
             message: ["'model.vocab[\"b\"]' must be an integer id from 0 to 1048575, found 2000000000"]),
        Case(path: "huge-added-token-id/tokenizer.json",
             message: ["huge-added-token-id/tokenizer.json", "'added_tokens[0].id' must be an integer from 0 to 1048575"]),
        Case(path: "huge-vocab-id-txt", message: ["huge-vocab-id-txt/vocab.json", "b", "must be an integer id from 0 to 1048575, found 1048576"]),
        Case(path: "merge-unknown-token/tokenizer.json",
             message: ["merge-unknown-token/tokenizer.json model.merges[1]: merge 'a x' names 'x'",
                       "not in the vocabulary"]),
        Case(path: "merge-result-unknown/tokenizer.json",
             message: ["model.merges[0]: merge 'a b' names 'ab', which is not in the vocabulary"]),
        Case(path: "unknown-unk-token/tokenizer.json",
             message: ["'model.unk_token' names '<unk>', which is not in the vocabulary"]),
        Case(path: "unsupported-model/tokenizer.json", message: ["unsupported model type 'WordPiece' (only BPE)"]),
        Case(path: "unsupported-pre-tokenizer/tokenizer.json",
             message: ["unsupported pre-tokenizer type 'Whitespace' at 'pre_tokenizer'"]),
        Case(path: "unsupported-split-pattern/tokenizer.json",
             message: ["unsupported Split pre-tokenizer at 'pre_tokenizer' with pattern \\w+|[^\\w\\s]+ and behavior Isolated",
                       "GPT-2, Llama 3, Qwen2 and o200k patterns"]),
        Case(path: "unsupported-split-behavior/tokenizer.json",
             message: ["unsupported Split pre-tokenizer at 'pre_tokenizer' with pattern (?i:'s|'t|", "and behavior MergedWithNext",
                       "with behavior Isolated, or Removed and inverted"]),
        Case(path: "invalid-split-behavior/tokenizer.json",
             message: ["'pre_tokenizer.behavior' must be Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous",
                       "found \"Sideways\""]),
        Case(path: "unsupported-split-empty-string/tokenizer.json",
             message: ["unsupported-split-empty-string/tokenizer.json: unsupported Split pre-tokenizer at 'pre_tokenizer' with an empty pattern"]),
        Case(path: "invalid-utf8-json/tokenizer.json",
             message: ["invalid-utf8-json/tokenizer.json: invalid UTF-8 at byte offset 37"]),
        Case(path: "merges-txt-unknown-token",
             message: ["merges-txt-unknown-token/merges.txt line 3: merge 'Ġ zz' names 'zz'", "not in the vocabulary"]),
        Case(path: "merges-txt-unknown-token/merges.txt", message: ["merges.txt line 3: merge 'Ġ zz' names 'zz'"]),
        Case(path: "merges-txt-malformed/vocab.json",
             message: ["merges-txt-malformed/merges.txt line 2: expected two tokens separated by one space, found \"a b c\""]),
        Case(path: "vocab-without-merges", message: ["vocab-without-merges/vocab.json needs merges.txt beside it"]),
        Case(path: "vocab-without-merges/vocab.json", message: ["vocab.json needs merges.txt beside it"]),
        Case(path: "gpt1-style",
             message: ["gpt1-style/vocab.json: unsupported vocabulary with word-end '</w>' tokens (GPT-1 / openai-gpt style BPE)"]),
        Case(path: "empty-model-directory",
             message: ["no tokenizer in", "empty-model-directory", "expected tokenizer.json, or vocab.json with merges.txt",
                       "--tokens"]),
        Case(path: "not-a-tokenizer.bin", message: ["not-a-tokenizer.bin: not a tokenizer file"]),
        Case(path: "missing-rank.tiktoken", message: ["missing-rank.tiktoken line 2: expected 'base64-token rank', found \"Ig==\""]),
        Case(path: "bad-base64.tiktoken", message: ["bad-base64.tiktoken line 2: invalid base64 token \"!!!!\""]),
        Case(path: "bad-rank.tiktoken", message: ["bad-rank.tiktoken line 2: rank must be an integer from 0 to 1048575, found \"one\""]),
        Case(path: "huge-rank.tiktoken", message: ["huge-rank.tiktoken line 2: rank must be an integer from 0 to 1048575, found \"220000000\""]),
        Case(path: "duplicate-rank.tiktoken", message: ["duplicate-rank.tiktoken line 3: rank 1 was already given on line 2"]),
    ]

    static let bad = FixturePaths.tokenizers.appendingPathComponent("bad")

    @Test("loading bad tokenizer files fails with a clear message", arguments: loadCases)
    func loading(_ testCase: Case) {
        let url = Self.bad.appendingPathComponent(testCase.path)
        do {
            let tokenizer = try TokenizerLoader.load(from: url)
            Issue.record("loaded \(testCase.path) (vocabulary size \(tokenizer.vocabularySize)), expected an error")
        } catch let error as TokenizerError {
            expectFragments(error.description, testCase.message)
            #expect(!error.description.contains("\n"), "one-line message")
        } catch {
            Issue.record("not a TokenizerError: \(error)")
        }
    }

    @Test("a model directory without tokenizer files has no tokenizer, and no error")
    func directoryWithoutTokenizer() throws {
        #expect(try TokenizerLoader.find(inModelDirectory: Self.bad.appendingPathComponent("empty-model-directory")) == nil)
    }

    @Test("text files with invalid UTF-8 name the byte offset", arguments: [
        ("invalid-utf8.txt", 12), ("overlong-utf8.txt", 3), ("surrogate-utf8.txt", 0), ("truncated-utf8.txt", 3),
    ])
    func invalidUTF8(file: String, offset: Int) {
        let url = Self.bad.appendingPathComponent(file)
        #expect(throws: TokenizerError.invalidUTF8(file: url.path, byteOffset: offset)) {
            _ = try TextFile.readUTF8(url)
        }
        do {
            _ = try TextFile.readUTF8(url)
        } catch {
            expectFragments("\(error)", ["\(file): invalid UTF-8 at byte offset \(offset)"])
        }
    }

    @Test("reading a valid text file keeps every scalar")
    func validTextFile() throws {
        let text = try TextFile.readUTF8(FixturePaths.tokenizers.appendingPathComponent("conformance.txt"))
        #expect(sameScalars(text, TokenizerFixtures.conformanceText))
        #expect(throws: TokenizerError.fileNotFound(file: "/nonexistent/streamlab.txt")) {
            _ = try TextFile.readUTF8(URL(fileURLWithPath: "/nonexistent/streamlab.txt"))
        }
    }

    @Test("UTF-8 validation agrees with the standard library on random bytes")
    func utf8ValidatorProperty() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<3000 {
            let count = Int(rng.next() % 12)
            let bytes = (0..<count).map { _ -> UInt8 in
                // Bias toward bytes that make interesting sequences.
                let pool: [UInt8] = [0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]
                return rng.next() % 3 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : pool[Int(rng.next() % UInt64(pool.count))]
            }
            let valid = String(validating: bytes, as: UTF8.self) != nil
            #expect((TextFile.firstInvalidUTF8Offset(bytes) == nil) == valid, "\(bytes)")
        }
    }

    @Test("decoding an unknown id names the id and the vocabulary size", arguments: TokenizerFixtures.all)
    func unknownID(kind: TokenizerFixtures.Kind) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(kind)
        for id in [tokenizer.vocabularySize, tokenizer.vocabularySize + 1000, -1] {
            #expect(throws: TokenizerError.unknownTokenID(id, vocabularySize: tokenizer.vocabularySize)) {
                _ = try tokenizer.decode([0, id])
            }
        }
        #expect(TokenizerError.unknownTokenID(70000, vocabularySize: 50257).description
            == "unknown token id 70000: no token has this id (vocabulary size 50257)")
        #expect(tokenizer.displayText(of: -5) == "<unk:-5>")
    }

    private func expectFragments(_ message: String, _ fragments: [String],
                                 sourceLocation: SourceLocation = #_sourceLocation) {
        var rest = Substring(message)
        for fragment in fragments {
            guard let range = rest.range(of: fragment) else {
                Issue.record("message \"\(message)\" lacks \"\(fragment)\"", sourceLocation: sourceLocation)
                return
            }
            rest = rest[range.upperBound...]
        }
    }
}

/// A small deterministic generator for property tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
