/// Everything that distinguishes one decoder-only Transformer family from
/// another, as data. One `Transformer` runs any value of this type; the
/// loaders in `Loading/Families` map Hugging Face configs onto it.
public struct Architecture: Sendable, Equatable {
    /// Where the norms sit relative to the residual add.
    public enum NormPlacement: String, Sendable {
        /// `x + f(norm(x))`: GPT-2, Llama, NeoX, most OPT.
        case pre
        /// `norm(x + f(x))`: GPT-1, OPT-350m.
        case post
    }

    /// The normalization used by every norm of the model.
    public enum NormKind: String, Sendable {
        case layerNorm = "LayerNorm"
        case rmsNorm = "RMSNorm"
    }

    /// How positions enter the model.
    public enum Positions: Sendable, Equatable {
        /// A learned table added to the token embedding; row `t + offset` for
        /// position `t` (OPT uses offset 2).
        case learned(offset: Int)
        /// Rotate-half rotary embedding of the first `dimensions` dims of each
        /// query and key head, with frequencies `base^(-2i/dimensions)`.
        case rotary(dimensions: Int, base: Float)
    }

    /// Hugging Face `model_type` this came from, e.g. "gpt2".
    public var modelType: String
    /// V: vocabulary size (rows of the embedding).
    public var vocabularySize: Int
    /// D: residual stream width.
    public var width: Int
    /// L: number of blocks.
    public var layerCount: Int
    /// H: query heads.
    public var headCount: Int
    /// Key/value heads (H for MHA, fewer for GQA, 1 for MQA).
    public var keyValueHeadCount: Int
    /// Dh: width of one head (H * Dh may differ from D).
    public var headDimension: Int
    /// F: MLP hidden width.
    public var mlpWidth: Int
    /// Longest sequence the model accepts.
    public var maxPositions: Int
    public var normPlacement: NormPlacement
    public var normKind: NormKind
    public var normEpsilon: Float
    /// The MLP nonlinearity (for a gated MLP, applied to the gate).
    public var activation: Activation
    /// SwiGLU-style MLP: `down(act(gate(x)) * up(x))`.
    public var gatedMLP: Bool
    public var positions: Positions
    /// `x + attn(ln1(x)) + mlp(ln2(x))` (GPT-NeoX) instead of two sequential adds.
    public var parallelResidual: Bool
    /// A norm between the last block and the unembedding.
    public var hasFinalNorm: Bool
    /// Width E of the token embedding; differs from D when the model has
    /// `project_in` / `project_out` (OPT-350m).
    public var embeddingWidth: Int
    /// Multiplier of the query-key dot products (usually 1/sqrt(Dh)).
    public var attentionScale: Float
    /// Keys older than this many positions are masked (Mistral), if set.
    public var slidingWindow: Int?
    /// Bias flags: which affine maps carry a bias.
    public var qkvBias: Bool
    public var outputBias: Bool
    public var mlpBias: Bool
    /// LayerNorm with a learned bias (RMSNorm never has one).
    public var normBias: Bool
    public var unembeddingBias: Bool
    /// The unembedding is the token embedding matrix.
    public var tiedEmbeddings: Bool
    /// Residual connections around each sublayer. `false` gives a *plain*
    /// stack, `x_{l+1} = F(x_l)`, for the depth experiment; only our own
    /// checkpoints set it (config key `streamlab_skip_connections`).
    public var skipConnections: Bool

    public init(
        modelType: String, vocabularySize: Int, width: Int, layerCount: Int, headCount: Int,
        keyValueHeadCount: Int? = nil, headDimension: Int? = nil, mlpWidth: Int, maxPositions: Int,
        normPlacement: NormPlacement = .pre, normKind: NormKind = .layerNorm, normEpsilon: Float = 1e-5,
        activation: Activation = .geluTanh, gatedMLP: Bool = false, positions: Positions = .learned(offset: 0),
        parallelResidual: Bool = false, hasFinalNorm: Bool = true, embeddingWidth: Int? = nil,
        attentionScale: Float? = nil, slidingWindow: Int? = nil, qkvBias: Bool = true, outputBias: Bool = true,
        mlpBias: Bool = true, normBias: Bool = true, unembeddingBias: Bool = false, tiedEmbeddings: Bool = true,
        skipConnections: Bool = true
    ) {
        self.modelType = modelType
        self.vocabularySize = vocabularySize
        self.width = width
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount ?? headCount
        let dh = headDimension ?? (headCount > 0 ? width / headCount : 0)
        self.headDimension = dh
        self.mlpWidth = mlpWidth
        self.maxPositions = maxPositions
        self.normPlacement = normPlacement
        self.normKind = normKind
        self.normEpsilon = normEpsilon
        self.activation = activation
        self.gatedMLP = gatedMLP
        self.positions = positions
        self.parallelResidual = parallelResidual
        self.hasFinalNorm = hasFinalNorm
        self.embeddingWidth = embeddingWidth ?? width
        self.attentionScale = attentionScale ?? (dh > 0 ? 1 / Float(dh).squareRoot() : 1)
        self.slidingWindow = slidingWindow
        self.qkvBias = qkvBias
        self.outputBias = outputBias
        self.mlpBias = mlpBias
        self.normBias = normKind == .layerNorm && normBias
        self.unembeddingBias = unembeddingBias
        self.tiedEmbeddings = tiedEmbeddings
        self.skipConnections = skipConnections
    }

