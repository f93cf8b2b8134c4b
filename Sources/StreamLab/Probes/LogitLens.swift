/// The logit lens at one layer: the stream after that layer read through the
/// model's own final read, per position.
public struct LensLayer: Sendable {
    /// -1 for the embedding stream (`resid_pre_0`), else the block whose output is read.
    public let layer: Int
    /// KL(P_final || P_layer) per position.
    public let klToFinal: [Double]
    /// Rank of the final top-1 token under this layer's logits (0 = top) per position.
    public let rank: [Int]
    /// Entropy of this layer's distribution per position.
    public let entropy: [Double]
    /// Probability of the final top-1 token under this layer's distribution, per position.
    public let finalTokenProbability: [Double]
    /// Top-k tokens per position.
    public let top: [[TokenProbability]]
    /// Cross-entropy of this layer's distribution on the next token, for
    /// positions 0..T-2 (-log P_layer(token[i+1])).
    public let nextTokenLoss: [Double]
}

/// The logit lens of a sequence (docs/definitions.md, Logit lens): layers -1..L-1.
public struct LogitLens: Sendable {
    public let tokens: [Int]
    /// The model's top-1 prediction at each position.
    public let finalTop: [Int]
    public let layers: [LensLayer]
    /// The same reads through a tuned lens's translators (nil without a
    /// lens); its last layer is the model's own read, as in `layers`.
    public let tunedLayers: [LensLayer]?
}

extension Transformer {
    /// The most logits the lens holds at once.
    static let lensChunkBytes = 512 << 20

    /// Reads the stream after every block (and the embedding stream, as layer
    /// -1) through the model's final norm, project-out and unembedding:
    /// `logits_i = unembed(final_read(resid_post_i))`. The L + 1 reads are
    /// `[(L+1) T, D] x [D, V]` multiplies of at most `lensChunkBytes` of
    /// logits each (one for a small model). `top` is the number of tokens kept per cell.
    /// With `tuned`, every stream but the last is also read after its
    /// translator, `h + A h + b` (`LogitLens.tunedLayers`).
    public func logitLens(_ tokens: [Int], top k: Int = 5, tuned: TunedLens? = nil) throws -> LogitLens {
        try validate(tokens: tokens)
        try tuned?.check(fits: architecture)
        let a = architecture, t = tokens.count, d = a.width, v = a.vocabularySize, l = a.layerCount
        try checkFits(length: t, recording: [.residPre, .residPost, .logits])
        let pass = ForwardPass(a, length: t)
        pass.setTokens(tokens)
        var recorder = Recorder([.residPre, .residPost])
        forward(pass, plan: InterventionPlan(layerCount: l), recorder: &recorder, finalRead: .none)
        try checkFinite(pass)
        let stacked = FloatBuffer((l + 1) * t * d)                          // [(L+1) T, D]
        let streams = [recorder.arrays[l > 0 ? .residPre(0) : .residPost(0)]] + (0..<l).map { recorder.arrays[.residPost($0)] }
        for (i, stream) in streams.enumerated() {
            let source = stream?.scalars ?? Array(UnsafeBufferPointer(start: pass.stream.pointer, count: t * d))
            source.withUnsafeBufferPointer { (stacked.pointer + i * t * d).update(from: $0.baseAddress!, count: t * d) }
        }
        // Layers are read in chunks of at most `lensChunkBytes` of logits (one
        // multiply for a small model; never [L+1, T, V] for a big vocabulary).
        func read(_ stacked: FloatBuffer, _ layers: Range<Int>, lens: String = "logit lens") throws -> FloatBuffer {  // [layers T, V]
            let logits = finalRead(stacked.pointer + layers.lowerBound * t * d, rows: layers.count * t)
            if !Elementwise.allFinite(logits.pointer, layers.count * t * v) {
                throw ModelError.nonFinite(where: "the \(lens)'s logits", context: nil)
            }
            return logits
        }
        let finalLogits = try read(stacked, l..<(l + 1))
        let finalBase = finalLogits.pointer
        let finalLogZ = (0..<t).map { Distribution.logSumExp(finalBase + $0 * v, v) }
        let finalTop = (0..<t).map { Distribution.argmax(finalBase + $0 * v, v) }
        let perChunk = max(1, Self.lensChunkBytes / max(1, t * v * 4))
        func readAll(_ stacked: FloatBuffer, lens: String = "logit lens") throws -> [LensLayer] {
            var layers: [LensLayer] = []
            var start = 0
            while start <= l {
                let chunk = start..<min(l + 1, start + perChunk)
                let logits = chunk.upperBound == l + 1 && chunk.count == 1 ? finalLogits : try read(stacked, chunk, lens: lens)
                for layerIndex in chunk {
                    var kl = [Double](), rank = [Int](), entropy = [Double](), probability = [Double](), top = [[TokenProbability]]()
                    var nextLoss = [Double]()
                    for i in 0..<t {
                        let row = logits.pointer + ((layerIndex - chunk.lowerBound) * t + i) * v
                        let logZ = Distribution.logSumExp(row, v)
                        kl.append(layerIndex == l ? 0 : Distribution.kl(finalBase + i * v, logZP: finalLogZ[i], row, logZQ: logZ, v))
                        rank.append(Distribution.rank(of: finalTop[i], row, v))
                        entropy.append(Distribution.entropy(row, logZ: logZ, v))
                        probability.append(CMath.expDouble(Double(row[finalTop[i]]) - logZ))
                        top.append(Distribution.top(k, row, logZ: logZ, v))
                        if i + 1 < t { nextLoss.append(logZ - Double(row[tokens[i + 1]])) }
                    }
                    layers.append(LensLayer(layer: layerIndex - 1, klToFinal: kl, rank: rank, entropy: entropy,
                                            finalTokenProbability: probability, top: top, nextTokenLoss: nextLoss))
                }
                start = chunk.upperBound
            }
            return layers
        }
        let layers = try readAll(stacked)
        var tunedLayers: [LensLayer]?
        if let tuned {
            // Translated streams; the last block's stream stays as it is.
            let translated = FloatBuffer((l + 1) * t * d)
            for index in 0..<l {
                tuned.translate(index, stacked.pointer + index * t * d, rows: t, into: translated.pointer + index * t * d, threads: threads)
            }
            (translated.pointer + l * t * d).update(from: stacked.pointer + l * t * d, count: t * d)
            tunedLayers = try readAll(translated, lens: "tuned lens")
        }
        return LogitLens(tokens: tokens, finalTop: finalTop, layers: layers, tunedLayers: tunedLayers)
    }
}

