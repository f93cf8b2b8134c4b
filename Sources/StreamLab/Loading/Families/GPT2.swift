/// GPT-2 (`gpt2`): pre-norm LayerNorm, learned positions, fused `c_attn`,
/// Conv1D weights stored `[in, out]`, tied unembedding. Tensor names come with
/// the `transformer.` prefix (GPT2LMHeadModel) or without it (GPT2Model, the
/// hub's `gpt2` repository).
enum GPT2Mapping: FamilyMapping {
    static let modelTypes = ["gpt2"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("n_embd")
        let heads = try c.size("n_head")
        _ = try c.headDimension(width: d, heads: heads, headsKey: "n_head")
        if try c.bool("scale_attn_by_inverse_layer_idx", default: false) {
            throw LoadError.unsupportedFeature(file: c.file, feature: "scale_attn_by_inverse_layer_idx")
        }
        if try c.bool("add_cross_attention", default: false) {
            throw LoadError.unsupportedFeature(file: c.file, feature: "add_cross_attention (encoder-decoder GPT-2)")
        }
        let scaled = try c.bool("scale_attn_weights", default: true)
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: try c.size("n_layer"), headCount: heads,
            mlpWidth: try c.size("n_inner", default: 4 * d), maxPositions: try c.size("n_positions"),
            normPlacement: .pre, normKind: .layerNorm,
            normEpsilon: Float(try c.double("layer_norm_epsilon", default: 1e-5)),
            activation: try c.activation("activation_function", default: "gelu_new"),
            positions: .learned(offset: 0), attentionScale: scaled ? nil : 1,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: true),
            skipConnections: try c.bool("streamlab_skip_connections", default: true))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = s.checkpoint.contains("transformer.wte.weight") ? "transformer." : ""
        let d = a.width, f = a.mlpWidth
        s.ignore { $0.hasSuffix(".attn.bias") || $0.hasSuffix(".attn.masked_bias") }
        let blocks = try (0..<a.layerCount).map { try conv1DBlock(s, layer: $0, width: d, mlpWidth: f) }
        let embedding = try s.table("wte.weight", rows: a.vocabularySize, width: d)
        return Weights(
            tokenEmbedding: embedding, positionEmbedding: try s.table("wpe.weight", rows: a.maxPositions, width: d),
            projectIn: nil, blocks: blocks,
            finalNorm: try s.norm("ln_f.weight", bias: "ln_f.bias", width: d),
            projectOut: nil, unembedding: try s.unembedding("lm_head.weight", embedding: embedding, architecture: a))
    }

    static func tensors(_ a: Architecture, _ p: ParameterValues) -> [NamedTensor] {
        conv1DTensors(a, p, embedding: "wte.weight", positions: "wpe.weight")
    }

    static func config(_ a: Architecture) throws -> JSONOutput {
        .object([
            ("architectures", .strings(["GPT2LMHeadModel"])), ("model_type", .string("gpt2")),
            ("vocab_size", .int(a.vocabularySize)), ("n_positions", .int(a.maxPositions)), ("n_embd", .int(a.width)),
            ("n_layer", .int(a.layerCount)), ("n_head", .int(a.headCount)), ("n_inner", .int(a.mlpWidth)),
            ("activation_function", .string(a.activation == .geluTanh ? "gelu_new" : a.activation.rawValue)),
            ("layer_norm_epsilon", .double(Double(a.normEpsilon))), ("scale_attn_weights", .bool(true)),
        ] + conv1DConfigTail(a))
    }
}

/// The checkpoint tensors of a GPT-2 or GPT-1 model (`transformer.` prefix,
/// Conv1D weights `[in, out]`, fused `c_attn`).
func conv1DTensors(_ a: Architecture, _ values: ParameterValues, embedding: String, positions: String) -> [NamedTensor] {
    var p = values
    let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize
    let t = "transformer."
    p.table(t + embedding, l.tokenEmbedding, rows: v, width: d)
    p.table(t + positions, l.positionEmbedding, rows: a.maxPositions, width: d)
    for (i, b) in l.blocks.enumerated() {
        let h = t + "h.\(i)."
        p.vector(h + "ln_1.weight", b.ln1Weight, d)
        p.vector(h + "ln_1.bias", b.ln1Bias, d)
        p.matrix(h + "attn.c_attn.weight", b.qkvWeight, inputs: d, outputs: a.qkvWidth, layout: .inOut)
        p.vector(h + "attn.c_attn.bias", b.qkvBias, a.qkvWidth)
        p.matrix(h + "attn.c_proj.weight", b.outWeight, inputs: d, outputs: d, layout: .inOut)
        p.vector(h + "attn.c_proj.bias", b.outBias, d)
        p.vector(h + "ln_2.weight", b.ln2Weight, d)
        p.vector(h + "ln_2.bias", b.ln2Bias, d)
        p.matrix(h + "mlp.c_fc.weight", b.upWeight, inputs: d, outputs: f, layout: .inOut)
        p.vector(h + "mlp.c_fc.bias", b.upBias, f)
        p.matrix(h + "mlp.c_proj.weight", b.downWeight, inputs: f, outputs: d, layout: .inOut)
        p.vector(h + "mlp.c_proj.bias", b.downBias, d)
    }
    p.vector(t + "ln_f.weight", l.finalNormWeight, d)
    p.vector(t + "ln_f.bias", l.finalNormBias, d)
    p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
    return p.tensors
}

