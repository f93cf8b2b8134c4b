/// OPT (`opt`): learned positions with offset 2, ReLU MLP (`fc1`, `fc2`),
/// `do_layer_norm_before` chooses pre-norm (most sizes) or post-norm
/// (OPT-350m); `word_embed_proj_dim` != `hidden_size` adds `project_in` /
/// `project_out`. The per-layer `final_layer_norm` is the MLP's norm; the
/// decoder-level one is the final norm (absent for post-norm).
enum OPTMapping: FamilyMapping {
    static let modelTypes = ["opt"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("hidden_size")
        let heads = try c.size("num_attention_heads")
        _ = try c.headDimension(width: d, heads: heads, headsKey: "num_attention_heads")
        let pre = try c.bool("do_layer_norm_before", default: true)
        let bias = try c.bool("enable_bias", default: true)
        if try !c.bool("layer_norm_elementwise_affine", default: true) {
            throw LoadError.unsupportedFeature(file: c.file, feature: "layer_norm_elementwise_affine = false")
        }
        let finalNorm = try pre && !c.bool("_remove_final_layer_norm", default: false)
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: try c.size("num_hidden_layers"), headCount: heads,
            mlpWidth: try c.size("ffn_dim"), maxPositions: try c.size("max_position_embeddings"),
            normPlacement: pre ? .pre : .post, normKind: .layerNorm, normEpsilon: 1e-5,
            activation: try c.activation("activation_function", default: "relu"),
            positions: .learned(offset: 2), hasFinalNorm: finalNorm,
            embeddingWidth: try c.size("word_embed_proj_dim", default: d),
            qkvBias: bias, outputBias: bias, mlpBias: bias,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: true))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = "model.decoder."
        let d = a.width, f = a.mlpWidth, e = a.embeddingWidth
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "layers.\(i)."
            func bias(_ name: String) -> String? { a.qkvBias ? p + name : nil }
            return BlockWeights(
                ln1: try s.norm(p + "self_attn_layer_norm.weight", bias: p + "self_attn_layer_norm.bias", width: d),
                qkv: try s.fused(p + "self_attn.", ["q_proj", "k_proj", "v_proj"], outputs: [d, d, d],
                                 inputs: d, bias: a.qkvBias),
                output: try s.linear(p + "self_attn.out_proj.weight", bias: bias("self_attn.out_proj.bias"),
                                     layout: .outIn, inputs: d, outputs: d),
                ln2: try s.norm(p + "final_layer_norm.weight", bias: p + "final_layer_norm.bias", width: d),
                up: try s.linear(p + "fc1.weight", bias: bias("fc1.bias"), layout: .outIn, inputs: d, outputs: f),
                down: try s.linear(p + "fc2.weight", bias: bias("fc2.bias"), layout: .outIn, inputs: f, outputs: d))
        }
        let embedding = try s.table("embed_tokens.weight", rows: a.vocabularySize, width: e)
        let projectIn = a.hasProjection ? try s.linear("project_in.weight", bias: nil, layout: .outIn, inputs: e, outputs: d) : nil
        let projectOut = a.hasProjection ? try s.linear("project_out.weight", bias: nil, layout: .outIn, inputs: d, outputs: e) : nil
        return Weights(
            tokenEmbedding: embedding,
            positionEmbedding: try s.table("embed_positions.weight", rows: a.maxPositions + 2, width: d),
            projectIn: projectIn, blocks: blocks,
            finalNorm: a.hasFinalNorm ? try s.norm("final_layer_norm.weight", bias: "final_layer_norm.bias", width: d) : nil,
            projectOut: projectOut,
            unembedding: try s.unembedding("lm_head.weight", embedding: embedding, architecture: a))
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize, e = a.embeddingWidth
        let m = "model.decoder."
        p.table(m + "embed_tokens.weight", l.tokenEmbedding, rows: v, width: e)
        p.table(m + "embed_positions.weight", l.positionEmbedding, rows: a.maxPositions + 2, width: d)
        p.matrix(m + "project_in.weight", l.projectIn, inputs: e, outputs: d, layout: .outIn)
        for (i, b) in l.blocks.enumerated() {
            let x = m + "layers.\(i)."
            p.vector(x + "self_attn_layer_norm.weight", b.ln1Weight, d)
            p.vector(x + "self_attn_layer_norm.bias", b.ln1Bias, d)
            for (k, name) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                let range = (k * d)..<((k + 1) * d)
                p.matrix(x + "self_attn.\(name).weight", b.qkvWeight, inputs: d, outputs: 3 * d, columns: range, layout: .outIn)
                if let o = b.qkvBias { p.vector(x + "self_attn.\(name).bias", o + range.lowerBound, d) }
            }
            p.matrix(x + "self_attn.out_proj.weight", b.outWeight, inputs: d, outputs: d, layout: .outIn)
            p.vector(x + "self_attn.out_proj.bias", b.outBias, d)
            p.vector(x + "final_layer_norm.weight", b.ln2Weight, d)
            p.vector(x + "final_layer_norm.bias", b.ln2Bias, d)
            p.matrix(x + "fc1.weight", b.upWeight, inputs: d, outputs: f, layout: .outIn)
            p.vector(x + "fc1.bias", b.upBias, f)
            p.matrix(x + "fc2.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
            p.vector(x + "fc2.bias", b.downBias, d)
        }
        p.vector(m + "final_layer_norm.weight", l.finalNormWeight, d)
        p.vector(m + "final_layer_norm.bias", l.finalNormBias, d)
        p.matrix(m + "project_out.weight", l.projectOut, inputs: d, outputs: e, layout: .outIn)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: e, outputs: v, layout: .outIn)
        return p.tensors
    }
}
