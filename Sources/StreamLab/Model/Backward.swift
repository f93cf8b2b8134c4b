/// The gradient of the loss with respect to one block's input, split by path
/// (the `gradients` command): `skip` went through neither sublayer (the skip
/// connections, and for post-norm the norms' backward), `mlp` went through the
/// MLP and then the attention's skip connection, `attention` through the
/// attention sublayer. skip + mlp + attention = dL/d resid_pre exactly,
/// because every backward map here is linear in the upstream gradient.
/// All `[T, D]` (batch 1).
public struct BlockGradientPaths: Sendable {
    public var residPre: [Float]
    public var residPost: [Float]
    public var skip: [Float]
    public var mlp: [Float]
    public var attention: [Float]
    /// dL/d of the block's other hook points: `hook_resid_mid` (empty for
    /// parallel blocks), `hook_attn_out`, `hook_mlp_out` `[T, D]` and
    /// `attn.hook_z` `[T, H Dh]` (what attribution patching multiplies by).
    public var residMid: [Float] = []
    public var attnOut: [Float] = []
    public var mlpOut: [Float] = []
    public var z: [Float] = []
}

/// Where the backward accumulates parameter gradients: a flat buffer laid
/// out by `ParameterLayout(architecture)`.
struct GradientSink {
    let layout: ParameterLayout
    let base: UnsafeMutablePointer<Float>

    func at(_ offset: Int?) -> UnsafeMutablePointer<Float>? { offset.map { base + $0 } }
}

/// W^T of every linear map of one `Weights`, packed on first use and kept
/// while the same weights are differentiated again.
final class TransposedWeights {
    private var owner: Weights?
    private var packed: [ObjectIdentifier: PackedMatrix] = [:]

    func of(_ linear: Linear, in weights: Weights, threads: Int = 1) -> PackedMatrix {
        if owner !== weights {
            owner = weights           // held strongly, so identifiers stay unique
            packed.removeAll()
        }
        let key = ObjectIdentifier(linear.weight)
        if let p = packed[key] { return p }
        let p = linear.weight.transposed(threads: threads)
        packed[key] = p
        return p
    }
}

extension Transformer {
    /// The backward of the last forward of `pass` (which must keep its
    /// activations and have run without interventions): from dL/dlogits
    /// `[N, V]`, accumulates every parameter's gradient into `gradients`
    /// (laid out by `ParameterLayout`; nil: stream gradients only) and leaves
    /// dL/d resid_pre of block 0 in `pass.gradients.stream`. With `paths`,
    /// returns per block dL/d resid_pre, dL/d resid_post and the split of the
    /// former by path (batch 1).
    ///
    /// With `lastRow` the forward read out only the last row
    /// (`FinalRead.lastRow`) and `dLogits` is that row's `[V]`: the other
    /// rows' logits have no gradient (stream gradients only).
    @discardableResult
    func backward(_ pass: ForwardPass, dLogits: UnsafePointer<Float>, into gradients: UnsafeMutablePointer<Float>?,
                  transposed: TransposedWeights, paths: Bool = false, lastRow: Bool = false) -> [BlockGradientPaths] {
        precondition(pass.keepsActivations && !pass.intervened, "the backward needs a clean pass that kept its activations")
        precondition(!lastRow || (gradients == nil && pass.batch == 1))
        if lastRow {
            lastRowReadBackward(pass, dLogits: dLogits, transposed: transposed)
        } else {
            finalReadBackward(pass, dLogits: dLogits, into: gradients, transposed: transposed)
        }
        let sink = gradients.map { GradientSink(layout: ParameterLayout(architecture), base: $0) }
        var result: [BlockGradientPaths] = []
        for layer in stride(from: architecture.layerCount - 1, through: 0, by: -1) {
            if let p = blockBackward(layer, pass, sink: sink, transposed: transposed, paths: paths) { result.append(p) }
        }
        if let sink { embeddingBackward(pass, sink: sink, transposed: transposed) }
        return result.reversed()
    }

