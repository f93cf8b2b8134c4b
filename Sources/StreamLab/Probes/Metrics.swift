/// Distribution statistics of logit rows, in float64 with natural logarithms
/// (docs/definitions.md, Metrics). Logits stay float32; every sum is a double.
enum Distribution {
    typealias V = SIMD8<Float>

    /// Sums `f(8 lanes at offset i)` over `0..<n` in float vectors, folded into
    /// a double every 512 elements. For the last partial vector `f` gets the
    /// mask of valid lanes (it must not read past `n`); the others are zeroed.
    @inline(__always)
    static func blockedSum(_ n: Int, _ f: (Int, SIMDMask<SIMD8<Int32>>?) -> V) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            var acc = V()
            let end = min(i + 512, n)
            while i + 8 <= end { acc += f(i, nil); i += 8 }
            if i < end {
                let valid = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< SIMD8<Int32>(repeating: Int32(end - i))
                acc += f(i, valid).replacing(with: 0, where: .!valid)
                i = end
            }
            total += Double(acc.sum())
        }
        return total
    }

    @inline(__always)
    static func load(_ x: UnsafePointer<Float>, _ i: Int, _ valid: SIMDMask<SIMD8<Int32>>?, fill: Float) -> V {
        guard let valid else { return UnsafeRawPointer(x + i).loadUnaligned(as: V.self) }
        var v = V(repeating: fill)
        for l in 0..<8 where valid[l] { v[l] = x[i + l] }
        return v
    }

    /// log Σ_v exp(x_v), max-subtracted.
    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        let m = Elementwise.maximum(x, n)
        let mv = V(repeating: m)
        let s = blockedSum(n) { i, valid in VectorMath.exp(load(x, i, valid, fill: 0) - mv) }
        return Double(m) + CMath.log(s)
    }

    /// KL(P || Q) = Σ P (log P - log Q) for logit rows p, q with their log-normalizers.
    static func kl(_ p: UnsafePointer<Float>, logZP: Double, _ q: UnsafePointer<Float>, logZQ: Double, _ n: Int) -> Double {
        let zp = V(repeating: Float(logZP)), shift = V(repeating: Float(logZP - logZQ))
        let s = blockedSum(n) { i, valid in
            let x = load(p, i, valid, fill: 0), y = load(q, i, valid, fill: 0)
            return VectorMath.exp(x - zp) * ((x - y) - shift)
        }
        return max(s, 0)
    }

    /// `kl(p, q)` and, into `gradient` `[n]`, its derivative with respect to
    /// q's logits times `scale`: `scale (Q - P)` (softmax rows).
    static func klWithGradient(_ p: UnsafePointer<Float>, logZP: Double, _ q: UnsafePointer<Float>, _ n: Int,
                               scale: Float, into gradient: UnsafeMutablePointer<Float>) -> Double {
        let logZQ = logSumExp(q, n)
        let zp = V(repeating: Float(logZP)), zq = V(repeating: Float(logZQ)), s = V(repeating: scale)
        var i = 0
        while i + 8 <= n {
            let g = s * (VectorMath.exp(load(q, i, nil, fill: 0) - zq) - VectorMath.exp(load(p, i, nil, fill: 0) - zp))
            for lane in 0..<8 { gradient[i + lane] = g[lane] }
            i += 8
        }
        while i < n {
            gradient[i] = scale * Float(CMath.expDouble(Double(q[i]) - logZQ) - CMath.expDouble(Double(p[i]) - logZP))
            i += 1
        }
        return kl(p, logZP: logZP, q, logZQ: logZQ, n)
    }

    /// Entropy -Σ P log P of a logit row.
    static func entropy(_ x: UnsafePointer<Float>, logZ: Double, _ n: Int) -> Double {
        let z = V(repeating: Float(logZ))
        return -blockedSum(n) { i, valid in
            let lp = load(x, i, valid, fill: 0) - z
            return VectorMath.exp(lp) * lp
        }
    }

    /// Index of the largest logit; ties go to the lower id.
    static func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        for v in 1..<max(n, 1) where x[v] > x[best] { best = v }
        return best
    }

    /// Number of tokens whose logit is strictly larger than token `t`'s (0 = top).
    static func rank(of t: Int, _ x: UnsafePointer<Float>, _ n: Int) -> Int {
        let value = x[t]
        var r = 0
        for v in 0..<n where x[v] > value { r += 1 }
        return r
    }

    /// The k most probable tokens, probability descending, ties to the lower id.
    static func top(_ k: Int, _ x: UnsafePointer<Float>, logZ: Double, _ n: Int) -> [TokenProbability] {
        var best: [(Float, Int)] = []
        best.reserveCapacity(k + 1)
        for v in 0..<n {
            let value = x[v]
            if best.count == k, let last = best.last, !(value > last.0) { continue }
            var i = best.count
            while i > 0 && (value > best[i - 1].0) { i -= 1 }
            best.insert((value, v), at: i)
            if best.count > k { best.removeLast() }
        }
        return best.map { TokenProbability(token: $0.1, probability: CMath.expDouble(Double($0.0) - logZ)) }
    }
}

