#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Dispatch

/// Everything that determines a training run. The defaults are the bundled
/// shape of docs/training.md (6 layers x 128, 4 heads, context 256,
/// batch 16, AdamW 0.9/0.95, weight decay 0.1, clip 1.0, cosine to 10%).
public struct TrainingSettings: Sendable, Equatable {
    public var layers = 6
    public var width = 128
    public var heads = 4
    public var context = 256
    public var norm: Architecture.NormPlacement = .pre
    public var plain = false
    public var steps = 4000
    public var batch = 16
    public var learningRate: Float = 2e-3
    public var warmup = 100
    /// The cosine decays to this fraction of the peak rate.
    public var finalFraction: Float = 0.1
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    /// Global gradient-norm clip (0: none).
    public var clip: Float = 1.0
    public var seed: UInt64 = 1234
    /// Validation every this many steps (and at the end); 0: only at the end.
    public var evalEvery = 250
    /// Validation reads the first this many bytes of the validation file.
    public var evalBytes = 65536
    /// Checkpoint every this many steps (and at the end); 0: only at the end.
    public var checkpointEvery = 250
    /// A log entry (and a progress event) every this many steps.
    public var logEvery = 10

    public init() {}

    public func architecture() throws -> Architecture {
        try Architecture.byteLevel(layers: layers, width: width, heads: heads, context: context, norm: norm, plain: plain)
    }

    var json: JSONOutput {
        .object([
            ("layers", .int(layers)), ("width", .int(width)), ("heads", .int(heads)), ("context", .int(context)),
            ("norm", .string(norm.rawValue)), ("plain", .bool(plain)), ("steps", .int(steps)), ("batch", .int(batch)),
            ("lr", .float(learningRate)), ("warmup", .int(warmup)), ("min_lr_fraction", .float(finalFraction)),
            ("weight_decay", .float(weightDecay)), ("beta1", .float(beta1)), ("beta2", .float(beta2)),
            ("clip", .float(clip)), ("seed", .string(String(seed))), ("eval_every", .int(evalEvery)),
            ("eval_bytes", .int(evalBytes)), ("checkpoint_every", .int(checkpointEvery)),
        ])
    }
}

/// One line of the training log.
public struct TrainingLogEntry: Sendable, Equatable {
    public var step: Int               // steps done (1-based)
    public var loss: Float             // mean training loss of the last logEvery steps
    public var learningRate: Float
    public var gradientNorm: Float     // before clipping, of the last step
    public var tokensPerSecond: Double
    public var elapsed: Double         // seconds of training so far
}

/// Progress reported while training.
public enum TrainingEvent: Sendable {
    case started(parameters: Int, startStep: Int, threads: Int)
    case step(TrainingLogEntry, steps: Int, eta: Double)
    case validation(step: Int, loss: Double, positions: Int)
    case checkpoint(step: Int, path: String)
}

/// What a finished run reports.
public struct TrainingSummary: Sendable {
    public let steps: Int
    /// Loss on the first `evalBytes` of the training corpus, measured like the validation loss.
    public let trainLoss: Double
    public let validationLoss: Double
    public let validationPositions: Int
    public let elapsed: Double
    public let tokensPerSecond: Double
}

