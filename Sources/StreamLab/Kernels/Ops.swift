/// The operations of the forward pass, each with its backward beside it (as
/// llm.c does). Shapes are written beside every buffer; N = B * T rows.
/// Matrix products go through `Gemm` (the package's kernels); the rest are
/// SIMD loops split over rows with `Parallel.forEachSlice`.
///
/// Backward functions *accumulate* parameter gradients (`+=`), so gradients of
/// tied or shared parameters add up, and *write* (or, when `accumulate` is
/// set, add) the gradient of their input.

typealias F8 = SIMD8<Float>

/// Vector helpers of the training loops. The transcendentals are the
/// package's `VectorMath` (Kernels/); scalar `expf`/`tanhf` per element would
/// dominate the step time.
enum TrainMath {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> F8 {
        UnsafeRawPointer(p).loadUnaligned(as: F8.self)
    }
    @inline(__always) static func store(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
    }

    @inline(__always) static func exp(_ x: F8) -> F8 { VectorMath.exp(x) }
    @inline(__always) static func tanh(_ x: F8) -> F8 { VectorMath.tanh(x) }

    /// Lane-wise max and min. (`pointwiseMax`, `clamped` and `max()` of the
    /// standard library are generic out-of-line loops; `replacing(with:where:)`
    /// compiles to one vmaxps / vminps.)
    @inline(__always) static func maximum(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: a .< b) }
    @inline(__always) static func minimum(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: b .< a) }

    /// 1 / (1 + e^-x).
    @inline(__always) static func sigmoid(_ x: F8) -> F8 {
        1 / (1 + exp(-x))
    }
}

/// Rows split across threads only when there is enough work to pay for it.
@inline(__always)
func rowThreads(_ rows: Int, _ width: Int, _ threads: Int) -> Int {
    rows * width < 1 << 14 ? 1 : threads
}

/// Calls `body(part, rows)` for `parts` contiguous slices of `0..<count`,
/// running up to `threads` at once; `part` indexes per-slice scratch. The
/// partition depends only on `parts`, so results that are reduced over parts
/// in order do not depend on the number of threads.
@inline(__always)
func forEachPart(_ count: Int, parts: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
    Parallel.forEachSlice(parts, threads: min(parts, max(1, threads))) { slices in
        for p in slices {
            let start = count * p / parts, end = count * (p + 1) / parts
            if start < end { body(p, start..<end) }
        }
    }
}

/// Fixed number of partial sums for reductions over rows: 1 for small
/// inputs, else 4 (independent of the thread count, for reproducibility).
@inline(__always)
func reductionParts(_ rows: Int, _ width: Int) -> Int {
    rows * width < 1 << 14 || rows < 4 ? 1 : 4
}

// MARK: - Embedding

enum EmbeddingOp {
    /// x[n, :] = wte[tokens[n], :] + wpe[(n mod T) + offset, :].
    /// tokens `[N]`, wte `[V, D]`, wpe `[P + offset, D]`, x `[N, D]`.
    static func forward(tokens: UnsafePointer<Int32>, rows n: Int, length t: Int, width d: Int,
                        wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>?, offset: Int,
                        into x: UnsafeMutablePointer<Float>) {
        for r in 0..<n {
            let out = x + r * d
            out.update(from: wte + Int(tokens[r]) * d, count: d)
            if let wpe { Elementwise.add(wpe + (r % t + offset) * d, into: out, d) }
        }
    }

    /// dwte[tokens[n]] += dx[n]; dwpe[(n mod T) + offset] += dx[n].
    static func backward(_ dx: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, rows n: Int, length t: Int,
                         width d: Int, dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>?,
                         offset: Int) {
        for r in 0..<n {
            Elementwise.add(dx + r * d, into: dwte + Int(tokens[r]) * d, d)
            if let dwpe { Elementwise.add(dx + r * d, into: dwpe + (r % t + offset) * d, d) }
        }
    }
}

// MARK: - LayerNorm and RMSNorm

enum NormOp {
    /// Row-wise y = (x - mean) * rstd * (offset + w) + b (LayerNorm, rstd = 1/sqrt(var + eps))
    /// or y = x * rstd * (offset + w) (RMSNorm, rstd = 1/sqrt(mean(x^2) + eps)); offset is
    /// 1 for Gemma's norms, else 0. x, y `[rows, D]` (in place allowed); mean, rstd `[rows]`
    /// kept for the backward.
    static func forward(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                        mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                        rows: Int, width n: Int, weight: UnsafePointer<Float>, offset: Float = 0,
                        bias: UnsafePointer<Float>?, epsilon: Float, rms: Bool, threads: Int) {
        let shared = (SharedPointer(y), SharedPointer(mean), SharedPointer(rstd))
        Parallel.forEachSlice(rows, threads: rowThreads(rows, n, threads)) { range in
            let y = shared.0.base, mean = shared.1.base, rstd = shared.2.base
            for r in range {
                let xr = x + r * n, yr = y + r * n
                let m: Float = rms ? 0 : Elementwise.sum(xr, n) / Float(n)
                let s = 1 / (Elementwise.sumOfSquares(xr, n, shift: m) / Float(n) + epsilon).squareRoot()
                mean[r] = m
                rstd[r] = s
                let vm = F8(repeating: m), vs = F8(repeating: s), vo = F8(repeating: offset)
                var i = 0
                while i + 8 <= n {
                    var v = (TrainMath.load(xr + i) - vm) * vs * (vo + TrainMath.load(weight + i))
                    if let bias { v += TrainMath.load(bias + i) }
                    TrainMath.store(v, yr + i)
                    i += 8
                }
                while i < n {
                    yr[i] = (xr[i] - m) * s * (offset + weight[i]) + (bias?[i] ?? 0)
                    i += 1
                }
            }
        }
    }

