import Foundation
import Testing
@testable import StreamLab

/// Every supported tokenizer kind gives exactly the reference library's ids on the
/// conformance text (Fixtures/tokenizers/conformance.txt): line by line and for the
/// whole text at once. References: tiktoken 0.14 and Hugging Face tokenizers 0.23.3,
/// written by Fixtures/tokenizers/make_tokenizer_reference.py.
@Suite("Tokenizer conformance")
struct TokenizerConformanceTests {
    @Test("ids equal the reference, line by line", arguments: TokenizerFixtures.all)
    func lineByLine(kind: TokenizerFixtures.Kind) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(kind)
        let reference = try TokenizerFixtures.reference(kind)
        let lines = TokenizerFixtures.conformanceLines
        try #require(lines.count == reference.lines.count, "conformance.txt and \(kind.reference) disagree on the line count")
        var mismatches = 0
        for (number, (line, expected)) in zip(lines, reference.lines).enumerated() {
            let ids = tokenizer.encode(line, addSpecialTokens: true)
            if ids != expected {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("line \(number + 1) \(line.debugDescription): got \(ids), expected \(expected)")
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(lines.count) lines differ")
    }

    @Test("ids equal the reference for the whole text", arguments: TokenizerFixtures.all)
    func wholeText(kind: TokenizerFixtures.Kind) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(kind)
        let reference = try TokenizerFixtures.reference(kind)
        let ids = tokenizer.encode(TokenizerFixtures.conformanceText, addSpecialTokens: true)
        #expect(ids.count == reference.whole.count)
        if let first = zip(ids, reference.whole).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            Issue.record("first difference at id index \(first.offset): got \(first.element.0), expected \(first.element.1)")
        }
        #expect(ids == reference.whole)
    }

    @Test("added-token probes equal the reference", arguments: TokenizerFixtures.all.filter { $0.hasProbes })
    func probes(kind: TokenizerFixtures.Kind) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(kind)
        let probes = try #require(try TokenizerFixtures.reference(kind).probes)
        #expect(probes.count >= 10)
        for probe in probes {
            let ids = tokenizer.encode(probe.text, addSpecialTokens: true)
            #expect(ids == probe.ids, "\(probe.text.debugDescription): got \(ids), expected \(probe.ids)")
        }
    }

    @Test("every reference file in Fixtures/tokenizers is a listed fixture")
    func everyReferenceListed() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.tokenizers.path)
            .filter { $0.hasPrefix("reference-") && $0.hasSuffix(".json") }
        #expect(names.count == 16, "Fixtures/tokenizers holds \(names.count) reference files")
        #expect(Set(names) == Set(TokenizerFixtures.all.map(\.reference)))
        #expect(TokenizerFixtures.all.count == 16)
        #expect(TokenizerFixtures.all.filter(\.hasProbes).count == 8)
    }

    @Test("without special tokens only the post-processor's ids go", arguments: TokenizerFixtures.all)
    func withoutSpecialTokens(kind: TokenizerFixtures.Kind) throws {
        let tokenizer = try TokenizerFixtures.tokenizer(kind)
        let reference = try TokenizerFixtures.reference(kind)
        for (line, expected) in zip(TokenizerFixtures.conformanceLines, reference.lines).prefix(60) {
            let plain = tokenizer.encode(line, addSpecialTokens: false)
            #expect((kind.bos.map { [$0] } ?? []) + plain == expected, "\(line.debugDescription)")
        }
    }
}
