/// AdamW (decoupled weight decay, Loshchilov & Hutter) over the flat
/// parameter buffer, as `torch.optim.AdamW` computes it:
///
///     m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
///     p -= lr * wd * p                    (only for decaying parameters)
///     p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
///
/// Weight decay applies to matrices and embeddings, not to biases or norm
/// weights (`ParameterSlot.decays`), the nanoGPT convention.
public final class AdamW {
    public struct Settings: Sendable, Equatable {
        public var beta1: Float = 0.9
        public var beta2: Float = 0.95
        public var epsilon: Float = 1e-8
        public var weightDecay: Float = 0.1
        public init(beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8, weightDecay: Float = 0.1) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    public let settings: Settings
    /// First and second moments, `[layout.count]` each.
    let m: FloatBuffer
    let v: FloatBuffer
    /// Updates applied so far.
    public internal(set) var step = 0
    /// 1 where weight decay applies, per element (one byte each).
    let decayMask: [UInt8]

    public init(layout: ParameterLayout, settings: Settings = Settings()) {
        self.settings = settings
        m = FloatBuffer(layout.count)
        v = FloatBuffer(layout.count)
        var mask = [UInt8](repeating: 0, count: layout.count)
        for slot in layout.slots where slot.decays {
            for i in slot.offset..<(slot.offset + slot.count) { mask[i] = 1 }
        }
        decayMask = mask
    }

    /// One update of `parameters` from `gradients` at learning rate `lr`.
    func update(_ parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, count: Int, lr: Float,
                threads: Int) {
        step += 1
        let s = settings
        let correction1 = 1 - CMath.pow(s.beta1, Float(step))
        let correction2 = 1 - CMath.pow(s.beta2, Float(step))
        let shared = (SharedPointer(parameters), SharedPointer(m.pointer), SharedPointer(v.pointer))
        decayMask.withUnsafeBufferPointer { mask in
            Parallel.forEachSlice(count, threads: count < 1 << 16 ? 1 : threads) { range in
                let p = shared.0.base, m = shared.1.base, v = shared.2.base
                let b1 = s.beta1, b2 = s.beta2, decay = 1 - lr * s.weightDecay
                let stepSize = lr / correction1, root2 = 1 / correction2.squareRoot()
                for i in range {
                    let g = gradients[i]
                    let mi = b1 * m[i] + (1 - b1) * g
                    let vi = b2 * v[i] + (1 - b2) * g * g
                    m[i] = mi
                    v[i] = vi
                    var pi = p[i]
                    if mask[i] != 0 { pi *= decay }
                    p[i] = pi - stepSize * mi / ((vi.squareRoot() * root2) + s.epsilon)
                }
            }
        }
    }

    /// Moments for a checkpoint.
    var moments: (m: [Float], v: [Float]) { (m.array, v.array) }

    /// Restores moments and step from a checkpoint.
    func restore(m first: [Float], v second: [Float], step: Int) {
        precondition(first.count == m.count && second.count == v.count)
        first.withUnsafeBufferPointer { m.pointer.update(from: $0.baseAddress!, count: $0.count) }
        second.withUnsafeBufferPointer { v.pointer.update(from: $0.baseAddress!, count: $0.count) }
        self.step = step
    }
}

/// Linear warm-up to the peak rate, then cosine decay to a floor fraction of it:
///
///     lr(s) = peak * (s + 1) / warmup                          for s < warmup
///     lr(s) = peak * (f + (1 - f) * (1 + cos(pi * q)) / 2)     q = (s - warmup) / (total - warmup)
///
/// with f = `floor` (0.1 by default) and s the 0-based step.
public struct LearningRateSchedule: Sendable, Equatable {
    public var peak: Float
    public var warmup: Int
    public var total: Int
    public var floor: Float

    public init(peak: Float, warmup: Int, total: Int, floor: Float = 0.1) {
        self.peak = peak
        self.warmup = warmup
        self.total = total
        self.floor = floor
    }

    public func rate(at step: Int) -> Float {
        if step < warmup { return peak * Float(step + 1) / Float(warmup) }
        let span = max(1, total - warmup)
        let q = min(1, Double(step - warmup) / Double(span))
        return peak * (floor + (1 - floor) * Float((1 + CMath.cos(Double.pi * q)) / 2))
    }
}

/// Scales `gradients` so that their global L2 norm is at most `maxNorm`;
/// returns the norm before clipping (torch `clip_grad_norm_`).
func clipGradients(_ gradients: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float) -> Float {
    var sum: Double = 0
    var i = 0
    var acc = F8()
    while i + 8 <= count {
        let g = TrainMath.load(gradients + i)
        acc = acc.addingProduct(g, g)
        i += 8
        if i % 4096 == 0 { sum += Double(acc.sum()); acc = F8() }
    }
    sum += Double(acc.sum())
    while i < count { sum += Double(gradients[i] * gradients[i]); i += 1 }
    let norm = Float(sum.squareRoot())
    if norm > maxNorm && maxNorm > 0 {
        let scale = maxNorm / (norm + 1e-6)
        for j in 0..<count { gradients[j] *= scale }
    }
    return norm
}
