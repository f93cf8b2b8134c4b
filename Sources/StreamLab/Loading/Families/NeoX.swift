/// GPT-NeoX / Pythia (`gpt_neox`): pre-norm LayerNorm, partial rotary
/// (`rotary_pct` or `partial_rotary_factor`), parallel or sequential residual
/// (`use_parallel_residual`), exact GELU, untied `embed_out`. The fused
/// `query_key_value` output is per-head interleaved `[H, 3, Dh]` and is
/// reordered here to q | k | v.
enum NeoXMapping: FamilyMapping {
    static let modelTypes = ["gpt_neox"]

    static func architecture(_ c: ModelConfig, modelType: String) throws -> Architecture {
        let d = try c.size("hidden_size")
        let heads = try c.size("num_attention_heads")
        let headDim = try c.headDimension(width: d, heads: heads, headsKey: "num_attention_heads")
        let bias = try c.bool("attention_bias", default: true)
        let rotary = try c.rotary(headDimension: headDim, defaultFraction: 0.25)
        return Architecture(
            modelType: modelType, vocabularySize: try c.size("vocab_size"), width: d,
            layerCount: try c.size("num_hidden_layers"), headCount: heads,
            mlpWidth: try c.size("intermediate_size"), maxPositions: try c.maxPositions(for: rotary),
            normPlacement: .pre, normKind: .layerNorm,
            normEpsilon: Float(try c.double("layer_norm_eps", default: 1e-5)),
            activation: try c.activation("hidden_act", default: "gelu"),
            positions: .rotary(rotary),
            parallelResidual: try c.bool("use_parallel_residual", default: true),
            qkvBias: bias, outputBias: bias,
            tiedEmbeddings: try c.bool("tie_word_embeddings", default: false))
    }

    static func weights(_ a: Architecture, from checkpoint: WeightSource) throws -> Weights {
        var s = checkpoint
        s.prefix = "gpt_neox."
        let d = a.width, f = a.mlpWidth, h = a.headCount, dh = a.headDimension
        s.ignore { $0.hasSuffix(".attention.bias") || $0.hasSuffix(".attention.masked_bias") || $0.hasSuffix("inv_freq") }
        let blocks = try (0..<a.layerCount).map { i -> BlockWeights in
            let p = "layers.\(i)."
            // [3D, D] rows ordered (head, q|k|v, dh): read in place as 3H pieces
            // of Dh columns, regrouped to (q|k|v, head, dh).
            let (stored, owner) = try s.columns(p + "attention.query_key_value.weight", layout: .outIn, inputs: d, outputs: 3 * d)
            let fusedBias = a.qkvBias ? try s.vector(p + "attention.query_key_value.bias", 3 * d) : nil
            var pieces: [StoredColumns] = []
            var bias = [Float](repeating: 0, count: 3 * d)
            for part in 0..<3 {
                for head in 0..<h {
                    let first = (head * 3 + part) * dh
                    pieces.append(StoredColumns(base: stored.base + first * d * stored.element.size, element: stored.element,
                                                layout: .columnsAreRows, columns: dh, rowStride: d))
                    for r in 0..<dh { bias[part * d + head * dh + r] = fusedBias?[first + r] ?? 0 }
                }
            }
            return BlockWeights(
                ln1: try s.norm(p + "input_layernorm.weight", bias: p + "input_layernorm.bias", width: d),
                qkv: Linear(weight: PackedMatrix(stored: pieces, rows: d, owner: owner), bias: fusedBias == nil ? nil : bias),
                output: try s.linear(p + "attention.dense.weight", bias: a.outputBias ? p + "attention.dense.bias" : nil,
                                     layout: .outIn, inputs: d, outputs: d),
                ln2: try s.norm(p + "post_attention_layernorm.weight", bias: p + "post_attention_layernorm.bias", width: d),
                up: try s.linear(p + "mlp.dense_h_to_4h.weight", bias: p + "mlp.dense_h_to_4h.bias", layout: .outIn, inputs: d, outputs: f),
                down: try s.linear(p + "mlp.dense_4h_to_h.weight", bias: p + "mlp.dense_4h_to_h.bias", layout: .outIn, inputs: f, outputs: d))
        }
        let embedding = try s.table("embed_in.weight", rows: a.vocabularySize, width: d)
        return Weights(
            tokenEmbedding: embedding, positionEmbedding: nil, projectIn: nil, blocks: blocks,
            finalNorm: try s.norm("final_layer_norm.weight", bias: "final_layer_norm.bias", width: d),
            projectOut: nil, unembedding: try s.unembedding("embed_out.weight", embedding: embedding, architecture: a))
    }

    static func tensors(_ a: Architecture, _ values: ParameterValues) -> [NamedTensor] {
        var p = values
        let l = p.layout, d = a.width, f = a.mlpWidth, v = a.vocabularySize, h = a.headCount, dh = a.headDimension
        let g = "gpt_neox."
        p.table(g + "embed_in.weight", l.tokenEmbedding, rows: v, width: d)
        for (i, b) in l.blocks.enumerated() {
            let x = g + "layers.\(i)."
            p.vector(x + "input_layernorm.weight", b.ln1Weight, d)
            p.vector(x + "input_layernorm.bias", b.ln1Bias, d)
            // Our q | k | v columns (part, head, dh) back to NeoX's per-head rows (head, part, dh).
            let order = (0..<h).flatMap { head in (0..<3).flatMap { part in (0..<dh).map { part * d + head * dh + $0 } } }
            let qkv = ParameterValues.columns(p.flat, b.qkvWeight, inputs: d, outputs: 3 * d, 0..<(3 * d), layout: .outIn)
            var fused = [Float](repeating: 0, count: 3 * d * d)
            for (row, from) in order.enumerated() {
                for c in 0..<d { fused[row * d + c] = qkv.values[from * d + c] }
            }
            p.append(NamedTensor(name: x + "attention.query_key_value.weight", shape: [3 * d, d], values: fused))
            if let o = b.qkvBias {
                p.append(NamedTensor(name: x + "attention.query_key_value.bias", shape: [3 * d], values: order.map { p.flat[o + $0] }))
            }
            p.matrix(x + "attention.dense.weight", b.outWeight, inputs: d, outputs: d, layout: .outIn)
            p.vector(x + "attention.dense.bias", b.outBias, d)
            p.vector(x + "post_attention_layernorm.weight", b.ln2Weight, d)
            p.vector(x + "post_attention_layernorm.bias", b.ln2Bias, d)
            p.matrix(x + "mlp.dense_h_to_4h.weight", b.upWeight, inputs: d, outputs: f, layout: .outIn)
            p.vector(x + "mlp.dense_h_to_4h.bias", b.upBias, f)
            p.matrix(x + "mlp.dense_4h_to_h.weight", b.downWeight, inputs: f, outputs: d, layout: .outIn)
            p.vector(x + "mlp.dense_4h_to_h.bias", b.downBias, d)
        }
        p.vector(g + "final_layer_norm.weight", l.finalNormWeight, d)
        p.vector(g + "final_layer_norm.bias", l.finalNormBias, d)
        p.matrix("embed_out.weight", l.unembedWeight, inputs: d, outputs: v, layout: .outIn)
        return p.tensors
    }
}
