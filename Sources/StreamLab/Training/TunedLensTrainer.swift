#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How a tuned lens is trained (docs/definitions.md, Tuned lens). The
/// defaults follow Belrose et al. (2023): SGD with Nesterov momentum 0.9,
/// learning rate 1, weight decay 1e-3, a linear warm-up then a linear decay
/// to 0; fewer tokens per step than their 2^18, for a CPU.
public struct TunedLensSettings: Sendable, Equatable {
    /// SGD with Nesterov momentum (the paper's), or Adam (beta 0.9, 0.999;
    /// weight decay decoupled, as AdamW) for comparison.
    public enum Optimizer: String, Sendable, CaseIterable { case sgd, adam }
    public var optimizer = Optimizer.sgd
    public var steps = 250
    public var learningRate = 1.0
    public var momentum = 0.9
    public var weightDecay = 1e-3
    /// Steps of linear warm-up from 0 to `learningRate`.
    public var warmup = 25
    /// Tokens per optimizer step: windows of `context` tokens each.
    public var tokensPerStep = 8192
    /// Window length (capped by the model's positions and the training text).
    public var context = 256
    public var seed: UInt64 = 0
    /// The share of the text's tokens kept out of training (its end), at most `heldOutMaxTokens`.
    public var heldOutFraction = 0.1
    public var heldOutMaxTokens = 65536
    /// Steps between saved training states (`--resume` continues from the last one).
    public var checkpointEvery = 50

    public init() {}

    /// The settings as metadata strings (what a resumed run must share).
    var fields: [String: String] {
        ["held_out_fraction": String(heldOutFraction), "held_out_max_tokens": String(heldOutMaxTokens), "steps": String(steps), "lr": String(learningRate), "momentum": String(momentum),
         "weight_decay": String(weightDecay), "warmup": String(warmup), "tokens_per_step": String(tokensPerStep),
         "context": String(context), "seed": String(seed), "optimizer": optimizer == .sgd ? "sgd-nesterov" : "adam"]
    }

    /// The learning rate of step `s` (0-based): linear warm-up over `warmup`
    /// steps, then linear decay to 0 at `steps`.
    func learningRate(step s: Int) -> Double {
        if s < warmup { return learningRate * Double(s + 1) / Double(warmup) }
        return learningRate * Double(steps - s) / Double(max(1, steps - warmup))
    }
}

/// One progress report of `TunedLensTrainer.run`.
public struct TunedLensProgress: Sendable {
    public let step: Int
    public let steps: Int
    /// Mean KL(P_final || P_translated) over the step's positions, averaged over translators.
    public let meanKL: Double
    public let learningRate: Double
    public let tokensPerSecond: Double
    public let elapsed: Double
}

/// What training produced: the lens and its held-out evaluation.
public struct TunedLensTraining: Sendable {
    public let lens: TunedLens
    /// Logit lens and tuned lens on the held-out tokens.
    public let heldOut: LensSummary
    public let trainTokens: Int
    public let heldOutTokens: Int
    public let context: Int
    public let steps: Int
    public let resumedAt: Int?
    public let elapsed: Double
}

/// Trains the translators of a tuned lens with the model frozen: per step,
/// one forward of the model over `tokensPerStep` tokens of random windows of
/// the training split, then for every translator l its read
/// `logits_l = final_read(h_l + A_l h_l + b_l)`, the loss
/// `KL(P_final || softmax(logits_l))` averaged over positions, and its
/// gradient through the model's own final-read backward:
/// `dL/dlogits_l = (softmax(logits_l) - P_final) / N`,
/// `dA_l = dh'^T h`, `db_l = sum of dh'` (dh' = dL/dh' `[N, D]`).
public final class TunedLensTrainer {
    public let model: Transformer
    public let settings: TunedLensSettings
    let identity: ModelIdentity
    let train: [Int]
    let heldOut: [Int]
    let context: Int
    /// `<output>.state`: the training state saved every `checkpointEvery` steps.
    public let statePath: String
    let outputPath: String
    let textFields: [String: String]

    var lens: TunedLens
    /// The optimizer's state per translator: SGD's momentum, or Adam's first and second moments.
    var momentum: [[Float]]
    var variance: [[Float]]
    var random: SeededRandom
    var step = 0
    public private(set) var resumedAt: Int?