    /// With g = dy * (offset + w) and xhat = (x - mean) * rstd:
    /// dx (+)= rstd * (g - mean(g) - xhat * mean(g * xhat))   (LayerNorm)
    /// dx (+)= rstd * (g - xhat * mean(g * xhat))             (RMSNorm)
    /// dw += sum_rows dy * xhat, db += sum_rows dy (when given).
    /// dy, x, dx `[rows, D]`; dx may be dy (in place).
    static func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                         rstd: UnsafePointer<Float>, rows: Int, width n: Int, weight: UnsafePointer<Float>,
                         offset: Float = 0, rms: Bool, into dx: UnsafeMutablePointer<Float>, accumulate: Bool,
                         dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?, threads: Int) {
        let parts = reductionParts(rows, n)
        // Per-slice partial sums of dw | db, reduced in slice order (deterministic).
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: parts * 2 * n)
        partial.initialize(repeating: 0, count: parts * 2 * n)
        defer { partial.deallocate() }
        let shared = (SharedPointer(dx), SharedPointer(partial))
        let g = UnsafeMutablePointer<Float>.allocate(capacity: parts * n)
        defer { g.deallocate() }
        let gShared = SharedPointer(g)
        forEachPart(rows, parts: parts, threads: threads) { slice, range in
            let dx = shared.0.base
            let dw = shared.1.base + slice * 2 * n, db = dw + n
            let gr = gShared.base + slice * n
            for r in range {
                let dyr = dy + r * n, xr = x + r * n, dxr = dx + r * n
                let m = F8(repeating: mean[r]), s = F8(repeating: rstd[r]), vo = F8(repeating: offset)
                var sumG = F8(), sumGX = F8()
                var i = 0
                while i + 8 <= n {
                    let dyv = TrainMath.load(dyr + i)
                    let xhat = (TrainMath.load(xr + i) - m) * s
                    let gv = dyv * (vo + TrainMath.load(weight + i))
                    TrainMath.store(gv, gr + i)
                    sumG += gv
                    sumGX = sumGX.addingProduct(gv, xhat)
                    TrainMath.store(TrainMath.load(dw + i).addingProduct(dyv, xhat), dw + i)
                    TrainMath.store(TrainMath.load(db + i) + dyv, db + i)
                    i += 8
                }
                var sg = sumG.sum(), sgx = sumGX.sum()
                while i < n {
                    let xhat = (xr[i] - mean[r]) * rstd[r]
                    let gv = dyr[i] * (offset + weight[i])
                    gr[i] = gv
                    sg += gv
                    sgx += gv * xhat
                    dw[i] += dyr[i] * xhat
                    db[i] += dyr[i]
                    i += 1
                }
                let meanG = rms ? 0 : sg / Float(n), meanGX = sgx / Float(n)
                let vmg = F8(repeating: meanG), vmgx = F8(repeating: meanGX)
                i = 0
                while i + 8 <= n {
                    let xhat = (TrainMath.load(xr + i) - m) * s
                    var v = (TrainMath.load(gr + i) - vmg - xhat * vmgx) * s
                    if accumulate { v += TrainMath.load(dxr + i) }
                    TrainMath.store(v, dxr + i)
                    i += 8
                }
                while i < n {
                    let xhat = (xr[i] - mean[r]) * rstd[r]
                    let v = (gr[i] - meanG - xhat * meanGX) * rstd[r]
                    dxr[i] = accumulate ? dxr[i] + v : v
                    i += 1
                }
            }
        }
        for p in 0..<parts {
            let part = partial + p * 2 * n
            if let dWeight { Elementwise.add(part, into: dWeight, n) }
            if let dBias { Elementwise.add(part + n, into: dBias, n) }
        }
    }
}

// MARK: - Linear maps

enum LinearOp {
    /// y `[N, out]` = x `[N, in]` · W + b, with W `[in, out]` packed (`weights.forward`).
    static func forward(_ x: UnsafePointer<Float>, rows n: Int, weight: PackedMatrix, bias: UnsafePointer<Float>?,
                        into y: UnsafeMutablePointer<Float>, threads: Int) {
        weight.multiply(x, lda: weight.rows, m: n, into: y, ldc: weight.columns, threads: threads)
        if let bias { Elementwise.addRow(bias, into: y, rows: n, width: weight.columns) }
    }

