import Testing
@testable import StreamLab

/// Deterministic pseudo-random floats in [-1, 1) (xorshift), so failures reproduce.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
    mutating func floats(_ n: Int) -> [Float] { (0..<n).map { _ in next() } }
}

@Suite("Kernels against their naive twins")
struct KernelTests {
    static let awkward = [1, 2, 5, 6, 7, 8, 9, 13, 16, 17, 33]

    @Test("packed multiply equals the naive product", arguments: [(1, 1, 1), (1, 7, 9), (5, 33, 17), (6, 16, 16), (7, 8, 33),
                                                                   (13, 300, 31), (17, 9, 48), (33, 513, 40), (64, 64, 100)])
    func packedMultiply(m: Int, k: Int, n: Int) {
        var rng = TestRandom(seed: UInt64(m * 1000 + k * 10 + n))
        let a = rng.floats(m * k), b = rng.floats(k * n)
        let expected = Reference.matmul(a, b, m: m, k: k, n: n)
        let packed = b.withUnsafeBufferPointer { PackedMatrix(rowMajor: $0, rows: k, columns: n) }
        for threads in [1, 3] {
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { ap in
                c.withUnsafeMutableBufferPointer { cp in
                    packed.multiply(ap.baseAddress!, lda: k, m: m, into: cp.baseAddress!, ldc: n, threads: threads)
                }
            }
            let error = zip(c, expected).map { abs($0 - $1) }.max()!
            #expect(error <= 1e-5 * Float(k), "m \(m) k \(k) n \(n) threads \(threads): max error \(error)")
        }
        // Accumulating into C, over a sub-range of K.
        if k >= 3 {
            let ks = 1..<(k - 1)
            var c = [Float](repeating: 1, count: m * n)
            var sub = [Float](repeating: 0, count: m * ks.count)
            for i in 0..<m { for p in ks { sub[i * ks.count + p - ks.lowerBound] = a[i * k + p] } }
            let bSub = Array(b[(ks.lowerBound * n)..<(ks.upperBound * n)])
            let ref = Reference.matmul(sub, bSub, m: m, k: ks.count, n: n).map { $0 + 1 }
            sub.withUnsafeBufferPointer { ap in
                c.withUnsafeMutableBufferPointer { cp in
                    packed.multiply(ap.baseAddress!, lda: ks.count, m: m, into: cp.baseAddress!, ldc: n, accumulate: true, kRange: ks)
                }
            }
            let error = zip(c, ref).map { abs($0 - $1) }.max()!
            #expect(error <= 1e-5 * Float(k), "accumulate over \(ks): max error \(error)")
        }
    }

