/// OLMo 2 (`olmo2`): the output norm placement `x + norm(f(x))` (each
/// sublayer's write passes `post_attention_layernorm` /
/// `post_feedforward_layernorm`; nothing normalises the sublayers' inputs),
/// RMSNorms on queries and keys over the whole projection (`q_norm` `[H Dh]`,
/// `k_norm` `[Hkv Dh]`), rotate-half rotary, SwiGLU MLP, untied by default.
enum OLMo2Mapping: FamilyMapping {
    static let modelTypes = ["olmo2"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("hidden_size")
        let heads = try c.size("num_attention_heads")
        let headDim = try c.headDimension(width: d, heads: heads)
        let bias = try c.bool("attention_bias", default: false)
        let rotary = try c.rotary(headDimension: headDim)
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: try c.size("num_hidden_layers"), headCount: heads,
            keyValueHeadCount: try c.size("num_key_value_heads", default: heads), headDimension: headDim,
            mlpWidth: try c.size("intermediate_size"), maxPositions: try c.maxPositions(for: rotary),
            normPlacement: .output, normKind: .rmsNorm, normEpsilon: Float(try c.double("rms_norm_eps", default: 1e-5)),
            activation: try c.activation("hidden_act", default: "silu"), gatedMLP: true,
            positions: .rotary(rotary), queryKeyNorm: .whole,
            qkvBias: bias, outputBias: bias, mlpBias: false, normBias: false,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: false))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = "model."
        let d = a.width, f = a.mlpWidth, dh = a.headDimension
        let qWidth = a.headCount * dh, kvWidth = a.keyValueHeadCount * dh
        s.ignore { $0.hasSuffix("rotary_emb.inv_freq") }
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "layers.\(i)."
            return BlockWeights(
                ln1: nil,
                qkv: try s.separateQKV(p + "self_attn.", a, bias: a.qkvBias),
                queryNorm: try s.norm(p + "self_attn.q_norm.weight", bias: nil, width: qWidth),
                keyNorm: try s.norm(p + "self_attn.k_norm.weight", bias: nil, width: kvWidth),
                output: try s.linear(p + "self_attn.o_proj.weight", bias: a.outputBias ? p + "self_attn.o_proj.bias" : nil,
                                     layout: .outIn, inputs: qWidth, outputs: d),
                ln1Post: try s.norm(p + "post_attention_layernorm.weight", bias: nil, width: d),
                ln2: nil,
                up: try s.separateGateUp(p + "mlp.", a, bias: false),
                down: try s.linear(p + "mlp.down_proj.weight", bias: nil, layout: .outIn, inputs: f, outputs: d),
                ln2Post: try s.norm(p + "post_feedforward_layernorm.weight", bias: nil, width: d))
        }
        return try s.llamaStyle(a, blocks: blocks)
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize, dh = a.headDimension
        let q = a.headCount * dh, kv = a.keyValueHeadCount * dh
        let m = "model."
        p.table(m + "embed_tokens.weight", l.tokenEmbedding, rows: v, width: d)
        for (i, b) in l.blocks.enumerated() {
            let h = m + "layers.\(i)."
            p.separateQKV(h + "self_attn.", b, a)
            p.vector(h + "self_attn.q_norm.weight", b.qNormWeight, q)
            p.vector(h + "self_attn.k_norm.weight", b.kNormWeight, kv)
            p.matrix(h + "self_attn.o_proj.weight", b.outWeight, inputs: q, outputs: d, layout: .outIn)
            p.vector(h + "self_attn.o_proj.bias", b.outBias, d)
            p.vector(h + "post_attention_layernorm.weight", b.ln1PostWeight, d)
            p.separateGateUp(h + "mlp.", b, a)
            p.matrix(h + "mlp.down_proj.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
            p.vector(h + "post_feedforward_layernorm.weight", b.ln2PostWeight, d)
        }
        p.vector(m + "norm.weight", l.finalNormWeight, d)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        return p.tensors
    }

    static func config(_ a: Architecture) throws -> JSONOutput {
        .object([("architectures", .strings(["Olmo2ForCausalLM"])), ("model_type", .string("olmo2"))]
                + (try rotaryConfigFields(a, activationKey: "hidden_act")))
    }
}