    /// - Parameters:
    ///   - tokens: the whole text, tokenized; its end is held out.
    ///   - textName: how the text is named in errors and the file's metadata.
    ///   - resume: continue from `<output>.state` (refused if its settings, text or model differ).
    ///   - overwrite: discard an unfinished run's `<output>.state` and start afresh.
    public init(model: Transformer, identity: ModelIdentity, tokens: [Int], textName: String, textSHA256: String,
                settings: TunedLensSettings, output: String, resume: Bool, overwrite: Bool = false) throws {
        for (ok, what) in [(settings.steps >= 1, "steps must be at least 1"), (settings.tokensPerStep >= 1, "tokens per step must be at least 1"),
                           (settings.context >= 2, "the context must be at least 2"),
                           (settings.learningRate > 0 && settings.learningRate.isFinite, "the learning rate must be positive"),
                           (settings.momentum >= 0 && settings.momentum < 1, "the momentum must be within 0..<1"),
                           (settings.weightDecay >= 0 && settings.weightDecay.isFinite, "the weight decay must be non-negative"),
                           (settings.warmup >= 0 && settings.warmup <= settings.steps, "the warm-up must be within 0...steps"),
                           (settings.checkpointEvery >= 1, "checkpoints must be at least 1 step apart"),
                           (settings.heldOutFraction > 0 && settings.heldOutFraction < 1, "the held-out fraction must be within 0..<1"),
                           (settings.heldOutMaxTokens >= 2, "the held-out split needs at least 2 tokens")] where !ok {
            throw TrainingError.invalidSetting("tuned lens: \(what)")
        }
        if tokens.isEmpty { throw TrainingError.emptyCorpus(path: textName) }
        for (i, id) in tokens.enumerated() where id < 0 || id >= model.architecture.vocabularySize {
            throw ModelError.tokenOutOfRange(index: i, id: id, vocabularySize: model.architecture.vocabularySize)
        }
        let heldCount = min(settings.heldOutMaxTokens, Int((Double(tokens.count) * settings.heldOutFraction).rounded(.down)))
        let trainCount = tokens.count - heldCount
        guard heldCount >= 2, trainCount >= 2 else {
            throw TunedLensError.textTooShort(path: textName, tokens: tokens.count, needed: Int((2 / settings.heldOutFraction).rounded(.up)))
        }
        self.model = model
        self.settings = settings
        self.identity = identity
        train = Array(tokens[..<trainCount])
        heldOut = Array(tokens[trainCount...])
        context = min(settings.context, model.architecture.maxPositions, trainCount)
        outputPath = output
        statePath = output + ".state"
        textFields = ["text": textName, "text_sha256": textSHA256, "text_tokens": String(tokens.count)]
        lens = TunedLens(zeroFor: model.architecture, model: identity)
        momentum = lens.parameters.map { [Float](repeating: 0, count: $0.count) }
        variance = settings.optimizer == .adam ? momentum : []
        random = SeededRandom(seed: settings.seed)
        let windows = max(1, settings.tokensPerStep / context)
        try model.checkFits(batch: TunedLensObjective.group(model.architecture, length: context, windows: windows),
                            length: context, recording: [.residPre, .residPost, .logits])
        if resume { try loadState() } else if FileManager.default.fileExists(atPath: statePath) {
            guard overwrite else { throw TunedLensError.unfinishedRun(output: output, state: statePath) }
            try FileManager.default.removeItem(atPath: statePath)
        }
    }

    /// What a saved state must match.
    var stateFields: [String: String] {
        settings.fields.merging(textFields) { a, _ in a }
            .merging(["architecture_sha256": identity.architectureSHA256, "model": identity.name]) { a, _ in a }
    }

    func saveState() throws {
        var tensors: [NamedTensor] = []
        for i in lens.parameters.indices {
            tensors.append(NamedTensor(name: "parameters.\(i)", shape: [lens.parameters[i].count], values: lens.parameters[i]))
            tensors.append(NamedTensor(name: "momentum.\(i)", shape: [momentum[i].count], values: momentum[i]))
            if !variance.isEmpty { tensors.append(NamedTensor(name: "variance.\(i)", shape: [variance[i].count], values: variance[i])) }
        }
        var meta = stateFields
        meta["step"] = String(step)
        meta["random"] = random.stateWords.map(String.init).joined(separator: ",")
        try SafetensorsWriter.write(tensors, to: statePath, metadata: meta)
    }

