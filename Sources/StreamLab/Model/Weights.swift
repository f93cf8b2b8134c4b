/// An affine map `y[M, out] = x[M, in] · W[in, out] + b`, W packed once for the
/// fast multiply.
public struct Linear: Sendable {
    /// W as `[in, out]`, packed.
    public let weight: PackedMatrix
    /// b `[out]`, if the map has one.
    public let bias: [Float]?

    public init(weight: PackedMatrix, bias: [Float]?) {
        precondition(bias == nil || bias!.count == weight.columns)
        self.weight = weight
        self.bias = bias
    }

    public var inputs: Int { weight.rows }
    public var outputs: Int { weight.columns }

    /// `y = x · W + b` for `rows` rows; `y` has row stride `outputs`.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, threads: Int) {
        weight.multiply(x, lda: inputs, m: rows, into: y, ldc: outputs, threads: threads)
        if let bias {
            bias.withUnsafeBufferPointer { Elementwise.addRow($0.baseAddress!, into: y, rows: rows, width: outputs) }
        }
    }
}

/// The learned parameters of one norm. A missing weight acts as ones and a
/// missing bias as zeros (RMSNorm, or LayerNorm without affine parameters).
public struct NormWeights: Sendable {
    public let weight: [Float]?
    public let bias: [Float]?
    public init(weight: [Float]?, bias: [Float]?) {
        self.weight = weight
        self.bias = bias
    }
}

/// One block's parameters. `ln1` is the attention's norm and `ln2` the MLP's,
/// whatever their Hugging Face names (for post-norm models they follow the add).
public struct BlockWeights: Sendable {
    public let ln1: NormWeights
    /// q | k | v fused: `[D, (H + 2 Hkv) Dh]`, q columns first, head-major.
    public let qkv: Linear
    /// Attention output projection `[H Dh, D]`.
    public let output: Linear
    public let ln2: NormWeights
    /// `[D, F]`, or for a gated MLP `[D, 2F]` holding gate | up.
    public let up: Linear
    /// `[F, D]`.
    public let down: Linear

    public init(ln1: NormWeights, qkv: Linear, output: Linear, ln2: NormWeights, up: Linear, down: Linear) {
        self.ln1 = ln1
        self.qkv = qkv
        self.output = output
        self.ln2 = ln2
        self.up = up
        self.down = down
    }
}

/// All parameters of a model, in the layout `Transformer` computes with.
public final class Weights: Sendable {
    /// `[V, E]` token embedding rows.
    public let tokenEmbedding: [Float]
    /// `[P + offset, D]` learned positions, if the model has them.
    public let positionEmbedding: [Float]?
    /// `[E, D]` (OPT-350m), if any.
    public let projectIn: Linear?
    public let blocks: [BlockWeights]
    public let finalNorm: NormWeights?
    /// `[D, E]`, if any.
    public let projectOut: Linear?
    /// `[E, V]` with optional bias.
    public let unembedding: Linear

    public init(tokenEmbedding: [Float], positionEmbedding: [Float]?, projectIn: Linear?, blocks: [BlockWeights],
                finalNorm: NormWeights?, projectOut: Linear?, unembedding: Linear) {
        self.tokenEmbedding = tokenEmbedding
        self.positionEmbedding = positionEmbedding
        self.projectIn = projectIn
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.projectOut = projectOut
        self.unembedding = unembedding
    }

    /// Bytes of float32 parameters held in memory (packed copies included).
    public var residentBytes: Int {
        var n = (tokenEmbedding.count + (positionEmbedding?.count ?? 0)) * 4
        func linear(_ l: Linear?) -> Int { guard let l else { return 0 }; return l.weight.byteCount + (l.bias?.count ?? 0) * 4 }
        func norm(_ w: NormWeights?) -> Int { ((w?.weight?.count ?? 0) + (w?.bias?.count ?? 0)) * 4 }
        n += linear(projectIn) + linear(projectOut) + linear(unembedding) + norm(finalNorm)
        for b in blocks {
            n += norm(b.ln1) + norm(b.ln2) + linear(b.qkv) + linear(b.output) + linear(b.up) + linear(b.down)
        }
        return n
    }
}
