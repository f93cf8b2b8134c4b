/// What one block keeps from the forward pass for its backward.
/// N = B * T rows; D width; F MLP width (2F for a gated MLP's up projection).
final class LayerCache {
    let input: FloatBuffer       // [N, D]  resid_pre
    let ln1Out: FloatBuffer?     // [N, D]  pre-norm: the attention's input
    let ln1Mean: FloatBuffer     // [N]
    let ln1Rstd: FloatBuffer     // [N]
    let qkv: FloatBuffer         // [N, (H + 2Hkv) Dh], q and k rotated
    let probs: FloatBuffer       // [B, H, T, T]
    let z: FloatBuffer           // [N, H Dh]  heads before the output projection
    let h: FloatBuffer           // [N, D]  after the attention add (pre: resid_mid; post: ln1's input)
    let mid: FloatBuffer?        // [N, D]  post-norm: ln1's output (resid_mid)
    let ln2Out: FloatBuffer?     // [N, D]  pre-norm: the MLP's input
    let ln2Mean: FloatBuffer     // [N]
    let ln2Rstd: FloatBuffer     // [N]
    let up: FloatBuffer          // [N, F] or [N, 2F]  before the nonlinearity
    let hidden: FloatBuffer      // [N, F]  after it (mlp.hook_post)
    let h2: FloatBuffer?         // [N, D]  post-norm: ln2's input

    init(_ a: Architecture, batch: Int, length: Int) {
        let n = batch * length, d = a.width, post = a.normPlacement == .post
        input = FloatBuffer(n * d)
        ln1Out = post ? nil : FloatBuffer(n * d)
        ln1Mean = FloatBuffer(n); ln1Rstd = FloatBuffer(n)
        qkv = FloatBuffer(n * a.qkvWidth)
        probs = FloatBuffer(batch * a.headCount * length * length)
        z = FloatBuffer(n * a.headCount * a.headDimension)
        h = FloatBuffer(n * d)
        mid = post ? FloatBuffer(n * d) : nil
        ln2Out = post ? nil : FloatBuffer(n * d)
        ln2Mean = FloatBuffer(n); ln2Rstd = FloatBuffer(n)
        up = FloatBuffer(n * a.mlpWidth * (a.gatedMLP ? 2 : 1))
        hidden = FloatBuffer(n * a.mlpWidth)
        h2 = post ? FloatBuffer(n * d) : nil
    }
}

/// The gradient of the loss with respect to one block's input, split by path
/// (DESIGN of the `gradients` command): `skip` went through neither sublayer
/// (the skip connections, and for post-norm the norms' backward), `mlp` went
/// through the MLP and then the attention's skip connection, `attention`
/// through the attention sublayer. skip + mlp + attention = dL/d resid_pre
/// exactly, because every backward map here is linear in the upstream gradient.
public struct BlockGradientPaths: Sendable {
    public var residPre: [Float]     // [T, D]
    public var residPost: [Float]    // [T, D]
    public var skip: [Float]         // [T, D]
    public var mlp: [Float]          // [T, D]
    public var attention: [Float]    // [T, D]
}

/// Weights packed for the products of one step: W `[in, out]` for the
/// forward, W^T `[out, in]` for the input gradients. Cleared at every forward
/// pass, since the parameters may have changed since the last one.
final class PackedWeights {
    private var forward: [Int: PackedMatrix] = [:]
    private var transposed: [Int: PackedMatrix] = [:]

    func clear() {
        forward.removeAll(keepingCapacity: true)
        transposed.removeAll(keepingCapacity: true)
    }

    /// W `[in, out]` stored row-major at `values + offset`.
    func forward(_ values: UnsafePointer<Float>, _ offset: Int, inputs: Int, outputs: Int) -> PackedMatrix {
        if let p = forward[offset] { return p }
        let p = PackedMatrix(rowMajor: UnsafeBufferPointer(start: values + offset, count: inputs * outputs),
                             rows: inputs, columns: outputs)
        forward[offset] = p
        return p
    }

