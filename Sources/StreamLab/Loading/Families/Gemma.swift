/// Gemma, Gemma 2 and Gemma 3 (`gemma`, `gemma2`, `gemma3_text`, and the
/// text tower of multimodal `gemma3` checkpoints, whose config nests it in
/// `text_config` and whose tensors sit under `language_model.model.`, or
/// `model.language_model.` as transformers 5 saves them; the vision tower is
/// ignored). Every norm is RMSNorm scaled by (1 + w); the embedding is
/// multiplied by sqrt(D); GeGLU MLP; `head_dim` independent of D / H; tied.
/// Gemma 2 and 3 add sandwich norms (`post_attention_layernorm`,
/// `pre_feedforward_layernorm`, `post_feedforward_layernorm`), scores scaled
/// by `query_pre_attn_scalar`^-1/2, sliding-window layers (`layer_types`, or
/// alternating for Gemma 2, `sliding_window_pattern` for Gemma 3); Gemma 2
/// soft-caps scores and logits (50 and 30 when the keys are absent, none
/// when null); Gemma 3 has per-head q/k norms and its own rotary for local
/// layers (`rope_local_base_freq`, or `rope_parameters.sliding_attention`).
enum GemmaMapping: FamilyMapping {
    static let modelTypes = ["gemma", "gemma2", "gemma3_text", "gemma3"]

    static func architecture(_ outer: ModelConfig, modelType: String) throws -> Architecture {
        var c = outer
        if modelType == "gemma3" {
            guard let text = try outer.nested("text_config") else {
                throw LoadError.missingConfigKey(file: outer.file, key: "text_config (the text tower of a multimodal gemma3 checkpoint)")
            }
            c = text
        }
        let generation = modelType == "gemma" ? 1 : modelType == "gemma2" ? 2 : 3
        // transformers' config defaults (GemmaConfig, Gemma2Config, Gemma3TextConfig): real
        // checkpoints, the multimodal Gemma 3 text_config above all, leave some keys out.
        let defaults: [String: Int] = generation == 1
            ? ["vocab_size": 256_000, "hidden_size": 3072, "intermediate_size": 24_576, "num_hidden_layers": 28,
               "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 8192]
            : ["vocab_size": generation == 2 ? 256_000 : 262_208, "hidden_size": 2304, "intermediate_size": 9216,
               "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
               "max_position_embeddings": generation == 2 ? 8192 : 131_072]
        func size(_ key: String) throws -> Int { try c.size(key, default: defaults[key]) }
        let d = try size("hidden_size")
        let heads = try size("num_attention_heads")
        let headDim = try c.size("head_dim", default: 256)
        let layers = try size("num_hidden_layers")

        // Gemma 1 reads `hidden_act` (transformers maps its legacy "gelu" to the
        // tanh approximation); Gemma 2 and 3 read `hidden_activation`.
        let activationKey = generation == 1 ? "hidden_act" : "hidden_activation"
        let legacyGELU = try generation == 1 && c.string(activationKey, default: "") == "gelu"
        let activation: Activation = legacyGELU ? .geluTanh : try c.activation(activationKey, default: "gelu_pytorch_tanh")
        if try c.bool("use_bidirectional_attention", default: false) {
            throw LoadError.unsupportedFeature(file: c.file, feature: "\(c.qualified("use_bidirectional_attention")) (not a causal model)")
        }

        var kinds = Array(repeating: Architecture.AttentionKind.global, count: layers)
        var window: Int?
        var scale: Float?
        var attentionCap: Float?, finalCap: Float?
        let rotary = try c.rotary(headDimension: headDim, defaultBase: generation == 3 ? 1_000_000 : 10_000,
                                  layerType: generation == 3 ? "full_attention" : nil)
        var localRotary: Rotary?
        if generation >= 2 {
            let scalar = try c.double("query_pre_attn_scalar", default: 256)
            guard scalar > 0 else {
                throw LoadError.badConfigValue(file: c.file, key: c.qualified("query_pre_attn_scalar"), value: Format.general(scalar),
                                               expected: "a positive number")
            }
            scale = Float(CMath.pow(scalar, -0.5))
            let pattern = generation == 2 ? 2 : try c.size("sliding_window_pattern", default: 6)
            kinds = try c.layerKinds(count: layers) { ($0 + 1) % pattern == 0 ? .global : .local }
            if kinds.contains(.local) && !c.isNull("sliding_window") { window = try c.size("sliding_window", default: 4096) }
            if window == nil { kinds = kinds.map { _ in .global } }
            func cap(_ key: String, default d: Double?) throws -> Float? {
                if c.isNull(key) { return nil }
                guard let x = c.value(key) != nil ? try c.double(key, default: 0) : d else { return nil }
                guard x > 0 else {
                    throw LoadError.badConfigValue(file: c.file, key: c.qualified(key), value: Format.general(x),
                                                   expected: "a positive soft-cap (or null for none)")
                }
                return Float(x)
            }
            attentionCap = try cap("attn_logit_softcapping", default: generation == 2 ? 50 : nil)
            finalCap = try cap("final_logit_softcapping", default: generation == 2 ? 30 : nil)
        }
        if generation == 3 {
            localRotary = try c.rotary(headDimension: headDim, defaultBase: 10_000, layerType: "sliding_attention")
        }
        let bias = try c.bool("attention_bias", default: false)
        return Architecture(
            modelType: modelType, vocabularySize: try size("vocab_size"), width: d, layerCount: layers,
            headCount: heads, keyValueHeadCount: try size("num_key_value_heads"), headDimension: headDim,
            mlpWidth: try size("intermediate_size"),
            maxPositions: try c.maxPositions(for: rotary, default: defaults["max_position_embeddings"]),
            normPlacement: generation == 1 ? .pre : .sandwich, normKind: .rmsNorm,
            normEpsilon: Float(try c.double("rms_norm_eps", default: 1e-6)), normWeightOffset: 1,
            activation: activation, gatedMLP: true, positions: .rotary(rotary),
            attentionScale: scale, slidingWindow: window, layerKinds: kinds, localRotary: localRotary,
            queryKeyNorm: generation == 3 ? .perHead : nil, attentionSoftCap: attentionCap, finalSoftCap: finalCap,
            embeddingScale: Float(Double(d).squareRoot()),
            qkvBias: bias, outputBias: bias, mlpBias: false, normBias: false,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: true))
    }

