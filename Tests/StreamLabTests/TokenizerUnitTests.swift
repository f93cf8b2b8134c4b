import Foundation
import Testing
@testable import StreamLab

/// The stages on their own: the GPT-2 and Llama 3 splits, the two merge algorithms, token display,
/// vocabulary look-up, special ids, and loading from a model directory.
@Suite("Tokenizer stages")
struct TokenizerUnitTests {
    /// Expected pieces written by Hugging Face tokenizers' ByteLevel pre-tokenizer.
    static let splits: [(String, [String])] = [
        ("Hello world", ["Hello", " world"]),
        ("  a", [" ", " a"]),
        ("a  b", ["a", " ", " b"]),
        ("a\n\n b", ["a", "\n\n", " b"]),
        ("a \n b", ["a", " \n", " b"]),
        ("x   ", ["x", "   "]),
        ("I'm can't they'LL", ["I", "'m", " can", "'t", " they", "'", "LL"]),
        ("'s'", ["'s", "'"]),
        ("?'s", ["?'", "s"]),
        (" 's", [" '", "s"]),
        ("abc123def", ["abc", "123", "def"]),
        (" 42 apples", [" 42", " apples"]),
        ("\u{E9}t\u{E9} e\u{301}", ["\u{E9}t\u{E9}", " e", "\u{301}"]),
        ("\t\tx", ["\t", "\t", "x"]),
        ("a\u{A0}b", ["a", "\u{A0}", "b"]),
        ("1\u{BD} \u{2167}x", ["1\u{BD}", " \u{2167}", "x"]),
        ("\u{1F44D}\u{1F3FD} ok", ["\u{1F44D}\u{1F3FD}", " ok"]),
        ("x\u{200B}y", ["x", "\u{200B}", "y"]),
        ("\u{3000}\u{3000}a", ["\u{3000}", "\u{3000}", "a"]),
        ("a\u{1C}b", ["a", "\u{1C}", "b"]),
        ("\u{A7CE}\u{E9}", ["\u{A7CE}", "\u{E9}"]),
        ("!!! ...", ["!!!", " ..."]),
        ("", []),
    ]

    @Test("GPT-2 split matches the reference pre-tokenizer", arguments: splits)
    func gpt2Split(text: String, expected: [String]) {
        var text = text
        let pieces = text.withUTF8 { buffer in
            var pieces: [String] = []
            GPT2Splitter.split(buffer) { start, end in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
            }
            return pieces
        }
        #expect(pieces.count == expected.count && zip(pieces, expected).allSatisfy(sameScalars), "\(pieces)")
    }

    /// Expected pieces written by Hugging Face tokenizers' Split with Llama 3's pattern.
    static let llama3Splits: [(String, [String])] = [
        ("Hello world", ["Hello", " world"]),
        ("  hello", [" ", " hello"]),
        ("I'M can'T they'Ll", ["I", "'M", " can", "'T", " they", "'Ll"]),
        ("it'\u{17F}", ["it", "'\u{17F}"]),
        ("'hello", ["'hello"]),
        ("(hello) !x", ["(hello", ")", " !", "x"]),
        (" 1234567", [" ", "123", "456", "7"]),
        ("12345", ["123", "45"]),
        ("\n\n hello", ["\n\n", " hello"]),
        ("\n  hello", ["\n", " ", " hello"]),
        (" \nfoo", [" \n", "foo"]),
        ("!!!\n\nx", ["!!!\n\n", "x"]),
        ("\thello", ["\thello"]),
        ("\t!", ["\t", "!"]),
        ("a  \n  b", ["a", "  \n", " ", " b"]),
        ("x   ", ["x", "   "]),
        ("\u{1F600}hello", ["\u{1F600}hello"]),
        ("a\r\nb", ["a", "\r\n", "b"]),
        ("\u{BF}qu\u{E9}?", ["\u{BF}qu\u{E9}", "?"]),
    ]

    @Test("Llama 3 split matches the reference pre-tokenizer", arguments: llama3Splits)
    func llama3Split(text: String, expected: [String]) {
        var text = text
        let pieces = text.withUTF8 { buffer in
            var pieces: [String] = []
            CL100KSplitter(maxDigits: 3).split(buffer) { start, end in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
            }
            return pieces
        }
        #expect(pieces.count == expected.count && zip(pieces, expected).allSatisfy(sameScalars), "\(pieces)")
    }