    /// Through the final read of every row: dL/d(last stream) `[N, D]` into
    /// `pass.gradients.stream` from dL/dlogits `[N, V]`, with the gradients of
    /// the final norm, project-out and unembedding into `gradients` (if any).
    func finalReadBackward(_ pass: ForwardPass, dLogits: UnsafePointer<Float>, into gradients: UnsafeMutablePointer<Float>?,
                           transposed: TransposedWeights) {
        let a = architecture, n = pass.rows, d = a.width, e = a.embeddingWidth, v = a.vocabularySize
        let g = pass.gradients
        let sink = gradients.map { GradientSink(layout: ParameterLayout(a), base: $0) }
        let l = sink?.layout
        func wt(_ linear: Linear) -> PackedMatrix { transposed.of(linear, in: weights, threads: threads) }
        var dLogits = dLogits
        if let cap = a.finalSoftCap, let uncapped = g.uncappedLogits {
            // Through the soft-cap: d(before) = d(after) · (1 - tanh²).
            uncapped.pointer.update(from: dLogits, count: n * v)
            SoftCapOp.backward(uncapped.pointer, capped: pass.logits.pointer, rows: n, width: v, cap: cap, threads: threads)
            dLogits = UnsafePointer(uncapped.pointer)
        }

        // Final read: logits = unembed(project_out(final_norm(stream))) + bias.
        let unembedInput = UnsafePointer(pass.projected?.pointer ?? pass.finalNormed?.pointer ?? pass.stream.pointer)
        let dUnembedInput = g.temp.pointer                                                          // [N, E or D]
        if let sink, let ub = l!.unembedBias { LinearOp.columnSums(dLogits, rows: n, width: v, into: sink.base + ub, threads: threads) }
        let inputWidth = pass.projected != nil ? e : d
        if a.tiedEmbeddings {
            // dx = dLogits · wte; d(wte) += dLogits^T · x  ([V, E], the embedding's own layout).
            wt(weights.unembedding).multiply(dLogits, lda: v, m: n, into: dUnembedInput, ldc: inputWidth, threads: threads)
            if let sink {
                let dt = g.transposes.transpose(dLogits, rows: n, columns: v, threads: threads)     // [V, N]
                PackedMatrix(rowMajor: UnsafeBufferPointer(start: unembedInput, count: n * inputWidth), rows: n, columns: inputWidth)
                    .multiply(dt, lda: TransposeWorkspace.leadingDimension(n), m: v, into: sink.base + l!.tokenEmbedding,
                              ldc: inputWidth, accumulate: true, threads: threads)
            }
        } else {
            LinearOp.backward(dLogits, x: unembedInput, rows: n, inputs: inputWidth, outputs: v, weightT: wt(weights.unembedding),
                              dx: dUnembedInput, accumulate: false, dWeight: sink?.at(l!.unembedWeight), dBias: nil,
                              workspace: g.transposes, threads: threads)
        }
        var dNormed = dUnembedInput
        if let projectOut = weights.projectOut {
            let x = UnsafePointer(pass.finalNormed?.pointer ?? pass.stream.pointer)
            LinearOp.backward(dUnembedInput, x: x, rows: n, inputs: d, outputs: e, weightT: wt(projectOut), dx: g.temp2.pointer,
                              accumulate: false, dWeight: sink?.at(l!.projectOut), dBias: nil, workspace: g.transposes,
                              threads: threads)
            dNormed = g.temp2.pointer
        }
        if let norm = weights.finalNorm {
            norm.backward(dNormed, x: pass.stream.pointer, mean: pass.finalMean.pointer, rstd: pass.finalRstd.pointer, rows: n,
                          width: d, architecture: a, into: g.stream.pointer, accumulate: false,
                          dWeight: sink?.at(l!.finalNormWeight), dBias: sink?.at(l!.finalNormBias), threads: threads)
        } else {
            g.stream.pointer.update(from: dNormed, count: n * d)
        }
    }

