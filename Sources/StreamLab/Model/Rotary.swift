#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Rotary position embedding of one kind of layer: which dimensions of each
/// query and key head are rotated, how pairs are formed, the base and the
/// context-extension scaling, computed as transformers computes them.
public struct Rotary: Sendable, Equatable {
    /// How the rotated dimensions are paired.
    public enum Pairing: String, Sendable {
        /// `(i, i + dims/2)`: Llama, NeoX, Gemma, Phi and most families.
        case rotateHalf = "rotate-half"
        /// `(2i, 2i + 1)`: GPT-J.
        case interleaved
    }

    /// Context-extension scaling of the frequencies (config `rope_type`).
    public enum Scaling: Sendable, Equatable {
        case none
        /// Frequencies divided by `factor` (position interpolation).
        case linear(factor: Float)
        /// NTK-aware base, recomputed when the sequence is longer than
        /// `maxPositions`: base · (factor·T/max − (factor − 1))^(d/(d−2)).
        case dynamic(factor: Float, maxPositions: Int)
        /// Llama 3.1: long wavelengths divided by `factor`, short ones kept,
        /// a smooth ramp in between.
        case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalMaxPositions: Int)
        /// YaRN: per-frequency blend of interpolation and extrapolation, cos
        /// and sin multiplied by `attentionFactor`.
        case yarn(factor: Float, originalMaxPositions: Int, betaFast: Float, betaSlow: Float, truncate: Bool,
                  attentionFactor: Float)
        /// Phi-3 LongRoPE: per-frequency divisors, `short` up to
        /// `originalMaxPositions` tokens and `long` beyond; cos and sin
        /// multiplied by `attentionFactor`.
        case longrope(short: [Float], long: [Float], originalMaxPositions: Int, attentionFactor: Float)

