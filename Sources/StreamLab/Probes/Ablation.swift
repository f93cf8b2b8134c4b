/// The part of a block an ablation sweep removes (`head`: every head of the layer, one entry each).
public enum Sublayer: String, Sendable, CaseIterable {
    case block, attn, mlp, head
}

/// One row of an ablation report: what was removed and what it cost.
public struct AblationEntry: Sendable {
    /// The interventions applied together (one for a sweep entry).
    public let interventions: [Intervention]
    public let metrics: AblationMetrics

    /// The (first) layer removed.
    public var layer: Int { interventions.map(\.target.layer).min() ?? 0 }
    public var mode: AblationMode { interventions.first?.mode ?? .skip }

    /// `block`, `attn`, `mlp`, `head` or `joint` (several layers at once).
    public var sublayer: String {
        guard interventions.count == 1, let t = interventions.first?.target else { return "joint" }
        switch t {
        case .block: return "block"
        case .attention: return "attn"
        case .mlp: return "mlp"
        case .head: return "head"
        case let .hook(point): return point.name
        case .blockOrder: return "order"
        }
    }
    /// The head, for a head ablation.
    public var head: Int? {
        if interventions.count == 1, case let .head(_, h)? = interventions.first?.target { return h }
        return nil
    }
    /// Every layer touched.
    public var layers: [Int] { Array(Set(interventions.map(\.target.layer))).sorted() }
}

/// The result of ablating several things, each on its own, against one clean run.
public struct AblationSweep: Sendable {
    /// Tokens, when a single sequence was used.
    public let tokens: [Int]?
    /// Clean mean next-token loss over the same positions.
    public let cleanLoss: Double
    /// Its standard error over windows (nil below 2 windows).
    public var cleanLossStandardError: Double? = nil
    public let entries: [AblationEntry]
    /// Positions and sequences (windows) scored.
    public let positions: Int
    public let sequences: Int
    /// The clean run's stream geometry (Block Influence, angular distances).
    public let geometry: StreamGeometry
    /// The sums behind every figure, for merging shards (nil for a single sequence).
    public var partial: AblationPartial? = nil
}

extension Transformer {
    /// Removes `target` (docs/definitions.md, Interventions) and measures the damage on `tokens`:
    /// e.g. `try model.ablate(.block(layer: 3), mode: .skip, on: tokens)`.
    public func ablate(_ target: InterventionTarget, mode: AblationMode = .skip, on tokens: [Int]) throws -> AblationMetrics {
        try ablate([Intervention(target, mode: mode)], on: tokens)
    }

    /// Applies several interventions together (a joint ablation) and measures the damage.
    public func ablate(_ interventions: [Intervention], on tokens: [Int]) throws -> AblationMetrics {
        try ablationSweep([interventions], on: [tokens]).entries[0].metrics
    }

    /// One entry per listed layer: the sublayer removed with `mode`, each on
    /// its own. Default: every block skipped.
    public func ablationSweep(layers: [Int]? = nil, sublayer: Sublayer = .block, mode: AblationMode = .skip,
                              on tokens: [Int]) throws -> AblationSweep {
        try ablationSweep(ablationPlan(layers: layers, sublayer: sublayer, mode: mode), on: [tokens])
    }

    /// The entries of an ablation sweep: for each of `layers` (default all),
    /// `sublayer` removed with `mode` (for `head`, one entry per head of the
    /// layer); with `joint`, everything listed removed together as one entry.
    public func ablationPlan(layers: [Int]? = nil, sublayer: Sublayer = .block, mode: AblationMode = .skip,
                             joint: Bool = false) throws -> [[Intervention]] {
        let a = architecture
        var plan: [[Intervention]] = []
        for layer in layers ?? Array(0..<a.layerCount) {
            guard layer >= 0 && layer < a.layerCount else { throw ModelError.layerOutOfRange(layer: layer, layerCount: a.layerCount) }
            switch sublayer {
            case .block: plan.append([Intervention(.block(layer: layer), mode: mode)])
            case .attn: plan.append([Intervention(.attention(layer: layer), mode: mode)])
            case .mlp: plan.append([Intervention(.mlp(layer: layer), mode: mode)])
            case .head: plan += (0..<a.headCount).map { [Intervention(.head(layer: layer, head: $0), mode: mode)] }
            }
        }
        return joint ? [plan.flatMap { $0 }] : plan
    }

    /// Runs each intervention set of `plan` on every sequence of `sequences`
    /// and averages the metrics over all their positions. The clean run of
    /// each sequence is computed once, and every ablated run restarts from the
    /// clean stream at its first ablated layer (results equal separate full
    /// passes; the blocks below are not recomputed). Consecutive sequences of
    /// one length share a forward pass, `batch(T)` of them at a time (larger
    /// multiplies, the same numbers); a streamed text file never sits in
    /// memory whole. `progress(done)` is called after each batch.
    public func ablationSweep(_ plan: [[Intervention]], on sequences: some Sequence<[Int]>,
                              progress: ((Int) -> Void)? = nil) throws -> AblationSweep {
        try ablationSweep(plan, on: sequences, batch: nil, progress: progress)
    }

