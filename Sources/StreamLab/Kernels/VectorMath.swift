/// Vectorized transcendentals on `SIMD8<Float>`, for the element-wise work of
/// the forward pass (softmax, GELU, SiLU) and the metrics over vocabularies.
///
/// Accuracy, measured against float64 libm by `VectorMathTests` over dense
/// grids of their working ranges:
/// - `exp`: relative error <= 3e-7 on [-87, 88]; inputs below -87.3 give a
///   value <= 1.2e-38 instead of a subnormal or zero (harmless for softmax and
///   probabilities).
/// - `tanh`: absolute error <= 3e-7 and relative error <= 1e-6 (odd
///   polynomial below |x| = 0.625, `1 - 2 / (exp(2|x|) + 1)` above).
/// - `erfc` for x >= 0: relative error <= 6e-7 below 2 and <= 1e-5 up to 9
///   (Chebyshev-fitted `t exp(-x^2 + P(t))`, t = 1 / (1 + x/2); the fit error
///   is below 1.2e-7, and for large x the float rounding of x^2 dominates).
/// - GELU (both forms) and SiLU: error <= 1e-6 x max(1, |f(x)|) on [-10, 10].
/// These are far inside the 1e-4 parity tolerance (docs/definitions.md, Numbers and tolerances).
public enum VectorMath {
    public typealias V = SIMD8<Float>

    /// e^x, range-reduced by powers of two: x = n ln2 + r, |r| <= ln2 / 2,
    /// then a degree-7 polynomial for e^r and the exponent bits for 2^n.
    @inline(__always)
    public static func exp(_ x: V) -> V {
        let clamped = clamp(x, -87.3, 88.7)
        // Round x log2(e) to the nearest integer n with the 1.5 * 2^23 trick:
        // the sum's low mantissa bits hold n (no float-to-int conversion call).
        let magic = V(repeating: 12_582_912)
        let shifted = magic.addingProduct(clamped, V(repeating: 1.442_695_04))
        let n = shifted - magic
        var r = clamped.addingProduct(n, V(repeating: -0.693_359_375))
        r = r.addingProduct(n, V(repeating: 2.121_944_4e-4))
        var p = V(repeating: 1.987_569_15e-4)
        p = horner(p, r, 1.398_199_95e-3)
        p = horner(p, r, 8.333_451_9e-3)
        p = horner(p, r, 4.166_579_59e-2)
        p = horner(p, r, 1.666_666_55e-1)
        p = horner(p, r, 5.000_000_12e-1)
        let y = (r + 1).addingProduct(p, r * r)
        let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: V.self)
        return y * scale
    }

    /// max(lo, min(x, hi)) lane-wise, with comparisons that compile to vector
    /// min/max (no generic calls).
    @inline(__always)
    static func clamp(_ x: V, _ lo: Float, _ hi: Float) -> V {
        let low = V(repeating: lo), high = V(repeating: hi)
        let above = x.replacing(with: low, where: x .< low)
        return above.replacing(with: high, where: above .> high)
    }

    /// |x| by clearing the sign bits.
    @inline(__always)
    static func magnitude(_ x: V) -> V {
        unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: V.self)
    }

    /// One Horner step `p * x + c` as a fused multiply-add.
    @inline(__always)
    static func horner(_ p: V, _ x: V, _ c: Float) -> V { V(repeating: c).addingProduct(p, x) }

    /// tanh(x).
    @inline(__always)
    public static func tanh(_ x: V) -> V {
        let a = magnitude(x)
        // Small |x|: x + x^3 P(x^2).
        let z = x * x
        var p = V(repeating: -5.704_988_727_45e-3)
        p = horner(p, z, 2.063_908_879_54e-2)
        p = horner(p, z, -5.373_971_555_31e-2)
        p = horner(p, z, 1.333_144_220_36e-1)
        p = horner(p, z, -3.333_328_194_22e-1)
        let small = x.addingProduct(x * z, p)
        // Large |x|: 1 - 2 / (e^{2|x|} + 1), with the sign of x.
        let e = exp(2 * a)
        let large = 1 - 2 / (e + 1)
        let signed = large.replacing(with: -large, where: x .< 0)
        return signed.replacing(with: small, where: a .< 0.625)
    }

    /// erfc(x) for x >= 0.
    @inline(__always)
    public static func erfcPositive(_ x: V) -> V {
        let t = 1 / (1 + 0.5 * x)
        var p = V(repeating: 0.170_872_77)
        for c: Float in [-0.822_152_23, 1.488_515_87, -1.135_203_98, 0.278_868_07, -0.186_288_06,
                         0.096_784_18, 0.374_091_96, 1.000_023_68, -1.265_512_23] {
            p = horner(p, t, c)
        }
        return t * exp(p - x * x)
    }

    /// GELU, exact: x Φ(x), computed as x - x/2 erfc(x/√2) for x >= 0 and
    /// x/2 erfc(|x|/√2) for x < 0 (no cancellation on either side).
    @inline(__always)
    public static func geluExact(_ x: V) -> V {
        let half = 0.5 * x * erfcPositive(magnitude(x) * 0.707_106_781_186_547_5)
        return (x - half).replacing(with: half, where: x .< 0)
    }

    /// GELU, tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
    @inline(__always)
    public static func geluTanh(_ x: V) -> V {
        let inner = 0.797_884_560_802_865_4 * x.addingProduct(0.044_715 * x * x, x)
        return 0.5 * x * (1 + tanh(inner))
    }

    /// SiLU: x σ(x) = x / (1 + e^{-x}).
    @inline(__always)
    public static func silu(_ x: V) -> V { x / (1 + exp(-x)) }
}
