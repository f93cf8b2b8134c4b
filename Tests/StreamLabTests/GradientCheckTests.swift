import Foundation
import Testing
@testable import StreamLab

/// A tiny model configuration for the finite-difference checks.
struct GradientCase: CustomStringConvertible, Sendable {
    let name: String
    let architecture: Architecture
    let batch: Int
    let length: Int
    /// Elements checked per parameter (evenly spaced, with a seeded jitter); nil checks every element.
    var sampled: Int? = 24
    var description: String { name }

    static func gpt(_ name: String, norm: Architecture.NormPlacement, plain: Bool = false, vocabulary: Int = 11,
                    width: Int = 12, layers: Int = 2, heads: Int = 3, mlp: Int = 20, positions: Int = 9, offset: Int = 0,
                    activation: Activation = .geluTanh, tied: Bool = true, batch: Int = 2, length: Int = 7,
                    sampled: Int? = 24) -> GradientCase {
        let a = Architecture(
            modelType: norm == .pre ? "gpt2" : "openai-gpt", vocabularySize: vocabulary, width: width, layerCount: layers,
            headCount: heads, mlpWidth: mlp, maxPositions: positions, normPlacement: norm, activation: activation,
            positions: .learned(offset: offset), hasFinalNorm: norm == .pre, tiedEmbeddings: tied, skipConnections: !plain)
        return GradientCase(name: name, architecture: a, batch: batch, length: length, sampled: sampled)
    }

