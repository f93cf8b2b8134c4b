/// One term of the final stream at a position (docs/definitions.md, Decomposition).
public struct StreamComponent: Sendable {
    public enum Kind: String, Sendable {
        case embed, posEmbed = "pos_embed", attention = "attn", head, mlp, bias
    }

    /// `embed`, `pos_embed`, `blocks.{i}.attn`, `blocks.{i}.attn.head{h}`,
    /// `blocks.{i}.mlp`, or a bias term (`blocks.{i}.ln1.bias`, `ln_final.bias`, `lm_head.bias`).
    public let name: String
    public let kind: Kind
    public let layer: Int?
    public let head: Int?
    /// A per-head row: detail of its layer's row, not part of the sum.
    public let isDetail: Bool
    /// The write as it arrives in the final stream `[D]` (carried through later
    /// frozen norms for post-norm models); nil for the final-read biases.
    public let write: [Double]?
    /// L2 norm of `write`.
    public let norm: Double?
    /// Cosine of `write` with the final stream.
    public let cosine: Double?
    /// Direct logit attribution to the target token.
    public let attribution: Double
}

/// The final stream at one position split into its writes, with each write's
/// direct logit attribution to a target token.
public struct Decomposition: Sendable {
    public let tokens: [Int]
    /// Resolved position (0..<T).
    public let position: Int
    public let target: Int
    /// The model's logit of `target` at `position` (after the soft-cap, if any).
    public let logit: Double
    /// For a soft-capped model, the logit before the cap: what the
    /// attributions sum to (the cap is not linear). Nil without a cap.
    public let logitBeforeCap: Double?
    public let components: [StreamComponent]
    /// max over D of |final stream - sum of the non-detail writes|.
    public let reconstructionError: Double
    /// |logit (before the cap) - sum of the non-detail attributions|.
    public let attributionError: Double
}