/// The config keys GPT-2 and GPT-1 share: no dropout, tied embeddings, float32,
/// and StreamLab's own plain-stack key (transformers ignores it).
func conv1DConfigTail(_ a: Architecture) -> [(String, JSONOutput)] {
    var fields: [(String, JSONOutput)] = [
        ("resid_pdrop", .int(0)), ("embd_pdrop", .int(0)), ("attn_pdrop", .int(0)),
        ("tie_word_embeddings", .bool(a.tiedEmbeddings)), ("bos_token_id", .null), ("eos_token_id", .null),
        ("dtype", .string("float32")),
    ]
    if !a.skipConnections { fields.append(("streamlab_skip_connections", .bool(false))) }
    return fields
}

/// One GPT-2 / GPT-1 block `h.{i}.`: `ln_1`, fused `attn.c_attn`, `attn.c_proj`,
/// `ln_2`, `mlp.c_fc`, `mlp.c_proj`, Conv1D weights stored `[in, out]`. For
/// GPT-1, `ln_1` / `ln_2` follow the adds (post-norm) but the names are the same.
func conv1DBlock(_ s: WeightSource, layer i: Int, width d: Int, mlpWidth f: Int) throws -> BlockWeights {
    let p = "h.\(i)."
    return BlockWeights(
        ln1: try s.norm(p + "ln_1.weight", bias: p + "ln_1.bias", width: d),
        qkv: try s.linear(p + "attn.c_attn.weight", bias: p + "attn.c_attn.bias", layout: .inOut, inputs: d, outputs: 3 * d),
        output: try s.linear(p + "attn.c_proj.weight", bias: p + "attn.c_proj.bias", layout: .inOut, inputs: d, outputs: d),
        ln2: try s.norm(p + "ln_2.weight", bias: p + "ln_2.bias", width: d),
        up: try s.linear(p + "mlp.c_fc.weight", bias: p + "mlp.c_fc.bias", layout: .inOut, inputs: d, outputs: f),
        down: try s.linear(p + "mlp.c_proj.weight", bias: p + "mlp.c_proj.bias", layout: .inOut, inputs: f, outputs: d))
}

/// GPT-1 (`openai-gpt`): post-norm (`ln_1` after the attention add, `ln_2`
/// after the MLP add), no final norm, learned positions, Conv1D weights, tied
/// unembedding; `afn: "gelu"` is the tanh form.
enum OpenAIGPTMapping: FamilyMapping {
    static let modelTypes = ["openai-gpt"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("n_embd")
        _ = try c.headDimension(width: d, heads: try c.size("n_head"), headsKey: "n_head")
        let afn = try c.string("afn", default: "gelu")
        let activation: Activation
        switch afn {
        case "gelu", "gelu_new": activation = .geluTanh
        case "relu": activation = .relu
        case "silu", "swish": activation = .silu
        default:
            throw LoadError.badConfigValue(file: c.file, key: "afn", value: "\"\(afn)\"", expected: "one of gelu, relu, silu, swish")
        }
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: try c.size("n_layer"), headCount: try c.size("n_head"),
            mlpWidth: 4 * d, maxPositions: try c.size("n_positions"),
            normPlacement: .post, normKind: .layerNorm,
            normEpsilon: Float(try c.double("layer_norm_epsilon", default: 1e-5)),
            activation: activation, positions: .learned(offset: 0), hasFinalNorm: false,
            tiedEmbeddings: true, skipConnections: try c.bool("streamlab_skip_connections", default: true))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = s.checkpoint.contains("transformer.tokens_embed.weight") ? "transformer." : ""
        let d = a.width, f = a.mlpWidth
        s.ignore { $0.hasSuffix(".attn.bias") }
        let blocks = try (0..<a.layerCount).map { try conv1DBlock(s, layer: $0, width: d, mlpWidth: f) }
        let embedding = try s.table("tokens_embed.weight", rows: a.vocabularySize, width: d)
        return Weights(
            tokenEmbedding: embedding, positionEmbedding: try s.table("positions_embed.weight", rows: a.maxPositions, width: d),
            projectIn: nil, blocks: blocks, finalNorm: nil, projectOut: nil,
            unembedding: try s.unembedding("lm_head.weight", embedding: embedding, architecture: a))
    }

    static func tensors(_ a: Architecture, _ p: ParameterValues) -> [NamedTensor] {
        conv1DTensors(a, p, embedding: "tokens_embed.weight", positions: "positions_embed.weight")
    }

    static func config(_ a: Architecture) throws -> JSONOutput {
        let afn: String
        switch a.activation {
        case .geluTanh: afn = "gelu"
        case .relu: afn = "relu"
        case .silu: afn = "silu"
        case .geluExact:
            throw LoadError.unsupportedFeature(file: "config.json", feature: "exact GELU in an openai-gpt config")
        }
        guard a.mlpWidth == 4 * a.width else {
            throw LoadError.unsupportedFeature(file: "config.json", feature: "an openai-gpt MLP width other than 4 x n_embd")
        }
        return .object([
            ("architectures", .strings(["OpenAIGPTLMHeadModel"])), ("model_type", .string("openai-gpt")),
            ("vocab_size", .int(a.vocabularySize)), ("n_positions", .int(a.maxPositions)), ("n_embd", .int(a.width)),
            ("n_layer", .int(a.layerCount)), ("n_head", .int(a.headCount)), ("afn", .string(afn)),
            ("layer_norm_epsilon", .double(Double(a.normEpsilon))),
        ] + conv1DConfigTail(a))
    }
}