    static let all: [GradientCase] = [
        gpt("pre-norm LayerNorm (GPT-2 layout)", norm: .pre),
        gpt("post-norm LayerNorm (GPT-1 layout)", norm: .post, vocabulary: 9, width: 10, heads: 2, mlp: 13, length: 6),
        gpt("plain pre-norm stack", norm: .pre, plain: true, layers: 3),
        gpt("plain post-norm stack", norm: .post, plain: true, width: 8, heads: 2, mlp: 16, length: 5),
        gpt("exact GELU, untied, positions offset 2", norm: .pre, activation: .geluExact, tied: false, batch: 1, length: 9)
            .with(offset: 2),
        gpt("ReLU, one head, one layer", norm: .post, width: 9, layers: 1, heads: 1, mlp: 17, activation: .relu, batch: 3,
            length: 4),
        GradientCase(name: "Llama style: RMSNorm, rotary, GQA 4/2, H·Dh 24 != D 12, SwiGLU, biases, window 3",
                     architecture: Architecture(
                        modelType: "llama", vocabularySize: 13, width: 12, layerCount: 2, headCount: 4, keyValueHeadCount: 2,
                        headDimension: 6, mlpWidth: 10, maxPositions: 16, normPlacement: .pre, normKind: .rmsNorm,
                        normEpsilon: 1e-5, activation: .silu, gatedMLP: true, positions: .rotary(Rotary(dimensions: 6, base: 100)),
                        slidingWindow: 3, qkvBias: true, outputBias: false, mlpBias: true, normBias: false,
                        unembeddingBias: true, tiedEmbeddings: false),
                     batch: 2, length: 8),
        GradientCase(name: "Llama style, MQA, partial rotary, no window",
                     architecture: Architecture(
                        modelType: "llama", vocabularySize: 10, width: 8, layerCount: 2, headCount: 2, keyValueHeadCount: 1,
                        headDimension: 4, mlpWidth: 9, maxPositions: 12, normPlacement: .pre, normKind: .rmsNorm,
                        activation: .silu, gatedMLP: true, positions: .rotary(Rotary(dimensions: 2, base: 10000)),
                        qkvBias: false, outputBias: false, mlpBias: false, normBias: false, tiedEmbeddings: true),
                     batch: 1, length: 11),
        gpt("T = 70 > one row block of 64", norm: .pre, vocabulary: 7, width: 8, layers: 1, heads: 2, mlp: 8,
            positions: 70, batch: 1, length: 70, sampled: 8),
        GradientCase(name: "Gemma 2 style: sandwich RMSNorm (1 + w), soft-capped scores and logits, local/global, llama3 rope",
                     architecture: Architecture(
                        modelType: "gemma2", vocabularySize: 11, width: 12, layerCount: 2, headCount: 2, keyValueHeadCount: 1,
                        headDimension: 8, mlpWidth: 10, maxPositions: 16, normPlacement: .sandwich, normKind: .rmsNorm,
                        normEpsilon: 1e-6, normWeightOffset: 1, activation: .geluTanh, gatedMLP: true,
                        positions: .rotary(Rotary(dimensions: 8, base: 100, scaling: .llama3(
                            factor: 4, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 8))),
                        attentionScale: 0.3, slidingWindow: 3, layerKinds: [.local, .global], attentionSoftCap: 2,
                        finalSoftCap: 1.5, embeddingScale: Float(12.0.squareRoot()), qkvBias: false, outputBias: false,
                        mlpBias: false, normBias: false, tiedEmbeddings: true),
                     batch: 2, length: 7),
        GradientCase(name: "Gemma 3 style: per-head q/k norms, local rotary base 10, global linear x4, window 2",
                     architecture: Architecture(
                        modelType: "gemma3_text", vocabularySize: 9, width: 8, layerCount: 3, headCount: 2, keyValueHeadCount: 1,
                        headDimension: 6, mlpWidth: 7, maxPositions: 16, normPlacement: .sandwich, normKind: .rmsNorm,
                        normWeightOffset: 1, activation: .geluTanh, gatedMLP: true,
                        positions: .rotary(Rotary(dimensions: 6, base: 1000, scaling: .linear(factor: 4))),
                        slidingWindow: 2, layerKinds: [.local, .local, .global], localRotary: Rotary(dimensions: 6, base: 10),
                        queryKeyNorm: .perHead, embeddingScale: 2, qkvBias: false, outputBias: false, mlpBias: false,
                        normBias: false),
                     batch: 1, length: 7),
        GradientCase(name: "OLMo 2 style: output norm, q/k norms over the whole projection, yarn rope, untied",
                     architecture: Architecture(
                        modelType: "olmo2", vocabularySize: 10, width: 8, layerCount: 2, headCount: 2, keyValueHeadCount: 2,
                        headDimension: 4, mlpWidth: 9, maxPositions: 16, normPlacement: .output, normKind: .rmsNorm,
                        activation: .silu, gatedMLP: true,
                        positions: .rotary(Rotary(dimensions: 4, base: 100, scaling: .yarn(
                            factor: 4, originalMaxPositions: 4, betaFast: 32, betaSlow: 1, truncate: true, attentionFactor: 1.14))),
                        queryKeyNorm: .whole, qkvBias: false, outputBias: false, mlpBias: false, normBias: false,
                        tiedEmbeddings: false),
                     batch: 2, length: 6),
        GradientCase(name: "GPT-J style: parallel blocks with one LayerNorm, interleaved partial rotary, unembedding bias",
                     architecture: Architecture(
                        modelType: "gptj", vocabularySize: 10, width: 12, layerCount: 2, headCount: 2, mlpWidth: 16,
                        maxPositions: 16, normPlacement: .pre, normKind: .layerNorm, activation: .geluTanh,
                        positions: .rotary(Rotary(dimensions: 4, base: 10000, pairing: .interleaved)),
                        parallelResidual: true, sharedParallelNorm: true, qkvBias: false, outputBias: false, mlpBias: true,
                        unembeddingBias: true, tiedEmbeddings: false),
                     batch: 2, length: 6),
        GradientCase(name: "Phi-3 style: longrope beyond the original length, partial rotary",
                     architecture: Architecture(
                        modelType: "phi3", vocabularySize: 9, width: 8, layerCount: 2, headCount: 2, keyValueHeadCount: 1,
                        headDimension: 6, mlpWidth: 8, maxPositions: 16, normPlacement: .pre, normKind: .rmsNorm,
                        activation: .silu, gatedMLP: true,
                        positions: .rotary(Rotary(dimensions: 4, base: 100, scaling: .longrope(
                            short: [1, 2], long: [3, 5], originalMaxPositions: 4, attentionFactor: 1.2))),
                        slidingWindow: 4, qkvBias: false, outputBias: false, mlpBias: false, normBias: false),
                     batch: 1, length: 7),
        GradientCase(name: "Phi-2 style: parallel shared LayerNorm, rotate-half partial rotary, dynamic NTK beyond 4 tokens",
                     architecture: Architecture(
                        modelType: "phi", vocabularySize: 10, width: 12, layerCount: 2, headCount: 2, mlpWidth: 12,
                        maxPositions: 16, normPlacement: .pre, normKind: .layerNorm, activation: .geluTanh,
                        positions: .rotary(Rotary(dimensions: 4, base: 100, scaling: .dynamic(factor: 2, maxPositions: 4))),
                        parallelResidual: true, sharedParallelNorm: true, unembeddingBias: true, tiedEmbeddings: false),
                     batch: 1, length: 7),
    ]

    func with(offset: Int) -> GradientCase {
        var a = architecture
        a.positions = .learned(offset: offset)
        return GradientCase(name: name, architecture: a, batch: batch, length: length, sampled: sampled)
    }
}

/// Parameters drawn large enough that every path carries signal: matrices
/// N(0, (1.4/sqrt(D))^2), embeddings N(0, 0.5^2), norm weights 1 + 0.1 N,
/// biases 0.1 N (as the reference fixtures do).
func randomizeParameters(_ model: TrainableModel, seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    var flat = model.flatParameters
    let scale = 1.4 / Double(model.architecture.width).squareRoot()
    for slot in model.layout.slots {
        let isNorm = slot.shape.count == 1 && (slot.name.contains(".ln") || slot.name.hasPrefix("ln_") || slot.name.contains("_norm."))
        for i in slot.offset..<(slot.offset + slot.count) {
            let r = rng.normal()
            if isNorm { flat[i] = Float(1 + 0.1 * r) }
            else if slot.name.hasSuffix("embed.weight") { flat[i] = Float(0.5 * r) }
            else if slot.shape.count == 2 { flat[i] = Float(scale * r) }
            else { flat[i] = Float(0.1 * r) }
        }
    }
    model.setFlatParameters(flat)
}