    /// dx `[N, in]` (+)= dy `[N, out]` · W^T (W^T packed: `weightT`, `[out, in]`);
    /// dW `[in, out]` += x^T · dy; db += column sums of dy (none when dW is nil).
    ///
    /// The weight gradient is a packed product with the batch as the shared
    /// dimension: A = x^T (a tiled transpose, rows padded) and B = dy packed
    /// row-major (the public packing; the general `Gemm` packs through a
    /// slower per-element closure). When db directly follows dW in memory (as
    /// in `ParameterLayout`), A gets an extra row of ones and the same product
    /// yields db. The batch is split into `reductionParts` ranges computed
    /// concurrently (packing included) and added in order.
    static func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows n: Int, inputs: Int, outputs: Int,
                         weightT: PackedMatrix?, dx: UnsafeMutablePointer<Float>?, accumulate: Bool,
                         dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
                         workspace: TransposeWorkspace, threads: Int) {
        if let dx, let weightT {
            precondition(weightT.rows == outputs && weightT.columns == inputs)
            weightT.multiply(dy, lda: outputs, m: n, into: dx, ldc: inputs, accumulate: accumulate, threads: threads)
        }
        guard let dWeight else { return }
        let fusedBias = dBias != nil && dBias! == dWeight + inputs * outputs
        let m = inputs + (fusedBias ? 1 : 0)
        let xt = workspace.transpose(x, rows: n, columns: inputs, onesRow: fusedBias, threads: threads)   // [in (+1), N]
        let ld = TransposeWorkspace.leadingDimension(n)
        let parts = reductionParts(n, inputs)
        let partial = workspace.partials(count: (parts - 1) * m * outputs)
        let shared = SharedPointer(partial)
        forEachPart(n, parts: parts, threads: threads) { part, range in
            let packedDy = PackedMatrix(rowMajor: UnsafeBufferPointer(start: dy + range.lowerBound * outputs, count: range.count * outputs),
                                        rows: range.count, columns: outputs)
            let c = part == 0 ? dWeight : shared.base + (part - 1) * m * outputs
            packedDy.multiply(xt + range.lowerBound, lda: ld, m: m, into: c, ldc: outputs, accumulate: part == 0, threads: 1)
        }
        for p in 1..<max(parts, 1) { Elementwise.add(partial + (p - 1) * m * outputs, into: dWeight, m * outputs) }
        if let dBias, !fusedBias { columnSums(dy, rows: n, width: outputs, into: dBias, threads: threads) }
    }

    /// out[j] += sum_r m[r, j] for m `[rows, width]`; columns split across threads.
    static func columnSums(_ m: UnsafePointer<Float>, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>,
                           threads: Int) {
        let groups = (width + 7) / 8
        let shared = SharedPointer(out)
        Parallel.forEachSlice(groups, threads: rowThreads(rows, width, threads)) { range in
            let out = shared.base
            let c0 = range.lowerBound * 8, c1 = min(width, range.upperBound * 8)
            if c1 - c0 == 8 * range.count {
                for g in range {
                    var acc = F8()
                    for r in 0..<rows { acc += TrainMath.load(m + r * width + g * 8) }
                    TrainMath.store(TrainMath.load(out + g * 8) + acc, out + g * 8)
                }
            } else {
                for c in c0..<c1 {
                    var s: Float = 0
                    for r in 0..<rows { s += m[r * width + c] }
                    out[c] += s
                }
            }
        }
    }
}

/// A reusable buffer for the transposed activations of weight gradients
/// (x^T `[in, N]`), so each backward does not allocate. Rows of the transpose
/// are padded by 16 floats: with N a power of two, unpadded rows would sit a
/// multiple of 4 KiB apart and contend for the same cache sets.
final class TransposeWorkspace {
    private var buffer: UnsafeMutablePointer<Float>
    private var capacity: Int
    static let padding = 16

    init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        buffer = .allocate(capacity: self.capacity)
    }

    deinit {
        buffer.deallocate()
        partialBuffer.deallocate()
    }

    /// The transpose `[columns, rows]` of m `[rows, columns]` with row stride
    /// `leadingDimension(rows)`, built in 32 x 32 tiles; with `onesRow`, one
    /// more row of ones follows (for bias gradients).
    func transpose(_ m: UnsafePointer<Float>, rows: Int, columns: Int, onesRow: Bool = false,
                   threads: Int) -> UnsafePointer<Float> {
        let ld = Self.leadingDimension(rows)
        let needed = ld * (columns + 1)
        if needed > capacity {
            buffer.deallocate()
            capacity = needed
            buffer = .allocate(capacity: capacity)
        }
        let out = SharedPointer(buffer)
        let tiles = (columns + Self.tile - 1) / Self.tile
        Parallel.forEachSlice(tiles, threads: rowThreads(rows, columns, threads)) { range in
            let c0 = range.lowerBound * Self.tile, c1 = min(columns, range.upperBound * Self.tile)
            Self.transpose(m + c0, ld: columns, rows: rows, columns: c1 - c0, into: out.base + c0 * ld, ld: ld)
        }
        if onesRow { (buffer + columns * ld).update(repeating: 1, count: rows) }
        return UnsafePointer(buffer)
    }

    private var partialBuffer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var partialCapacity = 1

    /// Scratch for partial products (contents undefined).
    func partials(count: Int) -> UnsafeMutablePointer<Float> {
        if count > partialCapacity {
            partialBuffer.deallocate()
            partialCapacity = count
            partialBuffer = .allocate(capacity: count)
        }
        return partialBuffer
    }

    static let tile = 32

    /// dst[c, r] = src[r, c] for a `[rows, columns]` block (row strides
    /// `ld` / `ldDst`), in 32 x 32 tiles that stay in L1.
    static func transpose(_ src: UnsafePointer<Float>, ld: Int, rows: Int, columns: Int,
                          into dst: UnsafeMutablePointer<Float>, ld ldDst: Int) {
        var c0 = 0
        while c0 < columns {
            let c1 = min(columns, c0 + tile)
            var r0 = 0
            while r0 < rows {
                let r1 = min(rows, r0 + tile)
                for r in r0..<r1 {
                    var from = src + r * ld + c0, to = dst + c0 * ldDst + r
                    for _ in c0..<c1 {
                        to.pointee = from.pointee
                        from += 1
                        to += ldDst
                    }
                }
                r0 = r1
            }
            c0 = c1
        }
    }

    /// Row stride of a transpose with `rows` columns.
    static func leadingDimension(_ rows: Int) -> Int { rows + padding }
}

