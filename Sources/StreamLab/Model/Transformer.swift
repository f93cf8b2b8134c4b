#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A decoder-only Transformer of any supported family, configured by an
/// `Architecture` and run on one token sequence at a time.
///
/// The forward pass reads top to bottom (see `forward`): embed, then for every
/// block read the stream through a norm, write the attention output back,
/// read again, write the MLP output back; then the final read (final norm,
/// project-out, unembedding). Every intermediate array of DESIGN.md section 3
/// can be recorded, and any block, sublayer or head can be removed.
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
        self.architecture = architecture
        self.weights = weights
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs the model on `tokens` and returns the arrays of the requested kinds
    /// (for every layer), e.g.
    /// `let run = try model.run(tokens, recording: [.residPost, .attnOut])` then
    /// `run["blocks.3.hook_attn_out"]` is a `[T, D]` tensor. Logits are included
    /// only when `.logits` is requested. Interventions change the pass as
    /// DESIGN.md section 4 defines.
    public func run(_ tokens: [Int], recording: Set<HookKind> = [.logits],
                    interventions: [Intervention] = []) throws -> Run {
        try validate(tokens: tokens)
        try validate(interventions: interventions)
        var recorder = Recorder(recording)
        let plans = BlockPlan.plans(interventions, layerCount: architecture.layerCount)
        let stream = embed(tokens, recorder: &recorder)
        runBlocks(stream, length: tokens.count, from: 0, plans: plans, recorder: &recorder)
        if recording.contains(.logits) || recording.contains(.lnFinalScale) || recording.contains(.lnFinalNormalized) {
            let logits = finalRead(stream.pointer, rows: tokens.count, recorder: &recorder)
            recorder.record(.logits, logits.tensor([tokens.count, architecture.vocabularySize]))
        }
        return Run(tokens: tokens, arrays: recorder.arrays)
    }

    /// Logits `[T, V]` of a plain forward pass.
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

    /// Checks layer and head indices of interventions.
    public func validate(interventions: [Intervention]) throws {
        for iv in interventions {
            let l = iv.target.layer
            guard l >= 0 && l < architecture.layerCount else {
                throw ModelError.layerOutOfRange(layer: l, layerCount: architecture.layerCount)
            }
            if case let .head(_, h) = iv.target, h < 0 || h >= architecture.headCount {
                throw ModelError.headOutOfRange(layer: l, head: h, headCount: architecture.headCount)
            }
        }
    }

    // MARK: - Embedding

    /// The initial stream `[T, D]`: token embedding (through project-in, if
    /// any) plus learned positions, if any.
    func embed(_ tokens: [Int], recorder: inout Recorder) -> FloatBuffer {
        let a = architecture, t = tokens.count, d = a.width, e = a.embeddingWidth
        let x = FloatBuffer(t * d)
        let table = weights.tokenEmbedding
        if let projectIn = weights.projectIn {
            let raw = FloatBuffer(t * e)                                       // [T, E]
            for (i, id) in tokens.enumerated() { (raw.pointer + i * e).update(from: table.row(id), count: e) }
            projectIn.apply(raw.pointer, rows: t, into: x.pointer, threads: threads)
        } else {
            for (i, id) in tokens.enumerated() { (x.pointer + i * d).update(from: table.row(id), count: d) }
        }
        recorder.record(.embed, x.pointer, shape: [t, d])
        if case let .learned(offset) = a.positions, let table = weights.positionEmbedding {
            let pos = FloatBuffer(t * d)                                      // [T, D]
            pos.pointer.update(from: table.row(offset), count: t * d)
            recorder.record(.posEmbed, pos.pointer, shape: [t, d])
            Elementwise.add(pos.pointer, into: x.pointer, t * d)
        }
        return x
    }

    // MARK: - Blocks

    /// Runs blocks `start..<L` on the stream `x` `[T, D]` in place.
    func runBlocks(_ x: FloatBuffer, length t: Int, from start: Int, plans: [BlockPlan], recorder: inout Recorder) {
        let workspace = Workspace(architecture, length: t)
        for layer in start..<architecture.layerCount {
            block(layer, x.pointer, length: t, plan: plans[layer], workspace: workspace, recorder: &recorder)
        }
    }

    /// One block, in place on `x` `[T, D]`.
    func block(_ layer: Int, _ x: UnsafeMutablePointer<Float>, length t: Int, plan: BlockPlan,
               workspace ws: Workspace, recorder: inout Recorder) {
        let a = architecture, d = a.width, n = t * d
        let w = weights.blocks[layer]
        let post = a.normPlacement == .post
        recorder.record(.residPre(layer), x, shape: [t, d])
        if plan.skipBlock {
            if !a.parallelResidual { recorder.record(.residMid(layer), x, shape: [t, d]) }
            recorder.record(.residPost(layer), x, shape: [t, d])
            return
        }

        // Attention: read (through ln1 for pre-norm), write ws.attn [T, D].
        let attnSkipped = plan.attention == .skip
        if attnSkipped {
            ws.attn.zero()
        } else {
            let input: UnsafePointer<Float>
            if post {
                input = UnsafePointer(x)
            } else {
                normalize(x, into: ws.normed.pointer, rows: t, w.ln1, scale: .ln1Scale(layer), recorder: &recorder)
                input = UnsafePointer(ws.normed.pointer)
            }
            attention(layer, input: input, length: t, plan: plan, workspace: ws, recorder: &recorder)
            ablate(ws.attn, rows: t, width: d, mode: plan.attention)
        }
        recorder.record(.attnOut(layer), ws.attn.pointer, shape: [t, d])

        if a.parallelResidual {
            // Both sublayers read resid_pre: x + attn(ln1 x) + mlp(ln2 x).
            if plan.mlp == .skip {
                ws.mlp.zero()
            } else {
                normalize(x, into: ws.normed.pointer, rows: t, w.ln2, scale: .ln2Scale(layer), recorder: &recorder)
                mlp(layer, input: ws.normed.pointer, length: t, workspace: ws, recorder: &recorder)
                ablate(ws.mlp, rows: t, width: d, mode: plan.mlp)
            }
            recorder.record(.mlpOut(layer), ws.mlp.pointer, shape: [t, d])
            Elementwise.add(ws.attn.pointer, into: x, n)
            Elementwise.add(ws.mlp.pointer, into: x, n)
            recorder.record(.residPost(layer), x, shape: [t, d])
            return
        }

        addWrite(ws.attn.pointer, into: x, n)
        if post && !attnSkipped {
            normalize(x, into: x, rows: t, w.ln1, scale: .ln1Scale(layer), recorder: &recorder)
        }
        recorder.record(.residMid(layer), x, shape: [t, d])

        // MLP: read (through ln2 for pre-norm), write ws.mlp [T, D].
        let mlpSkipped = plan.mlp == .skip
        if mlpSkipped {
            ws.mlp.zero()
        } else {
            let input: UnsafePointer<Float>
            if post {
                input = UnsafePointer(x)
            } else {
                normalize(x, into: ws.normed.pointer, rows: t, w.ln2, scale: .ln2Scale(layer), recorder: &recorder)
                input = UnsafePointer(ws.normed.pointer)
            }
            mlp(layer, input: input, length: t, workspace: ws, recorder: &recorder)
            ablate(ws.mlp, rows: t, width: d, mode: plan.mlp)
        }
        recorder.record(.mlpOut(layer), ws.mlp.pointer, shape: [t, d])
        addWrite(ws.mlp.pointer, into: x, n)
        if post && !mlpSkipped {
            normalize(x, into: x, rows: t, w.ln2, scale: .ln2Scale(layer), recorder: &recorder)
        }
        recorder.record(.residPost(layer), x, shape: [t, d])
    }

    /// The residual add `x += write`, or `x = write` for a plain stack.
    @inline(__always)
    func addWrite(_ write: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, _ n: Int) {
        if architecture.skipConnections {
            Elementwise.add(write, into: x, n)
        } else {
            x.update(from: write, count: n)
        }
    }

    /// Applies a norm row-wise (in place allowed) and records its divisor.
    func normalize(_ x: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>, rows t: Int,
                   _ norm: NormWeights, scale point: HookPoint, recorder: inout Recorder) {
        let a = architecture
        let divisors: FloatBuffer? = recorder.wants(point.kind) ? FloatBuffer(t) : nil
        withOptionalPointer(norm.weight) { weight in
            withOptionalPointer(norm.bias) { bias in
                Elementwise.normalize(x, into: y, rows: t, width: a.width, rms: a.normKind == .rmsNorm,
                                      weight: weight, bias: bias, epsilon: a.normEpsilon, divisors: divisors?.pointer)
            }
        }
        if let divisors { recorder.record(point, divisors.tensor([t, 1])) }
    }

    /// Zero or mean-replace a write `[rows, width]` in place (skip was handled by the caller).
    func ablate(_ write: FloatBuffer, rows: Int, width: Int, mode: AblationMode?) {
        switch mode {
        case nil, .skip?: return
        case .zero?: write.zero()
        case .mean?: Self.meanReplace(write.pointer, rows: rows, width: width, stride: width)
        }
    }

    /// Replaces each column of `[rows, width]` (row stride `stride`) by its mean over rows.
    static func meanReplace(_ p: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int) {
        guard rows > 0 else { return }
        var mean = [Double](repeating: 0, count: width)
        for r in 0..<rows { for c in 0..<width { mean[c] += Double(p[r * stride + c]) } }
        for c in 0..<width { mean[c] /= Double(rows) }
        for r in 0..<rows { for c in 0..<width { p[r * stride + c] = Float(mean[c]) } }
    }

    // MARK: - Attention

    /// Causal self-attention of block `layer` on `input` `[T, D]`; writes
    /// `ws.attn` `[T, D]` (output projection and bias included).
    func attention(_ layer: Int, input: UnsafePointer<Float>, length t: Int, plan: BlockPlan,
                   workspace ws: Workspace, recorder: inout Recorder) {
        let a = architecture, w = weights.blocks[layer]
        let h = a.headCount, dh = a.headDimension, kvh = a.keyValueHeadCount, d = a.width
        let stride = a.qkvWidth
        w.qkv.apply(input, rows: t, into: ws.qkv.pointer, threads: threads)   // [T, (H + 2Hkv) Dh]
        if case let .rotary(dims, _) = a.positions, let rotary = ws.rotary {
            for i in 0..<t {
                let row = ws.qkv.pointer + i * stride
                for head in 0..<(h + kvh) {                                    // q heads, then k heads
                    rotary.apply(row + head * dh, position: i, dimensions: dims)
                }
            }
        }
        let qkv = SharedPointer(ws.qkv.pointer), z = SharedPointer(ws.z.pointer)
        let scale = a.attentionScale
        let group = h / kvh
        let headThreads = t * t * dh * h < 1 << 14 ? 1 : threads
        /// All heads; each head's [T, T] probabilities are copied to `pattern` when it is given.
        func attendAllHeads(pattern: UnsafeMutablePointer<Float>?) {
            let patternOut = pattern.map(SharedPointer.init)
            Parallel.forEachSlice(h, threads: headThreads) { heads in
                let scores = FloatBuffer(t * t)                               // [T, T] per thread
                for head in heads {
                    let kvHead = head / group
                    Attention.causalHead(
                        q: qkv.base + head * dh, k: qkv.base + (h + kvHead) * dh, v: qkv.base + (h + kvh + kvHead) * dh,
                        stride: stride, length: t, headDimension: dh, scale: scale, window: a.slidingWindow,
                        z: z.base + head * dh, zStride: h * dh, scores: scores.pointer)
                    if let patternOut { (patternOut.base + head * t * t).update(from: scores.pointer, count: t * t) }
                }
            }
        }
        if recorder.wants(.attnPattern) {
            recorder.record(.attnPattern(layer), Tensor(shape: [h, t, t]) { attendAllHeads(pattern: $0) })   // [H, T, T]
        } else {
            attendAllHeads(pattern: nil)
        }

        // Head interventions act on each head's z before the output projection:
        // its slice of hook_result is z_h · W_O[h] and is linear in z_h.
        for (head, mode) in plan.heads {
            let zh = ws.z.pointer + head * dh
            if mode == .mean {
                Self.meanReplace(zh, rows: t, width: dh, stride: h * dh)
            } else {
                for i in 0..<t { (zh + i * h * dh).update(repeating: 0, count: dh) }
            }
        }
        if recorder.wants(.attnResult) {
            // Per-head writes z_h · W_O[h] [T, H, D]; their sum plus the bias is
            // the attention write, so recording them costs no extra multiply.
            let zs = SharedPointer(ws.z.pointer)
            let result = Tensor(shape: [t, h, d]) { result in
                let rows = SharedPointer(result)
                Parallel.forEachSlice(h, threads: t * h * dh * d < 1 << 20 ? 1 : threads) { heads in
                    for head in heads {
                        w.output.weight.multiply(zs.base + head * dh, lda: h * dh, m: t, into: rows.base + head * d, ldc: h * d,
                                                 kRange: (head * dh)..<((head + 1) * dh))
                    }
                }
                for i in 0..<t {
                    let out = ws.attn.pointer + i * d
                    if let bias = w.output.bias {
                        bias.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: d) }
                    } else {
                        out.update(repeating: 0, count: d)
                    }
                    for head in 0..<h { Elementwise.add(result + (i * h + head) * d, into: out, d) }
                }
            }
            recorder.record(.attnResult(layer), result)
        } else {
            w.output.apply(ws.z.pointer, rows: t, into: ws.attn.pointer, threads: threads)
        }
    }

    // MARK: - MLP

    /// The MLP of block `layer` on `input` `[T, D]`; writes `ws.mlp` `[T, D]`.
    func mlp(_ layer: Int, input: UnsafePointer<Float>, length t: Int, workspace ws: Workspace,
             recorder: inout Recorder) {
        let a = architecture, w = weights.blocks[layer], f = a.mlpWidth
        w.up.apply(input, rows: t, into: ws.up.pointer, threads: threads)    // [T, F] or [T, 2F]
        if a.gatedMLP {
            // post = act(gate) * up, gate in the first F columns.
            for i in 0..<t {
                let row = ws.up.pointer + i * 2 * f
                Elementwise.activate(row, f, a.activation)
                let out = ws.hidden.pointer + i * f
                for j in 0..<f { out[j] = row[j] * row[f + j] }
            }
        } else {
            ws.hidden.pointer.update(from: ws.up.pointer, count: t * f)
            Elementwise.activate(ws.hidden.pointer, t * f, a.activation)
        }
        recorder.record(.mlpPost(layer), ws.hidden.pointer, shape: [t, f])
        w.down.apply(ws.hidden.pointer, rows: t, into: ws.mlp.pointer, threads: threads)
    }

    // MARK: - Final read

    /// Everything between the last block and the logits, applied to `rows`
    /// rows of a stream `[rows, D]`: final norm (if any), project-out (if
    /// any), unembedding plus its bias. Returns logits `[rows, V]`.
    func finalRead(_ x: UnsafePointer<Float>, rows: Int, recorder: inout Recorder) -> FloatBuffer {
        let a = architecture
        var current = x
        var keep: [FloatBuffer] = []
        if let norm = weights.finalNorm {
            let normed = FloatBuffer(rows * a.width)
            normalize(UnsafeMutablePointer(mutating: x), into: normed.pointer, rows: rows, norm,
                      scale: .lnFinalScale, recorder: &recorder)
            recorder.record(.lnFinalNormalized, normed.pointer, shape: [rows, a.width])
            current = UnsafePointer(normed.pointer)
            keep.append(normed)
        }
        if let projectOut = weights.projectOut {
            let projected = FloatBuffer(rows * a.embeddingWidth)
            projectOut.apply(current, rows: rows, into: projected.pointer, threads: threads)
            current = UnsafePointer(projected.pointer)
            keep.append(projected)
        }
        let logits = FloatBuffer(rows * a.vocabularySize)
        weights.unembedding.apply(current, rows: rows, into: logits.pointer, threads: threads)
        withExtendedLifetime(keep) {}
        return logits
    }
}

