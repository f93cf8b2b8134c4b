/// GPT-J (`gptj`): parallel blocks with one LayerNorm read by both sublayers,
/// `x + attn(ln_1(x)) + mlp(ln_1(x))`; interleaved-pair rotary
/// (`rotate_every_two`) on the first `rotary_dim` dims of each head, base
/// 10000; q/k/v/out without biases, `fc_in` / `fc_out` with; an untied
/// `lm_head` with a bias.
enum GPTJMapping: FamilyMapping {
    static let modelTypes = ["gptj"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("n_embd")
        let heads = try c.size("n_head")
        let headDim = try c.headDimension(width: d, heads: heads, headsKey: "n_head")
        let rotaryDims = try c.size("rotary_dim", default: 64)
        guard rotaryDims <= headDim, rotaryDims % 2 == 0 else {
            throw LoadError.badConfigValue(file: c.file, key: c.qualified("rotary_dim"), value: String(rotaryDims),
                                           expected: "an even number of dims within the head dimension \(headDim)")
        }
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d, layerCount: try c.size("n_layer"),
            headCount: heads, mlpWidth: try c.size("n_inner", default: 4 * d), maxPositions: try c.size("n_positions"),
            normPlacement: .pre, normKind: .layerNorm, normEpsilon: Float(try c.double("layer_norm_epsilon", default: 1e-5)),
            activation: try c.activation("activation_function", default: "gelu_new"),
            positions: .rotary(Rotary(dimensions: rotaryDims, base: 10000, pairing: .interleaved)),
            parallelResidual: true, sharedParallelNorm: true,
            qkvBias: false, outputBias: false, mlpBias: true, normBias: true, unembeddingBias: true,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: false))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = "transformer."
        let d = a.width, f = a.mlpWidth
        s.ignore { $0.hasSuffix(".attn.bias") || $0.hasSuffix(".attn.masked_bias") || $0.hasSuffix("embed_positions") }
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "h.\(i)."
            return BlockWeights(
                ln1: try s.norm(p + "ln_1.weight", bias: p + "ln_1.bias", width: d),
                qkv: try s.fused(p + "attn.", ["q_proj", "k_proj", "v_proj"], outputs: [d, d, d], inputs: d, bias: false),
                output: try s.linear(p + "attn.out_proj.weight", bias: nil, layout: .outIn, inputs: d, outputs: d),
                ln2: nil,
                up: try s.linear(p + "mlp.fc_in.weight", bias: p + "mlp.fc_in.bias", layout: .outIn, inputs: d, outputs: f),
                down: try s.linear(p + "mlp.fc_out.weight", bias: p + "mlp.fc_out.bias", layout: .outIn, inputs: f, outputs: d))
        }
        let embedding = try s.table("wte.weight", rows: a.vocabularySize, width: d)
        return Weights(
            tokenEmbedding: embedding, positionEmbedding: nil, projectIn: nil, blocks: blocks,
            finalNorm: try s.norm("ln_f.weight", bias: "ln_f.bias", width: d), projectOut: nil,
            unembedding: try s.unembedding("lm_head.weight", bias: "lm_head.bias", embedding: embedding, architecture: a))
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize
        let m = "transformer."
        p.table(m + "wte.weight", l.tokenEmbedding, rows: v, width: d)
        for (i, b) in l.blocks.enumerated() {
            let h = m + "h.\(i)."
            p.vector(h + "ln_1.weight", b.ln1Weight, d)
            p.vector(h + "ln_1.bias", b.ln1Bias, d)
            for (k, name) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                p.matrix(h + "attn.\(name).weight", b.qkvWeight, inputs: d, outputs: 3 * d, columns: (k * d)..<((k + 1) * d),
                         layout: .outIn)
            }
            p.matrix(h + "attn.out_proj.weight", b.outWeight, inputs: d, outputs: d, layout: .outIn)
            p.matrix(h + "mlp.fc_in.weight", b.upWeight, inputs: d, outputs: f, layout: .outIn)
            p.vector(h + "mlp.fc_in.bias", b.upBias, f)
            p.matrix(h + "mlp.fc_out.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
            p.vector(h + "mlp.fc_out.bias", b.downBias, d)
        }
        p.vector(m + "ln_f.weight", l.finalNormWeight, d)
        p.vector(m + "ln_f.bias", l.finalNormBias, d)
        p.matrix("lm_head.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        p.vector("lm_head.bias", l.unembedBias, v)
        return p.tensors
    }
}
