/// Llama, Mistral, Qwen2 and Qwen3 (`llama`, `mistral`, `qwen2`, `qwen3`):
/// pre-norm RMSNorm, rotate-half rotary on the full head (any rope scaling),
/// GQA, SwiGLU MLP, separate q/k/v/o projections (`nn.Linear`, `[out, in]`).
/// Differences: Llama's `attention_bias` puts biases on q, k, v and o, Qwen2
/// has q/k/v biases and none on o, Qwen3 has per-head RMSNorms on q and k
/// (`q_norm`, `k_norm`); Mistral's sliding window covers every layer, the
/// Qwens' only the layers `layer_types` (or `use_sliding_window` from
/// `max_window_layers` on) marks; `head_dim` is optional.
enum LlamaMapping: FamilyMapping {
    static let modelTypes = ["llama", "mistral", "qwen2", "qwen3"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("hidden_size")
        let heads = try c.size("num_attention_heads")
        let kvHeads = try c.size("num_key_value_heads", default: heads)
        let headDim = try c.headDimension(width: d, heads: heads)
        let rotary = try c.rotary(headDimension: headDim)
        if rotary.dimensions != headDim {
            throw LoadError.unsupportedFeature(file: c.file, feature: "partial rotary (\(rotary.dimensions) of \(headDim) dims) for model_type \(modelType)")
        }
        let qkvBias: Bool, outputBias: Bool
        switch modelType {
        case "qwen2":
            qkvBias = true
            outputBias = false
        default:
            qkvBias = try c.bool("attention_bias", default: false)
            outputBias = qkvBias
        }
        let layers = try c.size("num_hidden_layers")
        var window: Int?, kinds: [Architecture.AttentionKind]
        switch modelType {
        case "qwen2", "qwen3":
            // As Qwen2Config / Qwen3Config: no window at all unless use_sliding_window; then
            // the layers from max_window_layers (default 28) on, or as layer_types says.
            if try c.bool("use_sliding_window", default: false) && !c.isNull("sliding_window") {
                let from = try c.int("max_window_layers", default: 28)
                kinds = try c.layerKinds(count: layers) { $0 >= from ? .local : .global }
                if kinds.contains(.local) { window = try c.size("sliding_window", default: 4096) }
            } else {
                kinds = Array(repeating: .global, count: layers)
            }
        case "mistral":
            // MistralConfig's window is 4096 when the key is absent, none when it is null.
            window = c.isNull("sliding_window") ? nil : try c.size("sliding_window", default: 4096)
            kinds = Array(repeating: window == nil ? .global : .local, count: layers)
        default:
            kinds = Array(repeating: .global, count: layers)
        }
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: layers, headCount: heads, keyValueHeadCount: kvHeads,
            headDimension: headDim, mlpWidth: try c.size("intermediate_size"),
            maxPositions: try c.maxPositions(for: rotary),
            normPlacement: .pre, normKind: .rmsNorm,
            normEpsilon: Float(try c.double("rms_norm_eps", default: 1e-6)),
            activation: try c.activation("hidden_act", default: "silu"), gatedMLP: true,
            positions: .rotary(rotary), slidingWindow: window, layerKinds: kinds,
            queryKeyNorm: modelType == "qwen3" ? .perHead : nil, qkvBias: qkvBias, outputBias: outputBias,
            mlpBias: try c.bool("mlp_bias", default: false), normBias: false,
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
                ln1: try s.norm(p + "input_layernorm.weight", bias: nil, width: d),
                qkv: try s.separateQKV(p + "self_attn.", a, bias: a.qkvBias),
                queryNorm: a.queryKeyNorm == nil ? nil : try s.norm(p + "self_attn.q_norm.weight", bias: nil, width: dh),
                keyNorm: a.queryKeyNorm == nil ? nil : try s.norm(p + "self_attn.k_norm.weight", bias: nil, width: dh),
                output: try s.linear(p + "self_attn.o_proj.weight", bias: a.outputBias ? p + "self_attn.o_proj.bias" : nil,
                                     layout: .outIn, inputs: qWidth, outputs: d),
                ln2: try s.norm(p + "post_attention_layernorm.weight", bias: nil, width: d),
                up: try s.separateGateUp(p + "mlp.", a, bias: a.mlpBias),
                down: try s.linear(p + "mlp.down_proj.weight", bias: a.mlpBias ? p + "mlp.down_proj.bias" : nil,
                                   layout: .outIn, inputs: f, outputs: d))
        }
        return try s.llamaStyle(a, blocks: blocks)
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
            p.separateQKV(h + "self_attn.", b, a)
            p.vector(h + "self_attn.q_norm.weight", b.qNormWeight, dh)
            p.vector(h + "self_attn.k_norm.weight", b.kNormWeight, dh)
            p.matrix(h + "self_attn.o_proj.weight", b.outWeight, inputs: q, outputs: d, layout: .outIn)
            p.vector(h + "self_attn.o_proj.bias", b.outBias, d)
            p.vector(h + "post_attention_layernorm.weight", b.ln2Weight, d)
            p.separateGateUp(h + "mlp.", b, a)
            p.matrix(h + "mlp.down_proj.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
            p.vector(h + "mlp.down_proj.bias", b.downBias, d)
        }
        p.vector(m + "norm.weight", l.finalNormWeight, d)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        return p.tensors
    }
}