// MARK: - Activations

enum ActivationOp {
    /// hidden `[N, F]` = act(up) for up `[N, F]`, or for a gated MLP
    /// act(gate) * up with gate | up side by side in up `[N, 2F]`.
    static func forward(_ up: UnsafePointer<Float>, into hidden: UnsafeMutablePointer<Float>, rows: Int, width f: Int,
                        gated: Bool, activation: Activation, threads: Int) {
        let shared = SharedPointer(hidden)
        Parallel.forEachSlice(rows, threads: rowThreads(rows, f, threads)) { range in
            for r in range {
                let h = shared.base + r * f
                if gated {
                    let gate = up + r * 2 * f
                    apply(gate, into: h, f, activation)
                    for i in 0..<f { h[i] *= gate[f + i] }
                } else {
                    apply(up + r * f, into: h, f, activation)
                }
            }
        }
    }

    /// dUp from dHidden: act'(up) * dHidden; gated: dGate = dHidden * up * act'(gate), dUp = dHidden * act(gate).
    /// dHidden `[N, F]`, up and dUp `[N, F]` or `[N, 2F]`.
    static func backward(_ dHidden: UnsafePointer<Float>, up: UnsafePointer<Float>, into dUp: UnsafeMutablePointer<Float>,
                         rows: Int, width f: Int, gated: Bool, activation: Activation, threads: Int) {
        let shared = SharedPointer(dUp)
        Parallel.forEachSlice(rows, threads: rowThreads(rows, f, threads)) { range in
            var scratch = [Float](repeating: 0, count: 2 * f)
            scratch.withUnsafeMutableBufferPointer { s in
                let value = s.baseAddress!, slope = s.baseAddress! + f
                for r in range {
                    let dh = dHidden + r * f
                    if gated {
                        let gate = up + r * 2 * f, dGate = shared.base + r * 2 * f
                        derivative(gate, value: value, slope: slope, f, activation)
                        for i in 0..<f {
                            dGate[i] = dh[i] * gate[f + i] * slope[i]
                            dGate[f + i] = dh[i] * value[i]
                        }
                    } else {
                        derivative(up + r * f, value: value, slope: slope, f, activation)
                        let d = shared.base + r * f
                        for i in 0..<f { d[i] = dh[i] * slope[i] }
                    }
                }
            }
        }
    }

    static let geluC: Float = 0.79788456080286536   // sqrt(2/pi)
    static let geluK: Float = 0.044715

    /// y = act(x) for n values.
    @inline(__always)
    static func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int, _ activation: Activation) {
        var i = 0
        switch activation {
        case .geluTanh:
            while i + 8 <= n {
                let v = TrainMath.load(x + i)
                let t = TrainMath.tanh(geluC * (v + geluK * v * v * v))
                TrainMath.store(0.5 * v * (1 + t), y + i)
                i += 8
            }
        case .silu:
            while i + 8 <= n {
                let v = TrainMath.load(x + i)
                TrainMath.store(v * TrainMath.sigmoid(v), y + i)
                i += 8
            }
        case .geluExact:
            while i + 8 <= n {
                TrainMath.store(VectorMath.geluExact(TrainMath.load(x + i)), y + i)
                i += 8
            }
        case .relu:
            while i + 8 <= n {
                let v = TrainMath.load(x + i)
                TrainMath.store(v.replacing(with: 0, where: v .< 0), y + i)
                i += 8
            }
        }
        while i < n {
            y[i] = scalar(x[i], activation).value
            i += 1
        }
    }

    /// value = act(x), slope = act'(x) for n values.
    @inline(__always)
    static func derivative(_ x: UnsafePointer<Float>, value: UnsafeMutablePointer<Float>,
                           slope: UnsafeMutablePointer<Float>, _ n: Int, _ activation: Activation) {
        var i = 0
        switch activation {
        case .geluTanh:
            // d/dx 0.5 x (1 + tanh u) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3k x^2)
            while i + 8 <= n {
                let v = TrainMath.load(x + i)
                let v2 = v * v
                let t = TrainMath.tanh(geluC * (v + geluK * v2 * v))
                TrainMath.store(0.5 * v * (1 + t), value + i)
                let onePlusT: F8 = 1 + t
                let inner: F8 = geluC * (1 + (3 * geluK) * v2)
                let sech2: F8 = 1 - t * t
                let s: F8 = 0.5 * onePlusT + 0.5 * v * sech2 * inner
                TrainMath.store(s, slope + i)
                i += 8
            }
        case .silu:
            // d/dx x s(x) = s (1 + x (1 - s))
            while i + 8 <= n {
                let v = TrainMath.load(x + i)
                let sg = TrainMath.sigmoid(v)
                TrainMath.store(v * sg, value + i)
                TrainMath.store(sg * (1 + v * (1 - sg)), slope + i)
                i += 8
            }
        case .geluExact:
            // x Phi(x); d/dx = Phi(x) + x phi(x), Phi from erfc of |x| / sqrt(2).
            while i + 8 <= n {
                let v = TrainMath.load(x + i)
                let tail = 0.5 * VectorMath.erfcPositive(VectorMath.magnitude(v) * 0.70710678118654752)
                let phi = (1 - tail).replacing(with: tail, where: v .< 0)
                let density = 0.39894228040143268 * TrainMath.exp(-0.5 * v * v)
                TrainMath.store(v * phi, value + i)
                TrainMath.store(phi + v * density, slope + i)
                i += 8
            }
        case .relu:
            break
        }
        while i < n {
            let (a, b) = scalar(x[i], activation)
            value[i] = a
            slope[i] = b
            i += 1
        }
    }

    /// act(x) and act'(x), scalar.
    @inline(__always)
    static func scalar(_ x: Float, _ activation: Activation) -> (value: Float, slope: Float) {
        switch activation {
        case .relu:
            return x > 0 ? (x, 1) : (0, 0)
        case .silu:
            let s = 1 / (1 + CMath.exp(-x))
            return (x * s, s * (1 + x * (1 - s)))
        case .geluTanh:
            let t = CMath.tanh(geluC * (x + geluK * x * x * x))
            return (0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * geluC * (1 + 3 * geluK * x * x))
        case .geluExact:
            // x Phi(x); d/dx = Phi(x) + x phi(x)
            let phi = 0.5 * (1 + CMath.erf(x * 0.70710678118654752))
            let density = 0.39894228040143268 * CMath.exp(-0.5 * x * x)
            return (x * phi, phi + x * density)
        }
    }
}

