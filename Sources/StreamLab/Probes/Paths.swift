/// The input gradient split by path length (Veit et al.'s ensemble view):
/// docs/definitions.md, Paths.
public struct PathSpectrum: Sendable {
    public struct Length: Sendable {
        /// Sublayers on the path.
        public let k: Int
        /// Number of paths of this length: C(n, k) (parallel blocks: C(n, k) 2^k).
        public let paths: Double
        /// ||g_k||, the sum over every path of length k (L2 over `[T, D]`), averaged over sequences.
        public let norm: Double
        /// The mean norm of one random path's gradient (with `samples`).
        public let sampledMeanNorm: Double?
    }

    public internal(set) var tokens: [Int]?
    /// Units: one per sublayer with its residual (2L), or one per parallel block (L).
    public let units: Int
    /// ||dLoss/d resid_pre of block 0||, averaged over sequences.
    public let totalNorm: Double
    /// max over `[T, D]` of |sum_k g_k - the full gradient|, over all sequences.
    public let reconstructionError: Double
    public let lengths: [Length]
    public let samples: Int
    public let sequences: Int
    public let positions: Int
    /// The sums behind every figure, for merging shards.
    public var partial: PathPartial? = nil

    /// Standard error over windows of ||g_k|| (nil below 2 windows).
    public func normStandardError(_ k: Int) -> Double? { partial?.figures.standardError(k) }
    /// Standard error over windows of the total norm.
    public var totalNormStandardError: Double? { partial.map { $0.figures.standardError(2 * $0.units + 2) } ?? nil }
    /// 95% bootstrap interval of ||g_k|| (with `--bootstrap N`).
    public func normInterval(_ k: Int) -> Interval? { partial?.figures.stats[k].bootstrapInterval.map(Interval.init) }

    /// The length whose paths carry the largest share of the gradient (largest ||g_k||).
    public var dominantLength: Int { lengths.max { $0.norm < $1.norm }?.k ?? 0 }
}

extension Transformer {
    /// The exact split of the input gradient of the mean next-token loss by
    /// path length: g_k, the sum over the paths through exactly k sublayers,
    /// computed top down through each unit as
    /// `g_k(in) = S^T g_k(out) + J_f^T S^T g_{k-1}(out)` at the clean run's
    /// activations (S: the skip map, identity but for Post-Norm, where it is
    /// the norm's Jacobian; J_f: the sublayer branch). With `samples` > 0 it
    /// also follows that many random single paths of each length.
    public func paths(on sequences: some Sequence<[Int]>, samples: Int = 0, seed: UInt64 = 0,
                      progress: ((Int) -> Void)? = nil) throws -> PathSpectrum {
        guard samples >= 0 else { throw ModelError.invalidRequest("samples must not be negative, got \(samples)") }
        let a = architecture, l = a.layerCount
        let n = a.parallelResidual ? l : 2 * l
        var figures = FigureSums(count: 2 * n + 3)                  // ||g_k|| (n + 1), sampled (n + 1), total
        var worst = 0.0, count = 0, positions = 0
        var first: [Int]?
        var random = SeededRandom(seed: seed)
        for tokens in sequences {
            try validate(tokens: tokens)
            guard tokens.count >= 2 else { throw ModelError.invalidRequest("paths needs at least 2 tokens (one prediction)") }
            if count == 0 { first = tokens }
            let t = tokens.count, d = a.width, size = t * d
            try checkFits(length: t, recording: [], keepsActivations: true)
            let gradientPass = GradientPass(a, batch: 1, length: t, threads: threads)
            gradientPass.setSequence(tokens)
            gradientPass.forward(self, computeGradient: true)
            if let point = gradientPass.firstNonFinite { throw ModelError.nonFinite(where: point.name, context: nil) }
            let pass = gradientPass.pass, g = pass.gradients
            finalReadBackward(pass, dLogits: gradientPass.dLogits.pointer, into: nil, transposed: gradientPass.transposed)
            let top = FloatBuffer(copying: UnsafeBufferPointer(start: g.stream.pointer, count: size))
            for layer in stride(from: l - 1, through: 0, by: -1) {
                _ = blockBackward(layer, pass, sink: nil, transposed: gradientPass.transposed, paths: false)
            }
            let full = FloatBuffer(copying: UnsafeBufferPointer(start: g.stream.pointer, count: size))

            let walk = PathWalk(model: self, pass: pass, transposed: gradientPass.transposed)
            let spectrum = (0...n).map { _ in FloatBuffer(size) }
            spectrum[0].pointer.update(from: top.pointer, count: size)
            walk.spectrum(spectrum)
            let sum = FloatBuffer(size)
            var values = [Double](repeating: 0, count: 2 * n + 3)
            for k in 0...n {
                values[k] = PathWalk.norm(spectrum[k].pointer, size)
                Elementwise.add(spectrum[k].pointer, into: sum.pointer, size)
            }
            for i in 0..<size { worst = max(worst, Double(abs(sum.pointer[i] - full.pointer[i]))) }
            values[2 * n + 2] = PathWalk.norm(full.pointer, size)
            if samples > 0 {
                for k in 0...n {
                    var total = 0.0
                    for _ in 0..<samples {
                        var units = Array(0..<n)
                        for i in 0..<k { units.swapAt(i, i + Int(random.next() % UInt64(n - i))) }
                        let chosen = Set(units.prefix(k))
                        let branches = (0..<n).map { _ in random.next() & 1 == 0 }      // parallel: attention or MLP
                        total += walk.single(top: top.pointer, through: chosen, attentionBranch: branches)
                    }
                    values[n + 1 + k] = total / Double(samples)
                }
            }
            figures.add(values, weight: 1)
            count += 1
            positions += t
            progress?(count)
        }
        guard count > 0 else { throw ModelError.invalidRequest("no sequence to measure") }
        var spectrum = PathPartial(figures: figures, units: n, parallel: a.parallelResidual, reconstructionError: worst,
                                   samples: samples, sequences: count, positions: positions).spectrum
        spectrum.tokens = count == 1 ? first : nil
        return spectrum
    }
}