    func loadState() throws {
        guard FileManager.default.fileExists(atPath: statePath) else {
            throw TrainingError.badCheckpoint(path: statePath, reason: "there is no saved state to resume (run without --resume)")
        }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: statePath) } catch {
            throw TrainingError.badCheckpoint(path: statePath, reason: "\(error)")
        }
        for (key, value) in stateFields.sorted(by: { $0.key < $1.key }) where file.metadata[key] != value {
            throw TrainingError.checkpointMismatch(path: statePath,
                                                   reason: "its \(key) is \(file.metadata[key] ?? "missing"), this run's is \(value)")
        }
        guard let s = file.metadata["step"].flatMap(Int.init), (0...settings.steps).contains(s),
              let words = file.metadata["random"]?.split(separator: ",").compactMap({ UInt64($0) }), words.count == 4,
              words.contains(where: { $0 != 0 })
        else { throw TrainingError.badCheckpoint(path: statePath, reason: "its step or random state is unreadable") }
        for i in lens.parameters.indices {
            for (name, count) in [("parameters.\(i)", lens.parameters[i].count), ("momentum.\(i)", momentum[i].count)]
                + (variance.isEmpty ? [] : [("variance.\(i)", variance[i].count)]) {
                guard let info = file.tensors[name], info.shape == [count] else {
                    throw TrainingError.badCheckpoint(path: statePath, reason: "tensor '\(name)' is missing or has the wrong shape")
                }
                let values = file.floats(info)
                guard values.allSatisfy(\.isFinite) else {
                    throw TrainingError.badCheckpoint(path: statePath, reason: "tensor '\(name)' holds NaN or infinity")
                }
                if name.hasPrefix("parameters") { lens.parameters[i] = values }
                else if name.hasPrefix("momentum") { momentum[i] = values } else { variance[i] = values }
            }
        }
        step = s
        random = SeededRandom(state: words)
        resumedAt = s
    }

    /// Trains the remaining steps, saving the state every `checkpointEvery`
    /// steps, evaluates on the held-out tokens, writes the lens (atomically)
    /// and removes the state. With `stopAfter`, stops at that step instead,
    /// saves the state for `resume` and returns nil.
    public func run(stopAfter: Int? = nil, progress: (TunedLensProgress) -> Void = { _ in }) throws -> TunedLensTraining? {
        if let stopAfter, stopAfter <= step {
            throw TrainingError.invalidSetting("--stop-after \(stopAfter) is not after step \(step), where this run resumes")
        }
        let t = context, windows = max(1, settings.tokensPerStep / t)
        let objective = TunedLensObjective(model: model, length: t, windows: windows)
        var gradients = lens.parameters.map { [Float](repeating: 0, count: $0.count) }
        let started = Date()
        let startStep = step
        while step < settings.steps {
            let starts = (0..<windows).map { _ in random.integer(below: train.count - t + 1) }
            let kl = try objective.evaluate(lens, windows: starts.map { Array(train[$0..<($0 + t)]) }, gradients: &gradients)
            let meanKL = kl.reduce(0, +) / Double(kl.count)
            guard meanKL.isFinite, gradients.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
                throw TunedLensError.diverged(step: step + 1, state: statePath)
            }
            let lr = settings.learningRate(step: step)
            for i in lens.parameters.indices {
                if settings.optimizer == .sgd { nesterovStep(i, gradients[i], lr: Float(lr)) } else { adamStep(i, gradients[i], lr: Float(lr)) }
            }
            guard lens.parameters.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw TunedLensError.diverged(step: step + 1, state: statePath) }
            step += 1
            let elapsed = Date().timeIntervalSince(started)
            progress(TunedLensProgress(step: step, steps: settings.steps, meanKL: meanKL, learningRate: lr,
                                       tokensPerSecond: Double((step - startStep) * windows * t) / max(elapsed, 1e-9),
                                       elapsed: elapsed))
            if step < settings.steps && (step % settings.checkpointEvery == 0 || step == stopAfter) { try saveState() }
            if step == stopAfter && step < settings.steps { return nil }
        }
        let elapsed = Date().timeIntervalSince(started)
        let evaluation = try model.logitLensSummary(heldOutWindows(), tuned: lens)
        var meta = stateFields
        meta["train_tokens"] = String(train.count)
        meta["held_out_tokens"] = String(heldOut.count)
        meta["context_used"] = String(t)
        meta["held_out_kl_logit_lens"] = evaluation.layers.map { String($0.meanKLToFinal) }.joined(separator: ",")
        meta["held_out_kl_tuned_lens"] = evaluation.tunedLayers!.map { String($0.meanKLToFinal) }.joined(separator: ",")
        lens.metadata = meta
        try lens.save(to: outputPath)
        try? FileManager.default.removeItem(atPath: statePath)
        return TunedLensTraining(lens: lens, heldOut: evaluation, trainTokens: train.count, heldOutTokens: heldOut.count,
                                 context: t, steps: settings.steps, resumedAt: resumedAt, elapsed: elapsed)
    }

    /// The held-out tokens as consecutive windows of `context` tokens (the last may be shorter).
    func heldOutWindows() -> [[Int]] {
        stride(from: 0, to: heldOut.count, by: context).map { Array(heldOut[$0..<min(heldOut.count, $0 + context)]) }
    }

    /// Adam with decoupled weight decay (torch.optim.AdamW): m = b1 m + (1 - b1) g,
    /// v = b2 v + (1 - b2) g², p -= lr (m̂ / (sqrt(v̂) + 1e-8) + wd p), at step t = `step` + 1.
    func adamStep(_ i: Int, _ gradient: [Float], lr: Float) {
        let b1: Float = 0.9, b2: Float = 0.999, wd = Float(settings.weightDecay), t = Float(step + 1)
        let c1 = 1 - CMath.pow(b1, t), c2 = 1 - CMath.pow(b2, t)
        lens.parameters[i].withUnsafeMutableBufferPointer { p in
            momentum[i].withUnsafeMutableBufferPointer { m in
                variance[i].withUnsafeMutableBufferPointer { v in
                    for k in 0..<p.count {
                        let g = gradient[k]
                        m[k] = b1 * m[k] + (1 - b1) * g
                        v[k] = b2 * v[k] + (1 - b2) * g * g
                        p[k] -= lr * ((m[k] / c1) / ((v[k] / c2).squareRoot() + 1e-8) + wd * p[k])
                    }
                }
            }
        }
    }

    /// torch.optim.SGD(nesterov=True) with weight decay: g = grad + wd p,
    /// m = mu m + g, p -= lr (g + mu m).
    func nesterovStep(_ i: Int, _ gradient: [Float], lr: Float) {
        let mu = Float(settings.momentum), wd = Float(settings.weightDecay)
        lens.parameters[i].withUnsafeMutableBufferPointer { p in
            momentum[i].withUnsafeMutableBufferPointer { m in
                for k in 0..<p.count {
                    let g = gradient[k] + wd * p[k]
                    m[k] = mu * m[k] + g
                    p[k] -= lr * (g + mu * m[k])
                }
            }
        }
    }
}