/// A token and its probability under some distribution.
public struct TokenProbability: Sendable, Equatable {
    public let token: Int
    public let probability: Double
}

/// Running sums of the ablation metrics of docs/definitions.md over one or
/// more sequences (windows): every figure is a mean over all scored positions.
/// Mean and spread of one figure over windows, mergeable across shards
/// (count, mean and sum of squared deviations, combined as Chan et al.):
/// the standard error is the sample standard deviation (ddof 1) of the
/// per-window values over sqrt(number of windows).
///
/// With `bootstrapResamples` > 0 (a task-local setting, `--bootstrap N`) the
/// per-window values are kept too, for percentile intervals of the mean.
public struct WindowStatistic: Sendable, Equatable {
    public private(set) var count = 0
    public private(set) var mean = 0.0
    public private(set) var squaredDeviations = 0.0
    /// The per-window values (kept only for bootstrap intervals).
    public private(set) var values: [Double]?

    /// Resamples of the bootstrap intervals (0: none, and no values kept).
    @TaskLocal public static var bootstrapResamples = 0

    public init() { values = Self.bootstrapResamples > 0 ? [] : nil }

    init(count: Int, mean: Double, squaredDeviations: Double, values: [Double]? = nil) {
        self.count = count
        self.mean = mean
        self.squaredDeviations = squaredDeviations
        self.values = values
    }

    public mutating func add(_ x: Double) {
        values?.append(x)
        count += 1
        let delta = x - mean
        mean += delta / Double(count)
        squaredDeviations += delta * (x - mean)
    }

    public mutating func merge(_ o: WindowStatistic) {
        guard o.count > 0 else { return }
        guard count > 0 else { self = o; return }
        if let theirs = o.values, values != nil { values! += theirs } else { values = nil }
        let n = Double(count + o.count), delta = o.mean - mean
        mean += delta * Double(o.count) / n
        squaredDeviations += o.squaredDeviations + delta * delta * Double(count) * Double(o.count) / n
        count += o.count
    }

    /// The standard error of the mean over windows; nil with fewer than 2 windows.
    public var standardError: Double? {
        count >= 2 ? (squaredDeviations / Double(count - 1)).squareRoot() / Double(count).squareRoot() : nil
    }

    /// The 95% percentile bootstrap interval of the mean over windows:
    /// `bootstrapResamples` resamples of the windows with replacement (seed 0;
    /// the values are sorted first, so shards merged in any order agree),
    /// their means' 2.5th and 97.5th percentiles. Nil without kept values or below 2 windows.
    public var bootstrapInterval: (low: Double, high: Double)? {
        let resamples = Self.bootstrapResamples
        guard resamples > 0, let kept = values, kept.count >= 2 else { return nil }
        let v = kept.sorted(), n = v.count
        var random = SeededRandom(seed: 0)
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var s = 0.0
            for _ in 0..<n { s += v[random.integer(below: n)] }
            means[r] = s / Double(n)
        }
        means.sort()
        func quantile(_ q: Double) -> Double {
            let position = q * Double(resamples - 1), i = Int(position.rounded(.down)), f = position - Double(i)
            return i + 1 < resamples ? means[i] + f * (means[i + 1] - means[i]) : means[i]
        }
        return (quantile(0.025), quantile(0.975))
    }
}

