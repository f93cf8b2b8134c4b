import Foundation
import Testing
@testable import StreamLab

@Suite("Streaming text windows")
struct TextWindowTests {
    let tokenizer: any Tokenizer = try! TokenizerLoader.load(
        from: FixturePaths.tokenizers.appendingPathComponent("bytelevel/tokenizer.json"))

    /// A text with long lines, blank lines, indentation and non-ASCII.
    func sampleText() throws -> String {
        let corpus = try String(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt"), encoding: .utf8)
        return String(corpus.prefix(40_000)) + "\n\n  indented line\nCafé naïve — ünïcödé 東京\n\tend"
    }

    @Test("streamed windows equal the windows of the whole text", arguments: [(64, 64), (64, 17), (100, 100)])
    func matchesWholeText(length: Int, stride: Int) throws {
        let text = try sampleText()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("windows-\(getpid())-\(length)-\(stride).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let expected = Windows.split(tokenizer.encode(text, addSpecialTokens: false), length: length, stride: stride)
        // Small chunks force many cuts through the text.
        let streamed = try TokenWindows(url: url, tokenizer: tokenizer, length: length, stride: stride, chunkBytes: 997)
        let got = Array(streamed)
        #expect(streamed.error == nil)
        #expect(got == expected, "\(got.count) windows streamed, \(expected.count) expected")
        #expect(streamed.bytesRead == text.utf8.count)
    }

    @Test("invalid UTF-8 stops the stream with the byte offset")
    func invalidUTF8() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("windows-bad-\(getpid()).txt")
        var bytes = Array(String(repeating: "word word\n", count: 300).utf8)
        bytes[2500] = 0xFF
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let stream = try TokenWindows(url: url, tokenizer: tokenizer, length: 32, stride: 32, chunkBytes: 1000)
        _ = Array(stream)
        #expect(stream.error == .invalidUTF8(file: url.path, byteOffset: 2500))
    }

    @Test("a text without line breaks streams in bounded pieces cut between characters", arguments: ["東京の空 ", "東京の空"])
    func longLine(_ unit: String) throws {
        let text = String(repeating: unit, count: 3000)           // 9-12 KB, no newline at all
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("windows-line-\(getpid())-\(unit.count).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let stream = try TokenWindows(url: url, tokenizer: tokenizer, length: 64, stride: 64, chunkBytes: 1000)
        let first = try #require(stream.next())
        #expect(first.count == 64)
        #expect(stream.bytesRead <= 3000, "the first window needed \(stream.bytesRead) bytes buffered")
        var windows = [first]
        while let w = stream.next() { windows.append(w) }
        #expect(stream.error == nil)
        #expect(stream.bytesRead == text.utf8.count)
        // Cut only between characters: the tokens still spell the text exactly.
        #expect(try tokenizer.decode(windows.flatMap { $0 }) == text)
    }
}