    /// Through the final read of the last row only (the forward's
    /// `FinalRead.lastRow` left its buffers in row 0): dL/d(last stream) is
    /// zero but for the last row. The unembedding's part reads only the
    /// columns with a non-zero gradient.
    func lastRowReadBackward(_ pass: ForwardPass, dLogits: UnsafePointer<Float>, transposed: TransposedWeights) {
        let a = architecture, n = pass.rows, d = a.width, e = a.embeddingWidth, v = a.vocabularySize
        let g = pass.gradients
        var dLogits = dLogits
        if let cap = a.finalSoftCap, let uncapped = g.uncappedLogits {
            uncapped.pointer.update(from: dLogits, count: v)
            SoftCapOp.backward(uncapped.pointer, capped: pass.logits.pointer, rows: 1, width: v, cap: cap, threads: 1)
            dLogits = UnsafePointer(uncapped.pointer)
        }
        let dUnembedInput = g.temp.pointer                                                          // [1, E or D]
        weights.unembedding.weight.multiplyTransposed(row: dLogits, into: dUnembedInput)
        var dNormed = dUnembedInput
        let last = pass.stream.pointer + (n - 1) * d
        if let projectOut = weights.projectOut {
            let x = UnsafePointer(pass.finalNormed?.pointer ?? last)
            LinearOp.backward(dUnembedInput, x: x, rows: 1, inputs: d, outputs: e, weightT: transposed.of(projectOut, in: weights, threads: threads),
                              dx: g.temp2.pointer, accumulate: false, dWeight: nil, dBias: nil, workspace: g.transposes, threads: 1)
            dNormed = g.temp2.pointer
        }
        g.stream.pointer.update(repeating: 0, count: (n - 1) * d)
        if let norm = weights.finalNorm {
            norm.backward(dNormed, x: last, mean: pass.finalMean.pointer, rstd: pass.finalRstd.pointer, rows: 1, width: d,
                          architecture: a, into: g.stream.pointer + (n - 1) * d, accumulate: false, dWeight: nil, dBias: nil,
                          threads: 1)
        } else {
            (g.stream.pointer + (n - 1) * d).update(from: dNormed, count: d)
        }
    }

    /// dL/d(embedding parameters) from dL/d resid_pre of block 0 in `pass.gradients.stream`.
    func embeddingBackward(_ pass: ForwardPass, sink: GradientSink, transposed: TransposedWeights) {
        let a = architecture, l = sink.layout, g = pass.gradients, n = pass.rows, t = pass.length
        let d = a.width, e = a.embeddingWidth
        let dx = g.stream.pointer
        if let p = l.positionEmbedding, case let .learned(offset) = a.positions {
            for r in 0..<n { Elementwise.add(dx + r * d, into: sink.base + p + (r % t + offset) * d, d) }
        }
        var dTokens = UnsafePointer(dx)
        if let projectIn = weights.projectIn, let raw = pass.embedded, let dRaw = g.embedded {
            LinearOp.backward(dx, x: raw.pointer, rows: n, inputs: e, outputs: d, weightT: transposed.of(projectIn, in: weights, threads: threads),
                              dx: dRaw.pointer, accumulate: false, dWeight: sink.at(l.projectIn), dBias: nil,
                              workspace: g.transposes, threads: threads)
            dTokens = UnsafePointer(dRaw.pointer)
        }
        if a.embeddingScale != 1 {
            // The scaled embedding's gradient: d(wte row) = scale · d(stream row).
            let scaled = g.temp
            scaled.pointer.update(from: dTokens, count: n * e)
            Elementwise.scale(scaled.pointer, n * e, by: a.embeddingScale)
            dTokens = UnsafePointer(scaled.pointer)
        }
        let wte = sink.base + l.tokenEmbedding
        for r in 0..<n { Elementwise.add(dTokens + r * e, into: wte + Int(pass.tokens[r]) * e, e) }
    }

