import Foundation
import Testing
@testable import StreamLab

/// A fresh temporary directory path (not created).
func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
}

@Suite("Models trained by stream-probe train, checked by Hugging Face transformers")
struct TrainedModelTests {
    /// Tiny models from the training tests, and the bundled default models.
    static let models = ["trained/tiny-pre", "trained/tiny-post", "trained/tiny-sandwich", "trained/tiny-output",
                         "models/shakespeare-pre", "models/shakespeare-post"]

    @Test("transformers' logits and held-out loss match ours", arguments: models)
    func huggingFaceLogits(_ name: String) throws {
        let dir = FixturePaths.root.appendingPathComponent(name)
        let reference = try NpzReader.read(path: dir.path + ".hf.npz")
        let tokens = try #require(reference["tokens"]?.ints)
        let expected = try #require(reference["logits"]?.tensor)

        // The inference path: Transformer.load.
        let model = try Transformer.load(from: dir, threads: 2)
        let logits = try model.logits(tokens)
        let inferenceError = relativeError(logits, expected)
        #expect(inferenceError <= 1e-4, "\(name): Transformer logits differ from transformers by \(inferenceError)")

        // The training path: the flat parameters of a TrainableModel, batched pass with the loss.
        let trainable = TrainableModel(model)
        let pass = GradientPass(model.architecture, batch: 1, length: tokens.count, threads: 2)
        pass.setSequence(tokens)
        let loss = pass.forward(try trainable.transformer())
        let trainingError = relativeError(pass.logitsTensor, expected)
        #expect(trainingError <= 1e-4, "\(name): training-pass logits differ from transformers by \(trainingError)")
        let refLoss = try #require(reference["loss"]?.tensor.scalars.first)
        #expect(abs(loss - refLoss) <= 1e-4 * max(1, refLoss))

        // The held-out loss (docs/definitions.md, Training loss), as transformers measured it:
        // the first few windows, then all 64 KiB (the library is optimized in debug builds too).
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + ".hf.json"))) as! [String: Any]
        let valid = try ByteCorpus(path: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt").path)
        let context = model.architecture.maxPositions
        let evalPass = GradientPass(model.architecture, batch: 4, length: context, threads: 2)
        let first = try #require(info["held_out_first_windows"] as? [String: Any])
        let firstWindows = try #require(first["windows"] as? Int)
        let (firstLoss, firstPositions) = Trainer.evaluate(model, pass: evalPass, windows: valid.evaluationWindows(context: context, limit: firstWindows * context))
        #expect(firstPositions == first["positions"] as? Int)
        let firstReference = try #require(first["loss"] as? Double)
        #expect(abs(firstLoss - firstReference) <= 1e-4 * firstReference, "\(name): held-out loss of the first windows \(firstLoss) vs transformers \(firstReference)")
        var report = "first \(firstWindows) held-out windows \(firstLoss) vs \(firstReference)"
        let heldOut = try #require(info["held_out_loss"] as? Double)
        let bytes = try #require(info["valid_bytes_used"] as? Int)
        let (ours, positions) = Trainer.evaluate(model, pass: evalPass, windows: valid.evaluationWindows(context: context, limit: bytes))
        #expect(positions == info["held_out_positions"] as? Int)
        #expect(abs(ours - heldOut) <= 1e-4 * heldOut, "\(name): held-out loss \(ours) vs transformers \(heldOut)")
        report += "; all held-out windows \(ours) vs \(heldOut)"
        #expect(ByteLevelVocabulary.isByteLevel(directory: dir))
        print("trained \(name): logits vs transformers \(inferenceError) (inference), \(trainingError) (training pass); \(report)")
    }
}

@Suite("Training with every norm placement")
struct PlacementTrainingTests {
    @Test("the exported config reads back as the architecture that was trained", arguments: ["pre", "post", "sandwich", "output"])
    func configRoundTrip(_ placement: String) throws {
        let norm = Architecture.NormPlacement(rawValue: placement)!
        let trained = try Architecture.byteLevel(layers: 2, width: 32, heads: 4, context: 64, norm: norm)
        let name = ["pre": "tiny-pre", "post": "tiny-post", "sandwich": "tiny-sandwich", "output": "tiny-output"][placement]!
        let loaded = try Transformer.load(from: FixturePaths.root.appendingPathComponent("trained/" + name), threads: 1)
        #expect(loaded.architecture == trained)
        #expect(loaded.architecture.normPlacement == norm)
    }

    @Test("a fresh model's norms all scale by 1 (weights 0 for Gemma's 1 + w)")
    func normInitialization() throws {
        for norm in [Architecture.NormPlacement.sandwich, .output] {
            let a = try Architecture.byteLevel(layers: 2, width: 16, heads: 2, context: 8, norm: norm)
            let model = try TrainableModel(architecture: a, seed: 1)
            for slot in model.layout.slots where slot.name.contains("norm") || slot.name.contains("ln") {
                let values = model.parameter(slot.name)!.scalars
                #expect(values.allSatisfy { $0 + a.normWeightOffset == 1 }, "\(norm) \(slot.name)")
            }
        }
    }
}