    /// B `[K, N]` stored as pieces of the given layouts and element types,
    /// side by side (columns split unevenly), in one byte buffer; returns the
    /// stored matrix and B's values as float32 (after rounding to the types).
    static func storedMatrix(k: Int, n: Int, pieces: [(StoredColumns.Element, StoredColumns.Layout)], seed: UInt64)
        -> (matrix: PackedMatrix, values: [Float], bytes: UnsafeMutableRawBufferPointer) {
        var rng = TestRandom(seed: seed)
        let widths = pieces.indices.map { i in n / pieces.count + (i == pieces.count - 1 ? n % pieces.count : 0) }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * k * n + 64, alignment: 64)
        var values = [Float](repeating: 0, count: k * n)
        var stored: [StoredColumns] = []
        var offset = 2, column = 0       // an odd offset: nothing stored is aligned
        for ((element, layout), width) in zip(pieces, widths) {
            let start = bytes.baseAddress! + offset
            for j in 0..<width {
                for p in 0..<k {
                    let index = layout == .columnsAreRows ? j * k + p : p * width + j
                    let x = rng.next() * 2
                    let bits: UInt16
                    switch element {
                    case .f32: (start + 4 * index).storeBytes(of: x, as: Float.self)
                    case .bf16:
                        bits = UInt16(x.bitPattern >> 16)
                        (start + 2 * index).storeBytes(of: bits, as: UInt16.self)
                    case .f16:
                        bits = Float16(x).bitPattern
                        (start + 2 * index).storeBytes(of: bits, as: UInt16.self)
                    }
                    values[p * n + column + j] = StoredColumns.float(UnsafeRawPointer(start), index, element)
                }
            }
            stored.append(StoredColumns(base: UnsafeRawPointer(start), element: element, layout: layout, columns: width,
                                        rowStride: layout == .columnsAreRows ? k : width))
            offset += width * k * element.size
            column += width
        }
        return (PackedMatrix(stored: stored, rows: k, owner: nil), values, bytes)
    }

    @Test("half-precision conversion is exact for all 65,536 values")
    func halfConversion() {
        for h in 0...UInt32(0xFFFF) {
            let got = StoredColumns.halfToFloat(SIMD8(repeating: h))[0]
            let expected = Float(Float16(bitPattern: UInt16(h)))
            #expect(got.bitPattern == expected.bitPattern || (got.isNaN && expected.isNaN), "half \(h): \(got) vs \(expected)")
            let lanes = [UInt16](repeating: UInt16(h), count: 8)
            let loaded = lanes.withUnsafeBytes { StoredColumns.load8($0.baseAddress!, 0, .f16)[7] }
            #expect(loaded.bitPattern == expected.bitPattern || (loaded.isNaN && expected.isNaN), "load8 of half \(h)")
        }
    }

    @Test("multiply from stored F32, F16 and BF16 weights, both layouts, in pieces, equals the naive product",
          arguments: [(1, 7, 9), (5, 33, 17), (7, 300, 40), (13, 700, 70), (100, 520, 33), (97, 1000, 300)])
    func storedMultiply(m: Int, k: Int, n: Int) {
        let layouts: [[(StoredColumns.Element, StoredColumns.Layout)]] = [
            [(.f32, .columnsAreRows)], [(.f32, .rowsAreRows)], [(.bf16, .columnsAreRows)], [(.f16, .rowsAreRows)],
            [(.bf16, .columnsAreRows), (.f16, .columnsAreRows), (.f32, .rowsAreRows)],
        ]
        for (index, pieces) in layouts.enumerated() where n >= pieces.count {
            let (b, values, bytes) = Self.storedMatrix(k: k, n: n, pieces: pieces, seed: UInt64(m * 7 + k + index))
            defer { bytes.deallocate() }
            #expect(b.element(k - 1, n - 1) == values[(k - 1) * n + n - 1])
            var rng = TestRandom(seed: UInt64(k))
            let a = rng.floats(m * k)
            let expected = Reference.matmul(a, values, m: m, k: k, n: n)
            for threads in [1, 2] {
                for accumulate in [false, true] {
                    var c = [Float](repeating: accumulate ? 1 : .nan, count: m * n)
                    a.withUnsafeBufferPointer { ap in
                        c.withUnsafeMutableBufferPointer { cp in
                            b.multiply(ap.baseAddress!, lda: k, m: m, into: cp.baseAddress!, ldc: n, accumulate: accumulate,
                                       threads: threads)
                        }
                    }
                    let error = zip(c, expected).map { abs($0 - $1 - (accumulate ? 1 : 0)) }.max()!
                    #expect(error <= 1e-5 * Float(k), "\(pieces) m \(m) k \(k) n \(n) threads \(threads): max error \(error)")
                }
            }
            // One head's slice of K, as the per-head results use.
            let ks = (k / 3)..<(k - k / 4)
            var sub = [Float](repeating: 0, count: m * ks.count)
            for i in 0..<m { for p in ks { sub[i * ks.count + p - ks.lowerBound] = a[i * k + p] } }
            let ref = Reference.matmul(sub, Array(values[(ks.lowerBound * n)..<(ks.upperBound * n)]), m: m, k: ks.count, n: n)
            var c = [Float](repeating: .nan, count: m * n)
            sub.withUnsafeBufferPointer { ap in
                c.withUnsafeMutableBufferPointer { cp in
                    b.multiply(ap.baseAddress!, lda: ks.count, m: m, into: cp.baseAddress!, ldc: n, kRange: ks, threads: 2)
                }
            }
            #expect(zip(c, ref).map { abs($0 - $1) }.max()! <= 1e-5 * Float(k), "\(pieces) kRange \(ks)")
            // The transpose (what a backward multiplies by) and the unpacked values.
            #expect(b.unpacked() == values)
            #expect(b.transposed(threads: 2).unpacked() == Self.transpose(values, rows: k, columns: n), "\(pieces) transposed")
        }
    }

    static func transpose(_ w: [Float], rows: Int, columns: Int) -> [Float] {
        var t = [Float](repeating: 0, count: w.count)
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = w[r * columns + c] } }
        return t
    }

    @Test("packing from [N, K] equals packing from [K, N]")
    func transposedPacking() {
        var rng = TestRandom(seed: 7)
        let k = 13, n = 37
        let b = rng.floats(k * n)
        let bt = Self.transpose(b, rows: k, columns: n)
        let p1 = b.withUnsafeBufferPointer { PackedMatrix(rowMajor: $0, rows: k, columns: n) }
        let p2 = bt.withUnsafeBufferPointer { PackedMatrix(transposed: $0, rows: k, columns: n) }
        #expect(p1.unpacked() == b)
        #expect(p2.unpacked() == b)
        // The transpose packed straight from a packing (what the backward multiplies by).
        for (rows, columns) in [(13, 37), (16, 16), (1, 5), (40, 3), (33, 48), (300, 251)] {
            let m = rng.floats(rows * columns)
            let packed = m.withUnsafeBufferPointer { PackedMatrix(rowMajor: $0, rows: rows, columns: columns) }
            let t = packed.transposed(threads: 2)
            #expect(t.rows == columns && t.columns == rows)
            #expect(t.unpacked() == Self.transpose(m, rows: rows, columns: columns), "\(rows) x \(columns)")
            // Padding lanes are zero: a multiply by the transpose equals the naive one.
            let a = rng.floats(3 * columns)
            var c = [Float](repeating: .nan, count: 3 * rows)
            a.withUnsafeBufferPointer { ap in
                c.withUnsafeMutableBufferPointer { t.multiply(ap.baseAddress!, lda: columns, m: 3, into: $0.baseAddress!, ldc: rows, threads: 2) }
            }
            let reference = Reference.matmul(a, Self.transpose(m, rows: rows, columns: columns), m: 3, k: columns, n: rows)
            #expect(zip(c, reference).map { abs($0 - $1) }.max()! <= 1e-5 * Float(columns), "\(rows) x \(columns) multiply")
        }
    }

    @Test("LayerNorm and RMSNorm equal the naive norms", arguments: awkward)
    func norms(width: Int) {
        var rng = TestRandom(seed: UInt64(width))
        let rows = 3
        let x = rng.floats(rows * width).map { $0 * 3 + 0.5 }
        let w = rng.floats(width), b = rng.floats(width)
        for rms in [false, true] {
            var y = [Float](repeating: 0, count: rows * width)
            var mean = [Float](repeating: 0, count: rows), rstd = mean
            let a = Architecture(modelType: "test", vocabularySize: 1, width: width, layerCount: 0, headCount: 1, mlpWidth: 1,
                                 maxPositions: 1, normKind: rms ? .rmsNorm : .layerNorm, normEpsilon: 1e-5)
            NormWeights(weight: w, bias: rms ? nil : b).apply(x, into: &y, mean: &mean, rstd: &rstd, rows: rows, width: width,
                                                              architecture: a, threads: 1)
            for r in 0..<rows {
                let row = Array(x[(r * width)..<((r + 1) * width)])
                let ref = rms ? Reference.rmsNorm(row, weight: w, epsilon: 1e-5)
                              : Reference.layerNorm(row, weight: w, bias: b, epsilon: 1e-5)
                for c in 0..<width { #expect(abs(y[r * width + c] - ref[c]) <= 1e-5, "rms \(rms) width \(width) [\(r), \(c)]") }
            }
        }
    }

    @Test("softmax and activations equal the naive versions", arguments: awkward)
    func elementwise(n: Int) {
        var rng = TestRandom(seed: UInt64(100 + n))
        let x = rng.floats(n).map { $0 * 8 }
        var s = x
        s.withUnsafeMutableBufferPointer { AttentionOp.softmax($0.baseAddress!, n, scale: 1) }
        let sr = Reference.softmax(x)
        for i in 0..<n { #expect(abs(s[i] - sr[i]) <= 1e-6) }
        let cases: [(Activation, (Float) -> Float)] = [
            (.geluExact, Reference.geluExact), (.geluTanh, Reference.geluTanh),
            (.silu, Reference.silu), (.relu, { max($0, 0) }),
        ]
        for (activation, reference) in cases {
            var y = x
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { ActivationOp.apply(xp.baseAddress!, into: $0.baseAddress!, n, activation) }
            }
            for i in 0..<n {
                let r = reference(x[i])
                #expect(abs(y[i] - r) <= 2e-6 * max(1, abs(r)), "\(activation)(\(x[i])) = \(y[i]), reference \(r)")
            }
        }
    }

    @Test("attention of one head equals the naive causal attention (64-row causal blocks)", arguments: [(1, 8, nil), (5, 7, nil), (17, 16, nil), (33, 64, 4), (40, 12, 9), (150, 16, nil), (130, 8, 70)] as [(Int, Int, Int?)])
    func attentionHead(t: Int, dh: Int, window: Int?) {
        var rng = TestRandom(seed: UInt64(t * 100 + dh))
        let stride = 3 * dh
        let qkv = rng.floats(t * stride).map { $0 * 2 }
        func slice(_ offset: Int) -> [Float] { (0..<t).flatMap { i in qkv[(i * stride + offset)..<(i * stride + offset + dh)] } }
        let expected = Reference.attention(q: slice(0), k: slice(dh), v: slice(2 * dh), length: t, headDimension: dh,
                                           scale: 0.3, window: window)
        var z = [Float](repeating: .nan, count: t * dh)
        var scores = [Float](repeating: 0, count: t * t)
        let shape = AttentionShape(batch: 1, length: t, heads: 1, keyValueHeads: 1, headDimension: dh, scale: 0.3,
                                   window: window ?? Int.max)
        qkv.withUnsafeBufferPointer { p in
            z.withUnsafeMutableBufferPointer { zp in
                scores.withUnsafeMutableBufferPointer { sp in
                    AttentionOp.forward(qkv: p.baseAddress!, probs: sp.baseAddress!, z: zp.baseAddress!, shape: shape, threads: 1)
                }
            }
        }
        let error = zip(z, expected).map { abs($0 - $1) }.max()!
        #expect(error <= 1e-5, "T \(t) Dh \(dh) window \(String(describing: window)): max error \(error)")
        // Rows of P sum to one and are causal.
        for i in 0..<t {
            let row = scores[(i * t)..<((i + 1) * t)]
            #expect(abs(row.reduce(0, +) - 1) <= 1e-5)
            #expect(row.dropFirst(i + 1).allSatisfy { $0 == 0 })
        }
    }
}