    @Test("heap and scan merging agree", arguments: [TokenizerFixtures.tiktoken, TokenizerFixtures.sentencePiece])
    func mergeAlgorithms(kind: TokenizerFixtures.Kind) throws {
        let tokenizer = try #require(try TokenizerFixtures.tokenizer(kind) as? BPETokenizer)
        var scan = tokenizer.model, heap = tokenizer.model
        scan.heapThreshold = .max
        heap.heapThreshold = 0
        var rng = SplitMix64(seed: 99)
        let alphabet = Array("aaabbbeeeinnorsstt  ▁é中😀'".utf8)
        for _ in 0..<400 {
            let word = (0..<Int(1 + rng.next() % 70)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            // Cut at a scalar boundary so the word is valid UTF-8.
            let text = Array(String(decoding: word, as: UTF8.self).utf8)
            var a: [Int] = [], b: [Int] = []
            var s1 = BPEScratch(), s2 = BPEScratch()
            text.withUnsafeBufferPointer { scan.encode($0, into: &a, scratch: &s1) }
            text.withUnsafeBufferPointer { heap.encode($0, into: &b, scratch: &s2) }
            #expect(a == b, "\(String(decoding: text, as: UTF8.self).debugDescription)")
        }
    }

    @Test("long pieces encode fast and like the reference")
    func longPiece() throws {
        let tokenizer = try TokenizerFixtures.tokenizer(TokenizerFixtures.tiktoken)
        let text = String(repeating: "a", count: 20_000)
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        #expect(try tokenizer.decode(ids) == text)
        #expect(ids.count <= 20_000 / 4)   // "aaaa" is one GPT-2 token
    }

    @Test("display text of tokens")
    func displayText() throws {
        let gpt2 = try TokenizerFixtures.tokenizer(TokenizerFixtures.tiktoken)
        #expect(gpt2.displayText(of: 262) == " the")
        #expect(gpt2.displayText(of: 198) == "\n")
        #expect(gpt2.displayText(of: 50256) == "<|endoftext|>")
        #expect(gpt2.displayText(of: 447) == "\\xE2\\x80")   // the first two bytes of "’"
        #expect(gpt2.displayText(of: 50257) == "<unk:50257>")

        let sp = try TokenizerFixtures.tokenizer(TokenizerFixtures.sentencePiece)
        #expect(sp.displayText(of: 1) == "<s>")
        #expect(sp.displayText(of: 3 + 0x0A) == "\n")          // <0x0A>
        #expect(sp.displayText(of: 3 + 0xE2) == "<0xE2>")      // a lone UTF-8 lead byte stays visible
        let and = try #require(sp.id(ofTokenText: "▁And"))
        #expect(sp.displayText(of: and) == " And")
        #expect(sp.id(ofTokenText: " And") == and)
    }

    @Test("vocabulary look-up by spelling and by text")
    func idOfTokenText() throws {
        let gpt2 = try TokenizerFixtures.tokenizer(TokenizerFixtures.tiktoken)
        #expect(gpt2.id(ofTokenText: " the") == 262)
        #expect(gpt2.id(ofTokenText: "Ġthe") == 262)
        #expect(gpt2.id(ofTokenText: "\n") == 198)
        #expect(gpt2.id(ofTokenText: "<|endoftext|>") == 50256)
        #expect(gpt2.id(ofTokenText: " the cat") == nil)
        #expect(gpt2.id(ofTokenText: "") == nil)

        let json = try TokenizerFixtures.tokenizer(TokenizerFixtures.byteLevelJSON)
        #expect(json.id(ofTokenText: "<mask>") == 2000)
        let the = try #require(json.id(ofTokenText: " the"))
        #expect(json.id(ofTokenText: "Ġthe") == the)
        #expect(json.encode(" the", addSpecialTokens: false) == [the])

        let sp = try TokenizerFixtures.tokenizer(TokenizerFixtures.sentencePiece)
        #expect(sp.id(ofTokenText: "<0x0A>") == 3 + 0x0A)
        #expect(sp.id(ofTokenText: "\n") == 3 + 0x0A)
        #expect(sp.id(ofTokenText: "</s>") == 2)
    }

    @Test("vocabulary size and special ids", arguments: [
        (TokenizerFixtures.tiktoken, 50257, 50256, 50256),
        (TokenizerFixtures.byteLevelJSON, 2001, 0, 0),
        (TokenizerFixtures.vocabMerges, 2000, 0, 0),
        (TokenizerFixtures.sentencePiece, 2000, 1, 2),
        (TokenizerFixtures.metaspace, 2000, 1, 2),
        (TokenizerFixtures.neox, 2001, 0, 0),
        (TokenizerFixtures.llama3, 2000, 0, 1),
        (TokenizerFixtures.qwen2, 2000, 0, 1),   // no tokenizer_config.json: guessed from the special tokens
    ])
    func specialIDs(kind: TokenizerFixtures.Kind, size: Int, bos: Int, eos: Int) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(kind)
        #expect(tokenizer.vocabularySize == size)
        #expect(tokenizer.bosTokenID == bos)
        #expect(tokenizer.eosTokenID == eos)
        #expect(tokenizer.encode("", addSpecialTokens: false) == [])
    }

