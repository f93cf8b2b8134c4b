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

    /// Expected pieces written by Hugging Face tokenizers' Split with the o200k pattern
    /// (checked beyond these against every Unicode scalar in several contexts while writing
    /// `O200KSplitter`).
    static let o200kSplits: [(String, [String])] = [
        ("Hello world", ["Hello", " world"]),
        ("camelCase HTTPServer iPhone", ["camel", "Case", " HTTPServer", " i", "Phone"]),
        ("don't STOP'S me'll it'\u{17F}", ["don't", " STOP'S", " me'll", " it'\u{17F}"]),
        ("'hello 'S", ["'hello", " '", "S"]),
        ("HELLO'S hello's", ["HELLO'S", " hello's"]),
        (" 1234567", [" ", "123", "456", "7"]),
        ("path/to//file\n/\r\n", ["path", "/to", "//", "file", "\n", "/\r\n"]),
        ("!!!\n\nx", ["!!!\n\n", "x"]),
        ("\n\n hello", ["\n\n", " hello"]),
        ("a  \n  b", ["a", "  \n", " ", " b"]),
        ("x   ", ["x", "   "]),
        ("\u{1C5}ungla \u{1C8}x \u{2B0}\u{2B1}", ["\u{1C5}ungla", " \u{1C8}x", " \u{2B0}\u{2B1}"]),
        ("na\u{308}ive \u{301}a A\u{301}B", ["na\u{308}ive", " \u{301}a", " A\u{301}", "B"]),
        ("\u{4E2D}\u{6587}abc", ["\u{4E2D}\u{6587}abc"]),
        ("\u{BF}qu\u{E9}?", ["\u{BF}qu\u{E9}", "?"]),
        ("\u{1F600}hello", ["\u{1F600}hello"]),
        ("\thello", ["\thello"]),
        ("ab\u{A0}cd", ["ab", "\u{A0}cd"]),
        ("", []),
    ]

    @Test("o200k split matches the reference pre-tokenizer", arguments: o200kSplits)
    func o200kSplit(text: String, expected: [String]) {
        var text = text
        let pieces = text.withUTF8 { buffer in
            var pieces: [String] = []
            O200KSplitter().split(buffer) { start, end in
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self))
            }
            return pieces
        }
        #expect(pieces.count == expected.count && zip(pieces, expected).allSatisfy(sameScalars), "\(pieces)")
    }

    /// Expected pieces of "--the--final----count-down--" written by Hugging Face tokenizers'
    /// Split with the literal pattern "--", per behaviour and invert.
    static let literalSplits: [(String, Bool, [String])] = [
        ("Removed", false, ["the", "final", "count-down"]),
        ("Removed", true, ["--", "--", "--", "--", "--"]),
        ("Isolated", false, ["--", "the", "--", "final", "--", "--", "count-down", "--"]),
        ("Isolated", true, ["--", "the", "--", "final", "--", "--", "count-down", "--"]),
        ("MergedWithPrevious", false, ["--", "the--", "final--", "--", "count-down--"]),
        ("MergedWithPrevious", true, ["--the", "--final", "--", "--count-down", "--"]),
        ("MergedWithNext", false, ["--the", "--final", "--", "--count-down", "--"]),
        ("MergedWithNext", true, ["--", "the--", "final--", "--", "count-down--"]),
        ("Contiguous", false, ["--", "the", "--", "final", "----", "count-down", "--"]),
        ("Contiguous", true, ["--", "the", "--", "final", "----", "count-down", "--"]),
    ]

    @Test("literal Split matches the reference pre-tokenizer", arguments: literalSplits)
    func literalSplit(behavior: String, invert: Bool, expected: [String]) throws {
        let splitter = LiteralSplitPreTokenizer(pattern: Array("--".utf8),
                                                behavior: try #require(.init(rawValue: behavior)), invert: invert)
        var pieces: [String] = []
        Array("--the--final----count-down--".utf8).withUnsafeBufferPointer { buffer in
            splitter.split(buffer, isFirst: true) { piece, _ in pieces.append(String(decoding: piece, as: UTF8.self)) }
        }
        #expect(pieces == expected)
        // Text without the pattern: one piece, or none when it is removed as inverted matches.
        pieces = []
        Array("abc".utf8).withUnsafeBufferPointer { buffer in
            splitter.split(buffer, isFirst: true) { piece, _ in pieces.append(String(decoding: piece, as: UTF8.self)) }
        }
        #expect(pieces == (behavior == "Removed" && invert ? [] : ["abc"]))
        Array("".utf8).withUnsafeBufferPointer { buffer in
            splitter.split(buffer, isFirst: true) { _, _ in Issue.record("a piece of the empty text") }
        }
    }

    /// Added tokens as `tokenizers` 0.23.3 reads and matches them (expected ids written by it):
    /// listed ids are replaced (numbered from the vocabulary size, vocabulary entries keep
    /// theirs), a rejected single-word match is skipped whole, the search goes on inside the
    /// whitespace an rstrip swallowed, raw tokens are found before normalized ones, and a
    /// repeated token takes its last options.
    @Test("added tokens: ids, single_word, lstrip/rstrip, raw before normalized")
    func addedTokenSemantics() throws {
        let vocab = #""vocab":{"a":0,"b":1,"c":2,"x":3,"y":4,"z":5," ":6,"<":7,">":8,"_":9},"merges":[]"#
        func token(_ content: String, id: Int = 100, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                   normalized: Bool = false, special: Bool = false) -> String {
            #"{"id":\#(id),"content":"\#(content)","single_word":\#(singleWord),"lstrip":\#(lstrip),"rstrip":\#(rstrip),"#
                + #""normalized":\#(normalized),"special":\#(special)}"#
        }
        func load(_ tokens: [String], normalizer: String = "null") throws -> any Tokenizer {
            let json = #"{"version":"1.0","added_tokens":[\#(tokens.joined(separator: ","))],"normalizer":\#(normalizer),"#
                + #""pre_tokenizer":null,"post_processor":null,"decoder":null,"model":{"type":"BPE",\#(vocab)}}"#
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("streamlab-added-tokens-\(getpid())-\(tokens.count)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = directory.appendingPathComponent("tokenizer.json")
            try Data(json.utf8).write(to: url)
            return try TokenizerLoader.load(from: url)
        }
        let options = try load([
            token("ab", singleWord: true), token("bc"), token("<a>", rstrip: true, special: true), token(" b"), token("xy"),
            token("xyz", normalized: true), token("c", id: 2), token("<z>", lstrip: true),
            token("ab", singleWord: true, rstrip: true),
        ])
        for (text, ids) in [
            ("xab", [3, 0, 1]), ("xab ab", [3, 0, 1, 6, 10]), ("ab", [10]), ("<a> by", [12, 13, 4]), ("<a>  b", [12, 13]),
            ("xxyzx", [3, 14, 5, 3]), ("xyz", [14, 5]), ("y  <z>", [4, 16]), ("a <z>b", [0, 16, 1]),
            ("cab c", [2, 0, 1, 6, 2]), ("xabc", [3, 0, 1, 2]), ("ab bc", [10, 13, 2]),
        ] {
            #expect(options.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
        }
        #expect(options.vocabularySize == 17)

        let replace = #"{"type":"Replace","pattern":{"String":" "},"content":"_"}"#
        let passes = try load([token("a b"), token("a_b", normalized: true), token("<x>", special: true)], normalizer: replace)
        for (text, ids) in [("a b", [10]), ("a_b", [11]), ("xa bx<x> a_b", [3, 10, 3, 12, 9, 11]), ("a  b", [0, 9, 9, 1])] {
            #expect(passes.encode(text, addSpecialTokens: false) == ids, "\(text.debugDescription)")
        }
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
        (TokenizerFixtures.gemma, 2014, 2, 1),
        (TokenizerFixtures.gemma3, 2017, 2, 1),   // <image_soft_token> just past the model vocabulary
        (TokenizerFixtures.phi3, 2011, 1, 2000),  // </s> is not special in Phi-3: <|endoftext|>
        (TokenizerFixtures.qwen3, 2024, nil, 2000),  // tokenizer_config.json: no BOS, <|im_end|>
        (TokenizerFixtures.olmo2, 2021, 2000, 2000),
        (TokenizerFixtures.phi4Mini, 2030, 2000, 2000),
        (TokenizerFixtures.gptj, 2143, 1999, 1999),
        (TokenizerFixtures.phi2, 2038, 1999, 1999),
    ] as [(TokenizerFixtures.Kind, Int, Int?, Int)])
    func specialIDs(kind: TokenizerFixtures.Kind, size: Int, bos: Int?, eos: Int) throws {
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
