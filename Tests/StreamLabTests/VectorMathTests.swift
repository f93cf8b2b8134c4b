import Foundation
import Testing
@testable import StreamLab

/// The stated accuracy of the vectorized transcendentals, checked against
/// float64 libm on dense grids.
@Suite("Vectorized transcendentals")
struct VectorMathTests {
    /// Evaluates `f` on every point of `grid`, 8 at a time.
    func apply(_ grid: [Float], _ f: (VectorMath.V) -> VectorMath.V) -> [Float] {
        var out = [Float](repeating: 0, count: grid.count)
        var i = 0
        while i < grid.count {
            var v = VectorMath.V()
            for l in 0..<8 { v[l] = grid[min(i + l, grid.count - 1)] }
            let r = f(v)
            for l in 0..<8 where i + l < grid.count { out[i + l] = r[l] }
            i += 8
        }
        return out
    }

    func grid(_ lo: Float, _ hi: Float, _ n: Int) -> [Float] {
        (0..<n).map { lo + (hi - lo) * Float($0) / Float(n - 1) }
    }

    @Test func exp() {
        let xs = grid(-87, 88, 200_001)
        let ys = apply(xs, VectorMath.exp)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(y) - ref) / ref)
        }
        #expect(worst <= 3e-7, "exp relative error \(worst)")
    }

    @Test func tanh() {
        let xs = grid(-12, 12, 200_001)
        let ys = apply(xs, VectorMath.tanh)
        var worstAbs = 0.0, worstRel = 0.0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.tanh(Double(x))
            worstAbs = max(worstAbs, abs(Double(y) - ref))
            if ref != 0 { worstRel = max(worstRel, abs(Double(y) - ref) / abs(ref)) }
        }
        #expect(worstAbs <= 3e-7, "tanh absolute error \(worstAbs)")
        #expect(worstRel <= 1e-6, "tanh relative error \(worstRel)")
    }

    @Test func erfc() {
        let xs = grid(0, 9, 100_001)
        let ys = apply(xs, VectorMath.erfcPositive)
        var worst = 0.0, worstBelow2 = 0.0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.erfc(Double(x))
            let error = abs(Double(y) - ref) / ref
            worst = max(worst, error)
            if x < 2 { worstBelow2 = max(worstBelow2, error) }
        }
        #expect(worst <= 1e-5, "erfc relative error \(worst)")
        #expect(worstBelow2 <= 6e-7, "erfc relative error below 2: \(worstBelow2)")
    }

    @Test("activations against the float64 definitions")
    func activations() {
        let xs = grid(-10, 10, 100_001)
        let cases: [(String, (VectorMath.V) -> VectorMath.V, (Double) -> Double)] = [
            ("gelu exact", VectorMath.geluExact, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
            ("gelu tanh", VectorMath.geluTanh, { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }),
            ("silu", VectorMath.silu, { $0 / (1 + Foundation.exp(-$0)) }),
        ]
        for (name, f, reference) in cases {
            let ys = apply(xs, f)
            var worst = 0.0
            for (x, y) in zip(xs, ys) {
                let ref = reference(Double(x))
                worst = max(worst, abs(Double(y) - ref) / max(1, abs(ref)))
            }
            #expect(worst <= 1e-6, "\(name): error \(worst)")
        }
    }
}