    /// Width of the fused q|k|v projection output: (H + 2 Hkv) Dh.
    public var qkvWidth: Int { (headCount + 2 * keyValueHeadCount) * headDimension }

    /// Whether the model has `project_in` / `project_out`.
    public var hasProjection: Bool { embeddingWidth != width }

    /// Learned positions, if any.
    public var hasLearnedPositions: Bool {
        if case .learned = positions { return true }
        return false
    }

    /// Checks the relations between the sizes; returns a reason when invalid.
    public func validationProblem() -> String? {
        let limit = 1 << 24
        for (name, value) in [("vocabulary size", vocabularySize), ("width", width), ("layer count", layerCount),
                              ("head count", headCount), ("head dimension", headDimension), ("MLP width", mlpWidth),
                              ("maximum positions", maxPositions), ("embedding width", embeddingWidth)] where value > limit {
            return "\(name) \(value) is implausibly large (limit \(limit))"
        }
        if vocabularySize <= 0 { return "vocabulary size \(vocabularySize) must be positive" }
        if width <= 0 || layerCount < 0 || headCount <= 0 || headDimension <= 0 || mlpWidth <= 0 {
            return "sizes must be positive (width \(width), layers \(layerCount), heads \(headCount), head dim \(headDimension), mlp \(mlpWidth))"
        }
        if keyValueHeadCount <= 0 || headCount % keyValueHeadCount != 0 {
            return "\(headCount) attention heads are not a multiple of \(keyValueHeadCount) key-value heads"
        }
        if maxPositions <= 0 { return "maximum positions \(maxPositions) must be positive" }
        if !(normEpsilon > 0) || !normEpsilon.isFinite { return "norm epsilon \(normEpsilon) must be positive and finite" }
        if !(attentionScale > 0) || !attentionScale.isFinite { return "attention scale \(attentionScale) must be positive and finite" }
        if case let .rotary(dims, base) = positions {
            if dims <= 0 || dims > headDimension || dims % 2 != 0 {
                return "rotary dimensions \(dims) must be even and within the head dimension \(headDimension)"
            }
            if !(base > 0) || !base.isFinite { return "rotary base \(base) must be positive and finite" }
        }
        if parallelResidual && normPlacement == .post { return "parallel residual blocks with post-norm" }
        if parallelResidual && !skipConnections { return "parallel residual blocks without skip connections" }
        if let w = slidingWindow, w <= 0 { return "sliding window \(w) must be positive" }
        return nil
    }

    /// Number of parameters implied by the architecture (tied matrices once).
    /// Saturates at `Int.max` for absurd configs instead of overflowing.
    public var parameterCount: Int {
        func mul(_ a: Int, _ b: Int) -> Int { let (r, o) = a.multipliedReportingOverflow(by: b); return o ? Int.max / 4 : r }
        func add(_ xs: Int...) -> Int { xs.reduce(0) { let (r, o) = $0.addingReportingOverflow($1); return o ? Int.max / 4 : r } }
        let d = width, e = embeddingWidth, f = mlpWidth
        var n = mul(vocabularySize, e)
        if case let .learned(offset) = positions { n = add(n, mul(maxPositions + offset, d)) }
        if hasProjection { n = add(n, mul(2 * d, e)) }
        let normParams = normBias ? 2 * d : d
        let up = gatedMLP ? 2 * f : f
        let block = add(2 * normParams, mul(d, qkvWidth), qkvBias ? qkvWidth : 0, mul(headCount * headDimension, d),
                        outputBias ? d : 0, mul(d, up), mlpBias ? up : 0, mul(f, d), mlpBias ? d : 0)
        n = add(n, mul(layerCount, block))
        if hasFinalNorm { n = add(n, normParams) }
        if !tiedEmbeddings { n = add(n, mul(vocabularySize, e)) }
        if unembeddingBias { n = add(n, vocabularySize) }
        return n
    }
}
