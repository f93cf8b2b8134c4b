/// The nonlinearity of an MLP (for gated MLPs, the one applied to the gate).
public enum Activation: String, Sendable, Codable, CaseIterable {
    /// x Φ(x) with the exact error function (PyTorch `gelu`, NeoX).
    case geluExact = "gelu"
    /// Tanh approximation of GELU (GPT-2 `gelu_new`, GPT-1 `gelu`).
    case geluTanh = "gelu_tanh"
    /// max(x, 0) (OPT).
    case relu
    /// x σ(x) (Llama's SwiGLU gate).
    case silu
}

/// Vectorized row-wise and element-wise operations on float buffers.
/// Every function here has a naive twin in `Reference`.
public enum Elementwise {
    typealias V = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Sum of `n` floats.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V()
        var i = 0
        while i + 8 <= n { acc += load(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// Sum of squares of `x[i] - shift`.
    @inline(__always)
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
        var acc = V()
        let m = V(repeating: shift)
        var i = 0
        while i + 8 <= n { let d = load(x + i) - m; acc = acc.addingProduct(d, d); i += 8 }
        var s = acc.sum()
        while i < n { let d = x[i] - shift; s += d * d; i += 1 }
        return s
    }

    /// Largest of `n` floats (-infinity for none).
    @inline(__always)
    static func maximum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = V(repeating: -.infinity)
        var i = 0
        while i + 8 <= n { let v = load(x + i); m = m.replacing(with: v, where: v .> m); i += 8 }
        var s = m.max()
        while i < n { s = max(s, x[i]); i += 1 }
        return s
    }

    /// `y[i] += x[i]` for `n` floats.
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store(load(y + i) + load(x + i), y + i); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// `x[i] *= s` for `n` floats.
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ n: Int, by s: Float) {
        let v = V(repeating: s)
        var i = 0
        while i + 8 <= n { store(load(x + i) * v, x + i); i += 8 }
        while i < n { x[i] *= s; i += 1 }
    }

    /// Copies `rows` rows of `width` floats from `x` (row stride `from`) to `y` (row stride `to`).
    public static func copyRows(_ x: UnsafePointer<Float>, stride from: Int, into y: UnsafeMutablePointer<Float>,
                                stride to: Int, rows: Int, width: Int) {
        for r in 0..<rows { (y + r * to).update(from: x + r * from, count: width) }
    }

    /// `y[t, :] += b[:]` for each of `rows` rows of width `n`.
    public static func addRow(_ b: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, width n: Int) {
        for t in 0..<rows { add(b, into: y + t * n, n) }
    }

    /// Whether all `n` floats are finite (x * 0 is NaN exactly for NaN and +-inf).
    public static func allFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        var acc = V()
        var i = 0
        while i + 8 <= n { acc = acc.addingProduct(load(x + i), V()); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i] * 0; i += 1 }
        return s == 0
    }

    /// Dot product of `n` floats.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = V(), acc1 = V()
        var i = 0
        while i + 16 <= n {
            acc0 = acc0.addingProduct(load(a + i), load(b + i))
            acc1 = acc1.addingProduct(load(a + i + 8), load(b + i + 8))
            i += 16
        }
        if i + 8 <= n { acc0 = acc0.addingProduct(load(a + i), load(b + i)); i += 8 }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}
