/// One tensor in a Hugging Face checkpoint layout.
public struct NamedTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]
}

/// The checkpoint names and layouts of the families the trainer covers, for
/// the exporter (parameter values) and for gradient parity (gradients in the
/// same layout): GPT-2 (`transformer.` prefix, Conv1D `[in, out]`), GPT-1
/// (`openai-gpt`, same conventions, no final norm) and Llama / Mistral / Qwen2
/// (`nn.Linear` `[out, in]`, q/k/v and gate/up split).
public enum HuggingFaceNames {
    /// The tensors of a flat buffer in `model`'s layout (its values or its
    /// gradients), named and shaped as the family's checkpoint. Tied
    /// unembeddings are not listed (Hugging Face ties them to the embedding).
    public static func tensors(of flat: [Float], model: TrainableModel) -> [NamedTensor] {
        precondition(flat.count == model.layout.count)
        let a = model.architecture, l = model.layout
        let d = a.width, f = a.mlpWidth, v = a.vocabularySize
        var out: [NamedTensor] = []
        func slice(_ offset: Int, _ count: Int) -> [Float] { Array(flat[offset..<(offset + count)]) }
        func add(_ name: String, _ shape: [Int], _ values: [Float]) {
            precondition(values.count == shape.reduce(1, *))
            out.append(NamedTensor(name: name, shape: shape, values: values))
        }
        /// Columns c0..<c1 of a row-major `[rows, columns]` matrix, transposed to `[c1 - c0, rows]`.
        func transposedColumns(_ offset: Int, rows: Int, columns: Int, _ c0: Int, _ c1: Int) -> [Float] {
            var t = [Float](repeating: 0, count: (c1 - c0) * rows)
            for r in 0..<rows { for c in c0..<c1 { t[(c - c0) * rows + r] = flat[offset + r * columns + c] } }
            return t
        }
        func columns(_ offset: Int, _ c0: Int, _ c1: Int) -> [Float] { slice(offset + c0, c1 - c0) }

        switch a.modelType {
        case "gpt2", "openai-gpt":
            let gpt1 = a.modelType == "openai-gpt"
            let p = "transformer."
            add(p + (gpt1 ? "tokens_embed.weight" : "wte.weight"), [v, d], slice(l.tokenEmbedding, v * d))
            if let wpe = l.positionEmbedding {
                add(p + (gpt1 ? "positions_embed.weight" : "wpe.weight"), [a.maxPositions, d], slice(wpe, a.maxPositions * d))
            }
            for (i, b) in l.blocks.enumerated() {
                let h = p + "h.\(i)."
                add(h + "ln_1.weight", [d], slice(b.ln1Weight, d))
                if let o = b.ln1Bias { add(h + "ln_1.bias", [d], slice(o, d)) }
                add(h + "attn.c_attn.weight", [d, a.qkvWidth], slice(b.qkvWeight, d * a.qkvWidth))
                if let o = b.qkvBias { add(h + "attn.c_attn.bias", [a.qkvWidth], slice(o, a.qkvWidth)) }
                add(h + "attn.c_proj.weight", [d, d], slice(b.outWeight, d * d))
                if let o = b.outBias { add(h + "attn.c_proj.bias", [d], slice(o, d)) }
                add(h + "ln_2.weight", [d], slice(b.ln2Weight, d))
                if let o = b.ln2Bias { add(h + "ln_2.bias", [d], slice(o, d)) }
                add(h + "mlp.c_fc.weight", [d, f], slice(b.upWeight, d * f))
                if let o = b.upBias { add(h + "mlp.c_fc.bias", [f], slice(o, f)) }
                add(h + "mlp.c_proj.weight", [f, d], slice(b.downWeight, f * d))
                if let o = b.downBias { add(h + "mlp.c_proj.bias", [d], slice(o, d)) }
            }
            if let fw = l.finalNormWeight {
                add(p + "ln_f.weight", [d], slice(fw, d))
                if let fb = l.finalNormBias { add(p + "ln_f.bias", [d], slice(fb, d)) }
            }
        default:   // llama, mistral, qwen2
            let p = "model."
            let dh = a.headDimension, qw = a.headCount * dh, kvw = a.keyValueHeadCount * dh
            add(p + "embed_tokens.weight", [v, d], slice(l.tokenEmbedding, v * d))
            for (i, b) in l.blocks.enumerated() {
                let h = p + "layers.\(i)."
                add(h + "input_layernorm.weight", [d], slice(b.ln1Weight, d))
                let qkv = a.qkvWidth
                add(h + "self_attn.q_proj.weight", [qw, d], transposedColumns(b.qkvWeight, rows: d, columns: qkv, 0, qw))
                add(h + "self_attn.k_proj.weight", [kvw, d], transposedColumns(b.qkvWeight, rows: d, columns: qkv, qw, qw + kvw))
                add(h + "self_attn.v_proj.weight", [kvw, d], transposedColumns(b.qkvWeight, rows: d, columns: qkv, qw + kvw, qkv))
                if let o = b.qkvBias {
                    add(h + "self_attn.q_proj.bias", [qw], columns(o, 0, qw))
                    add(h + "self_attn.k_proj.bias", [kvw], columns(o, qw, qw + kvw))
                    add(h + "self_attn.v_proj.bias", [kvw], columns(o, qw + kvw, qkv))
                }
                add(h + "self_attn.o_proj.weight", [d, qw], transposedColumns(b.outWeight, rows: qw, columns: d, 0, d))
                if let o = b.outBias { add(h + "self_attn.o_proj.bias", [d], slice(o, d)) }
                add(h + "post_attention_layernorm.weight", [d], slice(b.ln2Weight, d))
                add(h + "mlp.gate_proj.weight", [f, d], transposedColumns(b.upWeight, rows: d, columns: 2 * f, 0, f))
                add(h + "mlp.up_proj.weight", [f, d], transposedColumns(b.upWeight, rows: d, columns: 2 * f, f, 2 * f))
                if let o = b.upBias {
                    add(h + "mlp.gate_proj.bias", [f], columns(o, 0, f))
                    add(h + "mlp.up_proj.bias", [f], columns(o, f, 2 * f))
                }
                add(h + "mlp.down_proj.weight", [d, f], transposedColumns(b.downWeight, rows: f, columns: d, 0, d))
                if let o = b.downBias { add(h + "mlp.down_proj.bias", [d], slice(o, d)) }
            }
            if let fw = l.finalNormWeight { add(p + "norm.weight", [d], slice(fw, d)) }
        }
        if let u = l.unembedWeight {
            add("lm_head.weight", [v, d], transposedColumns(u, rows: d, columns: v, 0, v))
        }
        if let ub = l.unembedBias { add("lm_head.bias", [v], slice(ub, v)) }
        return out
    }
}