/// `stream-probe train`: byte-level language-model training of a GPT-2
/// (pre-norm) or GPT-1 (post-norm) layout, AdamW with warm-up and cosine
/// decay, gradient clipping, periodic validation, a resumable checkpoint
/// (`train-state.bin`), and at the end a Hugging Face model directory.
///
/// The output directory `DIR` is always one consistent run. A run is built
/// in the sibling `DIR.partial` (its periodic checkpoints too) and renamed
/// to `DIR` when it ends (all steps, or `stopAfter`), replacing the old `DIR`;
/// until then `DIR` is untouched. A diverged or failed run removes
/// `DIR.partial` (a failed one keeps it when it holds a checkpoint to resume);
/// an interrupted one keeps it only when it holds a checkpoint. `resume`
/// continues `DIR.partial/train-state.bin` if there is one (an unfinished
/// run), else `DIR/train-state.bin` (a run stopped with `stopAfter`). The
/// lock file `DIR.lock` (`flock`) keeps a second run off the same `DIR`.
public final class Trainer {
    public let settings: TrainingSettings
    public let model: TrainableModel
    public let corpus: ByteCorpus
    public let validation: ByteCorpus
    /// The output directory (trailing slashes removed).
    public let directory: String
    /// Where this run is built: `directory + ".partial"`.
    public let partialDirectory: String
    public let threads: Int
    /// The checkpoint restored (nil for a fresh run).
    public let resumedFrom: String?
    /// Whether the run continues in an existing `partialDirectory`.
    let continuesPartial: Bool
    let lock: PathLock
    /// CRC-32 of the training and validation corpora (hex), recorded in the checkpoint.
    let corpusCRC: String
    let validationCRC: String
    let optimizer: AdamW
    let pass: GradientPass
    let schedule: LearningRateSchedule
    var rng: SeededRandom
    var step = 0
    var elapsed = 0.0
    public private(set) var log: [TrainingLogEntry] = []
    public private(set) var validations: [(step: Int, loss: Double)] = []
    /// Training-corpus loss at the end, in the validation measure.
    public private(set) var finalTrainLoss: Double?

    public static let checkpointName = "train-state.bin"
    public static let logName = "training.json"
    public static let partialSuffix = ".partial"
    public static let lockSuffix = ".lock"

    /// Checks everything before any output is written (only the lock file
    /// `directory.lock` is created): data, shape, output directory, the
    /// checkpoint to resume. `resume` continues `directory.partial/train-state.bin`
    /// or else `directory/train-state.bin`; `overwrite` allows an existing
    /// directory (and discards an unfinished run) for a fresh run.
    public init(settings: TrainingSettings, corpus: ByteCorpus, validation: ByteCorpus, directory: String,
                threads: Int, resume: Bool = false, overwrite: Bool = false) throws {
        let a = try settings.architecture()
        try corpus.requireWindow(settings.context, extra: 1)
        try validation.requireWindow(settings.context, extra: 0)
        guard settings.steps > 0 else { throw TrainingError.invalidSetting("--steps must be positive, got \(settings.steps)") }
        guard settings.batch > 0 else { throw TrainingError.invalidSetting("--batch must be positive, got \(settings.batch)") }
        guard settings.learningRate > 0, settings.learningRate.isFinite else {
            throw TrainingError.invalidSetting("--lr must be a positive number, got \(settings.learningRate)")
        }
        guard settings.warmup >= 0 else { throw TrainingError.invalidSetting("--warmup must be >= 0, got \(settings.warmup)") }
        guard let (parent, _) = OutputDirectory.split(directory) else {
            throw TrainingError.invalidSetting("--out must end in a directory name, got '\(directory)'")
        }
        var dir = directory
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        let partial = dir + Self.partialSuffix
        // Everything below happens under the lock (released when this init throws).
        try OutputDirectory.create(parent)
        guard let lock = try PathLock(lockPath: dir + Self.lockSuffix) else {
            throw TrainingError.outputLocked(path: dir, lockPath: dir + Self.lockSuffix)
        }
        for path in [dir, partial] where OutputDirectory.exists(path) && !OutputDirectory.isDirectory(path) {
            throw OutputError.cannotWrite(path: path, reason: "it exists and is not a directory")
        }
        let partialCheckpoint = partial + "/" + Self.checkpointName
        let partialHasCheckpoint = OutputDirectory.exists(partialCheckpoint)
        var source: String? = nil
        if resume {
            if partialHasCheckpoint {
                source = partialCheckpoint
            } else if OutputDirectory.exists(dir + "/" + Self.checkpointName) {
                source = dir + "/" + Self.checkpointName
            } else {
                throw TrainingError.badCheckpoint(path: dir + "/" + Self.checkpointName, reason: "no such file (nothing to resume)")
            }
        } else if !overwrite {
            if OutputDirectory.exists(dir) { throw TrainingError.outputExists(path: dir) }
            if partialHasCheckpoint { throw TrainingError.unfinishedRun(path: dir, partial: partial) }
        }
        self.settings = settings
        self.corpus = corpus
        self.validation = validation
        self.directory = dir
        partialDirectory = partial
        resumedFrom = source
        continuesPartial = source == partialCheckpoint
        self.lock = lock
        corpusCRC = Self.crc(corpus)
        validationCRC = Self.crc(validation)
        self.threads = max(1, threads)
        model = try TrainableModel(architecture: a, seed: settings.seed)
        optimizer = AdamW(layout: model.layout, settings: .init(beta1: settings.beta1, beta2: settings.beta2,
                                                                 weightDecay: settings.weightDecay))
        pass = GradientPass(a, batch: settings.batch, length: settings.context, threads: self.threads)
        schedule = LearningRateSchedule(peak: settings.learningRate, warmup: settings.warmup, total: settings.steps,
                                        floor: settings.finalFraction)
        rng = SeededRandom(seed: settings.seed ^ 0x5EED_DA7A)
        if let source { try restore(from: source) }
    }

