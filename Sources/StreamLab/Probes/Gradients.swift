/// The gradient highway made measurable: per layer, how large the gradient of
/// the loss is at the block's input, how much of it arrived through the skip
/// path and how much through each sublayer, and how large the block's
/// parameter gradients are.
///
/// The loss is the mean next-token cross-entropy over positions 0..T-2 of a
/// sequence (docs/definitions.md, Gradients). All norms are L2 norms over the whole
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
    /// The sums behind every figure, for merging shards; their standard errors over windows.
    public var partial: GradientPartial? = nil

    /// Standard error over windows of a layer's figure (`Layer` key path order: `figureNames`), nil below 2 windows.
    public func standardError(layer i: Int, figure j: Int) -> Double? { partial?.figures.standardError(i * 7 + j) }
    /// Standard error of `finalStream`, `embeddingParameters`, `finalReadParameters`, `loss` (k = 0...3).
    public func standardError(total k: Int) -> Double? { partial.map { $0.figures.standardError($0.layerCount * 7 + k) } ?? nil }
    /// 95% bootstrap intervals, as the standard errors (with `--bootstrap N`).
    public func interval(layer i: Int, figure j: Int) -> Interval? { partial?.figures.stats[i * 7 + j].bootstrapInterval.map(Interval.init) }
    public func interval(total k: Int) -> Interval? {
        partial.flatMap { $0.figures.stats[$0.layerCount * 7 + k].bootstrapInterval.map(Interval.init) }
    }
}

/// The sums behind a gradient report: per window, for each layer its seven
/// norms, then the final stream's, the embeddings', the final read's and the
/// loss, weighted by the window's scored positions.
public struct GradientPartial: Sendable {
    var figures: FigureSums
    var layerCount: Int
    var sequences: Int
    var positions: Int

    mutating func merge(_ o: GradientPartial) {
        figures.merge(o.figures)
        sequences += o.sequences
        positions += o.positions
    }

    var report: GradientReport {
        let layers = (0..<layerCount).map { i in
            GradientReport.Layer(layer: i, residPre: figures.mean(i * 7), skip: figures.mean(i * 7 + 1),
                                 attention: figures.mean(i * 7 + 2), mlp: figures.mean(i * 7 + 3),
                                 parameters: figures.mean(i * 7 + 4), attentionParameters: figures.mean(i * 7 + 5),
                                 mlpParameters: figures.mean(i * 7 + 6))
        }
        let t = layerCount * 7
        return GradientReport(layers: layers, finalStream: figures.mean(t), embeddingParameters: figures.mean(t + 1),
                              finalReadParameters: figures.mean(t + 2), loss: figures.mean(t + 3), sequences: sequences,
                              positions: positions, partial: self)
    }
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
        var figures = FigureSums(count: a.layerCount * 7 + 4)
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
            if passes[s.count] == nil { try model.checkFits(length: s.count, keepsActivations: true) }
            let pass = passes[s.count] ?? GradientPass(a, batch: 1, length: s.count, threads: threads)
            passes[s.count] = pass
            pass.setSequence(s)
            gradients.zero()
            let loss = pass.forward(model)
            if let point = pass.firstNonFinite { throw ModelError.nonFinite(where: point.name, context: nil) }
            let paths = pass.backward(model, into: gradients.pointer, paths: true)
            for (i, p) in paths.enumerated() where !p.residPre.allSatisfy(\.isFinite) {
                throw ModelError.nonFinite(where: "the gradient at blocks.\(i).hook_resid_pre", context: nil)
            }
            if !Elementwise.allFinite(gradients.pointer, gradients.count) {
                throw ModelError.nonFinite(where: "the parameter gradients", context: nil)
            }
            weightTotal += s.count - 1
            let grads = gradients.pointer
            func norm(_ slots: [ParameterSlot]) -> Double {
                var total = 0.0
                for slot in slots {
                    for i in slot.offset..<(slot.offset + slot.count) { total += Double(grads[i]) * Double(grads[i]) }
                }
                return total.squareRoot()
            }
            var values: [Double] = []
            for (i, p) in paths.enumerated() {
                let attnSlots = blockSlots[i].filter { [".ln1.", ".ln1_post.", ".attn."].contains(where: $0.name.contains) }
                let mlpSlots = blockSlots[i].filter { [".ln2.", ".ln2_post.", ".mlp."].contains(where: $0.name.contains) }
                values += [l2(p.residPre), l2(p.skip), l2(p.attention), l2(p.mlp), norm(blockSlots[i]), norm(attnSlots), norm(mlpSlots)]
            }
            values += [paths.last.map { l2($0.residPost) } ?? 0, norm(embeddingSlots), norm(finalSlots), Double(loss)]
            figures.add(values, weight: Double(s.count - 1))
            count += 1
            progress?(count)
        }
        guard weightTotal > 0 else {
            if longest == 0 { throw ModelError.emptyTokens }
            throw ModelError.tooShortForLoss(length: longest)
        }
        return GradientPartial(figures: figures, layerCount: a.layerCount, sequences: count, positions: weightTotal).report
    }

    static func l2(_ v: [Float]) -> Double {
        var s = 0.0
        for x in v { s += Double(x) * Double(x) }
        return s.squareRoot()
    }
}
