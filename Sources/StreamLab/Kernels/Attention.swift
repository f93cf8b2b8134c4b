/// Causal softmax attention of one head, as two matrix multiplies:
/// `S = scale · Q Kᵀ` `[T, T]`, masked row-wise softmax `P`, then `Z = P V`.
/// The full `T x T` products are computed (the upper triangle is masked to
/// zero), which costs twice the causal minimum but runs at GEMM speed.
public enum Attention {
    /// - Parameters:
    ///   - q, k, v: rows `0..<t` of the head's queries, keys and values `[T, Dh]`, row stride `stride`.
    ///   - z: output `[T, Dh]` with row stride `zStride`.
    ///   - window: keys older than this many positions are masked (Mistral); nil for none.
    ///   - scores: scratch of at least `t * t` floats; holds `P` `[T, T]` on return.
    public static func causalHead(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int,
        length t: Int, headDimension dh: Int, scale: Float, window: Int?,
        z: UnsafeMutablePointer<Float>, zStride: Int, scores: UnsafeMutablePointer<Float>
    ) {
        Gemm.multiply(m: t, n: t, k: dh, q, lda: stride, k, ldb: stride, transposeB: true, into: scores, ldc: t)
        let reach = window ?? Int.max
        for i in 0..<t {
            let row = scores + i * t
            let first = max(0, i - reach + 1)
            let count = i - first + 1
            Elementwise.map(row + first, count) { $0 * scale }
            Elementwise.softmax(row + first, count)
            if first > 0 { row.update(repeating: 0, count: first) }
            if i + 1 < t { (row + i + 1).update(repeating: 0, count: t - i - 1) }
        }
        Gemm.multiply(m: t, n: dh, k: t, UnsafePointer(scores), lda: t, v, ldb: stride, into: z, ldc: zStride)
    }
}
