import Foundation
import Testing
@testable import StreamLab

/// A committed reference: a tiny Hugging Face model and what PyTorch computed on it.
struct ReferenceFixture: CustomStringConvertible, Sendable {
    let name: String
    /// docs/definitions.md (Numbers and tolerances): 1e-4 for F32 checkpoints, 2e-4 for F16 / BF16
    /// (against a float32 run of the same, upcast weights).
    let tolerance: Float
    var description: String { name }

    var modelDirectory: URL { FixturePaths.models.appendingPathComponent(name) }
    var arraysPath: String { FixturePaths.reference.appendingPathComponent(name + ".npz").path }

    static let all: [ReferenceFixture] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: FixturePaths.reference.path)) ?? []
        // `<model>.npz` only: `<model>.grads.npz`, `<model>.tuned-lens.npz` belong to other suites.
        return names.filter { $0.hasSuffix(".npz") && !$0.dropLast(4).contains(".") }.sorted().map { file in
            let name = String(file.dropLast(4))
            let lowPrecision = name.contains("f16") || name.contains("bf16")
            return ReferenceFixture(name: name, tolerance: lowPrecision ? 2e-4 : 1e-4)
        }
    }()

    /// Token sequences and the expected arrays of each, keyed by hook name.
    func sequences() throws -> [(tokens: [Int], arrays: [String: Tensor])] {
        let all = try NpzReader.read(path: arraysPath)
        var result: [(tokens: [Int], arrays: [String: Tensor])] = []
        var s = 0
        while let tokens = all["seq\(s).tokens"]?.ints {
            var arrays: [String: Tensor] = [:]
            for (key, value) in all where key.hasPrefix("seq\(s).") && key != "seq\(s).tokens" {
                arrays[String(key.dropFirst("seq\(s).".count))] = value.tensor
            }
            result.append((tokens, arrays))
            s += 1
        }
        return result
    }
}

/// max |got - ref| / max(1, max |ref|), the parity measure of docs/definitions.md.
func relativeError(_ got: Tensor, _ ref: Tensor) -> Float {
    precondition(got.shape == ref.shape, "shape \(got.shape) vs \(ref.shape)")
    var worst: Float = 0
    for (a, b) in zip(got.scalars, ref.scalars) { worst = max(worst, abs(a - b)) }
    return worst / max(1, ref.maxAbs)
}

@Suite("Parity with Hugging Face transformers")
struct ParityTests {
    /// Every fixture of Fixtures/reference: the 2023 families and today's
    /// (every rope scaling type, sandwich and output norms, soft-caps, q/k norms).
    static let expectedFixtures = [
        "gemma", "gemma2-bf16", "gemma3-multimodal", "gemma3-text", "gpt2", "gpt2-noprefix-f16", "gptj", "llama-dynamic",
        "llama-gqa", "llama-linear", "llama-mqa-bf16", "llama-yarn", "llama3-rope", "mistral", "neox-parallel",
        "neox-sequential", "olmo2", "openai-gpt", "opt-post-proj", "opt-pre-sharded", "phi", "phi3-longrope", "phi4-mini",
        "qwen2", "qwen3",
    ]

    @Test("the references cover the 25 fixtures, three sequences each")
    func referenceCount() throws {
        #expect(ReferenceFixture.all.map(\.name).sorted() == Self.expectedFixtures.sorted(), "found \(ReferenceFixture.all.map(\.name))")
        for fixture in ReferenceFixture.all {
            #expect(try fixture.sequences().map(\.tokens.count) == [1, 6, 13], "\(fixture.name)")
        }
    }

    @Test("every hook point and the logits match the reference", arguments: ReferenceFixture.all)
    func hookPointsMatch(_ fixture: ReferenceFixture) throws {
        let model = try Transformer.load(from: fixture.modelDirectory, threads: 2)
        var worst: Float = 0
        for (tokens, expected) in try fixture.sequences() {
            let run = try model.run(tokens, recording: .all)
            let gotNames = Set(run.points.map(\.name))
            #expect(gotNames == Set(expected.keys), "recorded names differ: extra \(gotNames.subtracting(expected.keys).sorted()), missing \(Set(expected.keys).subtracting(gotNames).sorted())")
            for (name, reference) in expected {
                let got = try #require(run[name], "\(name) not recorded")
                try #require(got.shape == reference.shape, "\(name): shape \(got.shape), reference \(reference.shape)")
                let error = relativeError(got, reference)
                worst = max(worst, error)
                #expect(error <= fixture.tolerance, "\(fixture.name) T=\(tokens.count) \(name): relative error \(error)")
            }
        }
        print("parity \(fixture.name): worst relative error \(worst)")
    }

    @Test("the writes add up to the stream", arguments: ReferenceFixture.all)
    func writesAddUp(_ fixture: ReferenceFixture) throws {
        let model = try Transformer.load(from: fixture.modelDirectory, threads: 1)
        let a = model.architecture
        let tokens = try fixture.sequences().last!.tokens
        let run = try model.run(tokens, recording: .all)
        for i in 0..<a.layerCount {
            let pre = run[.residPre(i)]!, post = run[.residPost(i)]!
            let attn = run[.attnOut(i)]!, mlp = run[.mlpOut(i)]!
            if a.normPlacement != .post {
                var sum = pre
                for k in sum.scalars.indices { sum.scalars[k] += attn.scalars[k] + mlp.scalars[k] }
                #expect(relativeError(sum, post) <= 1e-5, "layer \(i): resid_pre + attn_out + mlp_out != resid_post")
            }
            // Per-head writes plus the output bias make the attention write
            // (through the write norm, its scale frozen, for sandwich and output norms).
            let result = run[.attnResult(i)]!
            var heads = Tensor(zeros: attn.shape)
            let d = a.width, h = a.headCount
            let bias = model.weights.blocks[i].output.bias ?? [Float](repeating: 0, count: d)
            for t in 0..<tokens.count {
                for c in 0..<d {
                    var s = bias[c]
                    for head in 0..<h { s += result.scalars[(t * h + head) * d + c] }
                    heads.scalars[t * d + c] = s
                }
            }
            if let post = model.weights.blocks[i].ln1Post {
                let scale = run[.ln1PostScale(i)]!
                for t in 0..<tokens.count {
                    for c in 0..<d { heads.scalars[t * d + c] *= (a.normWeightOffset + post.weight[c]) / scale.scalars[t] }
                }
            }
            #expect(relativeError(heads, attn) <= 1e-5, "layer \(i): sum of hook_result + bias != hook_attn_out")
        }
    }

    @Test("recording records only what was asked")
    func recordsOnlyWhatWasAsked() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("gpt2"), threads: 1)
        let run = try model.run([1, 2, 3], recording: [.residPost, .attnOut])
        #expect(Set(run.points.map(\.kind)) == [.residPost, .attnOut])
        #expect(run["blocks.2.hook_attn_out"]?.shape == [3, model.architecture.width])
        #expect(run.logits == nil)
    }
}