/// Weighted sums of a vector of per-window figures (each window weighted
/// by its scored positions), with each figure's unweighted window statistics:
/// mergeable across shards.
public struct FigureSums: Sendable {
    var sums: [Double]
    var weight = 0.0
    var stats: [WindowStatistic]

    init(count: Int) {
        sums = Array(repeating: 0, count: count)
        stats = Array(repeating: WindowStatistic(), count: count)
    }

    mutating func add(_ figures: [Double], weight w: Double) {
        for (i, x) in figures.enumerated() { sums[i] += w * x; stats[i].add(x) }
        weight += w
    }

    mutating func merge(_ o: FigureSums) {
        for i in sums.indices { sums[i] += o.sums[i]; stats[i].merge(o.stats[i]) }
        weight += o.weight
    }

    /// The weighted mean of figure `i`.
    func mean(_ i: Int) -> Double { sums[i] / max(weight, 1e-300) }
    /// Its standard error over windows (nil below 2 windows).
    func standardError(_ i: Int) -> Double? { stats[i].standardError }
}

struct MetricSums {
    var klSum = 0.0, klPositions = 0
    var klLastSum = 0.0, sequences = 0
    var agreements = 0, agreementPositions = 0
    var lossSum = 0.0, lossPositions = 0
    /// Per-window values of each figure, for standard errors over windows.
    var klWindows = WindowStatistic(), klLastWindows = WindowStatistic(), agreementWindows = WindowStatistic()
    var lossWindows = WindowStatistic(), deltaLossWindows = WindowStatistic()

    /// Adds one sequence: clean logits P and intervened logits Q, both `[T, V]`.
    /// Positions are split across `threads` (each part sums on its own, then the
    /// parts are merged in order).
    /// `cleanLoss` is this sequence's own clean loss (for the per-window Δ loss).
    mutating func add(clean p: UnsafePointer<Float>, logZClean: [Double], intervened q: UnsafePointer<Float>,
                      tokens: [Int], vocabulary n: Int, cleanLoss: Double? = nil, threads: Int = 1) {
        let t = tokens.count
        let parts = max(1, min(threads, t / 16))
        var partial = [MetricSums](repeating: MetricSums(), count: parts)
        partial.withUnsafeMutableBufferPointer { buffer in
            let out = SharedPointer(buffer.baseAddress!)
            let shared = UncheckedSendable((p, q, logZClean, tokens))
            Parallel.forEachSlice(parts, threads: parts) { range in
                let (p, q, logZClean, tokens) = shared.value
                for part in range {
                    var sums = MetricSums()
                    for i in (t * part / parts)..<(t * (part + 1) / parts) {
                        let pr = p + i * n, qr = q + i * n
                        let logZQ = Distribution.logSumExp(qr, n)
                        let kl = Distribution.kl(pr, logZP: logZClean[i], qr, logZQ: logZQ, n)
                        sums.klSum += kl
                        sums.klPositions += 1
                        if i == t - 1 { sums.klLastSum += kl }
                        if Distribution.argmax(pr, n) == Distribution.argmax(qr, n) { sums.agreements += 1 }
                        sums.agreementPositions += 1
                        if i < t - 1 {
                            sums.lossSum += logZQ - Double(qr[tokens[i + 1]])
                            sums.lossPositions += 1
                        }
                    }
                    out.base[part] = sums
                }
            }
        }
        var window = MetricSums()
        for part in partial { window.merge(part) }
        window.sequences = 1
        klWindows.add(window.klSum / Double(max(window.klPositions, 1)))
        klLastWindows.add(window.klLastSum)
        agreementWindows.add(Double(window.agreements) / Double(max(window.agreementPositions, 1)))
        if window.lossPositions > 0 {
            lossWindows.add(window.loss)
            if let cleanLoss { deltaLossWindows.add(window.loss - cleanLoss) }
        }
        merge(window)
    }

