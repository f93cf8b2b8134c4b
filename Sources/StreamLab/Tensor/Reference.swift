import Foundation

/// Naive reference operations: the specification of the fast kernels in
/// `Kernels/`. Plain loops, double accumulators where it helps, no tricks.
/// Tests compare every kernel against its twin here on awkward sizes.
public enum Reference {
    /// C[M, N] = A[M, K] · B[K, N].
    public static func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for p in 0..<k { sum += Double(a[i * k + p]) * Double(b[p * n + j]) }
                c[i * n + j] = Float(sum)
            }
        }
        return c
    }

    /// LayerNorm of one row: (x - mean) / sqrt(var + eps) * weight + bias.
    public static func layerNorm(_ x: [Float], weight: [Float]?, bias: [Float]?, epsilon: Float) -> [Float] {
        let n = Double(x.count)
        let mean = x.reduce(0.0) { $0 + Double($1) } / n
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        let sigma = (variance + Double(epsilon)).squareRoot()
        return x.indices.map { i in
            var y = (Double(x[i]) - mean) / sigma
            if let weight { y *= Double(weight[i]) }
            if let bias { y += Double(bias[i]) }
            return Float(y)
        }
    }

    /// RMSNorm of one row: x / sqrt(mean(x^2) + eps) * weight.
    public static func rmsNorm(_ x: [Float], weight: [Float]?, epsilon: Float) -> [Float] {
        let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        let rms = (ms + Double(epsilon)).squareRoot()
        return x.indices.map { i in Float(Double(x[i]) / rms * Double(weight?[i] ?? 1)) }
    }

    /// Softmax of one row (max-subtracted).
    public static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }

    /// GELU, exact: x * Φ(x) = 0.5 x (1 + erf(x / √2)).
    public static func geluExact(_ x: Float) -> Float {
        let d = Double(x)
        return Float(0.5 * d * (1 + erf(d / 2.0.squareRoot())))
    }

    /// GELU, tanh approximation (GPT-2's `gelu_new`): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
    public static func geluTanh(_ x: Float) -> Float {
        let d = Double(x)
        return Float(0.5 * d * (1 + tanh((2.0 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
    }

    /// SiLU (swish): x · σ(x).
    public static func silu(_ x: Float) -> Float {
        let d = Double(x)
        return Float(d / (1 + exp(-d)))
    }

    /// Causal attention of one head: `z_i = Σ_{j<=i, i-j<window} softmax_j(scale q_i·k_j) v_j`.
    /// q, k, v: `[T, Dh]` row-major. Returns `[T, Dh]`.
    public static func attention(q: [Float], k: [Float], v: [Float], length t: Int, headDimension dh: Int,
                                 scale: Float, window: Int? = nil) -> [Float] {
        var z = [Float](repeating: 0, count: t * dh)
        for i in 0..<t {
            let first = max(0, i - (window ?? Int.max) + 1)
            var s: [Double] = []
            for j in first...i {
                var dot = 0.0
                for c in 0..<dh { dot += Double(q[i * dh + c]) * Double(k[j * dh + c]) }
                s.append(dot * Double(scale))
            }
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let total = e.reduce(0, +)
            for (n, j) in (first...i).enumerated() {
                for c in 0..<dh { z[i * dh + c] += Float(e[n] / total * Double(v[j * dh + c])) }
            }
        }
        return z
    }
}
