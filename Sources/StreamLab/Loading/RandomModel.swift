/// Random models built in memory, for benchmarks and tests that need a real
/// shape without a download.
extension Transformer {
    /// A model of `architecture` with weights drawn uniformly from
    /// `[-scale, scale]` (scale 0.02 * sqrt(3), the spread of GPT-2's init) and
    /// norm weights 1 + noise; deterministic for a `seed`.
    public static func random(_ architecture: Architecture, seed: UInt64 = 0, threads: Int? = nil) throws -> Transformer {
        if let problem = architecture.validationProblem() { throw ModelError.invalidArchitecture(problem) }
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let scale: Float = 0.02 * 1.7320508
        func uniform(_ n: Int, _ s: Float = scale, center: Float = 0) -> [Float] {
            var out = [Float](repeating: 0, count: n)
            for i in 0..<n {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                out[i] = center + s * (Float(state >> 40) / Float(1 << 23) - 1)
            }
            return out
        }
        func linear(_ inputs: Int, _ outputs: Int, bias: Bool) -> Linear {
            let w = uniform(inputs * outputs)
            return Linear(weight: w.withUnsafeBufferPointer { PackedMatrix(rowMajor: $0, rows: inputs, columns: outputs) },
                          bias: bias ? uniform(outputs) : nil)
        }
        let a = architecture, d = a.width, e = a.embeddingWidth
        func norm() -> NormWeights {
            NormWeights(weight: uniform(d, 0.1, center: 1), bias: a.normBias ? uniform(d, 0.1) : nil)
        }
        let blocks = (0..<a.layerCount).map { _ in
            BlockWeights(ln1: norm(), qkv: linear(d, a.qkvWidth, bias: a.qkvBias),
                         output: linear(a.headCount * a.headDimension, d, bias: a.outputBias), ln2: norm(),
                         up: linear(d, a.mlpWidth * (a.gatedMLP ? 2 : 1), bias: a.mlpBias),
                         down: linear(a.mlpWidth, d, bias: a.mlpBias))
        }
        let embedding = uniform(a.vocabularySize * e)
        var positions: FloatTable?
        if case let .learned(offset) = a.positions {
            positions = FloatTable(uniform((a.maxPositions + offset) * d), rows: a.maxPositions + offset, width: d)
        }
        let unembedding = a.tiedEmbeddings
            ? Linear(weight: embedding.withUnsafeBufferPointer { PackedMatrix(transposed: $0, rows: e, columns: a.vocabularySize) },
                     bias: a.unembeddingBias ? uniform(a.vocabularySize) : nil)
            : linear(e, a.vocabularySize, bias: a.unembeddingBias)
        let weights = Weights(
            tokenEmbedding: FloatTable(embedding, rows: a.vocabularySize, width: e), positionEmbedding: positions,
            projectIn: a.hasProjection ? linear(e, d, bias: false) : nil, blocks: blocks,
            finalNorm: a.hasFinalNorm ? norm() : nil, projectOut: a.hasProjection ? linear(d, e, bias: false) : nil,
            unembedding: unembedding)
        return try Transformer(architecture: a, weights: weights, threads: threads)
    }
}

extension Architecture {
    /// GPT-2 small: 12 layers, width 768, 12 heads, vocabulary 50257, 1024 positions.
    public static let gpt2Small = Architecture(
        modelType: "gpt2", vocabularySize: 50257, width: 768, layerCount: 12, headCount: 12,
        mlpWidth: 3072, maxPositions: 1024)
}
