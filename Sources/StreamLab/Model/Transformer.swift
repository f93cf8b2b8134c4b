#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A decoder-only Transformer of any supported family, configured by an
/// `Architecture`. Its one forward pass (this file) and its backward
/// (`Backward.swift`) serve inference, every probe and training alike.
///
/// The forward reads top to bottom (see `forward`): embed, then for every
/// block read the stream through a norm, write the attention output back,
/// read again, write the MLP output back; then the final read (final norm,
/// project-out, unembedding). Every hook point of docs/definitions.md can be
/// recorded and every intervention is applied where its hook point is computed.
public struct Transformer: Sendable {
    public let architecture: Architecture
    public let weights: Weights
    /// Threads used by the matrix multiplies and attention heads.
    public var threads: Int

    public init(architecture: Architecture, weights: Weights, threads: Int? = nil) throws {
        if let problem = architecture.validationProblem() { throw ModelError.invalidArchitecture(problem) }
        guard weights.blocks.count == architecture.layerCount else {
            throw ModelError.invalidArchitecture("\(weights.blocks.count) blocks of weights for \(architecture.layerCount) layers")
        }
        let a = architecture
        for (i, b) in weights.blocks.enumerated() {
            for (name, present, expected) in [
                ("ln1", b.ln1 != nil, a.hasAttentionInputNorm), ("ln2", b.ln2 != nil, a.hasMLPInputNorm),
                ("ln1_post", b.ln1Post != nil, a.normPlacement.normsWrite), ("ln2_post", b.ln2Post != nil, a.normPlacement.normsWrite),
                ("q_norm", b.queryNorm != nil, a.queryKeyNorm != nil), ("k_norm", b.keyNorm != nil, a.queryKeyNorm != nil),
            ] where present != expected {
                throw ModelError.invalidArchitecture("block \(i) \(present ? "has" : "lacks") the norm \(name) "
                    + "(\(a.normPlacement.rawValue)-norm\(a.queryKeyNorm.map { ", query-key norms \($0.rawValue)" } ?? ""))")
            }
        }
        self.architecture = architecture
        self.weights = weights
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs the model on `tokens` and returns the arrays of the requested kinds
    /// (for every layer), e.g.
    /// `let run = try model.run(tokens, recording: [.residPost, .attnOut])` then
    /// `run["blocks.3.hook_attn_out"]` is a `[T, D]` tensor. Logits are included
    /// only when `.logits` is requested.
    public func run(_ tokens: [Int], recording: Set<HookKind> = [.logits],
                    interventions: [Intervention] = []) throws -> Run {
        try validate(tokens: tokens)
        try validate(interventions: interventions, length: tokens.count)
        try checkFits(length: tokens.count, recording: recording)
        let pass = ForwardPass(architecture, length: tokens.count)
        pass.setTokens(tokens)
        var recorder = Recorder(recording)
        let read = recording.contains(.logits) || recording.contains(.lnFinalScale) || recording.contains(.lnFinalNormalized)
        forward(pass, plan: InterventionPlan(interventions, layerCount: architecture.layerCount), recorder: &recorder,
                finalRead: read ? .all : .none)
        try checkFinite(pass, interventions.isEmpty ? nil : "with \(interventions.map(String.init(describing:)).joined(separator: ", "))")
        if read { recorder.record(.logits, pass.logits.pointer, shape: [tokens.count, architecture.vocabularySize]) }
        return Run(tokens: tokens, arrays: recorder.arrays)
    }

    /// A forward pass over `tokens` handing every array of `recording` to
    /// `sink` as it is produced (in computation order), instead of keeping it.
    func forwardStreaming(_ tokens: [Int], recording: Set<HookKind>,
                          sink: @escaping (HookPoint, UnsafeBufferPointer<Float>, [Int]) throws -> Void) throws {
        let pass = ForwardPass(architecture, length: tokens.count)
        pass.setTokens(tokens)
        var recorder = Recorder(recording, sink: sink)
        let read = recording.contains(.logits) || recording.contains(.lnFinalScale) || recording.contains(.lnFinalNormalized)
        forward(pass, plan: InterventionPlan(layerCount: architecture.layerCount), recorder: &recorder,
                finalRead: read ? .all : .none)
        try checkFinite(pass)
        if read { recorder.record(.logits, pass.logits.pointer, shape: [tokens.count, architecture.vocabularySize]) }
        if let error = recorder.sinkError { throw error }
    }

    /// Logits `[T, V]` of a forward pass.
    public func logits(_ tokens: [Int], interventions: [Intervention] = []) throws -> Tensor {
        try run(tokens, recording: [.logits], interventions: interventions).logits!
    }

    // MARK: - Validation

    /// Checks token ids and length against the model.
    public func validate(tokens: [Int]) throws {
        if tokens.isEmpty { throw ModelError.emptyTokens }
        if tokens.count > architecture.maxPositions {
            throw ModelError.sequenceTooLong(length: tokens.count, maximum: architecture.maxPositions)
        }
        for (i, t) in tokens.enumerated() where t < 0 || t >= architecture.vocabularySize {
            throw ModelError.tokenOutOfRange(index: i, id: t, vocabularySize: architecture.vocabularySize)
        }
    }

    /// Checks layers, heads, hook points, payload shapes and positions of
    /// interventions (payloads against a sequence of `length` tokens, if given).
    public func validate(interventions: [Intervention], length: Int? = nil) throws {
        let a = architecture
        func checkLayer(_ l: Int) throws {
            guard l >= 0 && l < a.layerCount else { throw ModelError.layerOutOfRange(layer: l, layerCount: a.layerCount) }
        }
        for iv in interventions {
            func bad(_ why: String) -> ModelError { .invalidIntervention("\(iv): \(why)") }
            var width = a.width
            switch iv.target {
            case let .block(l), let .attention(l), let .mlp(l):
                try checkLayer(l)
            case let .head(l, h):
                try checkLayer(l)
                guard h >= 0 && h < a.headCount else { throw ModelError.headOutOfRange(layer: l, head: h, headCount: a.headCount) }
                width = a.headDimension
            case let .hook(point):
                if let l = point.layer { try checkLayer(l) }
                switch point {
                case .embed, .residPre, .residPost, .attnOut, .mlpOut: break
                case .posEmbed where a.hasLearnedPositions: break
                case .residMid where !a.parallelResidual: break
                case .mlpPost: width = a.mlpWidth
                default: throw bad("interventions at \(point.name) are not supported")
                }
                if iv.action == .skip { throw bad("skip acts on a block or sublayer, not on a hook point") }
            case .blockOrder:
                guard case let .order(order) = iv.action else { throw bad("the block order takes an order") }
                if order.isEmpty && a.layerCount > 0 { throw bad("the order is empty") }
                for l in order { try checkLayer(l) }
                continue
            }
            if case .order = iv.action { throw bad("an order applies to the whole stack of blocks") }
            if iv.positions != nil, iv.action == .skip { throw bad("skip takes no positions") }
            if let length {
                for p in iv.positions ?? [] where p < 0 || p >= length {
                    throw bad("position \(p) is outside the \(length) tokens")
                }
                switch iv.action {
                case let .replace(t) where t.shape != [length, width]:
                    throw bad("the replacement has shape \(t.shape), expected [\(length), \(width)]")
                case let .add(t) where t.shape != [width] && t.shape != [length, width]:
                    throw bad("the added array has shape \(t.shape), expected [\(width)] or [\(length), \(width)]")
                default: break
                }
            }
        }
    }

    // MARK: - Forward

    /// Which rows of the last stream `forward` reads out as logits.
    enum FinalRead {
        /// No final read (the caller reads the stream itself).
        case none
        /// Every row: `pass.logits` `[N, V]`.
        case all
        /// Only the last row (batch 1), into row 0 of `pass.logits` and of the
        /// final norm's buffers: what a metric of the last position needs,
        /// without the `[T, D] x [D, V]` unembedding of the other rows.
        case lastRow
    }

    /// Runs the tokens of `pass` through the model with the interventions of
    /// `plan`, recording what `recorder` wants (recording needs batch 1).
    ///
    /// With `from` > 0 the pass restarts at that slot of `plan.order`: its
    /// stream must hold the stream entering that slot (a clean run's
    /// `resid_pre`), which a sweep reuses instead of recomputing the blocks
    /// below. `finalRead` says which rows' logits go into `pass.logits`.
    func forward(_ pass: ForwardPass, plan: InterventionPlan, recorder: inout Recorder, from start: Int = 0,
                 finalRead read: FinalRead = .all) {
        precondition(!pass.keepsActivations || plan.order == Array(0..<architecture.layerCount),
                     "a pass that keeps activations runs every block once, in order")
        precondition(read != .lastRow || pass.batch == 1)
        pass.order = plan.order
        pass.intervened = !plan.isClean
        pass.firstNonFinite = nil
        if start == 0 { embed(pass, plan: plan, recorder: &recorder) }
        for slot in start..<plan.order.count {
            block(plan.order[slot], slot: slot, pass, plan: plan, recorder: &recorder)
            if recorder.sinkError != nil { return }          // a streamed trace that cannot be written stops here
        }
        guard read != .none else { return }
        let a = architecture, n = read == .all ? pass.rows : 1
        finalRead(pass.stream.pointer + (pass.rows - n) * a.width, rows: n, normed: pass.finalNormed?.pointer,
                  mean: pass.finalMean.pointer, rstd: pass.finalRstd.pointer, projected: pass.projected?.pointer,
                  into: pass.logits.pointer)
        if pass.firstNonFinite == nil && !Elementwise.allFinite(pass.logits.pointer, n * a.vocabularySize) {
            pass.firstNonFinite = .logits
        }
        if let normed = pass.finalNormed, read == .all {
            recordScale(.lnFinalScale, pass.finalRstd.pointer, rows: n, recorder: &recorder)
            recorder.record(.lnFinalNormalized, normed.pointer, shape: [n, a.width])
        }
    }

    /// Applies the plan's actions at `point` to the array `[N, width]`,
    /// notes it in `pass.firstNonFinite` if it is the first to hold NaN or
    /// infinity, and records it.
    func visit(_ point: HookPoint, _ x: UnsafeMutablePointer<Float>, _ pass: ForwardPass, width: Int,
               plan: InterventionPlan, recorder: inout Recorder) {
        if let actions = plan.points[point] {
            for action in actions {
                for b in 0..<pass.batch {
                    action.apply(x + b * pass.length * width, rows: pass.length, stride: width, column: 0, count: width)
                }
            }
        }
        if pass.firstNonFinite == nil && !Elementwise.allFinite(x, pass.rows * width) { pass.firstNonFinite = point }
        recorder.record(point, x, shape: [pass.rows, width])
    }

    /// Throws when the last forward of `pass` produced NaN or infinity, naming
    /// the first hook point where it appeared.
    func checkFinite(_ pass: ForwardPass, _ context: String? = nil) throws {
        if let point = pass.firstNonFinite { throw ModelError.nonFinite(where: point.name, context: context) }
    }

    /// Records a norm's divisor `[N, 1]` (sigma or RMS, eps included) from its reciprocal.
    func recordScale(_ point: HookPoint, _ rstd: UnsafePointer<Float>, rows: Int, recorder: inout Recorder) {
        recorder.record(point, Tensor(shape: [rows, 1]) { out in for i in 0..<rows { out[i] = 1 / rstd[i] } })
    }

    // MARK: - Embedding

    /// The stream entering slot 0 `[N, D]`: token embedding (through
    /// project-in, if any; times the embedding scale) plus learned positions, if any.
    func embed(_ pass: ForwardPass, plan: InterventionPlan, recorder: inout Recorder) {
        let a = architecture, n = pass.rows, d = a.width, e = a.embeddingWidth
        let x = pass.input(0)
        let table = weights.tokenEmbedding
        if let projectIn = weights.projectIn, let raw = pass.embedded {
            for r in 0..<n { table.copyRow(Int(pass.tokens[r]), into: raw.pointer + r * e) }
            projectIn.apply(raw.pointer, rows: n, into: x, threads: threads)
        } else {
            for r in 0..<n { table.copyRow(Int(pass.tokens[r]), into: x + r * d) }
        }
        if a.embeddingScale != 1 { Elementwise.scale(x, n * d, by: a.embeddingScale) }
        visit(.embed, x, pass, width: d, plan: plan, recorder: &recorder)
        if case let .learned(offset) = a.positions, let positions = weights.positionEmbedding {
            let t = pass.length
            let rows = FloatBuffer(t * d)                                         // [T, D]
            let first = offset + pass.positionOffset
            positions.copyRows(first..<(first + t), into: rows.pointer)
            if plan.points[.posEmbed] != nil || recorder.wants(.posEmbed) {
                let pos = FloatBuffer(n * d)                                      // [N, D]
                for b in 0..<pass.batch { (pos.pointer + b * t * d).update(from: rows.pointer, count: t * d) }
                visit(.posEmbed, pos.pointer, pass, width: d, plan: plan, recorder: &recorder)
                Elementwise.add(pos.pointer, into: x, n * d)
            } else {
                for b in 0..<pass.batch { Elementwise.add(rows.pointer, into: x + b * t * d, t * d) }
            }
        }
    }

    // MARK: - Blocks

    /// Block `layer`, run in `slot` of the order: reads `pass.input(slot)`,
    /// writes `pass.output(slot)` (the same buffer unless the pass keeps activations).
    ///
    /// Each sublayer reads the stream (through its input norm for pre and
    /// sandwich placements) and writes `pass.attnWrite` / `pass.mlpWrite`
    /// (through its write norm for sandwich and output placements), which the
    /// skip connection adds; a post-norm block normalises after the add.
    func block(_ layer: Int, slot: Int, _ pass: ForwardPass, plan: InterventionPlan, recorder: inout Recorder) {
        let a = architecture, d = a.width, n = pass.rows, nd = n * d
        let w = weights.blocks[layer], c = pass.activations(slot)
        let x = pass.input(slot), y = pass.output(slot)
        let skip = a.skipConnections
        func norm(_ input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ weights: NormWeights,
                  mean: FloatBuffer, rstd: FloatBuffer, scale point: HookPoint) {
            weights.apply(input, into: out, mean: mean.pointer, rstd: rstd.pointer, rows: n, width: d, architecture: a,
                          threads: threads)
            if recorder.wants(point.kind) { recordScale(point, rstd.pointer, rows: n, recorder: &recorder) }
        }
        /// A sublayer's input: the stream through the sublayer's norm into `out`
        /// (pre/sandwich-norm and parallel blocks), or the stream itself (post and output: `out` is nil).
        func read(_ stream: UnsafeMutablePointer<Float>, into out: FloatBuffer?, _ weights: NormWeights?,
                  mean: FloatBuffer, rstd: FloatBuffer, scale point: HookPoint) -> UnsafePointer<Float> {
            guard let out, let weights else { return UnsafePointer(stream) }
            norm(stream, into: out.pointer, weights, mean: mean, rstd: rstd, scale: point)
            return UnsafePointer(out.pointer)
        }
        /// A sublayer's output `raw` into its write `[N, D]`: through the write
        /// norm (sandwich and output placements) or as it is.
        func write(_ raw: FloatBuffer?, _ weights: NormWeights?, into out: FloatBuffer, mean: FloatBuffer?,
                   rstd: FloatBuffer?, scale point: HookPoint) {
            guard let raw, let weights, let mean, let rstd else { return }
            norm(raw.pointer, into: out.pointer, weights, mean: mean, rstd: rstd, scale: point)
        }

        visit(.residPre(layer), x, pass, width: d, plan: plan, recorder: &recorder)
        if plan.skipBlock[layer] {
            if x != y { y.update(from: x, count: nd) }
            if !a.parallelResidual { recorder.record(.residMid(layer), y, shape: [n, d]) }
            visit(.residPost(layer), y, pass, width: d, plan: plan, recorder: &recorder)
            return
        }

        // Attention: read (through ln1 unless post/output-norm), write pass.attnWrite (through ln1_post).
        let attnSkipped = plan.skipAttention[layer]
        if attnSkipped {
            pass.attnWrite.zero()
        } else {
            let input = read(x, into: c.ln1Out, w.ln1, mean: c.ln1Mean, rstd: c.ln1Rstd, scale: .ln1Scale(layer))
            attention(layer, input: input, into: c.attnRaw?.pointer ?? pass.attnWrite.pointer, c, pass, plan: plan,
                      recorder: &recorder)
            write(c.attnRaw, w.ln1Post, into: pass.attnWrite, mean: c.ln1PostMean, rstd: c.ln1PostRstd,
                  scale: .ln1PostScale(layer))
        }
        visit(.attnOut(layer), pass.attnWrite.pointer, pass, width: d, plan: plan, recorder: &recorder)

        let mlpSkipped = plan.skipMLP[layer]
        if a.parallelResidual {
            // Both sublayers read resid_pre: y = x + attn(ln1 x) + mlp(ln2 x), or mlp(ln1 x) with a shared norm.
            if mlpSkipped {
                pass.mlpWrite.zero()
            } else {
                let input: UnsafePointer<Float>
                if a.sharedParallelNorm {
                    input = attnSkipped ? read(x, into: c.ln1Out, w.ln1, mean: c.ln1Mean, rstd: c.ln1Rstd, scale: .ln1Scale(layer))
                        : UnsafePointer(c.ln1Out!.pointer)
                } else {
                    input = read(x, into: c.ln2Out, w.ln2, mean: c.ln2Mean, rstd: c.ln2Rstd, scale: .ln2Scale(layer))
                }
                mlp(layer, input: input, into: pass.mlpWrite.pointer, c, pass, plan: plan, recorder: &recorder)
            }
            visit(.mlpOut(layer), pass.mlpWrite.pointer, pass, width: d, plan: plan, recorder: &recorder)
            if x != y { y.update(from: x, count: nd) }
            Elementwise.add(pass.attnWrite.pointer, into: y, nd)
            Elementwise.add(pass.mlpWrite.pointer, into: y, nd)
            visit(.residPost(layer), y, pass, width: d, plan: plan, recorder: &recorder)
            return
        }

        // h = x + attn (attn alone for a plain stack); post-norm: mid = ln1(h).
        c.h.pointer.update(from: pass.attnWrite.pointer, count: nd)
        if skip { Elementwise.add(x, into: c.h.pointer, nd) }
        var mid = c.h.pointer
        if let m = c.mid, let ln1 = w.ln1, !attnSkipped {
            norm(c.h.pointer, into: m.pointer, ln1, mean: c.ln1Mean, rstd: c.ln1Rstd, scale: .ln1Scale(layer))
            mid = m.pointer
        }
        visit(.residMid(layer), mid, pass, width: d, plan: plan, recorder: &recorder)

        // MLP: read (through ln2 unless post/output-norm), write pass.mlpWrite (through ln2_post).
        if mlpSkipped {
            pass.mlpWrite.zero()
        } else {
            let input = read(mid, into: c.ln2Out, w.ln2, mean: c.ln2Mean, rstd: c.ln2Rstd, scale: .ln2Scale(layer))
            mlp(layer, input: input, into: c.mlpRaw?.pointer ?? pass.mlpWrite.pointer, c, pass, plan: plan,
                recorder: &recorder)
            write(c.mlpRaw, w.ln2Post, into: pass.mlpWrite, mean: c.ln2PostMean, rstd: c.ln2PostRstd,
                  scale: .ln2PostScale(layer))
        }
        visit(.mlpOut(layer), pass.mlpWrite.pointer, pass, width: d, plan: plan, recorder: &recorder)

        // y = mid + mlp (mlp alone for a plain stack); post-norm: y = ln2(h2).
        if let h2 = c.h2, let ln2 = w.ln2, !mlpSkipped {
            h2.pointer.update(from: pass.mlpWrite.pointer, count: nd)
            if skip { Elementwise.add(mid, into: h2.pointer, nd) }
            norm(h2.pointer, into: y, ln2, mean: c.ln2Mean, rstd: c.ln2Rstd, scale: .ln2Scale(layer))
        } else {
            if skip {
                if mid != y { y.update(from: mid, count: nd) }
                Elementwise.add(pass.mlpWrite.pointer, into: y, nd)
            } else {
                y.update(from: pass.mlpWrite.pointer, count: nd)
            }
        }
        visit(.residPost(layer), y, pass, width: d, plan: plan, recorder: &recorder)
    }

    // MARK: - Attention

    /// Causal self-attention of block `layer` on `input` `[N, D]`; writes
    /// `out` `[N, D]` (output projection and bias included). Queries and keys
    /// pass their norms (if any), then the layer's rotary (if any).
    func attention(_ layer: Int, input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: BlockActivations,
                   _ pass: ForwardPass, plan: InterventionPlan, recorder: inout Recorder) {
        let a = architecture, w = weights.blocks[layer]
        let h = a.headCount, dh = a.headDimension, d = a.width, n = pass.rows, t = pass.length
        w.qkv.apply(input, rows: n, into: c.qkv.pointer, threads: threads)                      // [N, (H + 2Hkv) Dh]
        if let qNorm = w.queryNorm, let kNorm = w.keyNorm, let scratch = pass.queryKeyScratch {
            normalizeQueriesAndKeys(c, qNorm, kNorm, scratch: scratch.pointer, rows: n)
        }
        if let rotary = pass.rotaryTable(layer: layer) {
            RotaryOp.apply(c.qkv.pointer, rows: n, length: t, stride: a.qkvWidth, heads: h + a.keyValueHeadCount,
                           headDimension: dh, table: rotary, inverse: false, positionOffset: pass.positionOffset, threads: threads)
        }
        if let cache = pass.cache {
            // Decoding: the new keys and values join the cache; the new queries read all of it.
            let kv = a.keyValueHeadCount * dh, start = pass.positionOffset
            let keys = cache.keys[layer].pointer, values = cache.values[layer].pointer
            for r in 0..<n {
                (keys + (start + r) * kv).update(from: c.qkv.pointer + r * a.qkvWidth + h * dh, count: kv)
                (values + (start + r) * kv).update(from: c.qkv.pointer + r * a.qkvWidth + h * dh + kv, count: kv)
            }
            AttentionOp.decode(q: c.qkv.pointer, qStride: a.qkvWidth, keys: keys, values: values, start: start, rows: n,
                               z: c.z.pointer, shape: attentionShape(pass, layer: layer))
        } else {
            AttentionOp.forward(qkv: c.qkv.pointer, probs: c.probs.pointer, z: c.z.pointer,
                                shape: attentionShape(pass, layer: layer), threads: threads)
            recorder.record(.attnPattern(layer), c.probs.pointer, shape: [h, t, t])              // [H, T, T] (batch 1)
        }

        // Head interventions act on each head's z before the output projection:
        // its slice of hook_result is z_h · W_O[h] and is linear in z_h.
        for action in plan.heads[layer] {
            for b in 0..<pass.batch {
                action.apply(c.z.pointer + b * t * h * dh, rows: t, stride: h * dh, column: action.head! * dh, count: dh)
            }
        }
        recorder.record(.attnZ(layer), c.z.pointer, shape: [n, h, dh])                          // [T, H, Dh] (batch 1)
        if recorder.wants(.attnResult) {
            // Per-head writes z_h · W_O[h] [T, H, D]; their sum plus the bias is
            // the attention write, so recording them costs no extra multiply.
            let zs = SharedPointer(c.z.pointer)
            let result = Tensor(shape: [n, h, d]) { result in
                let rows = SharedPointer(result)
                Parallel.forEachSlice(h, threads: n * h * dh * d < 1 << 20 ? 1 : threads) { heads in
                    for head in heads {
                        w.output.weight.multiply(zs.base + head * dh, lda: h * dh, m: n, into: rows.base + head * d, ldc: h * d,
                                                 kRange: (head * dh)..<((head + 1) * dh))
                    }
                }
                for i in 0..<n {
                    let row = out + i * d
                    if let bias = w.output.bias {
                        bias.withUnsafeBufferPointer { row.update(from: $0.baseAddress!, count: d) }
                    } else {
                        row.update(repeating: 0, count: d)
                    }
                    for head in 0..<h { Elementwise.add(result + (i * h + head) * d, into: row, d) }
                }
            }
            recorder.record(.attnResult(layer), result)
        } else {
            w.output.apply(c.z.pointer, rows: n, into: out, threads: threads)
        }
    }

    /// The query-key norms of one block, in place on the q and k columns of
    /// `c.qkv`, keeping the inputs in `c.qRaw`, `c.kRaw` for the backward.
    /// Per head, q `[N, H Dh]` is normalised as `[N H, Dh]`; whole, as `[N, H Dh]`.
    func normalizeQueriesAndKeys(_ c: BlockActivations, _ qNorm: NormWeights, _ kNorm: NormWeights,
                                 scratch: UnsafeMutablePointer<Float>, rows n: Int) {
        let a = architecture, dh = a.headDimension, stride = a.qkvWidth
        for (heads, column, raw, norm, mean, rstd) in [(a.headCount, 0, c.qRaw!, qNorm, c.qMean!, c.qRstd!),
                                                      (a.keyValueHeadCount, a.headCount * dh, c.kRaw!, kNorm, c.kMean!, c.kRstd!)] {
            let width = heads * dh
            Elementwise.copyRows(c.qkv.pointer + column, stride: stride, into: raw.pointer, stride: width, rows: n, width: width)
            let perHead = a.queryKeyNorm == .perHead
            norm.apply(raw.pointer, into: scratch, mean: mean.pointer, rstd: rstd.pointer, rows: perHead ? n * heads : n,
                       width: perHead ? dh : width, architecture: a, rms: true, threads: threads)
            Elementwise.copyRows(scratch, stride: width, into: c.qkv.pointer + column, stride: stride, rows: n, width: width)
        }
    }

    /// Sizes of one attention call of `layer` on `pass`.
    func attentionShape(_ pass: ForwardPass, layer: Int) -> AttentionShape {
        let a = architecture
        return AttentionShape(batch: pass.batch, length: pass.length, heads: a.headCount, keyValueHeads: a.keyValueHeadCount,
                              headDimension: a.headDimension, scale: a.attentionScale, window: a.window(layer: layer),
                              softCap: a.attentionSoftCap)
    }

    // MARK: - MLP

    /// The MLP of block `layer` on `input` `[N, D]`; writes `out` `[N, D]`.
    func mlp(_ layer: Int, input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: BlockActivations,
             _ pass: ForwardPass, plan: InterventionPlan, recorder: inout Recorder) {
        let a = architecture, w = weights.blocks[layer], n = pass.rows
        w.up.apply(input, rows: n, into: c.up.pointer, threads: threads)                        // [N, F] or [N, 2F]
        ActivationOp.forward(c.up.pointer, into: c.hidden.pointer, rows: n, width: a.mlpWidth, gated: a.gatedMLP,
                             activation: a.activation, threads: threads)                          // [N, F]
        visit(.mlpPost(layer), c.hidden.pointer, pass, width: a.mlpWidth, plan: plan, recorder: &recorder)
        w.down.apply(c.hidden.pointer, rows: n, into: out, threads: threads)
    }

    // MARK: - Final read

    /// Everything between the last block and the logits, on `rows` rows of a
    /// stream `x` `[rows, D]`: final norm (if any, into `normed` with its
    /// mean and rstd `[rows]`), project-out (if any, into `projected`
    /// `[rows, E]`), unembedding plus its bias into `logits` `[rows, V]`.
    func finalRead(_ x: UnsafePointer<Float>, rows: Int, normed: UnsafeMutablePointer<Float>?,
                   mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                   projected: UnsafeMutablePointer<Float>?, into logits: UnsafeMutablePointer<Float>) {
        let a = architecture
        var current = x
        if let norm = weights.finalNorm, let normed {
            norm.apply(x, into: normed, mean: mean, rstd: rstd, rows: rows, width: a.width, architecture: a, threads: threads)
            current = UnsafePointer(normed)
        }
        if let projectOut = weights.projectOut, let projected {
            projectOut.apply(current, rows: rows, into: projected, threads: threads)
            current = UnsafePointer(projected)
        }
        weights.unembedding.apply(current, rows: rows, into: logits, threads: threads)
        if let cap = a.finalSoftCap {
            SoftCapOp.forward(logits, rows: rows, width: a.vocabularySize, cap: cap, threads: threads)
        }
    }

    /// The final read of `rows` rows of a stream `[rows, D]`, into new buffers: logits `[rows, V]`.
    func finalRead(_ x: UnsafePointer<Float>, rows: Int) -> FloatBuffer {
        let a = architecture
        let normed = a.hasFinalNorm ? FloatBuffer(rows * a.width) : nil
        let mean = FloatBuffer(rows), rstd = FloatBuffer(rows)
        let projected = a.hasProjection ? FloatBuffer(rows * a.embeddingWidth) : nil
        let logits = FloatBuffer(rows * a.vocabularySize)
        finalRead(x, rows: rows, normed: normed?.pointer, mean: mean.pointer, rstd: rstd.pointer,
                  projected: projected?.pointer, into: logits.pointer)
        return logits
    }
}

extension NormWeights {
    /// Row-wise norm of `x` into `y` `[rows, width]` (in place allowed), keeping
    /// mean and rstd `[rows]`; kind, epsilon and weight offset from `a` (RMSNorm when `rms`).
    func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
               rstd: UnsafeMutablePointer<Float>, rows: Int, width: Int, architecture a: Architecture, rms: Bool? = nil,
               threads: Int) {
        weight.withUnsafeBufferPointer { w in
            withOptionalPointer(bias) { b in
                NormOp.forward(x, into: y, mean: mean, rstd: rstd, rows: rows, width: width, weight: w.baseAddress!,
                               offset: a.normWeightOffset, bias: b, epsilon: a.normEpsilon, rms: rms ?? (a.normKind == .rmsNorm),
                               threads: threads)
            }
        }
    }
}