/// Logit-lens statistics of one layer averaged over many positions.
public struct LensSummaryLayer: Sendable {
    public let layer: Int
    public let meanKLToFinal: Double
    public let meanEntropy: Double
    /// Mean probability of the model's final top-1 token under this layer's read.
    public let meanFinalTokenProbability: Double
    /// Fraction of positions where this layer's top-1 is the final top-1 (rank 0).
    public let top1Match: Double
    /// Mean cross-entropy on the next token (over positions that have one).
    public let meanNextTokenLoss: Double

    /// Standard errors over windows of each figure (nil below 2 windows).
    public struct StandardErrors: Sendable, Equatable {
        public var klToFinal, entropy, finalTokenProbability, top1Match, nextTokenLoss: Double?
    }
    public var standardErrors = StandardErrors()
    /// 95% bootstrap intervals of the five figures, in that order (with `--bootstrap N`).
    public var intervals: [Interval?] = Array(repeating: nil, count: 5)
}

/// The logit lens over a text: per layer, means over all positions of all windows.
public struct LensSummary: Sendable {
    public let layers: [LensSummaryLayer]
    /// The tuned lens's means (nil without a lens).
    public let tunedLayers: [LensSummaryLayer]?
    public let positions: Int
    public let sequences: Int
    /// The sums behind every figure, for merging shards.
    public var partial: LensPartial? = nil
}