    /// One block's backward: `pass.gradients.stream` holds dL/d(output) on
    /// entry and dL/d(input) on return.
    func blockBackward(_ layer: Int, _ pass: ForwardPass, sink: GradientSink?, transposed: TransposedWeights,
                       paths: Bool) -> BlockGradientPaths? {
        let a = architecture, w = weights.blocks[layer], c = pass.activations(layer), g = pass.gradients
        let slots = sink?.layout.blocks[layer]
        let n = pass.rows, d = a.width, nd = n * d
        let skip = a.skipConnections
        let dOut = g.stream.pointer
        func copy(_ p: UnsafePointer<Float>) -> [Float] { Array(UnsafeBufferPointer(start: p, count: nd)) }
        let zeros = { [Float](repeating: 0, count: nd) }
        let adjoint = SublayerAdjoint(model: self, layer: layer, pass: pass, sink: sink, transposed: transposed)
        func normBack(_ norm: NormWeights?, _ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: FloatBuffer?,
                      rstd: FloatBuffer?, into out: UnsafeMutablePointer<Float>, weight: Int?, bias: Int?,
                      parameters: Bool = true) {
            adjoint.normBack(norm, dy, x: x, mean: mean, rstd: rstd, into: out, weight: weight, bias: bias, parameters: parameters)
        }
        func mlpBack(_ dy: UnsafePointer<Float>, input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
            adjoint.mlpBack(dy, input: input, into: out)
        }
        func attentionBack(_ dy: UnsafePointer<Float>, input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
            adjoint.attentionBack(dy, input: input, into: out)
            if paths { zGradient = Array(UnsafeBufferPointer(start: g.z.pointer, count: n * w.output.inputs)) }
        }

        var zGradient: [Float] = []
        let x = UnsafePointer(pass.input(layer))
        let residPost = paths ? copy(dOut) : []
        if a.parallelResidual {
            // y = x + attn(ln1 x) + mlp(ln2 x): dx = dy + ln2'(mlp'(dy)) + ln1'(attn'(dy));
            // with a shared norm, dx = dy + ln1'(mlp'(dy) + attn'(dy)).
            let mlpInput = UnsafePointer((a.sharedParallelNorm ? c.ln1Out : c.ln2Out)!.pointer)
            mlpBack(dOut, input: mlpInput, into: g.temp.pointer)
            attentionBack(dOut, input: c.ln1Out!.pointer, into: g.temp2.pointer)
            var split: ([Float], [Float], [Float]) = ([], [], [])
            if a.sharedParallelNorm {
                if paths {
                    // Each path through ln1's backward separately (it is linear in its upstream).
                    normBack(w.ln1, g.temp.pointer, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.written.pointer,
                             weight: nil, bias: nil, parameters: false)
                    let mlpPath = copy(g.written.pointer)
                    normBack(w.ln1, g.temp2.pointer, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.written.pointer,
                             weight: nil, bias: nil, parameters: false)
                    split = (copy(dOut), mlpPath, copy(g.written.pointer))
                }
                Elementwise.add(g.temp2.pointer, into: g.temp.pointer, nd)
                normBack(w.ln1, g.temp.pointer, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.temp.pointer,
                         weight: slots?.ln1Weight, bias: slots?.ln1Bias)
                Elementwise.add(g.temp.pointer, into: dOut, nd)
            } else {
                normBack(w.ln2, g.temp.pointer, x: x, mean: c.ln2Mean, rstd: c.ln2Rstd, into: g.temp.pointer,
                         weight: slots?.ln2Weight, bias: slots?.ln2Bias)
                normBack(w.ln1, g.temp2.pointer, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.temp2.pointer,
                         weight: slots?.ln1Weight, bias: slots?.ln1Bias)
                if paths { split = (copy(dOut), copy(g.temp.pointer), copy(g.temp2.pointer)) }
                Elementwise.add(g.temp.pointer, into: dOut, nd)
                Elementwise.add(g.temp2.pointer, into: dOut, nd)
            }
            guard paths else { return nil }
            return BlockGradientPaths(residPre: copy(dOut), residPost: residPost, skip: split.0, mlp: split.1, attention: split.2,
                                      attnOut: residPost, mlpOut: residPost, z: zGradient)
        }

        // Post-norm: through ln2 (input h2), in place: dOut = dL/dh2.
        if let h2 = c.h2 {
            normBack(w.ln2, dOut, x: h2.pointer, mean: c.ln2Mean, rstd: c.ln2Rstd, into: dOut,
                     weight: slots?.ln2Weight, bias: slots?.ln2Bias)
        }
        let mlpOutGradient = paths ? copy(dOut) : []                  // the MLP's write is added here
        // MLP; its input is ln2Out (pre/sandwich-norm), mid (post-norm) or h (output-norm).
        let mid = UnsafePointer(c.mid?.pointer ?? c.h.pointer)
        mlpBack(dOut, input: c.ln2Out.map { UnsafePointer($0.pointer) } ?? mid, into: g.temp.pointer)
        if c.ln2Out != nil {
            normBack(w.ln2, g.temp.pointer, x: mid, mean: c.ln2Mean, rstd: c.ln2Rstd, into: g.temp.pointer,
                     weight: slots?.ln2Weight, bias: slots?.ln2Bias)
        }
        var skipPath: [Float] = [], mlpPath: [Float] = []
        if paths {
            // Pre/sandwich/output: skip = dOut, mlp = d(mid) via the MLP. Post-norm: both still pass ln1's backward.
            if c.mid != nil {
                normBack(w.ln1, dOut, x: c.h.pointer, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.temp2.pointer,
                         weight: nil, bias: nil, parameters: false)
                skipPath = skip ? copy(g.temp2.pointer) : zeros()
                normBack(w.ln1, g.temp.pointer, x: c.h.pointer, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.temp2.pointer,
                         weight: nil, bias: nil, parameters: false)
                mlpPath = skip ? copy(g.temp2.pointer) : zeros()
            } else {
                skipPath = skip ? copy(dOut) : zeros()
                mlpPath = skip ? copy(g.temp.pointer) : zeros()
            }
        }
        // dmid = (skip ? dOut : 0) + d(mid) via the MLP.
        if skip { Elementwise.add(g.temp.pointer, into: dOut, nd) } else { dOut.update(from: g.temp.pointer, count: nd) }
        let midGradient = paths ? copy(dOut) : []
        // Post-norm: through ln1 (input h), in place: dOut = dL/dh.
        if c.mid != nil {
            normBack(w.ln1, dOut, x: c.h.pointer, mean: c.ln1Mean, rstd: c.ln1Rstd, into: dOut,
                     weight: slots?.ln1Weight, bias: slots?.ln1Bias)
        }
        let attnOutGradient = paths ? copy(dOut) : []                 // the attention's write is added to h
        attentionBack(dOut, input: UnsafePointer(c.ln1Out?.pointer ?? pass.input(layer)), into: g.temp.pointer)
        if c.ln1Out != nil {
            normBack(w.ln1, g.temp.pointer, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: g.temp.pointer,
                     weight: slots?.ln1Weight, bias: slots?.ln1Bias)
        }
        let attentionPath = paths ? copy(g.temp.pointer) : []
        if skip { Elementwise.add(g.temp.pointer, into: dOut, nd) } else { dOut.update(from: g.temp.pointer, count: nd) }
        guard paths else { return nil }
        return BlockGradientPaths(residPre: copy(dOut), residPost: residPost, skip: skipPath, mlp: mlpPath, attention: attentionPath,
                                  residMid: midGradient, attnOut: attnOutGradient, mlpOut: mlpOutGradient, z: zGradient)
    }