// MARK: - Rotary positions

/// Cosines and sines of the rotary angles `t * f_i` for positions
/// `0..<length`, computed as the reference does (products in float32, cos/sin
/// of that float angle), multiplied by `attentionFactor` (yarn, longrope).
struct RotaryTable {
    let half: Int
    /// Pairs `(2i, 2i + 1)` (GPT-J) instead of `(i, i + dims/2)`.
    let interleaved: Bool
    let cos: [Float]   // [T, dims/2]
    let sin: [Float]   // [T, dims/2]

    /// `inverseFrequencies` f_i, i < dims/2.
    init(inverseFrequencies: [Float], attentionFactor: Float = 1, interleaved: Bool = false, length t: Int) {
        half = inverseFrequencies.count
        self.interleaved = interleaved
        var c = [Float](repeating: 0, count: t * half), s = c
        for (i, inverseFrequency) in inverseFrequencies.enumerated() {
            for p in 0..<t {
                let angle = Double(Float(p) * inverseFrequency)
                c[p * half + i] = Float(CMath.cos(angle)) * attentionFactor
                s[p * half + i] = Float(CMath.sin(angle)) * attentionFactor
            }
        }
        cos = c
        sin = s
    }

    /// Rotates (or rotates back) one head vector with the row `c`, `s` of the table.
    @inline(__always)
    func rotate(_ v: UnsafeMutablePointer<Float>, cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>, inverse: Bool) {
        let first = interleaved ? 2 : 1, second = interleaved ? 1 : half
        for i in 0..<half {
            let a = i * first, b = a + second
            let x1 = v[a], x2 = v[b]
            if inverse {
                v[a] = x1 * c[i] + x2 * s[i]
                v[b] = x2 * c[i] - x1 * s[i]
            } else {
                v[a] = x1 * c[i] - x2 * s[i]
                v[b] = x2 * c[i] + x1 * s[i]
            }
        }
    }
}


enum RotaryOp {
    /// Rotates (or, with `inverse`, rotates back) the rotary dimensions of
    /// every q and k head of qkv `[N, stride]`; row n has position n mod T.
    /// The backward of a rotation (scaled by the table's attention factor f)
    /// is the inverse rotation of the gradient, scaled by f: the table's
    /// scaled cos and sin give exactly that.
    static func apply(_ qkv: UnsafeMutablePointer<Float>, rows: Int, length t: Int, stride: Int, heads: Int,
                      headDimension dh: Int, table: RotaryTable, inverse: Bool, positionOffset: Int = 0, threads: Int) {
        let half = table.half
        let shared = SharedPointer(qkv)
        Parallel.forEachSlice(rows, threads: rowThreads(rows, stride, threads)) { range in
            table.cos.withUnsafeBufferPointer { cosTable in
                table.sin.withUnsafeBufferPointer { sinTable in
                    for r in range {
                        let position = positionOffset + r % t
                        let c = cosTable.baseAddress! + position * half, s = sinTable.baseAddress! + position * half
                        let row = shared.base + r * stride
                        for head in 0..<heads { table.rotate(row + head * dh, cos: c, sin: s, inverse: inverse) }
                    }
                }
            }
        }
    }
}

// MARK: - Causal self-attention

/// Sizes of one attention call.
struct AttentionShape {
    var batch: Int          // B
    var length: Int         // T
    var heads: Int          // H
    var keyValueHeads: Int  // Hkv
    var headDimension: Int  // Dh
    var scale: Float
    var window: Int         // keys older than this are masked (Int.max: none)
    var softCap: Float?     // scores pass c · tanh(s / c) before the softmax (Gemma 2)

    var stride: Int { (heads + 2 * keyValueHeads) * headDimension }   // qkv row
    var zWidth: Int { heads * headDimension }                           // z row
}

enum AttentionOp {
    /// Row block of the causal products: rows i0..<i1 only need keys 0..<i1.
    static let blockRows = 64

    /// Copies rows of one head (`dh` floats at row stride `stride`) into a
    /// contiguous `[rows, dh]` buffer, so they can be packed with the fast
    /// contiguous packings.
    @inline(__always)
    static func gather(_ src: UnsafePointer<Float>, stride: Int, rows: Int, dh: Int, into dst: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { (dst + r * dh).update(from: src + r * stride, count: dh) }
    }