    static func crc(_ corpus: ByteCorpus) -> String {
        hex(corpus.bytes.withUnsafeBytes { CRC32.checksum($0) })
    }

    /// Size and CRC-32 of a corpus, as the checkpoint records them.
    static func digest(bytes: Int, crc: String) -> JSONOutput {
        .object([("bytes", .int(bytes)), ("crc32", .string(crc))])
    }

    static func hex(_ x: UInt32) -> String {
        let h = String(x, radix: 16)
        return String(repeating: "0", count: 8 - h.count) + h
    }

    /// Trains to `settings.steps` (or only up to step `stopAfter`, then
    /// checkpoints, so a long run can be done in pieces with `resume`), then
    /// writes the model directory; returns the summary.
    @discardableResult
    public func run(stopAfter: Int? = nil, progress: (TrainingEvent) -> Void = { _ in }) throws -> TrainingSummary {
        defer { lock.release() }
        if !continuesPartial {
            // A leftover of a run discarded by --overwrite, or one that never checkpointed.
            OutputDirectory.remove(partialDirectory)
        }
        try OutputDirectory.create(partialDirectory)
        AtomicFile.removeOnInterrupt(partialDirectory, directory: true)
        defer { AtomicFile.keepOnInterrupt(partialDirectory) }
        do {
            let summary = try train(stopAfter: stopAfter, progress: progress)
            try OutputDirectory.replace(directory, with: partialDirectory)
            return summary
        } catch {
            // A diverged run leaves nothing (resuming it would diverge again); another
            // failure keeps the unfinished run only when it has a checkpoint to resume.
            if case TrainingError.diverged = error {
                OutputDirectory.remove(partialDirectory)
            } else if !OutputDirectory.exists(partialDirectory + "/" + Self.checkpointName) {
                OutputDirectory.remove(partialDirectory)
            }
            throw error
        }
    }