    /// The query-key norms' backward, in place on the q and k columns of
    /// `dqkv` `[N, QKV]` (gradients with respect to their outputs on entry,
    /// their inputs on return), weight gradients into the block's slots.
    func queryKeyNormBackward(_ c: BlockActivations, _ qNorm: NormWeights, _ kNorm: NormWeights,
                              dqkv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, rows n: Int,
                              slots: BlockSlots?, sink: GradientSink?) {
        let a = architecture, dh = a.headDimension, stride = a.qkvWidth, perHead = a.queryKeyNorm == .perHead
        for (heads, column, raw, norm, mean, rstd, weight) in [
            (a.headCount, 0, c.qRaw!, qNorm, c.qMean!, c.qRstd!, slots?.qNormWeight),
            (a.keyValueHeadCount, a.headCount * dh, c.kRaw!, kNorm, c.kMean!, c.kRstd!, slots?.kNormWeight),
        ] {
            let width = heads * dh
            Elementwise.copyRows(dqkv + column, stride: stride, into: scratch, stride: width, rows: n, width: width)
            norm.backward(scratch, x: raw.pointer, mean: mean.pointer, rstd: rstd.pointer, rows: perHead ? n * heads : n,
                          width: perHead ? dh : width, architecture: a, rms: true, into: scratch, accumulate: false,
                          dWeight: sink?.at(weight), dBias: nil, threads: threads)
            Elementwise.copyRows(scratch, stride: width, into: dqkv + column, stride: stride, rows: n, width: width)
        }
    }
}

