import Foundation

/// The clean run's stream geometry over the sequences of a sweep. The
/// streams are s_0 ... s_L: s_i = `resid_pre` of block i, s_L = the last
/// block's `resid_post` (docs/definitions.md, Redundancy).
public struct StreamGeometry: Sendable, Equatable {
    /// ShortGPT's Block Influence `[L]`: BI_i = 1 - mean over positions of cos(s_i, s_{i+1}).
    public let blockInfluence: [Double]
    /// angles[i][j] (i < j): arccos(cos(s_i[T-1], s_j[T-1])) / pi, averaged over sequences.
    let angles: [[Double]]
    /// Standard errors over windows of each block's influence and of each angle (nil below 2 windows).
    public var blockInfluenceStandardErrors: [Double?] = []
    var angleStandardErrors: [[Double?]] = []

    /// The standard error over windows of `angularDistance(start:blocks:)`.
    public func angularDistanceStandardError(start: Int, blocks: Int) -> Double? {
        start < angleStandardErrors.count ? angleStandardErrors[start][start + blocks] : nil
    }

    /// Gromov et al.'s angular distance of the span of `blocks` blocks from
    /// `start`: between the stream entering block `start` and the stream
    /// leaving block `start + blocks - 1`, at the last position.
    public func angularDistance(start: Int, blocks: Int) -> Double { angles[start][start + blocks] }
}

/// Sums behind a `StreamGeometry`, added one clean pass at a time.
struct StreamGeometrySums {
    var cosSums: [Double]
    var positions = 0
    var angleSums: [[Double]]
    var sequences = 0

    /// Per-window statistics of each block's influence and of each angle (standard errors).
    var biWindows: [WindowStatistic]
    var angleWindows: [[WindowStatistic]]

    init(layers l: Int) {
        cosSums = Array(repeating: 0, count: l)
        angleSums = Array(repeating: Array(repeating: 0, count: l + 1), count: l + 1)
        biWindows = Array(repeating: WindowStatistic(), count: l)
        angleWindows = Array(repeating: Array(repeating: WindowStatistic(), count: l + 1), count: l + 1)
    }

    /// cos of two rows of width `d` in float64 (1 when both are zero, 0 when one is).
    static func cosine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for c in 0..<d {
            let x = Double(a[c]), y = Double(b[c])
            ab += x * y; aa += x * x; bb += y * y
        }
        if aa == 0 || bb == 0 { return aa == bb ? 1 : 0 }
        return max(-1, min(1, ab / (aa.squareRoot() * bb.squareRoot())))
    }

    /// Adds `batch` sequences of `length` tokens: `withStream(i) { s_i }`
    /// lends s_i `[B T, D]` for i = 0...L.
    mutating func add(batch b: Int, length t: Int, width d: Int,
                      withStream: (Int, (UnsafePointer<Float>) -> Void) -> Void) {
        let l = cosSums.count
        var lastRows = [Float](repeating: 0, count: (l + 1) * b * d)        // [L+1, B, D]: each sequence's last row
        var previous = [Float](repeating: 0, count: b * t * d)
        var windowCos = [Double](repeating: 0, count: l * b)                 // [L, B]: each window's sum of cosines
        for i in 0...l {
            withStream(i) { s in
                if i > 0 {
                    previous.withUnsafeBufferPointer { p in
                        for row in 0..<(b * t) {
                            let c = Self.cosine(p.baseAddress! + row * d, s + row * d, d)
                            cosSums[i - 1] += c
                            windowCos[(i - 1) * b + row / t] += c
                        }
                    }
                }
                if i < l { previous.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: s, count: b * t * d) } }
                lastRows.withUnsafeMutableBufferPointer { out in
                    for q in 0..<b { (out.baseAddress! + (i * b + q) * d).update(from: s + (q * t + t - 1) * d, count: d) }
                }
            }
        }
        for q in 0..<b { for i in 0..<l { biWindows[i].add(1 - windowCos[i * b + q] / Double(t)) } }
        positions += b * t
        lastRows.withUnsafeBufferPointer { rows in
            let r = rows.baseAddress!
            for q in 0..<b {
                for i in 0..<l {
                    for j in (i + 1)...l {
                        let angle = CMath.acos(Self.cosine(r + (i * b + q) * d, r + (j * b + q) * d, d)) / Double.pi
                        angleSums[i][j] += angle
                        angleWindows[i][j].add(angle)
                    }
                }
            }
        }
        sequences += b
    }

    var geometry: StreamGeometry {
        StreamGeometry(blockInfluence: cosSums.map { 1 - $0 / Double(max(positions, 1)) },
                       angles: angleSums.map { $0.map { $0 / Double(max(sequences, 1)) } },
                       blockInfluenceStandardErrors: biWindows.map(\.standardError),
                       angleStandardErrors: angleWindows.map { $0.map(\.standardError) })
    }
}