    /// For every sequence b and head h: P = softmax(cap(scale · Q K^T)) with
    /// the causal (and sliding-window) mask, z_h = P V; cap(s) = c · tanh(s / c)
    /// with a soft-cap c, else s.
    /// qkv `[N, (H + 2Hkv) Dh]` (q and k already rotated), probs `[B, H, T, T]`
    /// (masked entries 0 inside each 64-row diagonal block; entries to the
    /// right of a row's block are left unwritten and never read), z `[N, H Dh]`.
    static func forward(qkv: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>,
                        shape s: AttentionShape, threads: Int) {
        let t = s.length, dh = s.headDimension, stride = s.stride, group = s.heads / s.keyValueHeads
        let out = (SharedPointer(probs), SharedPointer(z))
        let work = s.batch * s.heads
        Parallel.forEachSlice(work, threads: t * t * dh * work < 1 << 15 ? 1 : threads) { range in
            let kBuffer = UnsafeMutablePointer<Float>.allocate(capacity: 2 * t * dh)    // K_h, V_h [T, Dh]
            defer { kBuffer.deallocate() }
            let vBuffer = kBuffer + t * dh
            for item in range {
                let b = item / s.heads, h = item % s.heads, kvh = h / group
                let base = qkv + b * t * stride
                let q = base + h * dh
                gather(base + (s.heads + kvh) * dh, stride: stride, rows: t, dh: dh, into: kBuffer)
                gather(base + (s.heads + s.keyValueHeads + kvh) * dh, stride: stride, rows: t, dh: dh, into: vBuffer)
                let packedV = PackedMatrix(rowMajor: UnsafeBufferPointer(start: vBuffer, count: t * dh), rows: t, columns: dh)
                let p = out.0.base + item * t * t
                let zh = out.1.base + b * t * s.zWidth + h * dh
                var i0 = 0
                while i0 < t {
                    let i1 = min(t, i0 + blockRows)
                    // S = Q[i0:i1] K[0:i1]^T: B = K^T [Dh, i1], packed from the contiguous K rows.
                    PackedMatrix(transposed: UnsafeBufferPointer(start: kBuffer, count: i1 * dh), rows: dh, columns: i1)
                        .multiply(q + i0 * stride, lda: stride, m: i1 - i0, into: p + i0 * t, ldc: t)   // [i1-i0, i1]
                    for i in i0..<i1 {
                        let row = p + i * t
                        let first = s.window == Int.max ? 0 : max(0, i - s.window + 1)
                        if first > 0 { row.update(repeating: 0, count: first) }
                        if let cap = s.softCap {
                            softCap(row + first, i - first + 1, scale: s.scale, cap: cap)
                            softmax(row + first, i - first + 1, scale: 1)
                        } else {
                            softmax(row + first, i - first + 1, scale: s.scale)
                        }
                        // Entries right of the diagonal inside this row block are read by
                        // P V (k = i1) and by the backward; entries past i1 never are.
                        if i + 1 < i1 { (row + i + 1).update(repeating: 0, count: i1 - i - 1) }
                    }
                    packedV.multiply(p + i0 * t, lda: t, m: i1 - i0, into: zh + i0 * s.zWidth, ldc: s.zWidth,
                                     kRange: 0..<i1)                                             // [i1-i0, Dh]
                    i0 = i1
                }
            }
        }
    }

    /// Attention of `rows` new queries (positions `start ..< start + rows`)
    /// against the keys and values of positions `0 ..< start + rows` in a
    /// cache (`[capacity, Hkv Dh]` each, the new ones already written):
    /// z `[rows, H Dh]`. Causal, with the window and soft-cap of `s`.
    static func decode(q: UnsafePointer<Float>, qStride: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                       start: Int, rows: Int, z: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
        let dh = s.headDimension, kvWidth = s.keyValueHeads * dh, group = s.heads / s.keyValueHeads
        var scores = [Float](repeating: 0, count: start + rows)
        for r in 0..<rows {
            let i = start + r
            let first = s.window == Int.max ? 0 : max(0, i - s.window + 1)
            for h in 0..<s.heads {
                let qh = q + r * qStride + h * dh, kvh = (h / group) * dh
                let count = i - first + 1
                scores.withUnsafeMutableBufferPointer { buffer in
                    let row = buffer.baseAddress!
                    for j in first...i { row[j - first] = Elementwise.dot(qh, keys + j * kvWidth + kvh, dh) }
                    if let cap = s.softCap {
                        softCap(row, count, scale: s.scale, cap: cap)
                        softmax(row, count, scale: 1)
                    } else {
                        softmax(row, count, scale: s.scale)
                    }
                    let out = z + r * s.heads * dh + h * dh
                    out.update(repeating: 0, count: dh)
                    for j in first...i {
                        let p = row[j - first], v = values + j * kvWidth + kvh
                        for c in 0..<dh { out[c] += p * v[c] }
                    }
                }
            }
        }
    }

    /// In place: x = c · tanh((scale · x) / c) over n values.
    @inline(__always)
    static func softCap(_ x: UnsafeMutablePointer<Float>, _ n: Int, scale: Float, cap: Float) {
        let vs = F8(repeating: scale), vc = F8(repeating: cap)
        var i = 0
        while i + 8 <= n {
            TrainMath.store(TrainMath.tanh(TrainMath.load(x + i) * vs / vc) * vc, x + i)
            i += 8
        }
        while i < n { x[i] = CMath.tanh(x[i] * scale / cap) * cap; i += 1 }
    }