extension NormWeights {
    /// The norm's backward (see `NormOp.backward`); kind and weight offset
    /// from `a` (RMSNorm when `rms`).
    func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                  rows: Int, width: Int, architecture a: Architecture, rms: Bool? = nil, into dx: UnsafeMutablePointer<Float>,
                  accumulate: Bool, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?, threads: Int) {
        weight.withUnsafeBufferPointer { w in
            NormOp.backward(dy, x: x, mean: mean, rstd: rstd, rows: rows, width: width, weight: w.baseAddress!,
                            offset: a.normWeightOffset, rms: rms ?? (a.normKind == .rmsNorm), into: dx, accumulate: accumulate,
                            dWeight: dWeight, dBias: dBias, threads: threads)
        }
    }
}

/// A forward pass over a batch `[B, T]`, its mean next-token loss and its
/// backward: what training, `gradients` and every gradient-based probe run.
/// Buffers are allocated once and reused by every step.
public final class GradientPass {
    public let architecture: Architecture
    public var threads: Int
    let pass: ForwardPass
    let targets: UnsafeMutablePointer<Int32>    // [N], -1 = not scored
    let dLogits: FloatBuffer                    // [N, V]
    let losses: FloatBuffer                     // [N]
    let transposed = TransposedWeights()
    private(set) var scoredCount = 0
    /// Mean loss of the last forward pass.
    public private(set) var loss: Float = .nan

    /// Every step packs multi-megabyte matrices and frees them again. glibc
    /// serves such blocks with fresh mmap pages by default, which the kernel
    /// must zero on first touch (5% of a step); keep them in the heap instead.
    static let configureAllocator: Void = Allocator.keepLargeBuffersForReuse()

    public init(_ architecture: Architecture, batch: Int, length: Int, threads: Int) {
        Self.configureAllocator
        precondition(batch > 0 && length > 0 && length <= architecture.maxPositions)
        self.architecture = architecture
        self.threads = max(1, threads)
        pass = ForwardPass(architecture, batch: batch, length: length, keepsActivations: true)
        targets = .allocate(capacity: batch * length)
        targets.initialize(repeating: -1, count: batch * length)
        dLogits = FloatBuffer(batch * length * architecture.vocabularySize)
        losses = FloatBuffer(batch * length)
    }

    deinit { targets.deallocate() }

    public var batch: Int { pass.batch }
    public var length: Int { pass.length }
    var rows: Int { pass.rows }

    /// Sets the inputs `[B, T]` and the targets `[B, T]` (-1: position not scored).
    public func setBatch(tokens input: [Int32], targets target: [Int32]) {
        precondition(input.count == rows && target.count == rows)
        let v = Int32(architecture.vocabularySize)
        for i in 0..<rows {
            precondition(input[i] >= 0 && input[i] < v && target[i] < v)
            pass.tokens[i] = input[i]
            targets[i] = target[i]
        }
    }

    /// One sequence: targets are the next tokens, the last position unscored
    /// (the loss of docs/definitions.md: positions 0..T-2).
    public func setSequence(_ sequence: [Int]) {
        precondition(batch == 1 && sequence.count == length)
        let input = sequence.map { Int32($0) }
        let target = (0..<length).map { $0 + 1 < length ? Int32(sequence[$0 + 1]) : -1 }
        setBatch(tokens: input, targets: target)
    }

    /// Runs `model` forward and the loss; returns the mean loss over scored
    /// positions (NaN when none is scored). With `computeGradient` also
    /// computes dL/dlogits, ready for `backward`.
    @discardableResult
    public func forward(_ model: Transformer, computeGradient: Bool = true) -> Float {
        var silent = Recorder([])
        return forward(model, computeGradient: computeGradient, recorder: &silent)
    }