extension Transformer {
    /// Splits the final stream at `position` (negative counts from the end)
    /// into the exact contribution of every write and attributes the logit of
    /// `target` (default: the model's top prediction there) to each, e.g.
    /// `try model.decompose(tokens, position: -1, target: id)`.
    ///
    /// Pre-norm, sandwich, output and parallel blocks: the stream is the sum
    /// of the writes (sandwich and output writes are taken after their norms;
    /// per-head rows are carried through the write norm with its scale frozen).
    /// Post-norm blocks: each norm, with its scale frozen at this run's value,
    /// is affine, so every earlier component is carried through it (centered,
    /// scaled, times the weight) and its bias becomes a component. The final
    /// read is frozen the same way. Sums are exact up to float rounding.
    public func decompose(_ tokens: [Int], position: Int = -1, target: Int? = nil, heads: Bool = false) throws -> Decomposition {
        try validate(tokens: tokens)
        let a = architecture, t = tokens.count, d = a.width, v = a.vocabularySize
        guard position >= -t && position < t else { throw ModelError.positionOutOfRange(position: position, length: t) }
        guard a.skipConnections else {
            throw ModelError.invalidArchitecture("a plain stack (no skip connections) has no additive stream to decompose")
        }
        let p = position < 0 ? t + position : position
        var kinds: Set<HookKind> = [.embed, .posEmbed, .attnOut, .mlpOut, .ln1Scale, .ln2Scale, .ln1PostScale, .lnFinalScale,
                                    .residPost, .logits]
        if heads { kinds.insert(.attnResult) }
        let run = try self.run(tokens, recording: kinds)
        let logits = run.logits!
        let target = target ?? logits.scalars.withUnsafeBufferPointer { Distribution.argmax($0.baseAddress! + p * v, v) }
        guard target >= 0 && target < v else { throw ModelError.targetOutOfRange(target: target, vocabularySize: v) }

        func row(_ point: HookPoint) -> [Double] {
            run[point]!.scalars[(p * d)..<((p + 1) * d)].map(Double.init)
        }
        struct Term { var name: String; var kind: StreamComponent.Kind; var layer: Int?; var head: Int?; var detail: Bool; var write: [Double] }
        var terms: [Term] = [Term(name: "embed", kind: .embed, layer: nil, head: nil, detail: false, write: row(.embed))]
        if a.hasLearnedPositions {
            terms.append(Term(name: "pos_embed", kind: .posEmbed, layer: nil, head: nil, detail: false, write: row(.posEmbed)))
        }
        /// Post-norm: carry every term through norm `weights` with frozen divisor, add its bias.
        func carry(_ norm: NormWeights, divisor point: HookPoint, biasName: String, layer: Int) {
            let sigma = Double(run[point]!.scalars[p])
            for k in terms.indices { terms[k].write = frozenNorm(terms[k].write, norm, sigma: sigma) }
            if let bias = norm.bias {
                terms.append(Term(name: biasName, kind: .bias, layer: layer, head: nil, detail: false, write: bias.map(Double.init)))
            }
        }
        for i in 0..<a.layerCount {
            terms.append(Term(name: "blocks.\(i).attn", kind: .attention, layer: i, head: nil, detail: false, write: row(.attnOut(i))))
            if heads {
                let result = run[.attnResult(i)]!.scalars
                // Sandwich and output: each head passes the write norm, frozen at this run's scale.
                let writeNorm = weights.blocks[i].ln1Post
                let sigma = writeNorm != nil ? Double(run[.ln1PostScale(i)]!.scalars[p]) : 1
                for h in 0..<a.headCount {
                    let start = (p * a.headCount + h) * d
                    var write = result[start..<(start + d)].map(Double.init)
                    if let writeNorm { write = frozenNorm(write, writeNorm, sigma: sigma) }
                    terms.append(Term(name: "blocks.\(i).attn.head\(h)", kind: .head, layer: i, head: h, detail: true, write: write))
                }
            }
            if a.normPlacement == .post, let ln1 = weights.blocks[i].ln1 {
                carry(ln1, divisor: .ln1Scale(i), biasName: "blocks.\(i).ln1.bias", layer: i)
            }
            terms.append(Term(name: "blocks.\(i).mlp", kind: .mlp, layer: i, head: nil, detail: false, write: row(.mlpOut(i))))
            if a.normPlacement == .post, let ln2 = weights.blocks[i].ln2 {
                carry(ln2, divisor: .ln2Scale(i), biasName: "blocks.\(i).ln2.bias", layer: i)
            }
        }
        let final = a.layerCount > 0 ? row(.residPost(a.layerCount - 1)) : terms.reduce([Double](repeating: 0, count: d)) { s, term in
            zip(s, term.write).map(+)
        }

        // The frozen final read: direction of the target's logit in stream space.
        let readout = unembeddingColumn(target)                               // [E]
        let sigmaFinal = weights.finalNorm != nil ? Double(run[.lnFinalScale]!.scalars[p]) : 1
        func attribute(_ write: [Double]) -> Double {
            var y = write
            if let norm = weights.finalNorm { y = frozenNorm(y, NormWeights(weight: norm.weight, bias: nil), sigma: sigmaFinal) }
            return dot(projectOut(y), readout)
        }
        let finalNorm = norm(final)
        var components = terms.map { term -> StreamComponent in
            let n = norm(term.write)
            return StreamComponent(name: term.name, kind: term.kind, layer: term.layer, head: term.head, isDetail: term.detail,
                                   write: term.write, norm: n, cosine: n > 0 && finalNorm > 0 ? dot(term.write, final) / (n * finalNorm) : 0,
                                   attribution: attribute(term.write))
        }
        if let bias = weights.finalNorm?.bias {
            components.append(StreamComponent(name: "ln_final.bias", kind: .bias, layer: nil, head: nil, isDetail: false, write: nil,
                                              norm: nil, cosine: nil, attribution: dot(projectOut(bias.map(Double.init)), readout)))
        }
        if let bias = weights.unembedding.bias {
            components.append(StreamComponent(name: "lm_head.bias", kind: .bias, layer: nil, head: nil, isDetail: false, write: nil,
                                              norm: nil, cosine: nil, attribution: Double(bias[target])))
        }
        var sum = [Double](repeating: 0, count: d)
        for term in terms where !term.detail { for c in 0..<d { sum[c] += term.write[c] } }
        let reconstruction = zip(sum, final).map { abs($0 - $1) }.max() ?? 0
        let logit = Double(logits.scalars[p * v + target])
        // With a soft-cap, the logit before it: the frozen final read of the final stream, biases included.
        let logitBeforeCap = a.finalSoftCap == nil ? nil
            : components.filter { $0.kind == .bias && $0.write == nil }.reduce(attribute(final)) { $0 + $1.attribution }
        let attributed = components.filter { !$0.isDetail }.reduce(0) { $0 + $1.attribution }
        return Decomposition(tokens: tokens, position: p, target: target, logit: logit, logitBeforeCap: logitBeforeCap,
                             components: components, reconstructionError: reconstruction,
                             attributionError: abs(attributed - (logitBeforeCap ?? logit)))
    }

    /// The linear part of a norm with a frozen divisor: LayerNorm centers,
    /// then both divide by `sigma` and multiply by the weight (plus the
    /// architecture's weight offset: Gemma's 1 + w).
    func frozenNorm(_ x: [Double], _ norm: NormWeights, sigma: Double) -> [Double] {
        let mean = architecture.normKind == .layerNorm ? x.reduce(0, +) / Double(x.count) : 0
        let offset = Double(architecture.normWeightOffset)
        return x.indices.map { c in (x[c] - mean) / sigma * (offset + Double(norm.weight[c])) }
    }

    /// `project_out` (linear, no bias) when the model has one.
    func projectOut(_ x: [Double]) -> [Double] {
        guard let w = weights.projectOut?.weight else { return x }
        return (0..<w.columns).map { j in (0..<w.rows).reduce(0.0) { $0 + x[$1] * Double(w.element($1, j)) } }
    }

    /// Column `target` of the unembedding `[E, V]`.
    func unembeddingColumn(_ target: Int) -> [Double] {
        let w = weights.unembedding.weight
        return (0..<w.rows).map { Double(w.element($0, target)) }
    }
}

private func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
private func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }
