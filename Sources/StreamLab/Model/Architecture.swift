/// Everything that distinguishes one decoder-only Transformer family from
/// another, as data. One `Transformer` runs any value of this type; the
/// loaders in `Loading/Families` map Hugging Face configs onto it.
public struct Architecture: Sendable, Equatable {
    /// Where the norms sit relative to the residual add.
    public enum NormPlacement: String, Sendable {
        /// `x + f(norm(x))`: GPT-2, Llama, NeoX, GPT-J, Phi, most OPT.
        case pre
        /// `norm(x + f(x))`: GPT-1, OPT-350m.
        case post
        /// `x + norm_post(f(norm(x)))` (peri-norm): Gemma 2, Gemma 3.
        case sandwich
        /// `x + norm_post(f(x))`: OLMo 2.
        case output

        /// Whether each sublayer reads the stream through its own norm (ln1, ln2).
        public var normsInput: Bool { self == .pre || self == .sandwich }
        /// Whether each sublayer's write passes a norm before the add (ln1_post, ln2_post).
        public var normsWrite: Bool { self == .sandwich || self == .output }
    }

    /// Kind of attention of one layer.
    public enum AttentionKind: String, Sendable {
        /// Every earlier position.
        case global
        /// The last `slidingWindow` positions, with `localRotary` if set.
        case local
    }

    /// RMSNorms on the queries and keys, after the projection and before the rotary.
    public enum QueryKeyNorm: String, Sendable {
        /// Over each head's Dh values (Qwen3, Gemma 3), weights `[Dh]`.
        case perHead = "per head"
        /// Over the whole projection (OLMo 2), weights `[H Dh]` and `[Hkv Dh]`.
        case whole = "whole projection"
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
        /// Rotary embedding of the queries and keys (of global layers, when
        /// local layers have their own `localRotary`).
        case rotary(Rotary)
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
    /// Every norm multiplies by `offset + w` (Gemma: 1 + w; others 0).
    public var normWeightOffset: Float
    /// The MLP nonlinearity (for a gated MLP, applied to the gate).
    public var activation: Activation
    /// SwiGLU-style MLP: `down(act(gate(x)) * up(x))`.
    public var gatedMLP: Bool
    public var positions: Positions
    /// `x + attn(ln1(x)) + mlp(ln2(x))` (GPT-NeoX) instead of two sequential adds.
    public var parallelResidual: Bool
    /// Parallel blocks with one norm read by both sublayers,
    /// `x + attn(ln1(x)) + mlp(ln1(x))` (GPT-J, Phi-2).
    public var sharedParallelNorm: Bool
    /// A norm between the last block and the unembedding.
    public var hasFinalNorm: Bool
    /// Width E of the token embedding; differs from D when the model has
    /// `project_in` / `project_out` (OPT-350m).
    public var embeddingWidth: Int
    /// Multiplier of the query-key dot products (usually 1/sqrt(Dh)).
    public var attentionScale: Float
    /// Local layers see the last this many positions (itself included).
    public var slidingWindow: Int?
    /// Per layer, global or local attention (`[L]`; Mistral: all local,
    /// Gemma 2: alternating, Gemma 3: five local to one global).
    public var layerKinds: [AttentionKind]
    /// The rotary of local layers when it differs from `positions` (Gemma 3).
    public var localRotary: Rotary?
    /// Query and key norms, if any (RMSNorm, `normEpsilon`, `normWeightOffset`).
    public var queryKeyNorm: QueryKeyNorm?
    /// Attention scores pass `c · tanh(s / c)` before the softmax (Gemma 2).
    public var attentionSoftCap: Float?
    /// Logits pass `c · tanh(z / c)` (Gemma 2).
    public var finalSoftCap: Float?
    /// The token embedding is multiplied by this as it enters the stream (Gemma: sqrt(D)).
    public var embeddingScale: Float
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
        normWeightOffset: Float = 0,
        activation: Activation = .geluTanh, gatedMLP: Bool = false, positions: Positions = .learned(offset: 0),
        parallelResidual: Bool = false, sharedParallelNorm: Bool = false, hasFinalNorm: Bool = true,
        embeddingWidth: Int? = nil, attentionScale: Float? = nil, slidingWindow: Int? = nil,
        layerKinds: [AttentionKind]? = nil, localRotary: Rotary? = nil, queryKeyNorm: QueryKeyNorm? = nil,
        attentionSoftCap: Float? = nil, finalSoftCap: Float? = nil, embeddingScale: Float = 1,
        qkvBias: Bool = true, outputBias: Bool = true,
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
        self.normWeightOffset = normWeightOffset
        self.activation = activation
        self.gatedMLP = gatedMLP
        self.positions = positions
        self.parallelResidual = parallelResidual
        self.sharedParallelNorm = sharedParallelNorm
        self.hasFinalNorm = hasFinalNorm
        self.embeddingWidth = embeddingWidth ?? width
        self.attentionScale = attentionScale ?? (dh > 0 ? Float(CMath.pow(Double(dh), -0.5)) : 1)    // as head_dim ** -0.5
        self.slidingWindow = slidingWindow
        self.layerKinds = layerKinds ?? Array(repeating: slidingWindow == nil ? .global : .local, count: max(0, layerCount))
        self.localRotary = localRotary
        self.queryKeyNorm = queryKeyNorm
        self.attentionSoftCap = attentionSoftCap
        self.finalSoftCap = finalSoftCap
        self.embeddingScale = embeddingScale
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