    /// W^T `[out, in]` of the same W.
    func transposed(_ values: UnsafePointer<Float>, _ offset: Int, inputs: Int, outputs: Int) -> PackedMatrix {
        if let p = transposed[offset] { return p }
        let p = PackedMatrix(transposed: UnsafeBufferPointer(start: values + offset, count: inputs * outputs),
                             rows: outputs, columns: inputs)
        transposed[offset] = p
        return p
    }
}

/// A forward pass with caches over a batch `[B, T]` and its backward pass,
/// for a `TrainableModel`. Buffers are allocated once and reused by every
/// step. Linear layers are one `[B*T, in] x [in, out]` product; attention runs
/// per sequence and head, split across threads.
public final class TrainingPass {
    public let model: TrainableModel
    public let batch: Int
    public let length: Int
    public var threads: Int

    let tokens: UnsafeMutablePointer<Int32>     // [N]
    let targets: UnsafeMutablePointer<Int32>    // [N], -1 = not scored
    let caches: [LayerCache]
    let finalInput: FloatBuffer                 // [N, D]  last resid_post
    let finalNormed: FloatBuffer?               // [N, D]
    let finalMean: FloatBuffer, finalRstd: FloatBuffer   // [N]
    let logits: FloatBuffer                     // [N, V]
    let dLogits: FloatBuffer                    // [N, V]
    let losses: FloatBuffer                     // [N]
    let sublayerOut: FloatBuffer                // [N, D]  attention / MLP write (not kept)
    // Backward scratch.
    let gStream: FloatBuffer                    // [N, D]
    let gTemp: FloatBuffer                      // [N, D]
    let gTemp2: FloatBuffer                     // [N, D]
    let gQKV: FloatBuffer                       // [N, (H + 2Hkv) Dh]
    let gZ: FloatBuffer                         // [N, H Dh]
    let gUp: FloatBuffer                        // [N, F] or [N, 2F]
    let gHidden: FloatBuffer                    // [N, F]
    let transposeSpace = TransposeWorkspace()
    let packed = PackedWeights()
    let rotary: RotaryTable?
    private(set) var scoredCount = 0
    /// Mean loss of the last forward pass.
    public private(set) var loss: Float = .nan

    public init(model: TrainableModel, batch: Int, length: Int, threads: Int) {
        Self.configureAllocator
        let a = model.architecture
        precondition(batch > 0 && length > 0 && length <= a.maxPositions)
        self.model = model
        self.batch = batch
        self.length = length
        self.threads = max(1, threads)
        let n = batch * length, d = a.width
        tokens = .allocate(capacity: n); tokens.initialize(repeating: 0, count: n)
        targets = .allocate(capacity: n); targets.initialize(repeating: -1, count: n)
        caches = (0..<a.layerCount).map { _ in LayerCache(a, batch: batch, length: length) }
        finalInput = FloatBuffer(n * d)
        finalNormed = a.hasFinalNorm ? FloatBuffer(n * d) : nil
        finalMean = FloatBuffer(n); finalRstd = FloatBuffer(n)
        logits = FloatBuffer(n * a.vocabularySize)
        dLogits = FloatBuffer(n * a.vocabularySize)
        losses = FloatBuffer(n)
        sublayerOut = FloatBuffer(n * d)
        gStream = FloatBuffer(n * d); gTemp = FloatBuffer(n * d); gTemp2 = FloatBuffer(n * d)
        gQKV = FloatBuffer(n * a.qkvWidth)
        gZ = FloatBuffer(n * a.headCount * a.headDimension)
        gUp = FloatBuffer(n * a.mlpWidth * (a.gatedMLP ? 2 : 1))
        gHidden = FloatBuffer(n * a.mlpWidth)
        if case let .rotary(dims, base) = a.positions {
            rotary = RotaryTable(dimensions: dims, base: base, length: length)
        } else {
            rotary = nil
        }
    }

    /// Every step packs multi-megabyte matrices and frees them again. glibc
    /// serves such blocks with fresh mmap pages by default, which the kernel
    /// must zero on first touch (5% of a step); keep them in the heap instead.
    static let configureAllocator: Void = StreamLab.keepLargeBuffersForReuse()

