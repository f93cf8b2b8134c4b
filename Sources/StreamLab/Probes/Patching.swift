/// Where activation patching replaces an activation.
public enum PatchHook: String, CaseIterable, Sendable {
    /// One (layer, position) of the stream entering a block.
    case residPre = "resid_pre"
    /// One (layer, position) of the stream between the sublayers (sequential blocks).
    case residMid = "resid_mid"
    /// One (layer, position) of the attention's write.
    case attnOut = "attn_out"
    /// One (layer, position) of the MLP's write.
    case mlpOut = "mlp_out"
    /// One head's output z (its write, before the output projection) at every position.
    case head

    func point(_ layer: Int) -> HookPoint {
        switch self {
        case .residPre: return .residPre(layer)
        case .residMid: return .residMid(layer)
        case .attnOut: return .attnOut(layer)
        case .mlpOut: return .mlpOut(layer)
        case .head: return .attnZ(layer)
        }
    }
}

/// How each entry is measured.
public enum PatchMethod: String, Sendable {
    /// One forward per entry with the activation replaced.
    case exact
    /// The first-order estimate LD_base + (a_source - a_base) . dLD/da, from one
    /// backward of the base run for the whole grid (Nanda's attribution patching).
    case attribution
}

/// Which run is patched: denoising runs the corrupted input with one
/// activation from the clean run; noising the clean input with one from the corrupted run.
public enum PatchDirection: String, Sendable {
    case denoising, noising
}

/// One patched activation and what it did to the logit difference.
public struct PatchEntry: Sendable, Equatable {
    public let layer: Int
    /// The patched position (nil for a head, patched at every position).
    public let position: Int?
    public let head: Int?
    /// LD = logit[answer] - logit[wrong] at the last position of the patched run.
    public let logitDiff: Double
    /// (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted).
    public let normalized: Double
}

/// An activation-patching sweep (docs/definitions.md, Activation patching).
public struct Patching: Sendable {
    public let hook: PatchHook
    public let method: PatchMethod
    public let direction: PatchDirection
    public let clean: [Int]
    public let corrupted: [Int]
    public let answer: Int
    public let wrong: Int
    public let cleanLogitDiff: Double
    public let corruptedLogitDiff: Double
    /// By layer, then position (or head).
    public let entries: [PatchEntry]
}