    func train(stopAfter: Int?, progress: (TrainingEvent) -> Void) throws -> TrainingSummary {
        let s = settings
        let tokensPerStep = Double(s.batch * s.context)
        progress(.started(parameters: model.layout.count, startStep: step, threads: threads))
        var windowLoss: Double = 0, windowSteps = 0, windowStart = DispatchTime.now().uptimeNanoseconds
        var lastNorm: Float = 0
        var lastTrainLoss: Float = .nan
        let end = min(s.steps, stopAfter ?? s.steps)
        var checkpointed = -1
        while step < end {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let (tokens, targets) = corpus.sample(batch: s.batch, context: s.context, rng: &rng)
            pass.setBatch(tokens: tokens, targets: targets)
            model.zeroGradients()
            let transformer = try model.transformer()
            let loss = pass.forward(transformer)
            pass.backward(transformer, into: model.gradients.pointer)
            lastNorm = clipGradients(model.gradients.pointer, count: model.layout.count, maxNorm: s.clip > 0 ? s.clip : .infinity)
            let lr = schedule.rate(at: step)
            optimizer.update(model.values.pointer, gradients: model.gradients.pointer, count: model.layout.count,
                             lr: lr, threads: threads)
            step += 1
            elapsed += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            windowLoss += Double(loss)
            windowSteps += 1
            lastTrainLoss = loss
            if !loss.isFinite {
                throw TrainingError.diverged(step: step, loss: "\(loss)")
            }
            if step % max(1, s.logEvery) == 0 || step == s.steps {
                let now = DispatchTime.now().uptimeNanoseconds
                let seconds = max(1e-9, Double(now - windowStart) / 1e9)
                let entry = TrainingLogEntry(step: step, loss: Float(windowLoss / Double(windowSteps)), learningRate: lr,
                                             gradientNorm: lastNorm, tokensPerSecond: tokensPerStep * Double(windowSteps) / seconds,
                                             elapsed: elapsed)
                log.append(entry)
                progress(.step(entry, steps: s.steps, eta: Double(s.steps - step) * seconds / Double(windowSteps)))
                windowLoss = 0
                windowSteps = 0
                windowStart = now
            }
            let last = step == end
            if last || (s.evalEvery > 0 && step % s.evalEvery == 0) {
                let (v, n) = try evaluate()
                validations.append((step, v))
                progress(.validation(step: step, loss: v, positions: n))
                windowStart = DispatchTime.now().uptimeNanoseconds   // validation time is not training time
            }
            if last || (s.checkpointEvery > 0 && step % s.checkpointEvery == 0) {
                let path = partialDirectory + "/" + Self.checkpointName
                try saveCheckpoint(to: path)
                try writeLog()
                checkpointed = step
                progress(.checkpoint(step: step, path: path))
            }
        }
        if checkpointed != step {
            // Nothing left to train (a resumed run that had ended): the new directory still gets the state.
            try saveCheckpoint(to: partialDirectory + "/" + Self.checkpointName)
        }
        // The final training loss in the validation measure (the first evalBytes of the corpus,
        // non-overlapping windows), so that training and validation losses compare directly.
        finalTrainLoss = Self.evaluate(try model.transformer(), pass: pass, windows: corpus.evaluationWindows(context: s.context, limit: s.evalBytes)).loss
        try ModelExport.write(model, to: partialDirectory)
        try writeLog()
        let final = validations.last
        return TrainingSummary(steps: step, trainLoss: finalTrainLoss ?? Double(lastTrainLoss), validationLoss: final?.loss ?? .nan,
                               validationPositions: validationPositions, elapsed: elapsed,
                               tokensPerSecond: elapsed > 0 ? tokensPerStep * Double(step) / elapsed : 0)
    }

    var validationPositions: Int {
        validation.evaluationWindows(context: settings.context, limit: settings.evalBytes).count * (settings.context - 1)
    }

    /// Mean loss (nats per byte) over non-overlapping windows of the first
    /// `evalBytes` validation bytes, positions 0..T-2 of each window.
    public func evaluate() throws -> (loss: Double, positions: Int) {
        Self.evaluate(try model.transformer(), pass: pass, windows: validation.evaluationWindows(context: settings.context, limit: settings.evalBytes))
    }

    /// Mean next-token loss of `windows` (each of the pass's length), run
    /// `pass.batch` windows at a time; positions 0..T-2 of each are scored.
    public static func evaluate(_ model: Transformer, pass: GradientPass, windows: [[Int]]) -> (loss: Double, positions: Int) {
        let b = pass.batch, t = pass.length
        var total: Double = 0, count = 0
        var i = 0
        while i < windows.count {
            var tokens = [Int32](repeating: 0, count: b * t), targets = [Int32](repeating: -1, count: b * t)
            for r in 0..<b where i + r < windows.count {
                let w = windows[i + r]
                precondition(w.count == t)
                for p in 0..<t {
                    tokens[r * t + p] = Int32(w[p])
                    if p + 1 < t { targets[r * t + p] = Int32(w[p + 1]) }
                }
            }
            pass.setBatch(tokens: tokens, targets: targets)
            let mean = pass.forward(model, computeGradient: false)
            if pass.scoredCount > 0 {
                total += Double(mean) * Double(pass.scoredCount)
                count += pass.scoredCount
            }
            i += b
        }
        return (count > 0 ? total / Double(count) : .nan, count)
    }

    // MARK: - Checkpoints

    static let magic = Array("STREAMLAB-TRAIN2".utf8)
    static let formatOneMagic = Array("STREAMLAB-TRAIN1".utf8)

