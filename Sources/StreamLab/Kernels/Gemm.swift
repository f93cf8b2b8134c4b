/// General matrix multiply on activations (both operands change every call):
/// `C[M, N] (+)= op(A) · op(B)` with `op` the identity or the transpose.
/// B is packed into panels per call (O(K N) work against O(M K N) for the
/// product) and the packed micro-kernel does the rest; a transposed A is
/// copied once into row-major order.
public enum Gemm {
    /// - Parameters:
    ///   - a: `[M, K]` row-major with row stride `lda`, or `[K, M]` when `transposeA`.
    ///   - b: `[K, N]` row-major with row stride `ldb`, or `[N, K]` when `transposeB`.
    ///   - c: `[M, N]` with row stride `ldc`.
    public static func multiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
        _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
        into c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false, threads: Int = 1
    ) {
        if m == 0 || n == 0 { return }
        let packed = transposeB ? PackedMatrix(transposed: b, rows: k, columns: n, rowStride: ldb)
                                : PackedMatrix(rowMajor: b, rows: k, columns: n, rowStride: ldb)
        if transposeA {
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: max(m * k, 1))
            defer { copy.deallocate() }
            for p in 0..<k { for i in 0..<m { copy[i * k + p] = a[p * lda + i] } }
            packed.multiply(copy, lda: k, m: m, into: c, ldc: ldc, accumulate: accumulate, threads: threads)
        } else {
            packed.multiply(a, lda: lda, m: m, into: c, ldc: ldc, accumulate: accumulate, threads: threads)
        }
    }
}
