#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A model's parameters in one flat float32 buffer, with a gradient buffer of
/// the same layout (`ParameterLayout`): what the optimizer, gradient clipping,
/// checkpoints and the exporter work on. `transformer()` gives the one
/// `Transformer` that computes with them; any `Architecture` is trainable.
///
/// Built either from an `Architecture` with a seeded GPT-2-style random
/// initialization, or from a loaded `Transformer`.
public final class TrainableModel: @unchecked Sendable {
    public let architecture: Architecture
    public let layout: ParameterLayout
    /// Parameter values `[layout.count]`.
    let values: FloatBuffer
    /// Gradients `[layout.count]`, same layout; `backward` accumulates into it.
    let gradients: FloatBuffer

    /// A fresh model with GPT-2's initialization: every matrix and embedding
    /// N(0, 0.02^2), the two projections that write into the stream (attention
    /// output, MLP down) N(0, (0.02 / sqrt(2L))^2), biases 0, every norm's
    /// scale 1 (weights 1, or 0 for a norm scaled by 1 + w).
    public init(architecture a: Architecture, seed: UInt64) throws {
        if let problem = a.validationProblem() { throw TrainingError.invalidShape(problem) }
        architecture = a
        layout = ParameterLayout(a)
        values = FloatBuffer(layout.count)
        gradients = FloatBuffer(layout.count)
        var rng = SeededRandom(seed: seed)
        let std = 0.02, projectionStd = 0.02 / Double(2 * max(a.layerCount, 1)).squareRoot()
        for slot in layout.slots {
            let p = values.pointer + slot.offset
            let norms = ["ln1.weight", "ln2.weight", "ln1_post.weight", "ln2_post.weight", "q_norm.weight", "k_norm.weight",
                         "ln_final.weight"]
            if norms.contains(where: { slot.name.hasSuffix($0) }) {
                p.update(repeating: 1 - a.normWeightOffset, count: slot.count)      // a scale of 1 either way
            } else if slot.shape.count == 2 {
                let s = slot.name.hasSuffix("attn.out.weight") || slot.name.hasSuffix("mlp.down.weight") ? projectionStd : std
                for i in 0..<slot.count { p[i] = Float(rng.normal() * s) }
            } else {
                p.update(repeating: 0, count: slot.count)
            }
        }
    }

    /// The parameters of a loaded model (unpacked to `[in, out]`).
    public init(_ model: Transformer) {
        let a = model.architecture
        architecture = a
        layout = ParameterLayout(a)
        values = FloatBuffer(layout.count)
        gradients = FloatBuffer(layout.count)
        let w = model.weights
        func put(_ offset: Int?, _ source: [Float]?) {
            guard let offset, let source else { return }
            source.withUnsafeBufferPointer { (values.pointer + offset).update(from: $0.baseAddress!, count: $0.count) }
        }
        put(layout.tokenEmbedding, w.tokenEmbedding.values)
        put(layout.positionEmbedding, w.positionEmbedding?.values)
        put(layout.projectIn, w.projectIn?.weight.unpacked())
        for (b, bw) in zip(layout.blocks, w.blocks) {
            put(b.ln1Weight, bw.ln1?.weight)
            put(b.ln1Bias, bw.ln1?.bias)
            put(b.qkvWeight, bw.qkv.weight.unpacked())
            put(b.qkvBias, bw.qkv.bias)
            put(b.qNormWeight, bw.queryNorm?.weight)
            put(b.kNormWeight, bw.keyNorm?.weight)
            put(b.outWeight, bw.output.weight.unpacked())
            put(b.outBias, bw.output.bias)
            put(b.ln1PostWeight, bw.ln1Post?.weight)
            put(b.ln1PostBias, bw.ln1Post?.bias)
            put(b.ln2Weight, bw.ln2?.weight)
            put(b.ln2Bias, bw.ln2?.bias)
            put(b.upWeight, bw.up.weight.unpacked())
            put(b.upBias, bw.up.bias)
            put(b.downWeight, bw.down.weight.unpacked())
            put(b.downBias, bw.down.bias)
            put(b.ln2PostWeight, bw.ln2Post?.weight)
            put(b.ln2PostBias, bw.ln2Post?.bias)
        }
        put(layout.finalNormWeight, w.finalNorm?.weight)
        put(layout.finalNormBias, w.finalNorm?.bias)
        put(layout.projectOut, w.projectOut?.weight.unpacked())
        put(layout.unembedWeight, w.unembedding.weight.unpacked())
        put(layout.unembedBias, w.unembedding.bias)
    }