    /// `forward`, recording what `recorder` wants (batch 1).
    @discardableResult
    func forward(_ model: Transformer, computeGradient: Bool, recorder: inout Recorder) -> Float {
        precondition(model.architecture == architecture)
        var model = model
        model.threads = threads
        model.forward(pass, plan: InterventionPlan(layerCount: architecture.layerCount), recorder: &recorder)
        let n = rows, v = architecture.vocabularySize
        scoredCount = (0..<n).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
        let total = CrossEntropyOp.forwardBackward(
            logits: pass.logits.pointer, targets: targets, rows: n, vocabulary: v, losses: losses.pointer,
            dLogits: computeGradient ? dLogits.pointer : nil, gradScale: scoredCount > 0 ? 1 / Float(scoredCount) : 0,
            threads: threads)
        loss = scoredCount > 0 ? Float(total / Double(scoredCount)) : .nan
        return loss
    }

    /// The backward of the last `forward` (with `computeGradient`) of the same
    /// `model`: accumulates dLoss/dparameters into `gradients` (laid out by
    /// `ParameterLayout(architecture)`; zero it first for a fresh step; nil:
    /// only the stream's gradients). With `paths`, returns per block the
    /// gradient at its input and output and its split by path (batch 1).
    @discardableResult
    public func backward(_ model: Transformer, into gradients: UnsafeMutablePointer<Float>?,
                         paths: Bool = false) -> [BlockGradientPaths] {
        var model = model
        model.threads = threads
        return model.backward(pass, dLogits: dLogits.pointer, into: gradients, transposed: transposed, paths: paths)
    }

    /// The backward of the last `forward` of `model` from `outputGradient`
    /// (dM/dlogits `[B*T, V]` of any metric M instead of the loss's):
    /// stream gradients only, per block (batch 1).
    public func backward(_ model: Transformer, outputGradient: [Float]) -> [BlockGradientPaths] {
        precondition(outputGradient.count == rows * architecture.vocabularySize)
        outputGradient.withUnsafeBufferPointer { dLogits.pointer.update(from: $0.baseAddress!, count: $0.count) }
        return backward(model, into: nil, paths: true)
    }

    /// The first hook point of the last forward that held NaN or infinity, if any.
    public var firstNonFinite: HookPoint? { pass.firstNonFinite }

    /// dL/d resid_pre of block 0 after `backward` `[N, D]`.
    public var embeddingStreamGradient: Tensor { pass.gradients.stream.tensor([rows, architecture.width]) }

    /// Logits of the last forward pass, `[B*T, V]`.
    public var logitsTensor: Tensor { pass.logitsTensor }

    /// Per-position losses of the last forward pass `[B*T]` (0 where unscored).
    public var positionLosses: [Float] { losses.array }
}

/// The adjoints of one block's sublayers at the activations its forward
/// kept: each maps d(the sublayer's write) to d(its input), accumulating
/// parameter gradients into `sink` (if any). Scratch: the pass's gradient
/// buffers other than `stream`, `temp` and `temp2`.
struct SublayerAdjoint {
    let model: Transformer
    let layer: Int
    let pass: ForwardPass
    let sink: GradientSink?
    let transposed: TransposedWeights

    var architecture: Architecture { model.architecture }
    var w: BlockWeights { model.weights.blocks[layer] }
    var c: BlockActivations { pass.activations(layer) }
    var g: GradientBuffers { pass.gradients }
    var slots: BlockSlots? { sink?.layout.blocks[layer] }
    var threads: Int { model.threads }

    func wt(_ linear: Linear) -> PackedMatrix { transposed.of(linear, in: model.weights, threads: threads) }

    /// Norm backward over `[N, D]`, in place allowed; parameter gradients
    /// into the given slots only when `parameters`.
    func normBack(_ norm: NormWeights?, _ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: FloatBuffer?,
                  rstd: FloatBuffer?, into out: UnsafeMutablePointer<Float>, weight: Int?, bias: Int?,
                  parameters: Bool = true) {
        guard let norm, let mean, let rstd else { return }
        norm.backward(dy, x: x, mean: mean.pointer, rstd: rstd.pointer, rows: pass.rows, width: architecture.width,
                      architecture: architecture, into: out, accumulate: false, dWeight: parameters ? sink?.at(weight) : nil,
                      dBias: parameters ? sink?.at(bias) : nil, threads: threads)
    }

