import Foundation
import Testing
@testable import StreamLab

@Suite("Generation with a KV cache")
struct GenerationTests {
    /// Not for long-rope and dynamic models: their frequencies change with the
    /// length, and cached keys keep the rotation they were made with (as in transformers).
    @Test("greedy generation with the cache equals recomputing the whole sequence each step",
          arguments: ["gpt2", "opt-post-proj", "mistral", "gemma2-bf16", "gemma3-text", "gptj", "olmo2", "neox-parallel", "qwen3"])
    func cacheEqualsRecomputation(_ name: String) throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 1)
        let v = model.architecture.vocabularySize
        let prompt = [3 % v, 17 % v, 5 % v, 29 % v, 11 % v]
        let generated = try model.generate(prompt, GenerationSettings(maxTokens: 10))
        var tokens = prompt, expected: [Int] = []
        for _ in 0..<10 {
            let logits = try model.logits(tokens)
            let next = logits.scalars.withUnsafeBufferPointer { Distribution.argmax($0.baseAddress! + (tokens.count - 1) * v, v) }
            expected.append(next)
            tokens.append(next)
        }
        #expect(generated == expected, "\(name)")
    }

    @Test("steered generation equals steered recomputation; a zero coefficient changes nothing")
    func steering() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("gpt2"), threads: 1)
        let v = model.architecture.vocabularySize
        let vector = try model.steeringVector(layer: 1, add: [5, 9, 14], subtract: [7, 7, 2, 40], coefficient: 3)
        let zero = try model.steeringVector(layer: 1, add: [5, 9, 14], subtract: [7, 7, 2, 40], coefficient: 0)
        #expect(vector.shape == [model.architecture.width] && zero.scalars.allSatisfy { $0 == 0 })
        let steer = [Intervention(.hook(.residPre(1)), .add(vector))]
        let prompt = [3, 17, 5]
        let generated = try model.generate(prompt, GenerationSettings(maxTokens: 8), interventions: steer)
        var tokens = prompt, expected: [Int] = []
        for _ in 0..<8 {
            let logits = try model.logits(tokens, interventions: steer)
            let next = logits.scalars.withUnsafeBufferPointer { Distribution.argmax($0.baseAddress! + (tokens.count - 1) * v, v) }
            expected.append(next)
            tokens.append(next)
        }
        #expect(generated == expected)
        #expect(try model.generate(prompt, GenerationSettings(maxTokens: 8), interventions: [Intervention(.hook(.residPre(1)), .add(zero))])
                == model.generate(prompt, GenerationSettings(maxTokens: 8)))
        // Sampling is reproducible by seed and stays within the top k.
        let settings = GenerationSettings(maxTokens: 12, temperature: 0.9, topK: 5, seed: 7)
        #expect(try model.generate(prompt, settings) == model.generate(prompt, settings))
    }
}

@Suite("Greedy generation against transformers' generate")
struct GenerationParityTests {
    typealias Object = [String: Any]

    /// Covers a long-rope model crossing its original length (the cache is
    /// dropped once and recomputed, as transformers' Phi-3 does) and a dynamic
    /// one (cached keys keep the frequencies they were made with, as in transformers).
    static let skipped: Set<String> = []

    @Test("greedy continuations equal transformers' generate token for token")
    func greedy() throws {
        let url = FixturePaths.reference.appendingPathComponent("generate.json")
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
        let models = reference["models"] as! [Object]
        #expect(models.count == 14)
        var compared = 0
        for entry in models where !Self.skipped.contains(entry["name"] as! String) {
            let name = entry["name"] as! String
            let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 1)
            let expected = entry["generated"] as! [Int]
            let got = try model.generate(entry["prompt"] as! [Int], GenerationSettings(maxTokens: expected.count))
            #expect(got == expected, "\(name): \(got) vs transformers \(expected)")
            compared += 1
        }
        #expect(compared == 14)
    }
}
