import Foundation
import Testing
import StreamLab   // a plain import: the README's script sees only the public API

/// The library script of README.md, kept compiling and checked here (with the
/// fixture path made absolute). If this file needs a change, so does the README.
@Suite("README library example")
struct ReadmeExampleTests {
    @Test("the README script runs on the bundled model")
    func readmeScript() throws {
        let directory = FixturePaths.models.appendingPathComponent("shakespeare-pre")
        let model = try Transformer.load(from: directory)
        let tokenizer = try TokenizerLoader.find(inModelDirectory: directory)!
        let tokens = tokenizer.encode("To be, or not to be", addSpecialTokens: false)

        // Record hook points (TransformerLens names).
        let run = try model.run(tokens, recording: [.residPost, .attnOut, .logits])
        let write = run["blocks.1.hook_attn_out"]!          // Tensor, shape [T, D]

        // Remove block 1 and measure the damage.
        let damage = try model.ablate(.block(layer: 1), mode: .skip, on: tokens)

        // The logit lens and an exact decomposition of the last position's top logit.
        let lens = try model.logitLens(tokens)
        let parts = try model.decompose(tokens, position: -1)
        let total = parts.components.filter { !$0.isDetail }.reduce(0) { $0 + $1.attribution }

        // Interventions are values applied at hook points: patch block 2's input with
        // another run's stream, add a steering vector, run the blocks in another order.
        let other = try model.run(tokenizer.encode("Or not to be, to be", addSpecialTokens: false), recording: [.residPre])
        let patched = try model.logits(tokens, interventions: [
            Intervention(.hook(.residPre(2)), .replace(other["blocks.2.hook_resid_pre"]!), positions: [0, 1]),
            Intervention(.hook(.residMid(3)), .add(Tensor(zeros: [model.architecture.width]))),
        ])
        let reordered = try model.ablate([.order([0, 2, 1, 3, 4, 5])], on: tokens)

        // Activation patching from a corrupted prompt of the same length (exact, or attribution
        // patching from one backward), and every head's scores on a repeated random sequence.
        let corrupted = tokenizer.encode("To be, or not to go", addSpecialTokens: false)
        let comma = tokenizer.encode(",", addSpecialTokens: false)[0], period = tokenizer.encode(".", addSpecialTokens: false)[0]
        let patching = try model.patch(clean: tokens, corrupted: corrupted, answer: comma, wrong: period, hook: .residPre,
                                       method: .attribution)
        let heads = try model.headScores(model.repeatedRandomTokens(length: 20, seed: 0))

        // Generation with a KV cache, steered by the difference of two prompts' streams at layer 2.
        let steer = try model.steeringVector(layer: 2, add: tokenizer.encode("Love", addSpecialTokens: false),
                                             subtract: tokenizer.encode("Hate", addSpecialTokens: false), coefficient: 4)
        let continuation = try model.generate(tokens, GenerationSettings(maxTokens: 20),
                                              interventions: [Intervention(.hook(.residPre(2)), .add(steer))])
        let text = try tokenizer.decode(continuation)

        // Gradients of the next-token loss: every parameter (in ParameterLayout order) and the stream.
        let pass = GradientPass(model.architecture, batch: 1, length: tokens.count, threads: 2)
        pass.setSequence(tokens)
        let loss = pass.forward(model)
        let paths = pass.backward(model, into: nil, paths: true)   // per block: dL/d resid_pre, split by path

        #expect(tokens == Array("To be, or not to be".utf8).map(Int.init))   // byte-level: token = byte
        #expect(write.shape == [tokens.count, model.architecture.width])
        #expect(damage.klMean > 0 && damage.deltaLoss.isFinite)
        #expect(lens.layers.count == model.architecture.layerCount + 1)
        #expect(abs(total - parts.logit) <= 1e-4 * max(1, abs(parts.logit)))
        #expect(patched.shape == [tokens.count, model.architecture.vocabularySize])
        #expect(patched != (try model.logits(tokens)))
        #expect(reordered.deltaLoss > 0)
        #expect(loss.isFinite && paths.count == model.architecture.layerCount)
        #expect(patching.entries.count == model.architecture.layerCount * tokens.count)
        #expect(heads.scores.count == model.architecture.layerCount * model.architecture.headCount)
        #expect(continuation.count == 20 && !text.isEmpty)
    }
}