    /// MLP backward from d(write) `dy`, through ln2_post if any: d(its input) into `out`.
    func mlpBack(_ dy: UnsafePointer<Float>, input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let a = architecture, n = pass.rows, d = a.width, f = a.mlpWidth, c = c, g = g, w = w, slots = slots
        var dRaw = dy
        if let raw = c.mlpRaw {
            normBack(w.ln2Post, dy, x: raw.pointer, mean: c.ln2PostMean, rstd: c.ln2PostRstd, into: g.written.pointer,
                     weight: slots?.ln2PostWeight, bias: slots?.ln2PostBias)
            dRaw = UnsafePointer(g.written.pointer)
        }
        LinearOp.backward(dRaw, x: c.hidden.pointer, rows: n, inputs: f, outputs: d, weightT: wt(w.down), dx: g.hidden.pointer,
                          accumulate: false, dWeight: sink?.at(slots!.downWeight), dBias: sink?.at(slots!.downBias),
                          workspace: g.transposes, threads: threads)                              // [N, F]
        ActivationOp.backward(g.hidden.pointer, up: c.up.pointer, into: g.up.pointer, rows: n, width: f, gated: a.gatedMLP,
                              activation: a.activation, threads: threads)                     // [N, F | 2F]
        LinearOp.backward(g.up.pointer, x: input, rows: n, inputs: d, outputs: w.up.outputs, weightT: wt(w.up), dx: out,
                          accumulate: false, dWeight: sink?.at(slots!.upWeight), dBias: sink?.at(slots!.upBias),
                          workspace: g.transposes, threads: threads)                              // [N, D]
    }

    /// Attention backward from d(write) `dy`, through ln1_post if any: d(its
    /// input) into `out`; d(z) is left in `pass.gradients.z`.
    func attentionBack(_ dy: UnsafePointer<Float>, input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let a = architecture, n = pass.rows, d = a.width, c = c, g = g, w = w, slots = slots
        var dRaw = dy
        if let raw = c.attnRaw {
            normBack(w.ln1Post, dy, x: raw.pointer, mean: c.ln1PostMean, rstd: c.ln1PostRstd, into: g.written.pointer,
                     weight: slots?.ln1PostWeight, bias: slots?.ln1PostBias)
            dRaw = UnsafePointer(g.written.pointer)
        }
        LinearOp.backward(dRaw, x: c.z.pointer, rows: n, inputs: w.output.inputs, outputs: d, weightT: wt(w.output),
                          dx: g.z.pointer, accumulate: false, dWeight: sink?.at(slots!.outWeight),
                          dBias: sink?.at(slots!.outBias), workspace: g.transposes, threads: threads)    // [N, H Dh]
        AttentionOp.backward(dz: g.z.pointer, qkv: c.qkv.pointer, probs: c.probs.pointer, dqkv: g.qkv.pointer,
                             shape: model.attentionShape(pass, layer: layer), threads: threads)         // [N, QKV]
        if let rotary = pass.rotaryTable(layer: layer) {
            RotaryOp.apply(g.qkv.pointer, rows: n, length: pass.length, stride: a.qkvWidth,
                           heads: a.headCount + a.keyValueHeadCount, headDimension: a.headDimension,
                           table: rotary, inverse: true, threads: threads)
        }
        if let qNorm = w.queryNorm, let kNorm = w.keyNorm, let scratch = g.queryKey {
            model.queryKeyNormBackward(c, qNorm, kNorm, dqkv: g.qkv.pointer, scratch: scratch.pointer, rows: n, slots: slots,
                                       sink: sink)
        }
        LinearOp.backward(g.qkv.pointer, x: input, rows: n, inputs: d, outputs: a.qkvWidth, weightT: wt(w.qkv), dx: out,
                          accumulate: false, dWeight: sink?.at(slots!.qkvWeight), dBias: sink?.at(slots!.qkvBias),
                          workspace: g.transposes, threads: threads)                              // [N, D]
    }
}
