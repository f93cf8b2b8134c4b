import Foundation
import Testing
@testable import StreamLab

/// Interventions that carry values, checked against transformers' own arrays
/// (Fixtures/reference/<name>.npz) and torch's ablation metrics
/// (<name>.probes.json): patching a whole stream with another sequence's clean
/// stream must give that sequence's logits; running blocks 0, 2 must equal
/// skipping block 1; replacing a write by zeros must equal the zero ablation.
@Suite("Interventions as values")
struct InterventionTests {
    static let fixtures = ["gpt2", "openai-gpt", "neox-parallel", "opt-post-proj", "llama-gqa"]

    @Test("replace and add at resid_pre / resid_mid reproduce the other sequence's logits", arguments: fixtures)
    func patchStream(_ name: String) throws {
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent(name + ".npz").path)
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let source = try #require(reference["seq2.tokens"]?.ints)
        let expected = try #require(reference["seq2.logits"]?.tensor)
        let tokens = Array(source.reversed())                     // a different sequence of the same length
        var checked = 0
        for layer in 0..<model.architecture.layerCount {
            var points: [HookPoint] = [.residPre(layer)]
            if !model.architecture.parallelResidual { points.append(.residMid(layer)) }
            for point in points {
                let clean = try #require(reference["seq2." + point.name]?.tensor, "no \(point.name) in the reference")
                let replaced = try model.logits(tokens, interventions: [Intervention(.hook(point), .replace(clean))])
                #expect(relativeError(replaced, expected) <= 1e-4, "\(name) replace \(point.name): \(relativeError(replaced, expected))")
                // The same through `add`: the difference to this sequence's own stream.
                let own = try #require(try model.run(tokens, recording: [point.kind])[point])
                let delta = Tensor(shape: own.shape, scalars: zip(clean.scalars, own.scalars).map { $0 - $1 })
                let added = try model.logits(tokens, interventions: [Intervention(.hook(point), .add(delta))])
                #expect(relativeError(added, expected) <= 1e-4, "\(name) add at \(point.name): \(relativeError(added, expected))")
                checked += 2
            }
        }
        #expect(checked >= 2 * model.architecture.layerCount)
    }

    @Test("replace at one position changes only that position and later ones")
    func patchPosition() throws {
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent("gpt2.npz").path)
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("gpt2"), threads: 2)
        let source = try #require(reference["seq2.tokens"]?.ints)
        let tokens = Array(source.reversed())
        let clean = try #require(reference["seq2.blocks.1.hook_resid_pre"]?.tensor)
        let base = try model.logits(tokens)
        let patched = try model.logits(tokens, interventions: [Intervention(.hook(.residPre(1)), .replace(clean), positions: [5])])
        let v = model.architecture.vocabularySize
        for t in 0..<tokens.count {
            let same = (0..<v).allSatisfy { base.scalars[t * v + $0] == patched.scalars[t * v + $0] }
            #expect(same == (t < 5), "position \(t)")
        }
    }

    @Test("an order without block 1 equals skipping it; zeros replacing a write equal zeroing it",
          arguments: ["gpt2", "openai-gpt", "neox-sequential", "opt-pre-sharded"])
    func orderAndZeros(_ name: String) throws {
        let url = FixturePaths.reference.appendingPathComponent(name + ".probes.json")
        let probes = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let sequence = (probes["sequences"] as! [[String: Any]]).first { ($0["tokens"] as! [Int]).count == 13 }!
        let tokens = sequence["tokens"] as! [Int]
        let entries = sequence["ablations"] as! [[String: Any]]
        func reference(_ target: String, _ layer: Int, _ mode: String) throws -> [String: Any] {
            try #require(entries.first { $0["target"] as! String == target && ($0["layers"] as! [Int]) == [layer] && $0["mode"] as! String == mode })
        }
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let d = model.architecture.width, last = model.architecture.layerCount - 1
        let zeros = Tensor(zeros: [tokens.count, d])
        let sweep = try model.ablationSweep([
            [.order((0...last).filter { $0 != 1 })],
            [Intervention(.hook(.attnOut(1)), .replace(zeros))],
            [Intervention(.hook(.mlpOut(last)), .replace(zeros))],
        ], on: [tokens])
        #expect(sweep.entries.count == 3)
        let expected = [try reference("block", 1, "skip"), try reference("attn", 1, "zero"), try reference("mlp", last, "zero")]
        for (entry, ref) in zip(sweep.entries, expected) {
            for (key, got) in [("kl_mean", entry.metrics.klMean), ("loss", entry.metrics.loss), ("top1_agreement", entry.metrics.top1Agreement)] {
                #expect(scalarClose(got, ref[key] as! Double, 1e-4), "\(name) \(entry.interventions) \(key): \(got) vs \(ref[key]!)")
            }
        }
    }

    @Test("bad interventions are refused with a message naming them")
    func validation() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("gpt2"), threads: 1)
        let tokens = [1, 2, 3]
        let cases: [(Intervention, String)] = [
            (Intervention(.hook(.residPre(0)), .replace(Tensor(zeros: [2, 48]))), "expected [3, 48]"),
            (Intervention(.hook(.residPre(0)), .add(Tensor(zeros: [5]))), "expected [48] or [3, 48]"),
            (Intervention(.hook(.residPre(0)), .zero, positions: [3]), "position 3 is outside the 3 tokens"),
            (Intervention(.hook(.residPre(0)), .skip), "skip acts on a block or sublayer"),
            (Intervention(.hook(.logits), .zero), "not supported"),
            (.order([0, 7]), "layer 7 is out of range"),
        ]
        for (intervention, message) in cases {
            do {
                _ = try model.logits(tokens, interventions: [intervention])
                Issue.record("\(intervention) was accepted")
            } catch {
                #expect(String(describing: error).contains(message), "\(intervention): \(error)")
            }
        }
    }
}
