import Foundation
import Testing
@testable import StreamLab

@Suite("Activation patching against the independent PyTorch reference")
struct PatchParityTests {
    typealias Object = [String: Any]

    /// Fixtures with a `<name>.patch.json` from Fixtures/reference/make_patch_reference.py:
    /// pre-norm, post-norm, parallel and sandwich (soft-capped) models.
    static let fixtures = ["gemma2-bf16", "gpt2", "neox-parallel", "openai-gpt"]

    @Test("the references cover four placements")
    func referenceCount() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.reference.path).filter { $0.hasSuffix(".patch.json") }
        #expect(files.map { String($0.dropLast(".patch.json".count)) }.sorted() == Self.fixtures)
    }

    @Test("exact and attribution patching (every hook; exact in both directions) match torch", arguments: fixtures)
    func exact(_ name: String) throws {
        let url = FixturePaths.reference.appendingPathComponent(name + ".patch.json")
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let tolerance = name.hasSuffix("f16") ? 2e-4 : 1e-4
        let clean = reference["clean_tokens"] as! [Int], corrupted = reference["corrupted_tokens"] as! [Int]
        let answer = reference["answer"] as! Int, wrong = reference["wrong"] as! Int
        var compared = 0, worst = 0.0
        let patches = reference["patches"] as! [Object]
        let hooks = model.architecture.parallelResidual ? 4 : 5
        #expect(patches.count == 3 * hooks, "\(name): \(patches.count) patch sweeps (exact both ways, attribution)")
        for patch in patches {
            let hook = PatchHook(rawValue: patch["hook"] as! String)!
            let direction = PatchDirection(rawValue: patch["direction"] as! String)!
            let method = PatchMethod(rawValue: patch["method"] as! String)!
            let got = try model.patch(clean: clean, corrupted: corrupted, answer: answer, wrong: wrong, hook: hook, method: method,
                                      direction: direction)
            #expect(scalarClose(got.cleanLogitDiff, reference["clean_logit_diff"] as! Double, tolerance))
            #expect(scalarClose(got.corruptedLogitDiff, reference["corrupted_logit_diff"] as! Double, tolerance))
            let results = patch["results"] as! [Object]
            try #require(got.entries.count == results.count, "\(name) \(hook) \(direction): \(got.entries.count) entries, torch \(results.count)")
            for (entry, ref) in zip(got.entries, results) {
                #expect(entry.layer == ref["layer"] as! Int && entry.position == ref["position"] as? Int && entry.head == ref["head"] as? Int)
                for (value, key) in [(entry.logitDiff, "logit_diff"), (entry.normalized, "normalized")] {
                    let r = ref[key] as! Double
                    // `normalized` divides by LD_clean - LD_corrupted: scale the tolerance by 1 / |that|.
                    let scale = key == "normalized" ? max(1, 1 / abs(got.cleanLogitDiff - got.corruptedLogitDiff)) : 1
                    worst = max(worst, abs(value - r) / max(1, abs(r)) / scale)
                    #expect(scalarClose(value, r, tolerance * scale), "\(name) \(hook) \(method) \(direction) \(entry): \(key) \(value) vs torch \(r)")
                }
                compared += 1
            }
        }
        print("patch parity \(name): \(compared) entries, worst relative error \(worst)")
    }

    @Test("bad patching requests are refused with a message")
    func refusals() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("neox-parallel"), threads: 1)
        #expect(throws: ModelError.self) { try model.patch(clean: [1, 2, 3], corrupted: [1, 2], answer: 1, wrong: 2, hook: .residPre) }
        #expect(throws: ModelError.self) { try model.patch(clean: [1, 2, 3], corrupted: [1, 5, 3], answer: 1, wrong: 2, hook: .residMid) }
        #expect(throws: ModelError.self) { try model.patch(clean: [1, 2, 3], corrupted: [1, 2, 3], answer: 1, wrong: 2, hook: .residPre) }
        #expect(throws: ModelError.self) { try model.patch(clean: [1, 2, 3], corrupted: [1, 5, 3], answer: 100_000, wrong: 2, hook: .head) }
    }
}

@Suite("Attention-head scores against the independent PyTorch reference")
struct HeadScoreParityTests {
    typealias Object = [String: Any]
    /// Fixtures with a `<name>.heads.json` from Fixtures/reference/make_head_reference.py.
    static let fixtures = ["gemma2-bf16", "gemma3-text", "gpt2", "neox-parallel", "openai-gpt", "qwen3"]

    @Test("the references cover six fixtures")
    func referenceCount() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.reference.path).filter { $0.hasSuffix(".heads.json") }
        #expect(files.map { String($0.dropLast(".heads.json".count)) }.sorted() == Self.fixtures)
    }

    @Test("previous-token, duplicate-token, induction and first-token scores match torch", arguments: fixtures)
    func scores(_ name: String) throws {
        let url = FixturePaths.reference.appendingPathComponent(name + ".heads.json")
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let got = try model.headScores(reference["tokens"] as! [Int])
        let expected = reference["scores"] as! [Object]
        try #require(got.scores.count == expected.count && expected.count == model.architecture.layerCount * model.architecture.headCount)
        var worst = 0.0
        for (s, e) in zip(got.scores, expected) {
            #expect(s.layer == e["layer"] as! Int && s.head == e["head"] as! Int)
            for (value, key) in [(s.previousToken, "previous_token"), (s.duplicateToken, "duplicate_token"),
                                 (s.induction, "induction"), (s.firstToken, "first_token")] {
                let r = e[key] as! Double
                worst = max(worst, abs(value - r))
                #expect(abs(value - r) <= 1e-4, "\(name) head \(s.layer).\(s.head) \(key): \(value) vs torch \(r)")
            }
        }
        print("head scores \(name): worst absolute error \(worst)")
    }
}
