/// The gradient highway made measurable: per layer, how large the gradient of
/// the loss is at the block's input, how much of it arrived through the skip
/// path and how much through each sublayer, and how large the block's
/// parameter gradients are.
///
/// The loss is the mean next-token cross-entropy over positions 0..T-2 of a
/// sequence (DESIGN.md section 5). All norms are L2 norms over the whole
/// `[T, D]` array (or all of a block's parameters). For block i:
///
/// - `residPre`: ||dL/d resid_pre_i||.
/// - `skip`: the part that went through neither sublayer of block i (for a
///   pre-norm residual block exactly dL/d resid_post_i; for post-norm, that
///   gradient passed through both norms' backward; 0 for a plain stack).
/// - `mlp`: the part that went through the MLP (and then the attention's
///   skip connection); `attention`: the part that went through the attention
///   sublayer. skip + mlp + attention = dL/d resid_pre_i exactly (vectors),
///   so the norms satisfy the triangle inequality, not a sum.
/// - `parameters`: ||dL/d(all parameters of block i)||, also split into the
///   attention's (ln1, qkv, output) and the MLP's (ln2, up, down).
///
/// For several sequences every figure is the mean over sequences, weighted
/// by their scored positions (all windows of a text file have the same length).
public struct GradientReport: Sendable {
    public struct Layer: Sendable, Equatable {
        public var layer: Int
        public var residPre: Double
        public var skip: Double
        public var attention: Double
        public var mlp: Double
        public var parameters: Double
        public var attentionParameters: Double
        public var mlpParameters: Double
    }

    public var layers: [Layer]
    /// ||dL/d resid_post of the last block||, the gradient entering the stack from the final read.
    public var finalStream: Double
    /// ||dL/d (token and position embeddings)|| (tied unembedding included).
    public var embeddingParameters: Double
    /// ||dL/d (final norm, untied unembedding)||.
    public var finalReadParameters: Double
    /// Mean loss over all scored positions.
    public var loss: Double
    public var sequences: Int
    public var positions: Int
}

public enum GradientAnalysis {
    /// Runs the forward and backward pass on every sequence and averages the
    /// per-sequence norms. Sequences of fewer than two tokens (a text file's
    /// last window) score nothing and are skipped; at least one must score.
    /// `progress` is called with the number of sequences done.
    public static func run<S: Sequence>(_ model: Transformer, sequences: S, threads: Int,
                                        progress: ((Int) -> Void)? = nil) throws -> GradientReport where S.Element == [Int] {
        let a = model.architecture, l = ParameterLayout(a)
        let gradients = FloatBuffer(l.count)
        var sum = [GradientReport.Layer](repeating: .init(layer: 0, residPre: 0, skip: 0, attention: 0, mlp: 0, parameters: 0,
                                                          attentionParameters: 0, mlpParameters: 0), count: a.layerCount)
        var finalStream = 0.0, embedding = 0.0, finalRead = 0.0, lossSum = 0.0
        var weightTotal = 0, count = 0, longest = 0
        var passes: [Int: GradientPass] = [:]
        let embeddingNames: Set = ["embed.weight", "pos_embed.weight", "project_in.weight"]
        let blockSlots = (0..<a.layerCount).map { i in l.slots.filter { $0.layer == i } }
        let embeddingSlots = l.slots.filter { embeddingNames.contains($0.name) }
        let finalSlots = l.slots.filter { $0.layer == nil && !embeddingNames.contains($0.name) }
        for s in sequences {
            try model.validate(tokens: s)
            longest = max(longest, s.count)
            guard s.count >= 2 else { continue }
            let pass = passes[s.count] ?? GradientPass(a, batch: 1, length: s.count, threads: threads)
            passes[s.count] = pass
            pass.setSequence(s)
            gradients.zero()
            let loss = pass.forward(model)
            let paths = pass.backward(model, into: gradients.pointer, paths: true)
            let w = Double(s.count - 1)
            weightTotal += s.count - 1
            lossSum += Double(loss) * w
            let grads = gradients.pointer
            func norm(_ slots: [ParameterSlot]) -> Double {
                var total = 0.0
                for slot in slots {
                    for i in slot.offset..<(slot.offset + slot.count) { total += Double(grads[i]) * Double(grads[i]) }
                }
                return total.squareRoot()
            }
            for (i, p) in paths.enumerated() {
                let attnSlots = blockSlots[i].filter { $0.name.contains(".ln1.") || $0.name.contains(".attn.") }
                let mlpSlots = blockSlots[i].filter { $0.name.contains(".ln2.") || $0.name.contains(".mlp.") }
                sum[i].layer = i
                sum[i].residPre += w * l2(p.residPre)
                sum[i].skip += w * l2(p.skip)
                sum[i].attention += w * l2(p.attention)
                sum[i].mlp += w * l2(p.mlp)
                sum[i].parameters += w * norm(blockSlots[i])
                sum[i].attentionParameters += w * norm(attnSlots)
                sum[i].mlpParameters += w * norm(mlpSlots)
            }
            if let last = paths.last { finalStream += w * l2(last.residPost) }
            embedding += w * norm(embeddingSlots)
            finalRead += w * norm(finalSlots)
            count += 1
            progress?(count)
        }
        guard weightTotal > 0 else {
            if longest == 0 { throw ModelError.emptyTokens }
            throw TrainingError.invalidSetting("the gradient of the next-token loss needs at least 2 tokens, got \(longest)")
        }
        let total = Double(weightTotal)
        let layers = sum.map { s in
            GradientReport.Layer(layer: s.layer, residPre: s.residPre / total, skip: s.skip / total, attention: s.attention / total,
                                 mlp: s.mlp / total, parameters: s.parameters / total,
                                 attentionParameters: s.attentionParameters / total, mlpParameters: s.mlpParameters / total)
        }
        return GradientReport(layers: layers, finalStream: finalStream / total, embeddingParameters: embedding / total,
                              finalReadParameters: finalRead / total, loss: lossSum / total, sequences: count,
                              positions: weightTotal)
    }