    /// In place: d = p * (d - dot) * scale over n values (dot = sum p * d).
    @inline(__always)
    static func softmaxBackward(_ p: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ n: Int, dot: Float,
                                scale: Float) {
        let vdot = F8(repeating: dot), vs = F8(repeating: scale)
        var j = 0
        while j + 8 <= n {
            TrainMath.store(TrainMath.load(p + j) * (TrainMath.load(d + j) - vdot) * vs, d + j)
            j += 8
        }
        while j < n { d[j] = p[j] * (d[j] - dot) * scale; j += 1 }
    }

    /// In place: x = softmax(scale * x) over n values (scale > 0).
    @inline(__always)
    static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int, scale: Float) {
        var vm = F8(repeating: -Float.infinity)
        var k = 0
        while k + 8 <= n { vm = TrainMath.maximum(vm, TrainMath.load(x + k)); k += 8 }
        var m = vm.max()
        while k < n { m = max(m, x[k]); k += 1 }
        let shift = m * scale
        var sum = F8()
        var i = 0
        let vs = F8(repeating: scale), vshift = F8(repeating: shift)
        while i + 8 <= n {
            let e = TrainMath.exp(TrainMath.load(x + i) * vs - vshift)
            TrainMath.store(e, x + i)
            sum += e
            i += 8
        }
        var total = sum.sum()
        while i < n { let e = CMath.exp(x[i] * scale - shift); x[i] = e; total += e; i += 1 }
        let inv = 1 / total
        i = 0
        let vi = F8(repeating: inv)
        while i + 8 <= n { TrainMath.store(TrainMath.load(x + i) * vi, x + i); i += 8 }
        while i < n { x[i] *= inv; i += 1 }
    }

    /// Gradients of q, k, v from dz: with dP = dO V^T and
    /// dS = P * (dP - rowsum(P * dP)) * scale: dQ = dS K, dK = dS^T Q, dV = P^T dO.
    /// With a soft-cap c, dS also carries cap'(s) = 1 - tanh²(scale · s / c),
    /// from the scores S = Q K^T recomputed block by block.
    /// Heads sharing a key-value head (GQA) add into its dK, dV.
    /// dz `[N, H Dh]`, dqkv `[N, (H + 2Hkv) Dh]` (overwritten).
    static func backward(dz: UnsafePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                         dqkv: UnsafeMutablePointer<Float>, shape s: AttentionShape, threads: Int) {
        let t = s.length, dh = s.headDimension, stride = s.stride, group = s.heads / s.keyValueHeads
        let out = SharedPointer(dqkv)
        let work = s.batch * s.keyValueHeads
        Parallel.forEachSlice(work, threads: t * t * dh * s.batch * s.heads < 1 << 15 ? 1 : threads) { range in
            let capped = s.softCap != nil
            let ds = UnsafeMutablePointer<Float>.allocate(capacity: (capped ? 4 : 3) * t * t + 4 * t * dh)
            defer { ds.deallocate() }
            let dsT = ds + t * t, pT = ds + 2 * t * t                           // [T, T]: dP then dS, transposes
            let kBuffer = ds + 3 * t * t, vBuffer = kBuffer + t * dh             // K, V of the kv head [T, Dh]
            let scores = vBuffer + t * dh + 2 * t * dh                          // [T, T] raw scores (soft-cap only)
            let qBuffer = vBuffer + t * dh, oBuffer = qBuffer + t * dh           // Q, dO of one head [T, Dh]
            for item in range {
                let b = item / s.keyValueHeads, kvh = item % s.keyValueHeads
                let base = qkv + b * t * stride
                let dBase = out.base + b * t * stride
                gather(base + (s.heads + kvh) * dh, stride: stride, rows: t, dh: dh, into: kBuffer)
                gather(base + (s.heads + s.keyValueHeads + kvh) * dh, stride: stride, rows: t, dh: dh, into: vBuffer)
                let packedK = PackedMatrix(rowMajor: UnsafeBufferPointer(start: kBuffer, count: t * dh), rows: t, columns: dh)
                let dk = dBase + (s.heads + kvh) * dh, dv = dBase + (s.heads + s.keyValueHeads + kvh) * dh
                for g in 0..<group {
                    let h = kvh * group + g
                    let dq = dBase + h * dh
                    gather(base + h * dh, stride: stride, rows: t, dh: dh, into: qBuffer)
                    gather(dz + b * t * s.zWidth + h * dh, stride: s.zWidth, rows: t, dh: dh, into: oBuffer)
                    let p = probs + (b * s.heads + h) * t * t
                    var i0 = 0
                    while i0 < t {
                        let i1 = min(t, i0 + blockRows)
                        // dP = dO[i0:i1] V[0:i1]^T: B = V^T [Dh, i1].
                        PackedMatrix(transposed: UnsafeBufferPointer(start: vBuffer, count: i1 * dh), rows: dh, columns: i1)
                            .multiply(oBuffer + i0 * dh, lda: dh, m: i1 - i0, into: ds + i0 * t, ldc: t)   // [i1-i0, i1]
                        if capped {
                            PackedMatrix(transposed: UnsafeBufferPointer(start: kBuffer, count: i1 * dh), rows: dh, columns: i1)
                                .multiply(qBuffer + i0 * dh, lda: dh, m: i1 - i0, into: scores + i0 * t, ldc: t)
                        }
                        for i in i0..<i1 {
                            let pr = p + i * t, dr = ds + i * t
                            let first = s.window == Int.max ? 0 : max(0, i - s.window + 1)
                            let count = i - first + 1
                            let dot = Elementwise.dot(pr + first, dr + first, count)
                            if first > 0 { dr.update(repeating: 0, count: first) }
                            if let cap = s.softCap {
                                softmaxBackward(pr + first, dr + first, count, dot: dot, scale: 1)
                                let sr = scores + i * t
                                for j in first...i {
                                    let th = CMath.tanh(sr[j] * s.scale / cap)
                                    dr[j] *= (1 - th * th) * s.scale
                                }
                            } else {
                                softmaxBackward(pr + first, dr + first, count, dot: dot, scale: s.scale)
                            }
                            if i + 1 < i1 { (dr + i + 1).update(repeating: 0, count: i1 - i - 1) }
                        }
                        packedK.multiply(ds + i0 * t, lda: t, m: i1 - i0, into: dq + i0 * stride, ldc: stride,
                                         kRange: 0..<i1)                                           // dQ rows
                        // Transposes of the written (block lower-triangular) part of dS and P.
                        TransposeWorkspace.transpose(ds + i0 * t, ld: t, rows: i1 - i0, columns: i1, into: dsT + i0, ld: t)
                        TransposeWorkspace.transpose(p + i0 * t, ld: t, rows: i1 - i0, columns: i1, into: pT + i0, ld: t)
                        i0 = i1
                    }
                    // Key block j0..<j1 receives from queries j0..<T.
                    let packedQ = PackedMatrix(rowMajor: UnsafeBufferPointer(start: qBuffer, count: t * dh), rows: t, columns: dh)
                    let packedO = PackedMatrix(rowMajor: UnsafeBufferPointer(start: oBuffer, count: t * dh), rows: t, columns: dh)
                    var j0 = 0
                    while j0 < t {
                        let j1 = min(t, j0 + blockRows)
                        packedQ.multiply(dsT + j0 * t + j0, lda: t, m: j1 - j0, into: dk + j0 * stride, ldc: stride,
                                         accumulate: g > 0, kRange: j0..<t)                          // dK rows
                        packedO.multiply(pT + j0 * t + j0, lda: t, m: j1 - j0, into: dv + j0 * stride, ldc: stride,
                                         accumulate: g > 0, kRange: j0..<t)                          // dV rows
                        j0 = j1
                    }
                }
            }
        }
    }
}