        /// The config spelling (`rope_type`).
        public var name: String {
            switch self {
            case .none: return "default"
            case .linear: return "linear"
            case .dynamic: return "dynamic"
            case .llama3: return "llama3"
            case .yarn: return "yarn"
            case .longrope: return "longrope"
            }
        }
    }

    /// Rotated dimensions of each head (even, at most the head width).
    public var dimensions: Int
    public var base: Float
    public var pairing: Pairing
    public var scaling: Scaling

    public init(dimensions: Int, base: Float, pairing: Pairing = .rotateHalf, scaling: Scaling = .none) {
        self.dimensions = dimensions
        self.base = base
        self.pairing = pairing
        self.scaling = scaling
    }

    /// The `dimensions/2` inverse frequencies for a sequence of `length`
    /// tokens, and the factor cos and sin are multiplied by. Float32 in the
    /// order transformers evaluates them (modeling_rope_utils).
    public func frequencies(length: Int) -> (inverse: [Float], attentionFactor: Float) {
        let dims = dimensions, half = dims / 2
        /// base^(-2i/d) as `1 / base ** (arange(0, d, 2) / d)` in float32.
        func standard(_ base: Float) -> [Float] {
            (0..<half).map { 1 / CMath.pow(base, Float(2 * $0) / Float(dims)) }
        }
        switch scaling {
        case .none:
            return (standard(base), 1)
        case let .linear(factor):
            return (standard(base).map { $0 / factor }, 1)
        case let .dynamic(factor, maxPositions):
            let t = Double(max(length, maxPositions))
            let scaled = Double(base) * CMath.pow(Double(factor) * t / Double(maxPositions) - Double(factor - 1),
                                                  Double(dims) / Double(dims - 2))
            return (standard(Float(scaled)), 1)
        case let .llama3(factor, low, high, original):
            let lowWavelength = Float(original) / low, highWavelength = Float(original) / high
            let frequencies = standard(base).map { f -> Float in
                let wavelength = Float(2 * Double.pi) / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Float(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
            return (frequencies, 1)
        case let .yarn(factor, original, betaFast, betaSlow, truncate, attentionFactor):
            func correctionDimension(_ rotations: Double) -> Double {
                Double(dims) * CMath.log(Double(original) / (rotations * 2 * Double.pi)) / (2 * CMath.log(Double(base)))
            }
            var low = correctionDimension(Double(betaFast)), high = correctionDimension(Double(betaSlow))
            if truncate {
                low = low.rounded(.down)
                high = high.rounded(.up)
            }
            low = max(low, 0)
            high = min(high, Double(dims - 1))
            if low == high { high += 0.001 }
            let frequencies = (0..<half).map { i -> Float in
                let position = CMath.pow(base, Float(2 * i) / Float(dims))
                let extrapolation = 1 / position, interpolation = 1 / (factor * position)
                let ramp = min(max((Float(i) - Float(low)) / (Float(high) - Float(low)), 0), 1)
                let keep = 1 - ramp
                return interpolation * (1 - keep) + extrapolation * keep
            }
            return (frequencies, attentionFactor)
        case let .longrope(short, long, original, attentionFactor):
            let factors = length > original ? long : short
            let frequencies = (0..<half).map { i in 1 / (factors[i] * CMath.pow(base, Float(2 * i) / Float(dims))) }
            return (frequencies, attentionFactor)
        }
    }

    /// The reason this rotary is invalid for heads of `headDimension`, if any.
    func validationProblem(headDimension: Int) -> String? {
        if dimensions <= 0 || dimensions > headDimension || dimensions % 2 != 0 {
            return "rotary dimensions \(dimensions) must be even and within the head dimension \(headDimension)"
        }
        if !(base > 0) || !base.isFinite { return "rotary base \(base) must be positive and finite" }
        func positive(_ x: Float, _ name: String) -> String? {
            x > 0 && x.isFinite ? nil : "rope scaling \(name) \(x) must be positive and finite"
        }
        switch scaling {
        case .none: return nil
        case let .linear(factor): return positive(factor, "factor")
        case let .dynamic(factor, maxPositions):
            if factor < 1 || !factor.isFinite { return "dynamic rope scaling factor \(factor) must be at least 1" }
            if dimensions <= 2 { return "dynamic rope scaling needs more than 2 rotary dimensions" }
            return maxPositions > 0 ? nil : "dynamic rope scaling needs a positive max_position_embeddings"
        case let .llama3(factor, low, high, original):
            if let p = positive(factor, "factor") ?? positive(low, "low_freq_factor") ?? positive(high, "high_freq_factor") {
                return p
            }
            if !(high > low) { return "llama3 rope scaling needs high_freq_factor \(high) > low_freq_factor \(low)" }
            return original > 0 ? nil : "llama3 rope scaling needs a positive original_max_position_embeddings"
        case let .yarn(factor, original, betaFast, betaSlow, _, attentionFactor):
            return positive(factor, "factor") ?? positive(betaFast, "beta_fast") ?? positive(betaSlow, "beta_slow")
                ?? positive(attentionFactor, "attention_factor")
                ?? (original > 0 ? nil : "yarn rope scaling needs a positive original_max_position_embeddings")
        case let .longrope(short, long, original, attentionFactor):
            for (name, list) in [("short_factor", short), ("long_factor", long)] {
                if list.count != dimensions / 2 {
                    return "longrope \(name) has \(list.count) values, expected \(dimensions / 2) (half the rotary dimensions)"
                }
                if let bad = list.first(where: { !($0 > 0) || !$0.isFinite }) {
                    return "longrope \(name) holds \(bad); every factor must be positive and finite"
                }
            }
            return positive(attentionFactor, "attention_factor")
                ?? (original > 0 ? nil : "longrope needs a positive original_max_position_embeddings")
        }
    }

    /// One line for `info`: "rotate-half on 64 of 64 dims, base 500000, llama3 (factor 8, ...)".
    public var summary: String {
        var s = "\(pairing.rawValue), base \(Format.general(Double(base)))"
        switch scaling {
        case .none: break
        case let .linear(factor): s += ", linear scaling x\(Format.general(Double(factor)))"
        case let .dynamic(factor, maxPositions):
            s += ", dynamic NTK scaling x\(Format.general(Double(factor))) beyond \(maxPositions) tokens"
        case let .llama3(factor, low, high, original):
            s += ", llama3 scaling x\(Format.general(Double(factor))) (low \(Format.general(Double(low))), high \(Format.general(Double(high))), original \(original))"
        case let .yarn(factor, original, _, _, _, attention):
            s += ", yarn scaling x\(Format.general(Double(factor))) (original \(original), attention factor \(Format.general(Double(attention))))"
        case let .longrope(_, _, original, attention):
            s += ", longrope (short factors up to \(original) tokens, long beyond; attention factor \(Format.general(Double(attention))))"
        }
        return s
    }
}