    /// A copy of parameter `name` as a tensor.
    public func parameter(_ name: String) -> Tensor? {
        guard let slot = layout.slot(name) else { return nil }
        return Tensor(shape: slot.shape, scalars: Array(UnsafeBufferPointer(start: values.pointer + slot.offset, count: slot.count)))
    }

    /// A copy of the gradient of parameter `name` as a tensor.
    public func gradient(_ name: String) -> Tensor? {
        guard let slot = layout.slot(name) else { return nil }
        return Tensor(shape: slot.shape, scalars: Array(UnsafeBufferPointer(start: gradients.pointer + slot.offset, count: slot.count)))
    }

    /// All parameter values, flat, in layout order.
    public var flatParameters: [Float] { values.array }

    /// Replaces all parameter values (count must equal `layout.count`).
    public func setFlatParameters(_ flat: [Float]) {
        precondition(flat.count == layout.count)
        flat.withUnsafeBufferPointer { values.pointer.update(from: $0.baseAddress!, count: flat.count) }
    }

    /// All gradients, flat, in layout order.
    public var flatGradients: [Float] { gradients.array }

    public func zeroGradients() { gradients.zero() }

    /// The `Transformer` computing with the current parameters: matrices
    /// packed from the flat buffer, embedding tables read in place. Make a new
    /// one after the parameters change.
    public func transformer(threads: Int? = nil) throws -> Transformer {
        let a = architecture, l = layout, v = values.pointer
        func array(_ offset: Int, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: v + offset, count: count)) }
        func optional(_ offset: Int?, _ count: Int) -> [Float]? { offset.map { array($0, count) } }
        func linear(_ w: Int, _ b: Int?, _ inputs: Int, _ outputs: Int) -> Linear {
            let packed = PackedMatrix(rowMajor: UnsafeBufferPointer(start: v + w, count: inputs * outputs), rows: inputs, columns: outputs)
            return Linear(weight: packed, bias: optional(b, outputs))
        }
        func table(_ offset: Int, rows: Int, width: Int) -> FloatTable {
            FloatTable(floats: UnsafePointer(v + offset), rows: rows, width: width, owner: values)
        }
        let d = a.width, e = a.embeddingWidth, f = a.mlpWidth, up = a.gatedMLP ? 2 * f : f, dh = a.headDimension
        func norm(_ w: Int?, _ b: Int?, _ width: Int) -> NormWeights? {
            w.map { NormWeights(weight: array($0, width), bias: optional(b, width)) }
        }
        let perHead = a.queryKeyNorm == .perHead
        let blocks = l.blocks.map { b in
            BlockWeights(
                ln1: norm(b.ln1Weight, b.ln1Bias, d),
                qkv: linear(b.qkvWeight, b.qkvBias, d, a.qkvWidth),
                queryNorm: norm(b.qNormWeight, nil, perHead ? dh : a.headCount * dh),
                keyNorm: norm(b.kNormWeight, nil, perHead ? dh : a.keyValueHeadCount * dh),
                output: linear(b.outWeight, b.outBias, a.headCount * dh, d),
                ln1Post: norm(b.ln1PostWeight, b.ln1PostBias, d),
                ln2: norm(b.ln2Weight, b.ln2Bias, d),
                up: linear(b.upWeight, b.upBias, d, up),
                down: linear(b.downWeight, b.downBias, f, d),
                ln2Post: norm(b.ln2PostWeight, b.ln2PostBias, d))
        }
        let embedding = table(l.tokenEmbedding, rows: a.vocabularySize, width: e)
        var positions: FloatTable?
        if case let .learned(offset) = a.positions, let p = l.positionEmbedding {
            positions = table(p, rows: a.maxPositions + offset, width: d)
        }
        let unembedding: Linear
        if let u = l.unembedWeight {
            unembedding = linear(u, l.unembedBias, e, a.vocabularySize)
        } else {
            unembedding = Linear(weight: PackedMatrix(transposed: UnsafePointer(v + l.tokenEmbedding), rows: e,
                                                      columns: a.vocabularySize, rowStride: e),
                                 bias: optional(l.unembedBias, a.vocabularySize))
        }
        let weights = Weights(
            tokenEmbedding: embedding, positionEmbedding: positions,
            projectIn: l.projectIn.map { linear($0, nil, e, d) }, blocks: blocks,
            finalNorm: l.finalNormWeight.map { NormWeights(weight: array($0, d), bias: optional(l.finalNormBias, d)) },
            projectOut: l.projectOut.map { linear($0, nil, d, e) }, unembedding: unembedding)
        return try Transformer(architecture: a, weights: weights, threads: threads)
    }
}