/// The tuned-lens loss and its gradient on windows of one length, with the
/// buffers reused from call to call. The model is frozen: one forward per
/// group of windows, then for every translator l its read
/// `logits_l = final_read(h_l + A_l h_l + b_l)`, `KL(P_final || softmax(logits_l))`
/// averaged over all positions of all windows, and its gradient through the
/// model's own final-read backward: `dL/dlogits_l = (softmax(logits_l) - P_final) / N`,
/// `dA_l = dh'^T h_l`, `db_l = sum over rows of dh'` (dh' = dL/dh' `[N, D]`).
public final class TunedLensObjective {
    let model: Transformer
    let length: Int
    /// Windows per forward, so that one translator's logits stay under 256 MB.
    let group: Int
    let pass: ForwardPass
    let streams: FloatBuffer          // [L, N, D]: the read streams h_l of one group
    let target: FloatBuffer           // [N, V]: the model's logits (P_final)
    let dLogits: FloatBuffer          // [N, V]
    let transposed = TransposedWeights()

    /// Windows per forward for up to `windows` windows: each `[N, V]` buffer
    /// (logits, targets, their gradient) stays under 256 MB.
    static func group(_ a: Architecture, length: Int, windows: Int) -> Int {
        max(1, min(windows, (256 << 20) / max(1, length * a.vocabularySize * 4)))
    }