/// Random tokens `[B][T]` and next-token targets (-1 on the last position of each sequence).
func randomBatch(vocabulary: Int, batch: Int, length: Int, seed: UInt64) -> (tokens: [[Int]], targets: [[Int]]) {
    var rng = SeededRandom(seed: seed)
    var tokens: [[Int]] = [], targets: [[Int]] = []
    for _ in 0..<batch {
        let seq = (0...length).map { _ in rng.integer(below: vocabulary) }
        tokens.append(Array(seq[0..<length]))
        targets.append(Array(seq[1...length]))
    }
    targets[batch - 1][length - 1] = -1      // one unscored position, as in docs/definitions.md (Metrics)
    return (tokens, targets)
}

@Suite("Backward pass against Float64 finite differences")
struct GradientCheckTests {
    @Test("analytic gradients match central differences", arguments: GradientCase.all)
    func finiteDifferences(_ c: GradientCase) throws {
        let model = try TrainableModel(architecture: c.architecture, seed: 1)
        randomizeParameters(model, seed: 7)
        let (tokens, targets) = randomBatch(vocabulary: c.architecture.vocabularySize, batch: c.batch, length: c.length, seed: 3)
        let pass = GradientPass(c.architecture, batch: c.batch, length: c.length, threads: 2)
        pass.setBatch(tokens: tokens.flatMap { $0 }.map { Int32($0) }, targets: targets.flatMap { $0 }.map { Int32($0) })
        model.zeroGradients()
        let transformer = try model.transformer()
        let loss32 = pass.forward(transformer)
        let paths = pass.backward(transformer, into: model.gradients.pointer, paths: true)
        let analytic = model.flatGradients

        var reference = Float64Transformer(model)
        let loss64 = reference.loss(tokens: tokens, targets: targets)
        #expect(abs(Double(loss32) - loss64) <= 1e-5 * max(1, abs(loss64)), "loss \(loss32) vs Float64 \(loss64)")

        let h = 1e-5
        var rng = SeededRandom(seed: 11)
        var worst = 0.0, worstName = ""
        for slot in model.layout.slots {
            let indices: [Int]
            if let k = c.sampled, k < slot.count {
                indices = (0..<k).map { slot.offset + $0 * slot.count / k + rng.integer(below: slot.count / k) }
            } else {
                indices = Array(slot.offset..<(slot.offset + slot.count))
            }
            var maxDiff = 0.0, maxRef = 0.0
            for i in indices {
                let saved = reference.flat[i]
                reference.flat[i] = saved + h
                let up = reference.loss(tokens: tokens, targets: targets)
                reference.flat[i] = saved - h
                let down = reference.loss(tokens: tokens, targets: targets)
                reference.flat[i] = saved
                let fd = (up - down) / (2 * h)
                maxDiff = max(maxDiff, abs(Double(analytic[i]) - fd))
                maxRef = max(maxRef, abs(fd))
            }
            let error = maxDiff / max(maxRef, 1e-3)
            if error > worst { worst = error; worstName = slot.name }
            #expect(error <= 1e-3, "\(c.name): \(slot.name): max |analytic - fd| \(maxDiff), max |fd| \(maxRef)")
        }

        // dL/d resid_pre of every block, on a sample of stream elements.
        let n = c.batch * c.length * c.architecture.width
        for layer in 0..<c.architecture.layerCount {
            let got = paths[layer].residPre
            var maxDiff = 0.0, maxRef = 0.0
            for i in stride(from: rng.integer(below: max(1, n / 24)), to: n, by: max(1, n / 24)) {
                let up = reference.loss(tokens: tokens, targets: targets, streamDelta: .init(layer: layer, index: i, delta: h))
                let down = reference.loss(tokens: tokens, targets: targets, streamDelta: .init(layer: layer, index: i, delta: -h))
                let fd = (up - down) / (2 * h)
                maxDiff = max(maxDiff, abs(Double(got[i]) - fd))
                maxRef = max(maxRef, abs(fd))
            }
            let error = maxDiff / max(maxRef, 1e-3)
            if error > worst { worst = error; worstName = "blocks.\(layer).hook_resid_pre" }
            #expect(error <= 1e-3, "\(c.name): d resid_pre \(layer): max |analytic - fd| \(maxDiff), max |fd| \(maxRef)")
            // The path split adds up to the whole.
            let p = paths[layer]
            var splitError: Float = 0
            for i in 0..<n { splitError = max(splitError, abs(p.skip[i] + p.mlp[i] + p.attention[i] - p.residPre[i])) }
            #expect(splitError <= 1e-5 * max(1, got.map(abs).max()!), "\(c.name): paths of block \(layer) do not add up: \(splitError)")
        }
        print("finite differences \(c.name): worst relative error \(worst) (\(worstName))")
    }
}