/// Scratch buffers of one forward pass, sized for T positions and reused by
/// every block.
final class Workspace {
    let normed: FloatBuffer   // [T, D]
    let qkv: FloatBuffer      // [T, (H + 2Hkv) Dh]
    let z: FloatBuffer        // [T, H Dh]
    let attn: FloatBuffer     // [T, D]
    let up: FloatBuffer       // [T, F] or [T, 2F]
    let hidden: FloatBuffer   // [T, F]
    let mlp: FloatBuffer      // [T, D]
    let rotary: RotaryTable?

    init(_ a: Architecture, length t: Int) {
        normed = FloatBuffer(t * a.width)
        qkv = FloatBuffer(t * a.qkvWidth)
        z = FloatBuffer(t * a.headCount * a.headDimension)
        attn = FloatBuffer(t * a.width)
        up = FloatBuffer(t * a.mlpWidth * (a.gatedMLP ? 2 : 1))
        hidden = FloatBuffer(t * a.mlpWidth)
        mlp = FloatBuffer(t * a.width)
        if case let .rotary(dims, base) = a.positions {
            rotary = RotaryTable(dimensions: dims, base: base, length: t)
        } else {
            rotary = nil
        }
    }
}

/// Cosines and sines of the rotary angles `t * base^(-2i/dims)`, computed as
/// the reference does (frequencies and products in float32, cos/sin of that
/// float angle), for positions `0..<length`.
struct RotaryTable {
    let half: Int
    let cos: [Float]   // [T, dims/2]
    let sin: [Float]   // [T, dims/2]

    init(dimensions dims: Int, base: Float, length t: Int) {
        half = dims / 2
        var c = [Float](repeating: 0, count: t * half), s = c
        for i in 0..<half {
            let inverseFrequency: Float = 1 / CMath.pow(base, Float(2 * i) / Float(dims))
            for p in 0..<t {
                let angle = Double(Float(p) * inverseFrequency)
                c[p * half + i] = Float(CMath.cos(angle))
                s[p * half + i] = Float(CMath.sin(angle))
            }
        }
        cos = c
        sin = s
    }

    /// Rotates the first `dimensions` entries of one head vector in place
    /// (rotate-half: pairs `(i, i + dims/2)`).
    @inline(__always)
    func apply(_ v: UnsafeMutablePointer<Float>, position: Int, dimensions: Int) {
        let base = position * half
        for i in 0..<half {
            let x1 = v[i], x2 = v[i + half]
            let c = cos[base + i], s = sin[base + i]
            v[i] = x1 * c - x2 * s
            v[i + half] = x2 * c + x1 * s
        }
    }
}
