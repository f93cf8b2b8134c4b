/// Phi-3 and Phi-4-mini (`phi3`): pre-norm RMSNorm, fused `qkv_proj`
/// (`[(H + 2 Hkv) Dh, D]`, q | k | v) and `gate_up_proj` (`[2F, D]`, gate |
/// up), no biases, rotate-half rotary on `partial_rotary_factor` of each head
/// (Phi-4-mini: 0.75) with any rope scaling (`longrope` with short and long
/// factors and the top-level `original_max_position_embeddings`), and a
/// sliding window on every layer when `sliding_window` is set.
enum Phi3Mapping: FamilyMapping {
    static let modelTypes = ["phi3"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("hidden_size")
        let heads = try c.size("num_attention_heads")
        let headDim = try c.headDimension(width: d, heads: heads)
        let layers = try c.size("num_hidden_layers")
        let window = c.value("sliding_window") != nil ? try c.size("sliding_window") : nil
        // Phi3Config reads the legacy rope types "su" and "yarn" as longrope.
        let rotary = try c.rotary(headDimension: headDim, typeAliases: ["su": "longrope", "yarn": "longrope"])
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d, layerCount: layers, headCount: heads,
            keyValueHeadCount: try c.size("num_key_value_heads", default: heads), headDimension: headDim,
            mlpWidth: try c.size("intermediate_size"), maxPositions: try c.maxPositions(for: rotary),
            normPlacement: .pre, normKind: .rmsNorm, normEpsilon: Float(try c.double("rms_norm_eps", default: 1e-5)),
            activation: try c.activation("hidden_act", default: "silu"), gatedMLP: true,
            positions: .rotary(rotary), slidingWindow: window,
            qkvBias: false, outputBias: false, mlpBias: false, normBias: false,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: false))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = "model."
        let d = a.width, f = a.mlpWidth
        s.ignore { $0.hasSuffix("rotary_emb.inv_freq") }
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "layers.\(i)."
            return BlockWeights(
                ln1: try s.norm(p + "input_layernorm.weight", bias: nil, width: d),
                qkv: try s.linear(p + "self_attn.qkv_proj.weight", bias: nil, layout: .outIn, inputs: d, outputs: a.qkvWidth),
                output: try s.linear(p + "self_attn.o_proj.weight", bias: nil, layout: .outIn,
                                     inputs: a.headCount * a.headDimension, outputs: d),
                ln2: try s.norm(p + "post_attention_layernorm.weight", bias: nil, width: d),
                up: try s.linear(p + "mlp.gate_up_proj.weight", bias: nil, layout: .outIn, inputs: d, outputs: 2 * f),
                down: try s.linear(p + "mlp.down_proj.weight", bias: nil, layout: .outIn, inputs: f, outputs: d))
        }
        return try s.llamaStyle(a, blocks: blocks)
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize
        let m = "model."
        p.table(m + "embed_tokens.weight", l.tokenEmbedding, rows: v, width: d)
        for (i, b) in l.blocks.enumerated() {
            let h = m + "layers.\(i)."
            p.vector(h + "input_layernorm.weight", b.ln1Weight, d)
            p.matrix(h + "self_attn.qkv_proj.weight", b.qkvWeight, inputs: d, outputs: a.qkvWidth, layout: .outIn)
            p.matrix(h + "self_attn.o_proj.weight", b.outWeight, inputs: a.headCount * a.headDimension, outputs: d, layout: .outIn)
            p.vector(h + "post_attention_layernorm.weight", b.ln2Weight, d)
            p.matrix(h + "mlp.gate_up_proj.weight", b.upWeight, inputs: d, outputs: 2 * f, layout: .outIn)
            p.matrix(h + "mlp.down_proj.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
        }
        p.vector(m + "norm.weight", l.finalNormWeight, d)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        return p.tensors
    }
}