    deinit {
        tokens.deallocate()
        targets.deallocate()
    }

    var rows: Int { batch * length }

    /// Sets the inputs `[B, T]` and the targets `[B, T]` (-1: position not scored).
    public func setBatch(tokens input: [Int32], targets target: [Int32]) {
        precondition(input.count == rows && target.count == rows)
        let v = Int32(model.architecture.vocabularySize)
        for i in 0..<rows {
            precondition(input[i] >= 0 && input[i] < v && target[i] < v)
            tokens[i] = input[i]
            targets[i] = target[i]
        }
    }

    /// One sequence: targets are the next tokens, the last position unscored
    /// (the loss of DESIGN.md section 5: positions 0..T-2).
    public func setSequence(_ sequence: [Int]) {
        precondition(batch == 1 && sequence.count == length)
        let input = sequence.map { Int32($0) }
        let target = (0..<length).map { $0 + 1 < length ? Int32(sequence[$0 + 1]) : -1 }
        setBatch(tokens: input, targets: target)
    }

    // MARK: - Forward

    /// Runs the forward pass and the loss; returns the mean loss over scored
    /// positions (NaN when none is scored). With `computeGradient` also
    /// computes dL/dlogits, ready for `backward`.
    @discardableResult
    public func forward(computeGradient: Bool = true) -> Float {
        let a = model.architecture, l = model.layout, w = model.values.pointer
        let n = rows, d = a.width
        packed.clear()
        var offset = 0
        if case let .learned(o) = a.positions { offset = o }
        let first = caches.first?.input ?? finalInput
        EmbeddingOp.forward(tokens: tokens, rows: n, length: length, width: d, wte: w + l.tokenEmbedding,
                            wpe: l.positionEmbedding.map { UnsafePointer(w + $0) }, offset: offset, into: first.pointer)
        for layer in 0..<a.layerCount {
            let output = layer + 1 < a.layerCount ? caches[layer + 1].input : finalInput
            blockForward(layer, output: output.pointer)
        }
        // Final read: final norm (if any), unembedding (+ bias).
        var x = UnsafePointer(finalInput.pointer)
        if let normed = finalNormed, let fw = l.finalNormWeight {
            NormOp.forward(x, into: normed.pointer, mean: finalMean.pointer, rstd: finalRstd.pointer, rows: n, width: d,
                           weight: w + fw, bias: l.finalNormBias.map { UnsafePointer(w + $0) },
                           epsilon: a.normEpsilon, rms: a.normKind == .rmsNorm, threads: threads)
            x = UnsafePointer(normed.pointer)
        }
        let v = a.vocabularySize
        if let u = l.unembedWeight {
            LinearOp.forward(x, rows: n, weight: packed.forward(w, u, inputs: d, outputs: v), bias: nil,
                             into: logits.pointer, threads: threads)
        } else {
            // logits = x · wte^T: wte `[V, D]` is W^T of a `[D, V]` map.
            packed.transposed(w, l.tokenEmbedding, inputs: v, outputs: d)
                .multiply(x, lda: d, m: n, into: logits.pointer, ldc: v, threads: threads)          // [N, V]
        }
        if let ub = l.unembedBias { Elementwise.addRow(w + ub, into: logits.pointer, rows: n, width: v) }
        scoredCount = (0..<n).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
        let total = CrossEntropyOp.forwardBackward(
            logits: logits.pointer, targets: targets, rows: n, vocabulary: v, losses: losses.pointer,
            dLogits: computeGradient ? dLogits.pointer : nil, gradScale: scoredCount > 0 ? 1 / Float(scoredCount) : 0, threads: threads)
        loss = scoredCount > 0 ? Float(total / Double(scoredCount)) : .nan
        return loss
    }