/// Random block lesions (Veit et al.): for each k, several subsets of k
/// blocks skipped together.
public struct Lesion: Sendable {
    public struct Level: Sendable {
        public let k: Int
        /// The subsets of blocks skipped together (each sorted).
        public let subsets: [[Int]]
        /// Their metrics, in the same order.
        public let metrics: [AblationMetrics]
        public var deltaLossMean: Double { Self.mean(metrics.map(\.deltaLoss)) }
        /// Population standard deviation over the subsets.
        public var deltaLossStd: Double {
            let m = deltaLossMean
            return Self.mean(metrics.map { ($0.deltaLoss - m) * ($0.deltaLoss - m) }).squareRoot()
        }
        public var klMeanMean: Double { Self.mean(metrics.map(\.klMean)) }

        static func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
    }

    public let tokens: [Int]?
    public let cleanLoss: Double
    public let levels: [Level]
    public let samples: Int
    public let seed: UInt64
    public let positions: Int
    public let sequences: Int
    /// The sums behind every figure, for merging shards.
    public var partial: AblationPartial? = nil

}

/// Pruning a span of consecutive blocks: candidates ranked by angular
/// distance, by Block Influence and by measured damage.
public struct Pruning: Sendable {
    public struct Span: Sendable {
        public let start: Int
        /// Angular distance between the streams around the span.
        public let distance: Double
        /// Sum of the span's blocks' Block Influence.
        public let blockInfluence: Double
        /// The span skipped as a whole.
        public let metrics: AblationMetrics
        /// The standard error over windows of `distance`.
        public var distanceStandardError: Double? = nil
    }

    public let tokens: [Int]?
    public let blocks: Int
    public let cleanLoss: Double
    /// Every span of `blocks` consecutive blocks, by start.
    public let spans: [Span]
    /// Each single block skipped `[L]`, and its Block Influence.
    public let singleBlocks: [AblationMetrics]
    public let blockInfluence: [Double]
    public let positions: Int
    public let sequences: Int
    /// The sums behind every figure, for merging shards.
    public var partial: AblationPartial? = nil


    /// The span with the smallest angular distance (what Gromov et al. cut).
    public var byAngularDistance: Span { spans.min { $0.distance < $1.distance }! }
    /// The span with the smallest summed Block Influence (ShortGPT).
    public var byBlockInfluence: Span { spans.min { $0.blockInfluence < $1.blockInfluence }! }
    /// The span whose removal costs least loss.
    public var bestMeasured: Span { spans.min { $0.metrics.deltaLoss < $1.metrics.deltaLoss }! }
    /// Spearman's rank correlation between each block's Block Influence and
    /// the delta loss of skipping it (nil when either is constant).
    public var spearmanBlockInfluenceVsDeltaLoss: Double? {
        Statistics.spearman(blockInfluence, singleBlocks.map(\.deltaLoss))
    }
}

enum Statistics {
    /// Ranks 1...n, ties sharing their average rank.
    static func ranks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var r = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            for k in i...j { r[order[k]] = Double(i + j) / 2 + 1 }
            i = j + 1
        }
        return r
    }

    /// Pearson's correlation of the ranks (nil for fewer than 2 values or a constant list).
    static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        guard x.count == y.count, x.count >= 2 else { return nil }
        let a = ranks(x), b = ranks(y), n = Double(x.count)
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var ab = 0.0, aa = 0.0, bb = 0.0
        for (p, q) in zip(a, b) { ab += (p - ma) * (q - mb); aa += (p - ma) * (p - ma); bb += (q - mb) * (q - mb) }
        guard aa > 0 && bb > 0 else { return nil }
        return ab / (aa * bb).squareRoot()
    }

    /// C(n, k) as a double (exact up to 2^53).
    static func binomial(_ n: Int, _ k: Int) -> Double {
        guard k >= 0 && k <= n else { return 0 }
        var c = 1.0
        for i in 0..<min(k, n - k) { c = c * Double(n - i) / Double(i + 1) }
        return c.rounded()
    }
}

extension Transformer {
    /// The lesion subsets: for k = 0...maxK, min(samples, C(L, k)) distinct
    /// subsets of k blocks (each sorted): all of them in lexicographic order
    /// when they are at most `samples`, else drawn with `seed`.
    public static func lesionSubsets(layerCount l: Int, maxK: Int, samples: Int, seed: UInt64) -> [[[Int]]] {
        var random = SeededRandom(seed: seed)
        return (0...maxK).map { k in
            if Statistics.binomial(l, k) <= Double(samples) {
                var all: [[Int]] = []
                var subset = Array(0..<k)
                while true {
                    all.append(subset)
                    var i = k - 1
                    while i >= 0 && subset[i] == l - k + i { i -= 1 }
                    if i < 0 { return all }
                    subset[i] += 1
                    for j in (i + 1)..<k { subset[j] = subset[j - 1] + 1 }
                }
            }
            var chosen: [[Int]] = [], seen = Set<[Int]>()
            while chosen.count < samples {
                var pool = Array(0..<l)
                for i in 0..<k { pool.swapAt(i, i + Int(random.next() % UInt64(l - i))) }
                let subset = pool.prefix(k).sorted()
                if seen.insert(subset).inserted { chosen.append(subset) }
            }
            return chosen.sorted { $0.lexicographicallyPrecedes($1) }
        }
    }