    /// The rotary of `layer`, if the model has rotary positions.
    public func rotary(layer: Int) -> Rotary? {
        guard case let .rotary(global) = positions else { return nil }
        return layerKinds[layer] == .local ? localRotary ?? global : global
    }

    /// The keys `layer` attends to: the last `slidingWindow` positions for a local layer.
    public func window(layer: Int) -> Int {
        layerKinds[layer] == .local ? slidingWindow ?? Int.max : Int.max
    }

    /// Whether the blocks have a norm on the MLP's input of their own (ln2).
    public var hasMLPInputNorm: Bool { normPlacement == .post || (normPlacement.normsInput && !sharedParallelNorm) }
    /// Whether the blocks have a norm on the attention's input or after its add (ln1).
    public var hasAttentionInputNorm: Bool { normPlacement != .output }

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
        if case let .rotary(rotary) = positions, let p = rotary.validationProblem(headDimension: headDimension) { return p }
        if let local = localRotary {
            guard case .rotary = positions else { return "a local rotary without rotary positions" }
            if let p = local.validationProblem(headDimension: headDimension) { return "local layers: " + p }
        }
        if parallelResidual && normPlacement != .pre { return "parallel residual blocks with \(normPlacement.rawValue)-norm" }
        if parallelResidual && !skipConnections { return "parallel residual blocks without skip connections" }
        if sharedParallelNorm && !parallelResidual { return "a shared norm needs parallel residual blocks" }
        if !skipConnections && normPlacement != .pre && normPlacement != .post {
            return "a plain stack (no skip connections) with \(normPlacement.rawValue)-norm"
        }
        if let w = slidingWindow, w <= 0 { return "sliding window \(w) must be positive" }
        if layerKinds.count != layerCount {
            return "the layer pattern lists \(layerKinds.count) layers for \(layerCount)"
        }
        if layerKinds.contains(.local) && slidingWindow == nil { return "local layers without a sliding window" }
        for (name, cap) in [("attention", attentionSoftCap), ("final logit", finalSoftCap)] {
            if let c = cap, !(c > 0) || !c.isFinite { return "\(name) soft-cap \(c) must be positive and finite" }
        }
        if !(embeddingScale > 0) || !embeddingScale.isFinite { return "embedding scale \(embeddingScale) must be positive and finite" }
        if !normWeightOffset.isFinite { return "norm weight offset \(normWeightOffset) must be finite" }
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
        let blockNorms = (hasAttentionInputNorm ? 1 : 0) + (hasMLPInputNorm ? 1 : 0) + (normPlacement.normsWrite ? 2 : 0)
        var qkNorm = 0
        switch queryKeyNorm {
        case .perHead: qkNorm = 2 * headDimension
        case .whole: qkNorm = (headCount + keyValueHeadCount) * headDimension
        case nil: break
        }
        let block = add(mul(blockNorms, normParams), qkNorm, mul(d, qkvWidth), qkvBias ? qkvWidth : 0, mul(headCount * headDimension, d),
                        outputBias ? d : 0, mul(d, up), mlpBias ? up : 0, mul(f, d), mlpBias ? d : 0)
        n = add(n, mul(layerCount, block))
        if hasFinalNorm { n = add(n, normParams) }
        if !tiedEmbeddings { n = add(n, mul(vocabularySize, e)) }
        if unembeddingBias { n = add(n, vocabularySize) }
        return n
    }
}