    /// One block: reads `caches[layer].input`, writes its output to `output`.
    func blockForward(_ layer: Int, output: UnsafeMutablePointer<Float>) {
        let a = model.architecture, w = model.values.pointer, b = model.layout.blocks[layer], c = caches[layer]
        let n = rows, d = a.width, f = a.mlpWidth, skip = a.skipConnections
        let rms = a.normKind == .rmsNorm, eps = a.normEpsilon
        func bias(_ o: Int?) -> UnsafePointer<Float>? { o.map { UnsafePointer(w + $0) } }

        // Attention sublayer: read (through ln1 for pre-norm), write sublayerOut.
        let attnIn: UnsafePointer<Float>
        if let ln1Out = c.ln1Out {
            NormOp.forward(c.input.pointer, into: ln1Out.pointer, mean: c.ln1Mean.pointer, rstd: c.ln1Rstd.pointer,
                           rows: n, width: d, weight: w + b.ln1Weight, bias: bias(b.ln1Bias), epsilon: eps, rms: rms,
                           threads: threads)
            attnIn = UnsafePointer(ln1Out.pointer)
        } else {
            attnIn = UnsafePointer(c.input.pointer)
        }
        LinearOp.forward(attnIn, rows: n, weight: packed.forward(w, b.qkvWeight, inputs: d, outputs: a.qkvWidth),
                         bias: bias(b.qkvBias), into: c.qkv.pointer, threads: threads)                  // [N, QKV]
        if case let .rotary(dims, _) = a.positions, let rotary {
            RotaryOp.apply(c.qkv.pointer, rows: n, length: length, stride: a.qkvWidth, heads: a.headCount + a.keyValueHeadCount,
                           headDimension: a.headDimension, dimensions: dims, table: rotary, inverse: false, threads: threads)
        }
        AttentionOp.forward(qkv: c.qkv.pointer, probs: c.probs.pointer, z: c.z.pointer, shape: attentionShape, threads: threads)
        LinearOp.forward(c.z.pointer, rows: n, weight: packed.forward(w, b.outWeight, inputs: a.headCount * a.headDimension, outputs: d),
                         bias: bias(b.outBias), into: sublayerOut.pointer, threads: threads)            // [N, D]
        // h = x + attn (or attn alone for a plain stack); post-norm: mid = ln1(h).
        c.h.pointer.update(from: sublayerOut.pointer, count: n * d)
        if skip { Elementwise.add(c.input.pointer, into: c.h.pointer, n * d) }
        let mid: UnsafePointer<Float>
        if let m = c.mid {
            NormOp.forward(c.h.pointer, into: m.pointer, mean: c.ln1Mean.pointer, rstd: c.ln1Rstd.pointer, rows: n, width: d,
                           weight: w + b.ln1Weight, bias: bias(b.ln1Bias), epsilon: eps, rms: rms, threads: threads)
            mid = UnsafePointer(m.pointer)
        } else {
            mid = UnsafePointer(c.h.pointer)
        }

        // MLP sublayer: read (through ln2 for pre-norm), write sublayerOut.
        let mlpIn: UnsafePointer<Float>
        if let ln2Out = c.ln2Out {
            NormOp.forward(mid, into: ln2Out.pointer, mean: c.ln2Mean.pointer, rstd: c.ln2Rstd.pointer, rows: n, width: d,
                           weight: w + b.ln2Weight, bias: bias(b.ln2Bias), epsilon: eps, rms: rms, threads: threads)
            mlpIn = UnsafePointer(ln2Out.pointer)
        } else {
            mlpIn = mid
        }
        let upWidth = a.gatedMLP ? 2 * f : f
        LinearOp.forward(mlpIn, rows: n, weight: packed.forward(w, b.upWeight, inputs: d, outputs: upWidth),
                         bias: bias(b.upBias), into: c.up.pointer, threads: threads)                    // [N, F | 2F]
        ActivationOp.forward(c.up.pointer, into: c.hidden.pointer, rows: n, width: f, gated: a.gatedMLP,
                             activation: a.activation, threads: threads)                         // [N, F]
        LinearOp.forward(c.hidden.pointer, rows: n, weight: packed.forward(w, b.downWeight, inputs: f, outputs: d),
                         bias: bias(b.downBias), into: sublayerOut.pointer, threads: threads)           // [N, D]
        // out = mid + mlp (or mlp alone); post-norm: out = ln2(h2).
        let sum = c.h2?.pointer ?? output
        sum.update(from: sublayerOut.pointer, count: n * d)
        if skip { Elementwise.add(mid, into: sum, n * d) }
        if let h2 = c.h2 {
            NormOp.forward(h2.pointer, into: output, mean: c.ln2Mean.pointer, rstd: c.ln2Rstd.pointer, rows: n, width: d,
                           weight: w + b.ln2Weight, bias: bias(b.ln2Bias), epsilon: eps, rms: rms, threads: threads)
        }
    }