    /// For up to `windows` windows of `length` tokens per evaluation, at most
    /// `maxGroup` of them per forward (default: as many as `group` allows).
    public init(model: Transformer, length: Int, windows: Int, maxGroup: Int? = nil) {
        let a = model.architecture
        self.model = model
        self.length = length
        group = min(Self.group(a, length: length, windows: windows), max(1, maxGroup ?? Int.max))
        pass = ForwardPass(a, batch: group, length: length)
        let n = group * length
        streams = FloatBuffer(a.layerCount * n * a.width)
        target = FloatBuffer(n * a.vocabularySize)
        dLogits = FloatBuffer(n * a.vocabularySize)
    }

    /// Mean KL(P_final || P_l) per translator over every position of
    /// `windows` (each `length` tokens); `gradients` (one `[D*D + D]` per
    /// translator, W = A^T then b, as `TunedLens.parameters`) are overwritten
    /// with the gradient of their sum.
    public func evaluate(_ lens: TunedLens, windows: [[Int]], gradients: inout [[Float]]) throws -> [Double] {
        let a = model.architecture, d = a.width, v = a.vocabularySize, t = length, count = lens.translatorCount
        try lens.check(fits: a)
        guard !windows.isEmpty, windows.allSatisfy({ $0.count == t }) else {
            throw TrainingError.invalidShape("the tuned-lens objective takes windows of exactly \(t) tokens")
        }
        guard gradients.count == count, zip(gradients, lens.parameters).allSatisfy({ $0.count == $1.count }) else {
            throw TunedLensError.shapeMismatch(lens: "gradients for \(gradients.count) translators", model: "\(count) translators")
        }
        for w in windows { try model.validate(tokens: w) }
        for i in gradients.indices { gradients[i].withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        let n = group * t
        let scale = 1 / Float(windows.count * t)
        var kl = [Double](repeating: 0, count: count)
        var targetLogZ = [Double](repeating: 0, count: n)
        for first in stride(from: 0, to: windows.count, by: group) {
            let members = windows[first..<min(windows.count, first + group)]
            // Unused rows of a short last group repeat its first window; their weight is zero.
            var ids: [Int] = []
            for b in 0..<group { ids += members[members.startIndex + (b < members.count ? b : 0)] }
            pass.setTokens(ids)
            var recorder = Recorder([.residPre, .residPost])
            model.forward(pass, plan: InterventionPlan(layerCount: a.layerCount), recorder: &recorder, finalRead: .all)
            try model.checkFinite(pass)
            target.pointer.update(from: pass.logits.pointer, count: n * v)
            for i in 0..<n { targetLogZ[i] = Distribution.logSumExp(target.pointer + i * v, v) }
            for index in 0..<count {
                let point: HookPoint = index == 0 ? .residPre(0) : .residPost(index - 1)
                recorder.arrays[point]!.scalars.withUnsafeBufferPointer {
                    (streams.pointer + index * n * d).update(from: $0.baseAddress!, count: n * d)
                }
            }
            let liveRows = members.count * t
            for index in 0..<count {
                let h = streams.pointer + index * n * d
                lens.translate(index, h, rows: n, into: pass.stream.pointer, threads: model.threads)
                model.finalRead(pass.stream.pointer, rows: n, normed: pass.finalNormed?.pointer, mean: pass.finalMean.pointer,
                                rstd: pass.finalRstd.pointer, projected: pass.projected?.pointer, into: pass.logits.pointer)
                for i in 0..<n {
                    let weight = i < liveRows ? scale : 0
                    kl[index] += Double(weight) * Distribution.klWithGradient(
                        target.pointer + i * v, logZP: targetLogZ[i], pass.logits.pointer + i * v, v, scale: weight,
                        into: dLogits.pointer + i * v)
                }
                model.finalReadBackward(pass, dLogits: dLogits.pointer, into: nil, transposed: transposed)
                gradients[index].withUnsafeMutableBufferPointer { g in
                    LinearOp.backward(pass.gradients.stream.pointer, x: h, rows: n, inputs: d, outputs: d, weightT: nil,
                                      dx: nil, accumulate: true, dWeight: g.baseAddress!, dBias: g.baseAddress! + d * d,
                                      workspace: pass.gradients.transposes, threads: model.threads)
                }
            }
        }
        return kl
    }
}