extension Architecture {
    /// The byte-level model `stream-probe train` builds: vocabulary 256, MLP
    /// width 4D, tanh GELU, tied unembedding, and per norm placement the
    /// layout of a family that has it. Pre-norm: GPT-2 (LayerNorm, learned
    /// positions, biases, final norm); post-norm: GPT-1 (`openai-gpt`, no final
    /// norm); sandwich: Gemma 2 (RMSNorm scaled by 1 + w, embeddings times
    /// sqrt(D), rotary, gated MLP, no biases; soft-caps off, the alternate
    /// layers' sliding window as long as the context, so every layer sees it
    /// all); output: OLMo 2 (RMSNorm, rotary, gated MLP, q/k norms over the
    /// whole projection, no biases). `plain` removes the skip connections
    /// (pre- and post-norm).
    public static func byteLevel(layers: Int, width: Int, heads: Int, context: Int,
                                 norm: NormPlacement, plain: Bool = false) throws -> Architecture {
        guard layers > 0 else { throw TrainingError.invalidShape("--layers must be positive, got \(layers)") }
        guard width > 0 else { throw TrainingError.invalidShape("--width must be positive, got \(width)") }
        guard heads > 0 else { throw TrainingError.invalidShape("--heads must be positive, got \(heads)") }
        guard context > 0 else { throw TrainingError.invalidShape("--context must be positive, got \(context)") }
        guard width % heads == 0 else {
            throw TrainingError.invalidShape("width \(width) is not divisible by \(heads) heads")
        }
        if plain && (norm == .sandwich || norm == .output) {
            throw TrainingError.invalidShape("--plain trains pre- or post-norm models only")
        }
        let headDim = width / heads
        if (norm == .sandwich || norm == .output) && headDim % 2 != 0 {
            throw TrainingError.invalidShape("rotary positions need an even head size; width / heads = \(headDim)")
        }
        let rotary = Rotary(dimensions: headDim, base: 10_000)
        let a: Architecture
        switch norm {
        case .pre, .post:
            a = Architecture(
                modelType: norm == .pre ? "gpt2" : "openai-gpt", vocabularySize: 256, width: width,
                layerCount: layers, headCount: heads, mlpWidth: 4 * width, maxPositions: context,
                normPlacement: norm, normKind: .layerNorm, normEpsilon: 1e-5, activation: .geluTanh,
                positions: .learned(offset: 0), hasFinalNorm: norm == .pre, tiedEmbeddings: true,
                skipConnections: !plain)
        case .sandwich:
            a = Architecture(
                modelType: "gemma2", vocabularySize: 256, width: width, layerCount: layers, headCount: heads,
                keyValueHeadCount: heads, headDimension: headDim, mlpWidth: 4 * width, maxPositions: context,
                normPlacement: .sandwich, normKind: .rmsNorm, normEpsilon: 1e-6, normWeightOffset: 1,
                activation: .geluTanh, gatedMLP: true, positions: .rotary(rotary),
                attentionScale: Float(CMath.pow(Double(headDim), -0.5)), slidingWindow: context,
                layerKinds: (0..<layers).map { ($0 + 1) % 2 == 0 ? .global : .local },
                embeddingScale: Float(Double(width).squareRoot()),
                qkvBias: false, outputBias: false, mlpBias: false, normBias: false, tiedEmbeddings: true)
        case .output:
            a = Architecture(
                modelType: "olmo2", vocabularySize: 256, width: width, layerCount: layers, headCount: heads,
                keyValueHeadCount: heads, headDimension: headDim, mlpWidth: 4 * width, maxPositions: context,
                normPlacement: .output, normKind: .rmsNorm, normEpsilon: 1e-6, activation: .geluTanh, gatedMLP: true,
                positions: .rotary(rotary), queryKeyNorm: .whole,
                qkvBias: false, outputBias: false, mlpBias: false, normBias: false, tiedEmbeddings: true)
        }
        if let problem = a.validationProblem() { throw TrainingError.invalidShape(problem) }
        return a
    }
}
