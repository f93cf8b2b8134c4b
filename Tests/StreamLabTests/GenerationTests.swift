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
}