extension Transformer {
    /// Runs the logit lens (and the tuned lens, if given) on every sequence
    /// and averages each layer's statistics over all their positions.
    public func logitLensSummary(_ sequences: some Sequence<[Int]>, tuned: TunedLens? = nil,
                                 progress: ((Int) -> Void)? = nil) throws -> LensSummary {
        let l = architecture.layerCount
        var logit = LensSums(l + 1), tunedSums = LensSums(l + 1)
        var positions = 0, predicted = 0, count = 0
        for (index, tokens) in sequences.enumerated() {
            count += 1
            let lens = try logitLens(tokens, top: 1, tuned: tuned)
            logit.add(lens.layers)
            if let tunedLayers = lens.tunedLayers { tunedSums.add(tunedLayers) }
            positions += tokens.count
            predicted += tokens.count - 1
            progress?(index + 1)
        }
        return LensPartial(logit: logit, tuned: tuned == nil ? nil : tunedSums, positions: positions, predicted: predicted,
                           sequences: count).summary
    }
}

/// Running sums of the lens statistics per layer, with each figure's
/// per-window statistics (for standard errors; mergeable across shards).
struct LensSums: Sendable {
    var kl, entropy, probability, match, nextLoss: [Double]
    /// [figure][layer]: kl, entropy, probability, match, next-token loss.
    var windows: [[WindowStatistic]]
    init(_ n: Int) {
        kl = Array(repeating: 0, count: n); entropy = kl; probability = kl; match = kl; nextLoss = kl
        windows = Array(repeating: Array(repeating: WindowStatistic(), count: n), count: 5)
    }
    mutating func add(_ layers: [LensLayer]) {
        for (k, layer) in layers.enumerated() {
            let klSum: Double = layer.klToFinal.reduce(0, +), entropySum: Double = layer.entropy.reduce(0, +)
            let probabilitySum: Double = layer.finalTokenProbability.reduce(0, +)
            let matches = Double(layer.rank.filter { $0 == 0 }.count), lossSum: Double = layer.nextTokenLoss.reduce(0, +)
            let sums: [Double] = [klSum, entropySum, probabilitySum, matches, lossSum]
            kl[k] += sums[0]; entropy[k] += sums[1]; probability[k] += sums[2]; match[k] += sums[3]; nextLoss[k] += sums[4]
            let t = Double(max(layer.klToFinal.count, 1))
            for f in 0..<4 { windows[f][k].add(sums[f] / t) }
            if !layer.nextTokenLoss.isEmpty { windows[4][k].add(sums[4] / Double(layer.nextTokenLoss.count)) }
        }
    }
    mutating func merge(_ o: LensSums) {
        for k in kl.indices {
            kl[k] += o.kl[k]; entropy[k] += o.entropy[k]; probability[k] += o.probability[k]; match[k] += o.match[k]
            nextLoss[k] += o.nextLoss[k]
            for f in 0..<5 { windows[f][k].merge(o.windows[f][k]) }
        }
    }
    func means(positions: Int, predicted: Int) -> [LensSummaryLayer] {
        let n = Double(max(positions, 1)), p = Double(max(predicted, 1))
        return kl.indices.map { k -> LensSummaryLayer in
            let intervals: [Interval?] = (0..<5).map { f in windows[f][k].bootstrapInterval.map(Interval.init) }
            return LensSummaryLayer(layer: k - 1, meanKLToFinal: kl[k] / n, meanEntropy: entropy[k] / n,
                             meanFinalTokenProbability: probability[k] / n, top1Match: match[k] / n,
                             meanNextTokenLoss: nextLoss[k] / p,
                             standardErrors: LensSummaryLayer.StandardErrors(
                                klToFinal: windows[0][k].standardError, entropy: windows[1][k].standardError,
                                finalTokenProbability: windows[2][k].standardError, top1Match: windows[3][k].standardError,
                                nextTokenLoss: windows[4][k].standardError),
                             intervals: intervals)
        }
    }
}

/// The sums behind a lens summary, for merging shards.
public struct LensPartial: Sendable {
    var logit: LensSums
    var tuned: LensSums?
    var positions: Int, predicted: Int, sequences: Int

    mutating func merge(_ o: LensPartial) {
        logit.merge(o.logit)
        if tuned != nil, let t = o.tuned { tuned!.merge(t) }
        positions += o.positions; predicted += o.predicted; sequences += o.sequences
    }

    var summary: LensSummary {
        LensSummary(layers: logit.means(positions: positions, predicted: predicted),
                    tunedLayers: tuned?.means(positions: positions, predicted: predicted),
                    positions: positions, sequences: sequences, partial: self)
    }
}