@Suite("Plain models of the depth experiment")
struct PlainModelTests {
    @Test("they load as plain stacks and sit at the byte-frequency plateau", arguments: [2, 12])
    func plainFixture(_ layers: Int) throws {
        let dir = FixturePaths.models.appendingPathComponent("shakespeare-plain-\(layers)")
        let model = try Transformer.load(from: dir, threads: 2)
        #expect(!model.architecture.skipConnections)
        #expect(model.architecture.layerCount == layers)
        // Its loss is the unigram level of docs/depth-experiment.md: no better than
        // predicting each byte from the training text's byte frequencies.
        let corpus = FixturePaths.root.appendingPathComponent("corpora")
        let train = try Data(contentsOf: corpus.appendingPathComponent("shakespeare-train.txt"))
        var counts = [Double](repeating: 1, count: 256)          // add-one smoothing
        for byte in train { counts[Int(byte)] += 1 }
        let total = counts.reduce(0, +)
        let window = try Data(contentsOf: corpus.appendingPathComponent("shakespeare-valid.txt")).prefix(256).map(Int.init)
        let logits = try model.logits(window).scalars
        var modelLoss = 0.0, unigramLoss = 0.0
        for t in 0..<(window.count - 1) {
            let row = logits[(t * 256)..<((t + 1) * 256)].map(Double.init)
            let top = row.max()!
            let logSum = top + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - top) })
            modelLoss += logSum - row[window[t + 1]]
            unigramLoss -= Foundation.log(counts[window[t + 1]] / total)
        }
        modelLoss /= Double(window.count - 1)
        unigramLoss /= Double(window.count - 1)
        #expect(abs(modelLoss - unigramLoss) < 0.1, "plain-\(layers): loss \(modelLoss) vs unigram \(unigramLoss)")
    }
}

@Suite("Training")
struct TrainingTests {
    static let shapes: [(String, Architecture.NormPlacement, Bool)] = [
        ("pre", .pre, false), ("post", .post, false), ("plain-pre", .pre, true), ("plain-post", .post, true),
    ]