    /// Where the text model's tensors sit: `model.` (text checkpoints) or,
    /// for multimodal `gemma3`, one of the two spellings of the text tower.
    static func textPrefix(_ a: Architecture, in source: WeightSource) throws -> String {
        guard a.modelType == "gemma3" else { return "model." }
        let spellings = ["language_model.model.", "model.language_model."]
        guard let prefix = spellings.first(where: { source.has($0 + "embed_tokens.weight") }) else {
            throw LoadError.missingTensor(name: "language_model.model.embed_tokens.weight (the text tower of a multimodal gemma3 checkpoint)",
                                          directory: source.checkpoint.directory.path)
        }
        return prefix
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = try textPrefix(a, in: checkpoint)
        s.ignore { name in
            ["vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."]
                .contains { name.hasPrefix($0) } || name.hasSuffix("rotary_emb.inv_freq")
        }
        let d = a.width, f = a.mlpWidth, dh = a.headDimension
        let qWidth = a.headCount * dh
        let sandwich = a.normPlacement == .sandwich
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "layers.\(i)."
            func norm(_ name: String, width: Int = d) throws -> NormWeights { try s.norm(p + name + ".weight", bias: nil, width: width) }
            return BlockWeights(
                ln1: try norm("input_layernorm"),
                qkv: try s.separateQKV(p + "self_attn.", a, bias: a.qkvBias),
                queryNorm: a.queryKeyNorm == nil ? nil : try norm("self_attn.q_norm", width: dh),
                keyNorm: a.queryKeyNorm == nil ? nil : try norm("self_attn.k_norm", width: dh),
                output: try s.linear(p + "self_attn.o_proj.weight", bias: a.outputBias ? p + "self_attn.o_proj.bias" : nil,
                                     layout: .outIn, inputs: qWidth, outputs: d),
                ln1Post: sandwich ? try norm("post_attention_layernorm") : nil,
                ln2: try norm(sandwich ? "pre_feedforward_layernorm" : "post_attention_layernorm"),
                up: try s.separateGateUp(p + "mlp.", a, bias: false),
                down: try s.linear(p + "mlp.down_proj.weight", bias: nil, layout: .outIn, inputs: f, outputs: d),
                ln2Post: sandwich ? try norm("post_feedforward_layernorm") : nil)
        }
        return try s.llamaStyle(a, blocks: blocks)
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize, dh = a.headDimension
        let q = a.headCount * dh
        let m = a.modelType == "gemma3" ? "language_model.model." : "model."
        let sandwich = a.normPlacement == .sandwich
        p.table(m + "embed_tokens.weight", l.tokenEmbedding, rows: v, width: d)
        for (i, b) in l.blocks.enumerated() {
            let h = m + "layers.\(i)."
            p.vector(h + "input_layernorm.weight", b.ln1Weight, d)
            p.separateQKV(h + "self_attn.", b, a)
            p.vector(h + "self_attn.q_norm.weight", b.qNormWeight, dh)
            p.vector(h + "self_attn.k_norm.weight", b.kNormWeight, dh)
            p.matrix(h + "self_attn.o_proj.weight", b.outWeight, inputs: q, outputs: d, layout: .outIn)
            p.vector(h + "self_attn.o_proj.bias", b.outBias, d)
            p.vector(h + "post_attention_layernorm.weight", sandwich ? b.ln1PostWeight : b.ln2Weight, d)
            if sandwich {
                p.vector(h + "pre_feedforward_layernorm.weight", b.ln2Weight, d)
                p.vector(h + "post_feedforward_layernorm.weight", b.ln2PostWeight, d)
            }
            p.separateGateUp(h + "mlp.", b, a)
            p.matrix(h + "mlp.down_proj.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
        }
        p.vector(m + "norm.weight", l.finalNormWeight, d)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        return p.tensors
    }

    /// A Gemma 2 config (what `train --norm sandwich` writes).
    static func config(_ a: Architecture) throws -> JSONOutput {
        guard a.modelType == "gemma2" else {
            throw LoadError.unsupportedFeature(file: "config.json", feature: "writing a \(a.modelType) config")
        }
        let scale = Double(a.attentionScale)
        let scalar = (1 / (scale * scale)).rounded()
        guard abs(scalar * scale * scale - 1) < 1e-5 else {
            throw LoadError.unsupportedFeature(file: "config.json", feature: "an attention scale that is not 1/sqrt(an integer)")
        }
        func cap(_ x: Float?) -> JSONOutput { x.map { .double(Double($0)) } ?? .null }
        return .object([("architectures", .strings(["Gemma2ForCausalLM"])), ("model_type", .string("gemma2"))]
                       + (try rotaryConfigFields(a, activationKey: "hidden_activation"))
                       + [("query_pre_attn_scalar", .int(Int(scalar))), ("sliding_window", a.slidingWindow.map { .int($0) } ?? .null),
                          ("layer_types", .strings(a.layerKinds.map { $0 == .local ? "sliding_attention" : "full_attention" })),
                          ("attn_logit_softcapping", cap(a.attentionSoftCap)), ("final_logit_softcapping", cap(a.finalSoftCap))])
    }
}