@Suite("Memory plan")
struct MemoryPlanTests {
    /// Floats held by the FloatBuffer fields of `value` (and of the block activations it holds).
    static func floats(in value: Any) -> Int {
        Mirror(reflecting: value).children.reduce(0) { total, child in
            switch child.value {
            case let buffer as FloatBuffer: return total + buffer.count
            case let buffer as FloatBuffer?: return total + (buffer?.count ?? 0)
            case let blocks as [BlockActivations]: return total + blocks.reduce(0) { $0 + floats(in: $1) }
            default: return total
            }
        }
    }

    @Test("the plan's activations cover what a forward pass allocates, within 25%",
          arguments: ["gpt2", "opt-post-proj", "neox-parallel", "gemma2-bf16", "gemma3-text", "olmo2", "gptj", "phi3-longrope"])
    func activations(_ name: String) throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 1)
        for (batch, length) in [(1, 13), (3, 9)] {
            let pass = ForwardPass(model.architecture, batch: batch, length: length)
            let allocated = 4 * Self.floats(in: pass)
            let planned = model.memoryPlan(batch: batch, length: length).activations
            #expect(planned >= allocated && Double(planned) <= 1.25 * Double(allocated),
                    "\(name) \(batch) x \(length): planned \(planned) bytes, allocated \(allocated)")
        }
        // Mapped and private weights are the loaded model's own figures.
        let plan = model.memoryPlan(length: 4)
        #expect(plan.mappedWeights == model.weights.mappedBytes && plan.privateWeights == model.weights.residentBytes)
        #expect(plan.mappedWeights > 0)
    }

    @Test("a plan is refused when it does not fit, with what would")
    func refusal() {
        var plan = MemoryPlan(Architecture.gpt2Small, mappedWeights: 1 << 30, privateWeights: 0, length: 1024, recording: .all)
        #expect(plan.problem(total: 64 << 30, available: 32 << 30) == nil)
        #expect(plan.problem(total: 64 << 30, available: 1 << 20)?.contains("of private memory") == true)
        plan.mappedWeights = 100 << 30
        #expect(plan.problem(total: 64 << 30, available: 32 << 30)?.contains("weights mapped in place") == true)
    }
}