    @Test("tokenizer_config.json names BOS and EOS; a template may add a suffix; unknown characters fuse")
    func tinyTokenizerWithConfig() throws {
        let tokenizer = try TokenizerLoader.load(from: FixturePaths.tokenizers.appendingPathComponent("tiny-with-config"))
        #expect(tokenizer.bosTokenID == 1)
        #expect(tokenizer.eosTokenID == nil)   // "eos_token": null
        // Expected values written by Hugging Face tokenizers 0.23.3 for this file.
        #expect(tokenizer.encode("ab a", addSpecialTokens: true) == [1, 7, 6, 2])
        #expect(tokenizer.encode("a xyz b", addSpecialTokens: true) == [1, 6, 3, 0, 3, 5, 2])
        #expect(tokenizer.encode("xx", addSpecialTokens: false) == [3, 0])
        #expect(try tokenizer.decode([1, 7, 6, 2]) == "<s> ab a</s>")
        #expect(try tokenizer.decode([1, 6, 3, 0, 3, 5, 2]) == "<s> a <unk> b</s>")
    }

    @Test("special tokens in the text map to their ids")
    func specialTokensInText() throws {
        let gpt2 = try TokenizerFixtures.tokenizer(TokenizerFixtures.tiktoken)
        #expect(gpt2.encode("a<|endoftext|>b", addSpecialTokens: true) == [64, 50256, 65])
        let sp = try TokenizerFixtures.tokenizer(TokenizerFixtures.sentencePiece)
        #expect(sp.encode("", addSpecialTokens: true) == [1])
        #expect(sp.encode("<s></s>", addSpecialTokens: false) == [1, 2])
    }

    @Test("a model directory's tokenizer is found: tokenizer.json first, else vocab.json + merges.txt")
    func findInModelDirectory() throws {
        let directory = FixturePaths.tokenizers.appendingPathComponent("bytelevel")
        let found = try #require(try TokenizerLoader.find(inModelDirectory: directory) as? BPETokenizer)
        #expect(found.source.hasSuffix("bytelevel/tokenizer.json"))
        let pair = try #require(try TokenizerLoader.load(from: directory.appendingPathComponent("merges.txt")) as? BPETokenizer)
        #expect(pair.source.hasSuffix("bytelevel/vocab.json"))
        let onlyPair = FixturePaths.tokenizers.appendingPathComponent("bad/merges-txt-malformed")
        #expect(throws: TokenizerError.self) { _ = try TokenizerLoader.find(inModelDirectory: onlyPair) }
    }

    @Test("one tokenizer encodes from many threads at once")
    func concurrentEncoding() async throws {
        let tokenizer = try TokenizerFixtures.tokenizer(TokenizerFixtures.tiktoken)
        let lines = TokenizerFixtures.conformanceLines
        let expected = lines.map { tokenizer.encode($0, addSpecialTokens: false) }
        let results = await withTaskGroup(of: (Int, [[Int]]).self) { group in
            for task in 0..<4 {
                group.addTask { (task, lines.map { tokenizer.encode($0, addSpecialTokens: false) }) }
            }
            var all: [(Int, [[Int]])] = []
            for await result in group { all.append(result) }
            return all
        }
        for (_, ids) in results { #expect(ids == expected) }
    }
}