extension Transformer {
    /// Exact activation patching: for every layer and every position of
    /// `positions` (default all; for `.head`, every head at every position),
    /// one run of the corrupted input (denoising) or of the clean one
    /// (noising) with that single activation taken from the other run; the
    /// metric is the logit difference `answer - wrong` at the last position.
    /// Each patched run restarts from the unpatched run's stream entering the
    /// patched layer (the blocks below are not recomputed).
    ///
    /// With `method: .attribution` every entry is estimated from one
    /// backward pass of the patched (base) run instead:
    /// `LD_base + (a_source - a_base) . dLD/da` over the patched values.
    public func patch(clean: [Int], corrupted: [Int], answer: Int, wrong: Int, hook: PatchHook,
                      method: PatchMethod = .exact, direction: PatchDirection = .denoising,
                      positions: [Int]? = nil) throws -> Patching {
        let a = architecture, l = a.layerCount, v = a.vocabularySize
        try validate(tokens: clean)
        try validate(tokens: corrupted)
        guard clean.count == corrupted.count else {
            throw ModelError.invalidRequest("patching needs clean and corrupted inputs of equal length (\(clean.count) vs \(corrupted.count) tokens)")
        }
        for token in [answer, wrong] where token < 0 || token >= v {
            throw ModelError.targetOutOfRange(target: token, vocabularySize: v)
        }
        if answer == wrong { throw ModelError.invalidRequest("the answer and the wrong token are the same (\(answer)): their logit difference is always 0") }
        if hook == .residMid && a.parallelResidual {
            throw ModelError.invalidRequest("resid_mid does not exist in parallel blocks (both sublayers read resid_pre)")
        }
        let t = clean.count
        for p in positions ?? [] where p < -t || p >= t { throw ModelError.positionOutOfRange(position: p, length: t) }
        let patched = (positions ?? Array(0..<t)).map { $0 < 0 ? t + $0 : $0 }
        let kind = hook.point(0).kind
        try checkFits(length: t, recording: [kind, .residPre, .logits])

        /// LD of a pass that read out only its last row (row 0 of its logits).
        func logitDiff(_ pass: ForwardPass) -> Double {
            Double(pass.logits.pointer[answer]) - Double(pass.logits.pointer[wrong])
        }
        /// One unpatched forward of `tokens` recording `kinds` (filling `cache` if given); its LD.
        func run(_ tokens: [Int], _ kinds: Set<HookKind>, cache: KVCache? = nil) throws -> (Recorder, Double) {
            let pass = ForwardPass(a, length: t, cache: cache)
            pass.setTokens(tokens)
            var recorder = Recorder(kinds)
            forward(pass, plan: InterventionPlan(layerCount: l), recorder: &recorder, finalRead: .lastRow)
            try checkFinite(pass)
            return (recorder, logitDiff(pass))
        }
        let baseTokens = direction == .denoising ? corrupted : clean
        let (source, sourceLD) = try run(direction == .denoising ? clean : corrupted, [kind])
        // Attribution: the base run's forward is the one its backward differentiates (one forward of each input, one backward).
        // Exact: the base run keeps its keys and values, which the patched runs read for the rows they do not change.
        var gradients: [BlockGradientPaths] = []
        let base: Recorder, baseLD: Double
        let cache = method == .exact ? KVCache(a, capacity: t) : nil
        if method == .attribution {
            (gradients, base, baseLD) = try patchGradients(baseTokens, answer: answer, wrong: wrong, recording: [kind])
        } else {
            (base, baseLD) = try run(baseTokens, [kind, .residPre], cache: cache)
        }
        let cleanLD = direction == .denoising ? sourceLD : baseLD, corruptedLD = direction == .denoising ? baseLD : sourceLD
        guard abs(cleanLD - corruptedLD) >= 1e-6 else {
            throw ModelError.invalidRequest("the clean and corrupted runs have the same logit difference (\(cleanLD)): nothing to normalise")
        }

        var entries: [PatchEntry] = []
        if method == .attribution {
            let h = a.headCount, dh = a.headDimension, d = a.width
            for layer in 0..<l {
                let src = source.arrays[hook.point(layer)]!.scalars, dst = base.arrays[hook.point(layer)]!.scalars
                let g: [Float]
                switch hook {
                case .residPre: g = gradients[layer].residPre
                case .residMid: g = gradients[layer].residMid
                case .attnOut: g = gradients[layer].attnOut
                case .mlpOut: g = gradients[layer].mlpOut
                case .head: g = gradients[layer].z
                }
                func estimate(_ indices: [Int]) -> Double {
                    baseLD + indices.reduce(0.0) { $0 + (Double(src[$1]) - Double(dst[$1])) * Double(g[$1]) }
                }
                let items: [(Int?, Int?, [Int])] = hook == .head
                    ? (0..<h).map { head in (nil, head, (0..<t).flatMap { i in (0..<dh).map { (i * h + head) * dh + $0 } }) }
                    : patched.map { p in (p, nil, Array((p * d)..<((p + 1) * d))) }
                for (position, head, indices) in items {
                    let ld = estimate(indices)
                    entries.append(PatchEntry(layer: layer, position: position, head: head, logitDiff: ld,
                                              normalized: (ld - corruptedLD) / (cleanLD - corruptedLD)))
                }
            }
            return Patching(hook: hook, method: method, direction: direction, clean: clean, corrupted: corrupted, answer: answer,
                            wrong: wrong, cleanLogitDiff: cleanLD, corruptedLogitDiff: corruptedLD, entries: entries)
        }
        // Exact. Causal attention leaves the rows before the patched position
        // unchanged, so the run patched at (layer, p) recomputes only rows
        // p..<T of the blocks from `layer` up, reading the keys and values of
        // rows < p from the base run's cache, and reads out only the last row.
        // Going down from the last position, each run overwrites cache rows
        // >= p only, which no later run (at p' <= p) reads.
        var silent = Recorder([])
        var results: [[PatchEntry?]] = Array(repeating: Array(repeating: nil, count: hook == .head ? a.headCount : patched.count),
                                             count: l)
        func measure(_ interventions: [Intervention], from p: Int, on pass: ForwardPass) throws -> PatchEntry {
            try validate(interventions: interventions, length: t - p)
            let plan = InterventionPlan(interventions, layerCount: l)
            let start = plan.firstChangedSlot
            base.arrays[.residPre(start)]!.scalars.withUnsafeBufferPointer {
                pass.stream.pointer.update(from: $0.baseAddress! + p * a.width, count: (t - p) * a.width)
            }
            forward(pass, plan: plan, recorder: &silent, from: start, finalRead: .lastRow)
            try checkFinite(pass, "with \(interventions.map(String.init(describing:)).joined(separator: ", "))")
            let ld = logitDiff(pass)
            return PatchEntry(layer: plan.order[start], position: nil, head: nil, logitDiff: ld,
                              normalized: (ld - corruptedLD) / (cleanLD - corruptedLD))
        }
        func pass(from p: Int) -> ForwardPass {
            let pass = ForwardPass(a, length: t - p, cache: cache)
            pass.setPositions(offset: p)
            pass.setTokens(baseTokens[p...])
            return pass
        }
        if hook == .head {
            let h = a.headCount, dh = a.headDimension, whole = pass(from: 0)
            for layer in 0..<l {
                let values = source.arrays[hook.point(layer)]!.scalars
                for head in 0..<h {
                    let z = Tensor(shape: [t, dh]) { out in
                        for i in 0..<t { for c in 0..<dh { out[i * dh + c] = values[(i * h + head) * dh + c] } }
                    }
                    let e = try measure([Intervention(.head(layer: layer, head: head), .replace(z))], from: 0, on: whole)
                    results[layer][head] = PatchEntry(layer: layer, position: nil, head: head, logitDiff: e.logitDiff,
                                                      normalized: e.normalized)
                }
            }
        } else {
            let width = source.arrays[hook.point(0)]!.shape.last!
            for p in Set(patched).sorted(by: >) {
                let suffix = pass(from: p)
                for layer in 0..<l {
                    let values = source.arrays[hook.point(layer)]!.scalars
                    let row = Tensor(shape: [t - p, width]) { out in
                        out.initialize(repeating: 0, count: (t - p) * width)
                        values.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + p * width, count: width) }
                    }
                    let e = try measure([Intervention(.hook(hook.point(layer)), .replace(row), positions: [0])], from: p, on: suffix)
                    for (i, q) in patched.enumerated() where q == p {
                        results[layer][i] = PatchEntry(layer: layer, position: p, head: nil, logitDiff: e.logitDiff,
                                                       normalized: e.normalized)
                    }
                }
            }
        }
        entries = results.flatMap { $0.map { $0! } }
        return Patching(hook: hook, method: method, direction: direction, clean: clean, corrupted: corrupted, answer: answer,
                        wrong: wrong, cleanLogitDiff: cleanLD, corruptedLogitDiff: corruptedLD, entries: entries)
    }

    /// dLD/d(every hook point) of one run of `tokens`, LD = logit[answer] -
    /// logit[wrong] at the last position, with the arrays of `recording` and
    /// LD itself: one forward (reading out only the last row) and one backward.
    func patchGradients(_ tokens: [Int], answer: Int, wrong: Int,
                        recording: Set<HookKind>) throws -> ([BlockGradientPaths], Recorder, Double) {
        let a = architecture, t = tokens.count, v = a.vocabularySize
        try checkFits(length: t, recording: recording, keepsActivations: true)
        let pass = ForwardPass(a, length: t, keepsActivations: true)
        pass.setTokens(tokens)
        var recorder = Recorder(recording)
        forward(pass, plan: InterventionPlan(layerCount: a.layerCount), recorder: &recorder, finalRead: .lastRow)
        try checkFinite(pass)
        let logits = pass.logits.pointer
        let ld = Double(logits[answer]) - Double(logits[wrong])
        var dLD = [Float](repeating: 0, count: v)
        dLD[answer] += 1
        dLD[wrong] -= 1
        let paths = backward(pass, dLogits: dLD, into: nil, transposed: TransposedWeights(), paths: true, lastRow: true)
        return (paths, recorder, ld)
    }
}