    @Test("an exported model loads back to the trainer's logits", arguments: [0, 1, 2, 3])
    func exportRoundTrip(_ k: Int) throws {
        let (name, norm, plain) = Self.shapes[k]
        let a = try Architecture.byteLevel(layers: 2, width: 24, heads: 3, context: 20, norm: norm, plain: plain)
        let model = try TrainableModel(architecture: a, seed: 5)
        randomizeParameters(model, seed: 9)
        let dir = temporaryPath("export-\(name)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ModelExport.write(model, to: dir)
        var rng = SeededRandom(seed: 2)
        let tokens = (0..<20).map { _ in rng.integer(below: 256) }
        let pass = GradientPass(a, batch: 1, length: tokens.count, threads: 1)
        pass.setSequence(tokens)
        pass.forward(try model.transformer())
        let loaded = try Transformer.load(from: URL(fileURLWithPath: dir), threads: 1)
        #expect(loaded.architecture.skipConnections == !plain)
        #expect(loaded.architecture.normPlacement == norm)
        #expect(loaded.architecture.modelType == (norm == .pre ? "gpt2" : "openai-gpt"))
        let error = relativeError(try loaded.logits(tokens), pass.logitsTensor)
        #expect(error <= 1e-4, "\(name): loaded logits differ by \(error)")
        #expect(ByteLevelVocabulary.isByteLevel(directory: URL(fileURLWithPath: dir)))
    }

    func tinyCorpus() throws -> (ByteCorpus, ByteCorpus) {
        let train = try ByteCorpus(path: FixturePaths.root.appendingPathComponent("corpora/shakespeare-train.txt").path)
        let valid = try ByteCorpus(path: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt").path)
        return (ByteCorpus(path: train.path, bytes: Array(train.bytes.prefix(100_000))),
                ByteCorpus(path: valid.path, bytes: Array(valid.bytes.prefix(4096))))
    }

    func tinySettings(steps: Int) -> TrainingSettings {
        var s = TrainingSettings()
        s.layers = 2; s.width = 16; s.heads = 2; s.context = 32; s.batch = 4; s.steps = steps
        s.learningRate = 3e-3; s.warmup = 3; s.evalEvery = 0; s.checkpointEvery = 0; s.logEvery = 1
        s.seed = 42
        s.evalBytes = 2048
        return s
    }

    @Test("the loss falls, and a run stopped and resumed equals an uninterrupted one")
    func resumeIsExact() throws {
        let (train, valid) = try tinyCorpus()
        let s = tinySettings(steps: 12)
        let whole = temporaryPath("whole"), pieces = temporaryPath("pieces")
        defer { try? FileManager.default.removeItem(atPath: whole); try? FileManager.default.removeItem(atPath: pieces) }
        let a = try Trainer(settings: s, corpus: train, validation: valid, directory: whole, threads: 2)
        let summary = try a.run()
        #expect(summary.steps == 12)
        #expect(a.log.first!.loss > a.log.last!.loss + 0.3, "loss \(a.log.first!.loss) -> \(a.log.last!.loss)")

        let b1 = try Trainer(settings: s, corpus: train, validation: valid, directory: pieces, threads: 1)
        try b1.run(stopAfter: 5)
        #expect(throws: TrainingError.self) {
            try Trainer(settings: s, corpus: train, validation: valid, directory: pieces, threads: 1)
        }
        let b2 = try Trainer(settings: s, corpus: train, validation: valid, directory: pieces, threads: 2, resume: true)
        try b2.run()
        #expect(b2.model.flatParameters == a.model.flatParameters, "resumed parameters differ from the uninterrupted run")
        #expect(b2.log.map(\.loss) == a.log.map(\.loss))

        // A checkpoint of other settings is refused, naming the setting.
        var other = s
        other.learningRate = 1e-3
        #expect(throws: TrainingError.self) {
            try Trainer(settings: other, corpus: train, validation: valid, directory: pieces, threads: 1, resume: true)
        }
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: whole))
        #expect(files.isSuperset(of: ModelExport.files + [Trainer.logName, Trainer.checkpointName]))
    }

    @Test("a failed train writes nothing")
    func failureLeavesNothing() throws {
        let (train, _) = try tinyCorpus()
        let short = ByteCorpus(path: "short.txt", bytes: Array("too short".utf8))
        let dir = temporaryPath("failed")
        #expect(throws: TrainingError.corpusTooShort(path: "short.txt", bytes: 9, needed: 33)) {
            try Trainer(settings: tinySettings(steps: 1), corpus: short, validation: train, directory: dir, threads: 1)
        }
        #expect(throws: TrainingError.invalidShape("width 10 is not divisible by 3 heads")) {
            try Architecture.byteLevel(layers: 1, width: 10, heads: 3, context: 8, norm: .pre)
        }
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test("learning-rate schedule: linear warm-up, cosine to the floor")
    func schedule() {
        let s = LearningRateSchedule(peak: 1e-3, warmup: 10, total: 110, floor: 0.1)
        #expect(abs(s.rate(at: 0) - 1e-4) < 1e-9)
        #expect(abs(s.rate(at: 9) - 1e-3) < 1e-9)
        #expect(abs(s.rate(at: 10) - 1e-3) < 1e-9)
        #expect(abs(s.rate(at: 60) - 0.55e-3) < 1e-8)      // halfway: floor + (1 - floor) / 2
        #expect(abs(s.rate(at: 110) - 1e-4) < 1e-9)
    }

    @Test("AdamW: the first step moves every parameter by about lr against its gradient, plus decay")
    func adamFirstStep() throws {
        let a = try Architecture.byteLevel(layers: 1, width: 8, heads: 2, context: 4, norm: .pre)
        let model = try TrainableModel(architecture: a, seed: 1)
        let before = model.flatParameters
        var rng = SeededRandom(seed: 3)
        let g = (0..<model.layout.count).map { _ in Float(rng.normal()) }
        let adam = AdamW(layout: model.layout)
        let lr: Float = 0.01
        g.withUnsafeBufferPointer { adam.update(model.values.pointer, gradients: $0.baseAddress!, count: g.count, lr: lr, threads: 1) }
        let after = model.flatParameters
        for slot in model.layout.slots {
            for i in slot.offset..<(slot.offset + slot.count) {
                // m_hat = g, v_hat = g^2: p' = p (1 - lr wd [decays]) - lr g / (|g| + eps)
                let decayed = slot.decays ? before[i] * (1 - lr * 0.1) : before[i]
                let expected = decayed - lr * g[i] / (abs(g[i]) + 1e-8)
                #expect(abs(after[i] - expected) <= 1e-6, "\(slot.name)[\(i - slot.offset)]")
            }
        }
    }

    @Test("gradient report: paths of a pre-norm residual stack pass the block output gradient straight through")
    func gradientReport() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("gpt2"), threads: 1)
        let tokens = [[5, 9, 1, 7, 3, 3, 8, 2], [4, 4, 100, 2, 9]]
        let report = try GradientAnalysis.run(model, sequences: tokens, threads: 1)
        #expect(report.sequences == 2 && report.positions == 11)
        for i in 0..<(report.layers.count - 1) {
            // skip path of block i = dL/d resid_post_i = dL/d resid_pre_{i+1}
            #expect(abs(report.layers[i].skip - report.layers[i + 1].residPre) <= 1e-5 * report.layers[i].skip)
        }
        #expect(abs(report.layers.last!.skip - report.finalStream) <= 1e-5 * report.finalStream)
        let csvLines = report.csv.split(separator: "\n")
        #expect(csvLines.count == 1 + model.architecture.layerCount)
        #expect(report.plot(title: "t").render().contains("<svg"))
    }
}