// MARK: - Soft-capping

/// Gemma 2's final-logit soft-cap, `y = c · tanh(x / c)`, elementwise.
enum SoftCapOp {
    /// In place over `rows` rows of `width`.
    static func forward(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, cap: Float, threads: Int) {
        let shared = SharedPointer(x), vc = F8(repeating: cap)
        Parallel.forEachSlice(rows, threads: rowThreads(rows, width, threads)) { range in
            for r in range {      // row by row: a value's result does not depend on how rows are split or batched
                let p = shared.base + r * width
                var i = 0
                while i + 8 <= width { TrainMath.store(TrainMath.tanh(TrainMath.load(p + i) / vc) * vc, p + i); i += 8 }
                while i < width { p[i] = CMath.tanh(p[i] / cap) * cap; i += 1 }
            }
        }
    }

    /// In place dy *= 1 - (y / c)², from the capped values y.
    static func backward(_ dy: UnsafeMutablePointer<Float>, capped y: UnsafePointer<Float>, rows: Int, width: Int,
                         cap: Float, threads: Int) {
        let shared = SharedPointer(dy), inverse = 1 / cap
        Parallel.forEachSlice(rows, threads: rowThreads(rows, width, threads)) { range in
            for i in (range.lowerBound * width)..<(range.upperBound * width) {
                let t = y[i] * inverse
                shared.base[i] *= 1 - t * t
            }
        }
    }
}

// MARK: - Cross-entropy

enum CrossEntropyOp {
    /// Mean next-token cross-entropy over the scored rows (target >= 0) and its
    /// gradient: dlogits = (softmax(logits) - onehot(target)) * gradScale for
    /// scored rows, 0 for the others. logits, dlogits `[N, V]`; losses `[N]`
    /// (0 for unscored rows). Returns the sum of the losses (Double).
    static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows n: Int, vocabulary v: Int,
                                losses: UnsafeMutablePointer<Float>, dLogits: UnsafeMutablePointer<Float>?,
                                gradScale: Float, threads: Int) -> Double {
        let shared = (SharedPointer(losses), dLogits.map { SharedPointer($0) })
        Parallel.forEachSlice(n, threads: rowThreads(n, v, threads)) { range in
            for r in range {
                let row = logits + r * v
                let target = Int(targets[r])
                guard target >= 0 else {
                    shared.0.base[r] = 0
                    if let d = shared.1 { (d.base + r * v).update(repeating: 0, count: v) }
                    continue
                }
                var m = -Float.infinity
                for j in 0..<v { m = max(m, row[j]) }
                var sum: Float = 0
                let d = shared.1.map { $0.base + r * v }
                var j = 0
                let vm = F8(repeating: m)
                var acc = F8()
                while j + 8 <= v {
                    let e = TrainMath.exp(TrainMath.load(row + j) - vm)
                    if let d { TrainMath.store(e, d + j) }
                    acc += e
                    j += 8
                }
                sum = acc.sum()
                while j < v {
                    let e = CMath.exp(row[j] - m)
                    d?[j] = e
                    sum += e
                    j += 1
                }
                let logSum = Float(CMath.log(Double(sum))) + m
                shared.0.base[r] = logSum - row[target]
                if let d {
                    let scale = gradScale / sum
                    for j in 0..<v { d[j] *= scale }
                    d[target] -= gradScale
                }
            }
        }
        var total: Double = 0
        for r in 0..<n { total += Double(losses[r]) }
        return total
    }
}
