/// Phi-1, Phi-1.5 and Phi-2 (`phi`): parallel blocks with one LayerNorm read
/// by both sublayers, `x + attn(ln(x)) + mlp(ln(x))`; rotate-half rotary on
/// `partial_rotary_factor` of each head (0.4 for Phi-2); biases on q, k, v,
/// `dense`, `fc1`, `fc2`; a final LayerNorm and an untied `lm_head` with a
/// bias. The optional `qk_layernorm` is refused (no released model sets it).
enum PhiMapping: FamilyMapping {
    static let modelTypes = ["phi"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("hidden_size")
        let heads = try c.size("num_attention_heads")
        let headDim = try c.headDimension(width: d, heads: heads, headsKey: "num_attention_heads")
        if try c.bool("qk_layernorm", default: false) {
            throw LoadError.unsupportedFeature(file: c.file, feature: c.qualified("qk_layernorm") + " = true")
        }
        let rotary = try c.rotary(headDimension: headDim, defaultFraction: 0.5)
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: try c.size("num_hidden_layers"), headCount: heads,
            keyValueHeadCount: try c.size("num_key_value_heads", default: heads),
            mlpWidth: try c.size("intermediate_size"), maxPositions: try c.maxPositions(for: rotary),
            normPlacement: .pre, normKind: .layerNorm, normEpsilon: Float(try c.double("layer_norm_eps", default: 1e-5)),
            activation: try c.activation("hidden_act", default: "gelu_new"),
            positions: .rotary(rotary),
            parallelResidual: true, sharedParallelNorm: true,
            qkvBias: true, outputBias: true, mlpBias: true, normBias: true, unembeddingBias: true,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: false))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = "model."
        let d = a.width, f = a.mlpWidth, dh = a.headDimension
        let qWidth = a.headCount * dh
        s.ignore { $0.hasSuffix("rotary_emb.inv_freq") }
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "layers.\(i)."
            return BlockWeights(
                ln1: try s.norm(p + "input_layernorm.weight", bias: p + "input_layernorm.bias", width: d),
                qkv: try s.separateQKV(p + "self_attn.", a, bias: true),
                output: try s.linear(p + "self_attn.dense.weight", bias: p + "self_attn.dense.bias", layout: .outIn,
                                     inputs: qWidth, outputs: d),
                ln2: nil,
                up: try s.linear(p + "mlp.fc1.weight", bias: p + "mlp.fc1.bias", layout: .outIn, inputs: d, outputs: f),
                down: try s.linear(p + "mlp.fc2.weight", bias: p + "mlp.fc2.bias", layout: .outIn, inputs: f, outputs: d))
        }
        return try s.llamaStyle(a, blocks: blocks, finalNorm: "final_layernorm")
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize, dh = a.headDimension
        let q = a.headCount * dh
        let m = "model."
        p.table(m + "embed_tokens.weight", l.tokenEmbedding, rows: v, width: d)
        for (i, b) in l.blocks.enumerated() {
            let h = m + "layers.\(i)."
            p.vector(h + "input_layernorm.weight", b.ln1Weight, d)
            p.vector(h + "input_layernorm.bias", b.ln1Bias, d)
            p.separateQKV(h + "self_attn.", b, a)
            p.matrix(h + "self_attn.dense.weight", b.outWeight, inputs: q, outputs: d, layout: .outIn)
            p.vector(h + "self_attn.dense.bias", b.outBias, d)
            p.matrix(h + "mlp.fc1.weight", b.upWeight, inputs: d, outputs: f, layout: .outIn)
            p.vector(h + "mlp.fc1.bias", b.upBias, f)
            p.matrix(h + "mlp.fc2.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
            p.vector(h + "mlp.fc2.bias", b.downBias, d)
        }
        p.vector(m + "final_layernorm.weight", l.finalNormWeight, d)
        p.vector(m + "final_layernorm.bias", l.finalNormBias, d)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        p.vector("lm_head.bias", l.unembedBias, v)
        return p.tensors
    }
}