    /// Adds the clean loss of one sequence (for the baseline).
    /// Returns this sequence's mean loss.
    @discardableResult
    mutating func addLoss(_ logits: UnsafePointer<Float>, logZ: [Double], tokens: [Int], vocabulary n: Int) -> Double {
        var sum = 0.0
        for i in 0..<(tokens.count - 1) { sum += logZ[i] - Double(logits[i * n + tokens[i + 1]]) }
        lossSum += sum
        lossPositions += tokens.count - 1
        sequences += 1
        let mean = sum / Double(max(tokens.count - 1, 1))
        if tokens.count > 1 { lossWindows.add(mean) }
        return mean
    }

    mutating func merge(_ o: MetricSums) {
        klSum += o.klSum; klPositions += o.klPositions
        klLastSum += o.klLastSum; sequences += o.sequences
        agreements += o.agreements; agreementPositions += o.agreementPositions
        lossSum += o.lossSum; lossPositions += o.lossPositions
        klWindows.merge(o.klWindows); klLastWindows.merge(o.klLastWindows); agreementWindows.merge(o.agreementWindows)
        lossWindows.merge(o.lossWindows); deltaLossWindows.merge(o.deltaLossWindows)
    }

    var loss: Double { lossPositions > 0 ? lossSum / Double(lossPositions) : .nan }

    func metrics(cleanLoss: Double) -> AblationMetrics {
        AblationMetrics(
            klMean: klSum / Double(max(klPositions, 1)), klLast: klLastSum / Double(max(sequences, 1)),
            top1Agreement: Double(agreements) / Double(max(agreementPositions, 1)),
            loss: loss, deltaLoss: loss - cleanLoss, positions: klPositions, sequences: sequences,
            standardErrors: AblationMetrics.StandardErrors(
                klMean: klWindows.standardError, klLast: klLastWindows.standardError,
                top1Agreement: agreementWindows.standardError, loss: lossWindows.standardError,
                deltaLoss: deltaLossWindows.standardError),
            intervals: AblationMetrics.Intervals(
                klMean: klWindows.bootstrapInterval.map(Interval.init), klLast: klLastWindows.bootstrapInterval.map(Interval.init),
                top1Agreement: agreementWindows.bootstrapInterval.map(Interval.init), loss: lossWindows.bootstrapInterval.map(Interval.init),
                deltaLoss: deltaLossWindows.bootstrapInterval.map(Interval.init)))
    }
}

/// How much an intervention changes the model's predictions (docs/definitions.md,
/// Metrics; natural logarithms). Over several sequences, each figure is the
/// mean over all their scored positions (`kl_last` over sequences).
public struct AblationMetrics: Sendable, Equatable {
    /// Mean over positions 0..T-1 of KL(clean || intervened).
    public let klMean: Double
    /// KL at the last position.
    public let klLast: Double
    /// Fraction of positions whose top-1 token is unchanged.
    public let top1Agreement: Double
    /// Mean next-token cross-entropy over positions 0..T-2 of the intervened model.
    public let loss: Double
    /// `loss` minus the clean loss.
    public let deltaLoss: Double
    /// Positions scored (all T of every sequence).
    public let positions: Int
    /// Sequences (windows) scored.
    public let sequences: Int

    /// Standard errors over windows (sample std, ddof 1, of the per-window
    /// values over sqrt(windows)); nil with fewer than 2 windows.
    public struct StandardErrors: Sendable, Equatable {
        public var klMean, klLast, top1Agreement, loss, deltaLoss: Double?
    }
    public var standardErrors = StandardErrors()

    /// 95% percentile bootstrap intervals over windows (with `--bootstrap N`).
    public struct Intervals: Sendable, Equatable {
        public var klMean, klLast, top1Agreement, loss, deltaLoss: Interval?
    }
    public var intervals = Intervals()
}

/// A confidence interval `[low, high]`.
public struct Interval: Sendable, Equatable {
    public let low: Double
    public let high: Double
    public init(_ bounds: (low: Double, high: Double)) { low = bounds.low; high = bounds.high }
}