    /// Skips random subsets of k blocks together, for k = 0...maxK (default
    /// L), `samples` subsets per k (`lesionSubsets`), over `sequences`.
    public func lesion(maxK: Int? = nil, samples: Int = 10, seed: UInt64 = 0, on sequences: some Sequence<[Int]>,
                       progress: ((Int) -> Void)? = nil) throws -> Lesion {
        let l = architecture.layerCount, k = maxK ?? l
        guard k >= 0 && k <= l else { throw ModelError.invalidRequest("max-k \(k) is beyond the number of blocks (\(l))") }
        guard samples >= 1 else { throw ModelError.invalidRequest("samples must be at least 1, got \(samples)") }
        let subsets = Self.lesionSubsets(layerCount: l, maxK: k, samples: samples, seed: seed)
        let plan = subsets.flatMap { $0.map { $0.map { Intervention(.block(layer: $0), mode: .skip) } } }
        let sweep = try ablationSweep(plan, on: sequences, progress: progress)
        return Lesion(sweep: sweep, subsets: subsets, samples: samples, seed: seed)
    }

    /// The orders with each adjacent pair (i, i+1) swapped in turn.
    public static func adjacentSwaps(layerCount l: Int) -> [[Int]] {
        (0..<max(0, l - 1)).map { i in
            var order = Array(0..<l)
            order.swapAt(i, i + 1)
            return order
        }
    }

    /// Runs the blocks in each of `orders` (repeats and omissions allowed),
    /// one entry each, over `sequences`; each run restarts from the clean
    /// stream at its first changed slot.
    public func reorder(_ orders: [[Int]], on sequences: some Sequence<[Int]>,
                        progress: ((Int) -> Void)? = nil) throws -> AblationSweep {
        try ablationSweep(orders.map { [Intervention.order($0)] }, on: sequences, progress: progress)
    }

    /// Every span of `blocks` consecutive blocks skipped as a whole, and every
    /// single block, over `sequences`, with the stream geometry that ranks them.
    public func prune(blocks n: Int, on sequences: some Sequence<[Int]>, progress: ((Int) -> Void)? = nil) throws -> Pruning {
        let l = architecture.layerCount
        guard n >= 1 && n < l else {
            throw ModelError.invalidRequest("--blocks \(n) must be at least 1 and below the number of blocks (\(l))")
        }
        let spans = (0...(l - n)).map { start in (start..<(start + n)).map { Intervention(.block(layer: $0), mode: .skip) } }
        let singles = (0..<l).map { [Intervention(.block(layer: $0), mode: .skip)] }
        let sweep = try ablationSweep(singles + spans, on: sequences, progress: progress)
        return Pruning(sweep: sweep, blocks: n, layerCount: l)
    }
}

extension Lesion {
    /// The lesion result of a sweep whose entries are `subsets` (grouped by k) in order.
    init(sweep: AblationSweep, subsets: [[[Int]]], samples: Int, seed: UInt64) {
        var next = 0
        let levels = subsets.enumerated().map { k, group -> Level in
            defer { next += group.count }
            return Level(k: k, subsets: group, metrics: sweep.entries[next..<(next + group.count)].map(\.metrics))
        }
        self.init(tokens: sweep.tokens, cleanLoss: sweep.cleanLoss, levels: levels, samples: samples, seed: seed,
                  positions: sweep.positions, sequences: sweep.sequences, partial: sweep.partial)
    }
}

extension Pruning {
    /// The pruning result of a sweep whose entries are the L single blocks, then every span of `n`.
    init(sweep: AblationSweep, blocks n: Int, layerCount l: Int) {
        let geometry = sweep.geometry
        let bi = geometry.blockInfluence
        self.init(
            tokens: sweep.tokens, blocks: n, cleanLoss: sweep.cleanLoss,
            spans: (0...(l - n)).map { start in
                Span(start: start, distance: geometry.angularDistance(start: start, blocks: n),
                     blockInfluence: bi[start..<(start + n)].reduce(0, +), metrics: sweep.entries[l + start].metrics,
                     distanceStandardError: geometry.angularDistanceStandardError(start: start, blocks: n))
            },
            singleBlocks: sweep.entries.prefix(l).map(\.metrics), blockInfluence: bi,
            positions: sweep.positions, sequences: sweep.sequences, partial: sweep.partial)
    }
}