/// The sums behind a path spectrum: per window ||g_k|| for k = 0...n, the
/// sampled per-path means, and the total norm (each window weighted 1), and
/// the largest reconstruction error.
public struct PathPartial: Sendable {
    var figures: FigureSums
    var units: Int
    var parallel: Bool
    var reconstructionError: Double
    var samples: Int
    var sequences: Int
    var positions: Int

    mutating func merge(_ o: PathPartial) {
        figures.merge(o.figures)
        reconstructionError = max(reconstructionError, o.reconstructionError)
        sequences += o.sequences
        positions += o.positions
    }

    var spectrum: PathSpectrum {
        let n = units
        return PathSpectrum(
            tokens: nil, units: n, totalNorm: figures.mean(2 * n + 2), reconstructionError: reconstructionError,
            lengths: (0...n).map { k in
                PathSpectrum.Length(k: k, paths: Statistics.binomial(n, k) * (parallel ? Double(1 << min(k, 62)) : 1),
                                    norm: figures.mean(k), sampledMeanNorm: samples > 0 ? figures.mean(n + 1 + k) : nil)
            },
            samples: samples, sequences: sequences, positions: positions, partial: self)
    }
}

/// The backward of one kept forward pass unit by unit: the skip map and the
/// sublayer branch of every unit as separate linear maps on `[T, D]`.
struct PathWalk {
    let model: Transformer
    let pass: ForwardPass
    let transposed: TransposedWeights

    var architecture: Architecture { model.architecture }
    var size: Int { pass.rows * architecture.width }

    /// L2 norm of `n` floats, summed in float64.
    static func norm(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var s = 0.0
        for i in 0..<n { s += Double(x[i]) * Double(x[i]) }
        return s.squareRoot()
    }

    /// One unit: layer and sublayer (`attention` false: the MLP; parallel blocks are one unit).
    struct Unit { let layer: Int; let attention: Bool }

    /// The units from the top down.
    var units: [Unit] {
        (0..<architecture.layerCount).reversed().flatMap { layer in
            architecture.parallelResidual ? [Unit(layer: layer, attention: true)]
                : [Unit(layer: layer, attention: false), Unit(layer: layer, attention: true)]
        }
    }

    /// In place: v = N^T v for a Post-Norm unit (the norm after its residual add); otherwise nothing.
    func normAfter(_ unit: Unit, _ v: UnsafeMutablePointer<Float>) {
        let adjoint = SublayerAdjoint(model: model, layer: unit.layer, pass: pass, sink: nil, transposed: transposed)
        let c = pass.activations(unit.layer), w = model.weights.blocks[unit.layer]
        if unit.attention, c.mid != nil {
            adjoint.normBack(w.ln1, v, x: c.h.pointer, mean: c.ln1Mean, rstd: c.ln1Rstd, into: v, weight: nil, bias: nil)
        } else if !unit.attention, let h2 = c.h2 {
            adjoint.normBack(w.ln2, v, x: h2.pointer, mean: c.ln2Mean, rstd: c.ln2Rstd, into: v, weight: nil, bias: nil)
        }
    }