    var attentionShape: AttentionShape {
        let a = model.architecture
        return AttentionShape(batch: batch, length: length, heads: a.headCount, keyValueHeads: a.keyValueHeadCount,
                              headDimension: a.headDimension, scale: a.attentionScale, window: a.slidingWindow ?? Int.max)
    }

    // MARK: - Backward

    /// Accumulates dLoss/dparameters into `model.gradients` (zero them first
    /// for a fresh step). With `paths`, also returns per block the gradient
    /// at its input and output and the split of the input gradient by path
    /// (for batch 1; costs two extra norm backwards per post-norm block).
    @discardableResult
    public func backward(recordPaths: Bool = false) -> [BlockGradientPaths] {
        let a = model.architecture, l = model.layout, w = model.values.pointer, gw = model.gradients.pointer
        let n = rows, d = a.width, v = a.vocabularySize
        // Final read backward: dLogits -> d(final stream) in gStream.
        let x = UnsafePointer(finalNormed?.pointer ?? finalInput.pointer)
        if let ub = l.unembedBias { LinearOp.columnSums(dLogits.pointer, rows: n, width: v, into: gw + ub, threads: threads) }
        let dx: UnsafeMutablePointer<Float> = finalNormed != nil ? gTemp.pointer : gStream.pointer
        if let u = l.unembedWeight {
            LinearOp.backward(dLogits.pointer, x: x, rows: n, inputs: d, outputs: v,
                              weightT: packed.transposed(w, u, inputs: d, outputs: v), dx: dx, accumulate: false,
                              dWeight: gw + u, dBias: nil, workspace: transposeSpace, threads: threads)
        } else {
            // d(x_final) = dLogits · wte; d(wte) += dLogits^T · x_final.
            packed.forward(w, l.tokenEmbedding, inputs: v, outputs: d)
                .multiply(dLogits.pointer, lda: v, m: n, into: dx, ldc: d, threads: threads)     // [N, D]
            let dt = transposeSpace.transpose(dLogits.pointer, rows: n, columns: v, threads: threads)   // [V, N]
            PackedMatrix(rowMajor: UnsafeBufferPointer(start: x, count: n * d), rows: n, columns: d)
                .multiply(dt, lda: TransposeWorkspace.leadingDimension(n), m: v, into: gw + l.tokenEmbedding, ldc: d,
                          accumulate: true, threads: threads)                                   // [V, D]
        }
        if let fw = l.finalNormWeight {
            NormOp.backward(gTemp.pointer, x: finalInput.pointer, mean: finalMean.pointer, rstd: finalRstd.pointer, rows: n,
                            width: d, weight: w + fw, rms: a.normKind == .rmsNorm, into: gStream.pointer, accumulate: false,
                            dWeight: gw + fw, dBias: l.finalNormBias.map { gw + $0 }, threads: threads)
        }
        var paths: [BlockGradientPaths] = []
        for layer in stride(from: a.layerCount - 1, through: 0, by: -1) {
            if let p = blockBackward(layer, recordPaths: recordPaths) { paths.append(p) }
        }
        // Embedding backward.
        var offset = 0
        if case let .learned(o) = a.positions { offset = o }
        EmbeddingOp.backward(gStream.pointer, tokens: tokens, rows: n, length: length, width: d, dwte: gw + l.tokenEmbedding,
                             dwpe: l.positionEmbedding.map { gw + $0 }, offset: offset)
        return paths.reversed()
    }