    static func l2(_ v: [Float]) -> Double {
        var s = 0.0
        for x in v { s += Double(x) * Double(x) }
        return s.squareRoot()
    }
}

extension GradientReport {
    /// One JSON object: the loss, counts, and one entry per layer.
    public var json: JSONOutput {
        .object([
            ("loss", .double(loss)), ("sequences", .int(sequences)), ("positions", .int(positions)),
            ("final_stream_grad_norm", .double(finalStream)), ("embedding_param_grad_norm", .double(embeddingParameters)),
            ("final_read_param_grad_norm", .double(finalReadParameters)),
            ("layers", .array(layers.map { l in
                .object([
                    ("layer", .int(l.layer)), ("resid_pre_grad_norm", .double(l.residPre)), ("skip_path_norm", .double(l.skip)),
                    ("attention_path_norm", .double(l.attention)), ("mlp_path_norm", .double(l.mlp)),
                    ("param_grad_norm", .double(l.parameters)), ("attention_param_grad_norm", .double(l.attentionParameters)),
                    ("mlp_param_grad_norm", .double(l.mlpParameters)),
                ])
            })),
        ])
    }

    static let columns = ["layer", "resid_pre_grad_norm", "skip_path_norm", "attention_path_norm", "mlp_path_norm",
                          "param_grad_norm", "attention_param_grad_norm", "mlp_param_grad_norm"]

    func cells(_ l: Layer, format: (Double) -> String) -> [String] {
        [String(l.layer), format(l.residPre), format(l.skip), format(l.attention), format(l.mlp), format(l.parameters),
         format(l.attentionParameters), format(l.mlpParameters)]
    }

    /// CSV with a header row, one row per layer.
    public var csv: String {
        var out = Self.columns.joined(separator: ",") + "\n"
        for l in layers { out += cells(l) { JSONOutput.double($0).serialized() }.joined(separator: ",") + "\n" }
        return out
    }

    /// An aligned table, one row per layer, plus the totals under it.
    public var table: String {
        var t = TextTable(headers: ["layer", "|dL/d resid_pre|", "skip path", "attention path", "mlp path", "|dL/d params|"])
        for l in layers {
            t.add([String(l.layer), Self.short(l.residPre), Self.short(l.skip), Self.short(l.attention), Self.short(l.mlp),
                   Self.short(l.parameters)])
        }
        var out = t.render()
        out += "|dL/d resid_post| of the last block: \(Self.short(finalStream)); embeddings' |dL/d params|: \(Self.short(embeddingParameters))\n"
        out += "loss \(Format.fixed(loss, 4)) (mean over \(Format.count(positions)) positions of \(sequences) sequence\(sequences == 1 ? "" : "s")); "
            + "norms are L2 over each sequence's [T, D] array, averaged over sequences\n"
        return out
    }

    /// Four significant digits, scientific notation outside [1e-3, 1e4).
    static func short(_ x: Double) -> String {
        guard x.isFinite else { return Format.fixed(x, 0) }
        if x == 0 { return "0" }
        if x >= 1e4 || x < 1e-3 {
            var e = 0, m = x
            while m >= 10 { m /= 10; e += 1 }
            while m < 1 { m *= 10; e -= 1 }
            return Format.fixed(m, 3) + "e" + String(e)
        }
        let digits = x >= 1000 ? 0 : x >= 100 ? 1 : x >= 10 ? 2 : x >= 1 ? 3 : 4
        return Format.fixed(x, digits)
    }

    /// Gradient norm against depth: dL/d resid_pre (dashed, drawn last), its three paths and the
    /// block's parameter-gradient norm per layer, on a log scale.
    public func plot(title: String) -> SVGPlot {
        var p = SVGPlot(title: title, xLabel: "layer (block input)", yLabel: "L2 norm of the gradient")
        p.logY = true
        // Zero norms (the skip path of a plain stack) have no place on a log axis and are left out.
        // A path that is zero everywhere is named as such in the legend.
        func path(_ name: String, _ norm: (Layer) -> Double) {
            let points = layers.map { (Double($0.layer), norm($0)) }
            p.add(.init(name: points.allSatisfy { $0.1 == 0 } ? "\(name): none" : name, points: points))
        }
        path("skip path", \.skip)
        path("attention path", \.attention)
        path("mlp path", \.mlp)
        p.add(.init(name: "block parameters", points: layers.map { (Double($0.layer), $0.parameters) }))
        p.add(.init(name: "dL/d resid_pre", points: layers.map { (Double($0.layer), $0.residPre) }, dashed: true))
        return p
    }
}