    /// The sweep with at most `batch` sequences per forward (nil: `batchSize(length:)`).
    func ablationSweep(_ plan: [[Intervention]], on sequences: some Sequence<[Int]>, batch: Int?,
                       progress: ((Int) -> Void)? = nil) throws -> AblationSweep {
        let l = architecture.layerCount, v = architecture.vocabularySize
        for interventions in plan { try validate(interventions: interventions) }
        let plans = plan.map { InterventionPlan($0, layerCount: l) }
        var clean = MetricSums()
        var geometry = StreamGeometrySums(layers: l)
        var sums = [MetricSums](repeating: MetricSums(), count: plan.count)
        var first: [Int]?, count = 0, positions = 0
        var passes: [[Int]: ForwardPass] = [:]
        var pending: [[Int]] = []

        /// One forward of `group` (sequences of one length): clean, then every ablation.
        func run(_ group: [[Int]]) throws {
            let t = group[0].count, b = group.count
            let key = [b, t]
            if passes[key] == nil { try checkFits(batch: b, length: t, recording: [.residPre, .logits]) }
            let pass = passes[key] ?? ForwardPass(architecture, batch: b, length: t)
            passes[key] = pass
            pass.setTokens(group.joined())
            // Clean pass, keeping the stream entering every block.
            var recorder = Recorder([.residPre])
            forward(pass, plan: InterventionPlan(layerCount: l), recorder: &recorder)
            try checkFinite(pass)
            geometry.add(batch: b, length: t, width: architecture.width) { i, body in
                if i < l, let pre = recorder.arrays[.residPre(i)] {
                    pre.scalars.withUnsafeBufferPointer { body($0.baseAddress!) }
                } else {
                    body(pass.stream.pointer)
                }
            }
            let cleanLogits = FloatBuffer(copying: UnsafeBufferPointer(start: pass.logits.pointer, count: b * t * v))
            let logZ = (0..<(b * t)).map { Distribution.logSumExp(cleanLogits.pointer + $0 * v, v) }
            let cleanWindowLoss = group.enumerated().map { s, tokens in
                clean.addLoss(cleanLogits.pointer + s * t * v, logZ: Array(logZ[(s * t)..<((s + 1) * t)]), tokens: tokens,
                              vocabulary: v)
            }
            var silent = Recorder([])
            for (k, ablated) in plans.enumerated() {
                // Restart from the clean stream entering the first slot that differs.
                let start = ablated.firstChangedSlot
                if start < ablated.order.count, let pre = recorder.arrays[.residPre(start)] {
                    pre.scalars.withUnsafeBufferPointer { pass.stream.pointer.update(from: $0.baseAddress!, count: $0.count) }
                    forward(pass, plan: ablated, recorder: &silent, from: start)
                } else {
                    forward(pass, plan: ablated, recorder: &silent)
                }
                try checkFinite(pass, "with \(plan[k].map(String.init(describing:)).joined(separator: ", "))")
                for (s, tokens) in group.enumerated() {
                    sums[k].add(clean: cleanLogits.pointer + s * t * v, logZClean: Array(logZ[(s * t)..<((s + 1) * t)]),
                                intervened: pass.logits.pointer + s * t * v, tokens: tokens, vocabulary: v,
                                cleanLoss: cleanWindowLoss[s], threads: threads)
                }
            }
        }

        for (index, tokens) in sequences.enumerated() {
            try validate(tokens: tokens)
            for interventions in plan { try validate(interventions: interventions, length: tokens.count) }
            if index == 0 { first = tokens }
            count += 1
            positions += tokens.count
            if let previous = pending.first, previous.count != tokens.count {
                try run(pending)
                progress?(count - 1)
                pending = []
            }
            pending.append(tokens)
            if pending.count >= (batch ?? Self.batchSize(length: tokens.count)) {
                try run(pending)
                progress?(count)
                pending = []
            }
        }
        if !pending.isEmpty {
            try run(pending)
            progress?(count)
        }
        let cleanLoss = clean.loss
        return AblationSweep(
            tokens: count == 1 ? first : nil, cleanLoss: cleanLoss, cleanLossStandardError: clean.lossWindows.standardError,
            entries: zip(plan, sums).map { AblationEntry(interventions: $0, metrics: $1.metrics(cleanLoss: cleanLoss)) },
            positions: positions, sequences: count, geometry: geometry.geometry,
            partial: AblationPartial(plan: plan, clean: clean, entries: sums, geometry: geometry, positions: positions, sequences: count))
    }

    /// Windows of `length` tokens per forward in a sweep: enough for about
    /// 256 rows per multiply, at most 16.
    static func batchSize(length: Int) -> Int { max(1, min(16, 256 / max(1, length))) }
}

/// Cutting a long token stream into model-sized windows.
public enum Windows {
    /// Windows of `length` tokens starting every `stride` tokens; a shorter
    /// final window is kept when it has at least two tokens (one prediction).
    public static func split(_ tokens: [Int], length: Int, stride: Int) -> [[Int]] {
        precondition(length > 0 && stride > 0)
        var windows: [[Int]] = []
        var start = 0
        while start < tokens.count {
            let end = min(start + length, tokens.count)
            if end - start >= 2 { windows.append(Array(tokens[start..<end])) }
            if end == tokens.count { break }
            start += stride
        }
        return windows
    }
}