    /// `train-state.bin`: 16 magic bytes, a little-endian UInt64 header
    /// length, a JSON header (format, step, parameter count, RNG state,
    /// elapsed seconds, settings, the size and CRC-32 of the training and
    /// validation corpora, log), then float32 parameters, Adam first and
    /// second moments (`parameter count` each), and last the little-endian
    /// CRC-32 of every byte before it.
    func saveCheckpoint(to path: String) throws {
        let header = JSONOutput.object([
            ("format", .int(2)), ("step", .int(step)), ("optimizer_step", .int(optimizer.step)),
            ("parameter_count", .int(model.layout.count)),
            ("rng", .strings(rng.stateWords.map { String($0, radix: 16) })), ("elapsed_seconds", .double(elapsed)),
            ("settings", settings.json), ("corpus", Self.digest(bytes: corpus.count, crc: corpusCRC)),
            ("validation", Self.digest(bytes: validation.count, crc: validationCRC)), ("log", logJSON),
        ]).serialized()
        var prefix = Self.magic
        prefix.le64(UInt64(header.utf8.count))
        let file = try AtomicFile(path: path)
        do {
            var crc = CRC32()
            let head = prefix + Array(header.utf8)
            head.withUnsafeBytes { crc.update($0) }
            try file.write(head)
            let (m, v) = optimizer.moments
            for buffer in [model.flatParameters, m, v] {
                try buffer.withUnsafeBytes { crc.update($0); try file.write($0) }
            }
            var trailer: [UInt8] = []
            for i in 0..<4 { trailer.append(UInt8(truncatingIfNeeded: crc.value >> (8 * UInt32(i)))) }
            try file.write(trailer)
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    func restore(from path: String) throws {
        func bad(_ reason: String) -> TrainingError { .badCheckpoint(path: path, reason: reason) }
        guard let bytes = try? FileBytes.read(path, limit: 12 * model.layout.count + (1 << 20)) else { throw bad("unreadable") }
        if bytes.count >= 16 && Array(bytes[0..<16]) == Self.formatOneMagic {
            throw bad("it is a format-1 checkpoint without a checksum (an older StreamLab); start afresh with --overwrite")
        }
        guard bytes.count >= 28, Array(bytes[0..<16]) == Self.magic else { throw bad("not a StreamLab training checkpoint") }
        // The checksum first: a damaged file is refused before any of it is believed.
        let body = bytes.count - 4
        var stored: UInt32 = 0
        for i in 0..<4 { stored |= UInt32(bytes[body + i]) << (8 * UInt32(i)) }
        let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
        guard stored == computed else {
            throw bad("checksum mismatch (stored CRC-32 \(Self.hex(stored)), computed \(Self.hex(computed))): the file is damaged")
        }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[16 + i]) << (8 * UInt64(i)) }
        guard length <= UInt64(body - 24) else { throw bad("truncated header") }
        let headerEnd = 24 + Int(length)
        guard let header = try? JSONReader.parseLocated(Array(bytes[24..<headerEnd])), header["format"]?.int == 2,
              let savedStep = header["step"]?.int, let optimizerStep = header["optimizer_step"]?.int,
              let count = header["parameter_count"]?.int,
              let words = header["rng"]?.array?.compactMap({ $0.string.flatMap { UInt64($0, radix: 16) } }),
              words.count == 4, let saved = header["settings"]
        else { throw bad("malformed header") }
        guard count == model.layout.count else {
            throw TrainingError.checkpointMismatch(path: path, reason: "it holds \(count) parameters, this model has \(model.layout.count)")
        }
        let current = settings.json
        for (key, value) in current.objectFields where !["eval_every", "eval_bytes", "checkpoint_every"].contains(key) {
            let savedValue = saved[key].map(JSONOutput.init(value:))
            if savedValue?.serialized() != value.serialized() {
                throw TrainingError.checkpointMismatch(
                    path: path, reason: "it was trained with \(key) = \(savedValue?.serialized() ?? "nothing"), this run has \(value.serialized()); use the same settings")
            }
        }
        for (key, name, flag, corpus, crc) in [("corpus", "training corpus", "--corpus", self.corpus, corpusCRC),
                                               ("validation", "validation corpus", "--valid", validation, validationCRC)] {
            let savedBytes = header[key]?["bytes"]?.int, savedCRC = header[key]?["crc32"]?.string
            if savedBytes != corpus.count || savedCRC != crc {
                let was = savedBytes.map { "\($0) bytes with CRC-32 \(savedCRC ?? "?")" } ?? "unrecorded data"
                throw TrainingError.checkpointMismatch(
                    path: path, reason: "the \(name) differs: it was trained on \(was), \(flag) '\(corpus.path)' has \(corpus.count) bytes with CRC-32 \(crc); use the same \(flag)")
            }
        }
        guard body == headerEnd + 3 * count * 4 else { throw bad("expected \(3 * count * 4) bytes of tensors after the header, found \(body - headerEnd)") }
        func floats(_ k: Int) -> [Float] {
            bytes.withUnsafeBytes { raw in
                (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: headerEnd + (k * count + $0) * 4, as: UInt32.self).littleEndian) }
            }
        }
        model.setFlatParameters(floats(0))
        optimizer.restore(m: floats(1), v: floats(2), step: optimizerStep)
        rng = SeededRandom(state: words)
        step = savedStep
        elapsed = header["elapsed_seconds"]?.double ?? 0
        if let entries = header["log"]?["steps"]?.array {
            log = entries.compactMap { e in
                guard let s = e["step"]?.int, let l = e["loss"]?.double, let lr = e["lr"]?.double,
                      let g = e["grad_norm"]?.double, let tps = e["tokens_per_second"]?.double,
                      let el = e["elapsed"]?.double else { return nil }
                return TrainingLogEntry(step: s, loss: Float(l), learningRate: Float(lr), gradientNorm: Float(g),
                                        tokensPerSecond: tps, elapsed: el)
            }
        }
        if let entries = header["log"]?["validation"]?.array {
            validations = entries.compactMap { e in
                guard let s = e["step"]?.int, let l = e["loss"]?.double else { return nil }
                return (s, l)
            }
        }
    }

    var logJSON: JSONOutput {
        .object([
            ("steps", .array(log.map { e in
                .object([("step", .int(e.step)), ("loss", .float(e.loss)), ("lr", .float(e.learningRate)),
                         ("grad_norm", .float(e.gradientNorm)), ("tokens_per_second", .double(e.tokensPerSecond.rounded())),
                         ("elapsed", .double((e.elapsed * 100).rounded() / 100))])
            })),
            ("validation", .array(validations.map { .object([("step", .int($0.step)), ("loss", .double($0.loss))]) })),
        ])
    }

    /// `training.json`: settings, the data files, and the log so far.
    func writeLog() throws {
        let doc = JSONOutput.object([
            ("settings", settings.json), ("corpus", .string(corpus.path)), ("corpus_bytes", .int(corpus.count)),
            ("validation", .string(validation.path)), ("validation_bytes", .int(validation.count)),
            ("threads", .int(threads)), ("parameters", .int(model.layout.count)), ("steps_done", .int(step)),
            ("elapsed_seconds", .double((elapsed * 10).rounded() / 10)),
            ("final_validation_loss", validations.last.map { .double($0.loss) } ?? .null),
            ("final_train_loss", finalTrainLoss.map { .double($0) } ?? .null),
            ("final_loss_measure", .string("mean next-byte loss over positions 0..T-2 of non-overlapping windows of the context in the first eval_bytes bytes of each file")),
            ("log", logJSON),
        ])
        try AtomicFile.write(doc.serialized() + "\n", to: partialDirectory + "/" + Self.logName)
    }
}

extension ByteCorpus {
    /// Requires `context + extra` bytes: one training window and its next
    /// byte (`extra` 1), or one validation window (`extra` 0).
    public func requireWindow(_ context: Int, extra: Int) throws {
        if bytes.count < context + extra {
            throw TrainingError.corpusTooShort(path: path, bytes: bytes.count, needed: context + extra)
        }
    }
}

extension JSONOutput {
    /// The fields of an object (empty for other values).
    var objectFields: [(String, JSONOutput)] {
        if case let .object(f) = self { return f }
        return []
    }

    /// A parsed value as an output value (for comparisons by serialization).
    init(value: JSONValue) {
        switch value {
        case .null: self = .null
        case let .bool(b): self = .bool(b)
        case let .number(d): self = .number(d)
        case let .string(s): self = .string(s)
        case let .array(a): self = .array(a.map(JSONOutput.init(value:)))
        case let .object(o): self = .object(o.sorted { $0.key < $1.key }.map { ($0.key, JSONOutput(value: $0.value)) })
        }
    }
}
