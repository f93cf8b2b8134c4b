/// One named parameter tensor: a slice of the flat parameter buffer.
public struct ParameterSlot: Sendable, Equatable {
    /// StreamLab's own name, e.g. `blocks.3.attn.qkv.weight` (checkpoint names
    /// are the families' business, in `Loading/Families`).
    public let name: String
    /// Row-major shape; linear weights are `[in, out]`.
    public let shape: [Int]
    /// First element in the flat buffer.
    public let offset: Int
    /// The block it belongs to; nil for embeddings and the final read.
    public let layer: Int?
    /// AdamW weight decay applies (matrices and embeddings; not biases or norm weights).
    public let decays: Bool

    public var count: Int { shape.reduce(1, *) }
}

/// Offsets of one block's parameters in the flat buffer.
struct BlockSlots: Sendable {
    var ln1Weight: Int?, ln1Bias: Int?
    var qkvWeight = 0, qkvBias: Int?        // [D, (H + 2Hkv) Dh], [(H + 2Hkv) Dh]
    var qNormWeight: Int?, kNormWeight: Int?  // [Dh] each, or [H Dh], [Hkv Dh]
    var outWeight = 0, outBias: Int?        // [H Dh, D], [D]
    var ln1PostWeight: Int?, ln1PostBias: Int?
    var ln2Weight: Int?, ln2Bias: Int?
    var upWeight = 0, upBias: Int?          // [D, F] or gate|up [D, 2F]
    var downWeight = 0, downBias: Int?      // [F, D], [D]
    var ln2PostWeight: Int?, ln2PostBias: Int?
}

/// Every parameter of a model laid out in one flat float buffer, so that the
/// backward pass, the optimizer, gradient clipping and checkpoints see a single
/// array (as llm.c does). The order is the forward order: embeddings, blocks,
/// final read. Linear weights are `[in, out]`.
public struct ParameterLayout: Sendable {
    public private(set) var slots: [ParameterSlot] = []
    /// Total number of floats.
    public private(set) var count = 0

    let tokenEmbedding: Int                 // [V, E]
    let positionEmbedding: Int?             // [P + offset, D]
    let projectIn: Int?                     // [E, D] (OPT-350m)
    let blocks: [BlockSlots]
    let finalNormWeight: Int?, finalNormBias: Int?
    let projectOut: Int?                    // [D, E]
    let unembedWeight: Int?                 // [E, V] when untied
    let unembedBias: Int?                   // [V]

    init(_ a: Architecture) {
        var slots: [ParameterSlot] = []
        var count = 0
        func add(_ name: String, _ shape: [Int], layer: Int? = nil, decays: Bool = false) -> Int {
            let slot = ParameterSlot(name: name, shape: shape, offset: count, layer: layer, decays: decays)
            slots.append(slot)
            count += slot.count
            return slot.offset
        }
        let d = a.width, v = a.vocabularySize, f = a.mlpWidth, e = a.embeddingWidth
        tokenEmbedding = add("embed.weight", [v, e], decays: true)
        if case let .learned(offset) = a.positions {
            positionEmbedding = add("pos_embed.weight", [a.maxPositions + offset, d], decays: true)
        } else {
            positionEmbedding = nil
        }
        projectIn = a.hasProjection ? add("project_in.weight", [e, d], decays: true) : nil
        var blocks: [BlockSlots] = []
        for i in 0..<a.layerCount {
            let p = "blocks.\(i)."
            var b = BlockSlots()
            func norm(_ name: String) -> (Int, Int?) {
                (add(p + name + ".weight", [d], layer: i), a.normBias ? add(p + name + ".bias", [d], layer: i) : nil)
            }
            if a.hasAttentionInputNorm { (b.ln1Weight, b.ln1Bias) = norm("ln1") }
            b.qkvWeight = add(p + "attn.qkv.weight", [d, a.qkvWidth], layer: i, decays: true)
            if a.qkvBias { b.qkvBias = add(p + "attn.qkv.bias", [a.qkvWidth], layer: i) }
            switch a.queryKeyNorm {
            case .perHead:
                b.qNormWeight = add(p + "attn.q_norm.weight", [a.headDimension], layer: i)
                b.kNormWeight = add(p + "attn.k_norm.weight", [a.headDimension], layer: i)
            case .whole:
                b.qNormWeight = add(p + "attn.q_norm.weight", [a.headCount * a.headDimension], layer: i)
                b.kNormWeight = add(p + "attn.k_norm.weight", [a.keyValueHeadCount * a.headDimension], layer: i)
            case nil: break
            }
            b.outWeight = add(p + "attn.out.weight", [a.headCount * a.headDimension, d], layer: i, decays: true)
            if a.outputBias { b.outBias = add(p + "attn.out.bias", [d], layer: i) }
            if a.normPlacement.normsWrite { (b.ln1PostWeight, b.ln1PostBias) = norm("ln1_post") }
            if a.hasMLPInputNorm { (b.ln2Weight, b.ln2Bias) = norm("ln2") }
            let up = a.gatedMLP ? 2 * f : f
            b.upWeight = add(p + "mlp.up.weight", [d, up], layer: i, decays: true)
            if a.mlpBias { b.upBias = add(p + "mlp.up.bias", [up], layer: i) }
            b.downWeight = add(p + "mlp.down.weight", [f, d], layer: i, decays: true)
            if a.mlpBias { b.downBias = add(p + "mlp.down.bias", [d], layer: i) }
            if a.normPlacement.normsWrite { (b.ln2PostWeight, b.ln2PostBias) = norm("ln2_post") }
            blocks.append(b)
        }
        self.blocks = blocks
        if a.hasFinalNorm {
            finalNormWeight = add("ln_final.weight", [d])
            finalNormBias = a.normBias ? add("ln_final.bias", [d]) : nil
        } else {
            finalNormWeight = nil
            finalNormBias = nil
        }
        projectOut = a.hasProjection ? add("project_out.weight", [d, e], decays: true) : nil
        unembedWeight = a.tiedEmbeddings ? nil : add("unembed.weight", [e, v], decays: true)
        unembedBias = a.unembeddingBias ? add("unembed.bias", [v]) : nil
        self.slots = slots
        self.count = count
    }

    /// The slot named `name`, if any.
    public func slot(_ name: String) -> ParameterSlot? { slots.first { $0.name == name } }
}