    /// One block's backward: gStream holds dL/d(output) on entry and
    /// dL/d(input) on return.
    func blockBackward(_ layer: Int, recordPaths: Bool) -> BlockGradientPaths? {
        let a = model.architecture, w = model.values.pointer, gw = model.gradients.pointer
        let b = model.layout.blocks[layer], c = caches[layer]
        let n = rows, d = a.width, f = a.mlpWidth, nd = n * d
        let post = a.normPlacement == .post, skip = a.skipConnections, rms = a.normKind == .rmsNorm
        let g = gStream.pointer
        func grad(_ o: Int?) -> UnsafeMutablePointer<Float>? { o.map { gw + $0 } }
        func copy(_ p: UnsafePointer<Float>) -> [Float] { Array(UnsafeBufferPointer(start: p, count: nd)) }
        // Norm backward without parameter gradients (for the path split).
        func normBack(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: FloatBuffer, rstd: FloatBuffer,
                      weight: Int, into out: UnsafeMutablePointer<Float>) {
            NormOp.backward(dy, x: x, mean: mean.pointer, rstd: rstd.pointer, rows: n, width: d, weight: w + weight, rms: rms,
                            into: out, accumulate: false, dWeight: nil, dBias: nil, threads: threads)
        }
        let residPost = recordPaths ? copy(g) : []
        var skipPath: [Float] = [], mlpPath: [Float] = [], attentionPath: [Float] = []

        // Post-norm: through ln2 (input h2), in place: g = dL/dh2.
        if let h2 = c.h2 {
            NormOp.backward(g, x: h2.pointer, mean: c.ln2Mean.pointer, rstd: c.ln2Rstd.pointer, rows: n, width: d,
                            weight: w + b.ln2Weight, rms: rms, into: g, accumulate: false,
                            dWeight: gw + b.ln2Weight, dBias: grad(b.ln2Bias), threads: threads)
        }
        // MLP: down, activation, up. mlpIn is ln2Out (pre) or mid (post).
        let mid = UnsafePointer(c.mid?.pointer ?? c.h.pointer)
        let upWidth = a.gatedMLP ? 2 * f : f
        LinearOp.backward(g, x: c.hidden.pointer, rows: n, inputs: f, outputs: d, weightT: packed.transposed(w, b.downWeight, inputs: f, outputs: d),
                          dx: gHidden.pointer, accumulate: false, dWeight: gw + b.downWeight, dBias: grad(b.downBias),
                          workspace: transposeSpace, threads: threads)                           // [N, F]
        ActivationOp.backward(gHidden.pointer, up: c.up.pointer, into: gUp.pointer, rows: n, width: f, gated: a.gatedMLP,
                              activation: a.activation, threads: threads)                        // [N, F | 2F]
        let mlpIn = UnsafePointer(c.ln2Out?.pointer ?? c.mid!.pointer)
        LinearOp.backward(gUp.pointer, x: mlpIn, rows: n, inputs: d, outputs: upWidth, weightT: packed.transposed(w, b.upWeight, inputs: d, outputs: upWidth),
                          dx: gTemp.pointer, accumulate: false, dWeight: gw + b.upWeight, dBias: grad(b.upBias),
                          workspace: transposeSpace, threads: threads)                           // d(mlpIn) [N, D]
        // dmid = (skip ? g : 0) + [pre: ln2 backward of] d(mlpIn).
        if c.ln2Out != nil {
            NormOp.backward(gTemp.pointer, x: mid, mean: c.ln2Mean.pointer, rstd: c.ln2Rstd.pointer, rows: n, width: d,
                            weight: w + b.ln2Weight, rms: rms, into: gTemp.pointer, accumulate: false,
                            dWeight: gw + b.ln2Weight, dBias: grad(b.ln2Bias), threads: threads)
        }
        if recordPaths {
            // Pre-norm: skip = dOut, mlp = d(mid) via the MLP. Post-norm: both still pass ln1's backward.
            if post {
                normBack(g, x: c.h.pointer, mean: c.ln1Mean, rstd: c.ln1Rstd, weight: b.ln1Weight, into: gTemp2.pointer)
                skipPath = skip ? copy(gTemp2.pointer) : [Float](repeating: 0, count: nd)
                normBack(gTemp.pointer, x: c.h.pointer, mean: c.ln1Mean, rstd: c.ln1Rstd, weight: b.ln1Weight, into: gTemp2.pointer)
                mlpPath = skip ? copy(gTemp2.pointer) : [Float](repeating: 0, count: nd)
            } else {
                skipPath = skip ? copy(g) : [Float](repeating: 0, count: nd)
                mlpPath = skip ? copy(gTemp.pointer) : [Float](repeating: 0, count: nd)
            }
        }
        if skip { Elementwise.add(gTemp.pointer, into: g, nd) } else { g.update(from: gTemp.pointer, count: nd) }
        // Post-norm: through ln1 (input h), in place: g = dL/dh.
        if c.mid != nil {
            NormOp.backward(g, x: c.h.pointer, mean: c.ln1Mean.pointer, rstd: c.ln1Rstd.pointer, rows: n, width: d,
                            weight: w + b.ln1Weight, rms: rms, into: g, accumulate: false,
                            dWeight: gw + b.ln1Weight, dBias: grad(b.ln1Bias), threads: threads)
        }
        // Attention: output projection, attention, rotary, qkv.
        let zWidth = a.headCount * a.headDimension
        LinearOp.backward(g, x: c.z.pointer, rows: n, inputs: zWidth, outputs: d, weightT: packed.transposed(w, b.outWeight, inputs: zWidth, outputs: d),
                          dx: gZ.pointer, accumulate: false, dWeight: gw + b.outWeight, dBias: grad(b.outBias),
                          workspace: transposeSpace, threads: threads)                           // [N, H Dh]
        AttentionOp.backward(dz: gZ.pointer, qkv: c.qkv.pointer, probs: c.probs.pointer, dqkv: gQKV.pointer,
                             shape: attentionShape, threads: threads)                            // [N, QKV]
        if case let .rotary(dims, _) = a.positions, let rotary {
            RotaryOp.apply(gQKV.pointer, rows: n, length: length, stride: a.qkvWidth, heads: a.headCount + a.keyValueHeadCount,
                           headDimension: a.headDimension, dimensions: dims, table: rotary, inverse: true, threads: threads)
        }
        let attnIn = UnsafePointer(c.ln1Out?.pointer ?? c.input.pointer)
        LinearOp.backward(gQKV.pointer, x: attnIn, rows: n, inputs: d, outputs: a.qkvWidth, weightT: packed.transposed(w, b.qkvWeight, inputs: d, outputs: a.qkvWidth),
                          dx: gTemp.pointer, accumulate: false, dWeight: gw + b.qkvWeight, dBias: grad(b.qkvBias),
                          workspace: transposeSpace, threads: threads)                           // d(attnIn) [N, D]
        if c.ln1Out != nil {
            NormOp.backward(gTemp.pointer, x: c.input.pointer, mean: c.ln1Mean.pointer, rstd: c.ln1Rstd.pointer, rows: n,
                            width: d, weight: w + b.ln1Weight, rms: rms, into: gTemp.pointer, accumulate: false,
                            dWeight: gw + b.ln1Weight, dBias: grad(b.ln1Bias), threads: threads)
        }
        if recordPaths { attentionPath = copy(gTemp.pointer) }
        if skip { Elementwise.add(gTemp.pointer, into: g, nd) } else { g.update(from: gTemp.pointer, count: nd) }
        guard recordPaths else { return nil }
        return BlockGradientPaths(residPre: copy(g), residPost: residPost, skip: skipPath, mlp: mlpPath, attention: attentionPath)
    }

    // MARK: - Reading results

    /// Logits of the last forward pass, `[B*T, V]`.
    public var logitsTensor: Tensor { logits.tensor([rows, model.architecture.vocabularySize]) }

    /// Per-position losses of the last forward pass `[B*T]` (0 where unscored).
    public var positionLosses: [Float] { losses.array }
}