    /// `out` = J_f^T `u` for the unit's sublayer branch (from its write back to
    /// the unit's input; its input norm included). For a parallel block,
    /// `attention` picks the branch.
    func branch(_ unit: Unit, attention: Bool, _ u: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let a = architecture, layer = unit.layer
        let adjoint = SublayerAdjoint(model: model, layer: layer, pass: pass, sink: nil, transposed: transposed)
        let c = pass.activations(layer), w = model.weights.blocks[layer]
        let x = UnsafePointer(pass.input(layer))
        if a.parallelResidual {
            if attention {
                adjoint.attentionBack(u, input: c.ln1Out!.pointer, into: out)
                adjoint.normBack(w.ln1, out, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: out, weight: nil, bias: nil)
            } else {
                let shared = a.sharedParallelNorm
                adjoint.mlpBack(u, input: (shared ? c.ln1Out : c.ln2Out)!.pointer, into: out)
                adjoint.normBack(shared ? w.ln1 : w.ln2, out, x: x, mean: shared ? c.ln1Mean : c.ln2Mean,
                                 rstd: shared ? c.ln1Rstd : c.ln2Rstd, into: out, weight: nil, bias: nil)
            }
        } else if attention {
            adjoint.attentionBack(u, input: UnsafePointer(c.ln1Out?.pointer ?? pass.input(layer)), into: out)
            if c.ln1Out != nil {
                adjoint.normBack(w.ln1, out, x: x, mean: c.ln1Mean, rstd: c.ln1Rstd, into: out, weight: nil, bias: nil)
            }
        } else {
            let mid = UnsafePointer(c.mid?.pointer ?? c.h.pointer)
            adjoint.mlpBack(u, input: c.ln2Out.map { UnsafePointer($0.pointer) } ?? mid, into: out)
            if c.ln2Out != nil {
                adjoint.normBack(w.ln2, out, x: mid, mean: c.ln2Mean, rstd: c.ln2Rstd, into: out, weight: nil, bias: nil)
            }
        }
    }

    /// The recursion over every unit, in place on `g` (n + 1 arrays `[T, D]`,
    /// g[0] = dLoss/d(last stream) and the others zero on entry; g_k at the
    /// input of block 0 on return).
    func spectrum(_ g: [FloatBuffer]) {
        let a = architecture, size = size, skip = a.skipConnections
        let scratch = FloatBuffer(size), scratch2 = FloatBuffer(size)
        var top = 0                                               // the highest k that can be non-zero
        for unit in units {
            for k in 0...top { normAfter(unit, g[k].pointer) }
            for k in stride(from: min(top + 1, g.count - 1), through: 1, by: -1) {
                if a.parallelResidual {
                    branch(unit, attention: true, g[k - 1].pointer, into: scratch.pointer)
                    branch(unit, attention: false, g[k - 1].pointer, into: scratch2.pointer)
                    Elementwise.add(scratch2.pointer, into: scratch.pointer, size)
                } else {
                    branch(unit, attention: unit.attention, g[k - 1].pointer, into: scratch.pointer)
                }
                if skip { Elementwise.add(scratch.pointer, into: g[k].pointer, size) } else { g[k].pointer.update(from: scratch.pointer, count: size) }
            }
            if !skip { g[0].pointer.update(repeating: 0, count: size) }
            top += 1
        }
    }

    /// The norm of one path's gradient: from `top` down, through the sublayer
    /// of the units in `chosen` (indices into `units`, top down) and the skip
    /// of the others.
    func single(top: UnsafePointer<Float>, through chosen: Set<Int>, attentionBranch: [Bool]) -> Double {
        let a = architecture, size = size
        let v = FloatBuffer(copying: UnsafeBufferPointer(start: top, count: size)), scratch = FloatBuffer(size)
        for (i, unit) in units.enumerated() {
            normAfter(unit, v.pointer)
            if chosen.contains(i) {
                branch(unit, attention: a.parallelResidual ? attentionBranch[i] : unit.attention, v.pointer, into: scratch.pointer)
                v.pointer.update(from: scratch.pointer, count: size)
            } else if !a.skipConnections {
                return 0
            }
        }
        return PathWalk.norm(v.pointer, size)
    }
}
