import Foundation
import Testing
@testable import StreamLab

/// The tuned lens against torch autograd (Fixtures/reference/make_tuned_lens_reference.py,
/// computed in float64) and finite differences; the bundled lenses against the
/// same script's held-out evaluation.
@Suite("Tuned lens")
struct TunedLensTests {
    static let gradientModels = ["gpt2", "openai-gpt", "opt-post-proj", "gemma2-bf16"]

    func doubles(_ a: NpyArray?) -> [Double] {
        switch a?.values {
        case let .double(d)?: d
        case let .float(f)?: f.map(Double.init)
        case let .int(i)?: i.map(Double.init)
        case nil: []
        }
    }

    func load(_ name: String) throws -> (Transformer, TunedLens, [String: NpyArray]) {
        let directory = FixturePaths.models.appendingPathComponent(name)
        let model = try Transformer.load(from: directory, threads: 1)
        let lens = try TunedLens.load(from: FixturePaths.reference.appendingPathComponent("\(name).tuned-lens.safetensors").path,
                                      for: model.architecture, model: try ModelIdentity(modelDirectory: directory))
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent("\(name).tuned-lens.npz").path)
        return (model, lens, reference)
    }

    /// max |a - b| / max |b|.
    func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count && !b.isEmpty)
        let scale = max(b.map(abs).max()!, 1e-12)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    @Test("SHA-256 of the FIPS 180-4 examples")
    func sha256() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("loss and gradient of every translator equal torch autograd", arguments: gradientModels)
    func torchParity(_ name: String) throws {
        let (model, lens, reference) = try load(name)
        let tokens = reference["tokens"]!.ints!
        let objective = TunedLensObjective(model: model, length: tokens.count, windows: 1)
        var gradients = lens.parameters.map { [Float](repeating: 0, count: $0.count) }
        let kl = try objective.evaluate(lens, windows: [tokens], gradients: &gradients)
        #expect(relativeError(kl, doubles(reference["kl_tuned"])) < 1e-4)
        let d = lens.width
        var worst = 0.0
        for index in 0..<lens.translatorCount {
            let l = TunedLens.layer(ofTranslator: index)
            // Ours hold W = A^T; the reference holds dA (torch layout).
            let dA = (0..<(d * d)).map { k in Double(gradients[index][(k % d) * d + k / d]) }
            let db = (0..<d).map { Double(gradients[index][d * d + $0]) }
            worst = max(worst, relativeError(dA, doubles(reference["weight_grad.\(l)"])),
                        relativeError(db, doubles(reference["bias_grad.\(l)"])))
        }
        print("tuned lens \(name): KL worst rel \(relativeError(kl, doubles(reference["kl_tuned"]))), gradients worst rel \(worst)")
        #expect(worst < 1e-4)

        // The same lens through `logitLens`: per-position KL and next-token loss of both lenses.
        let read = try model.logitLens(tokens, top: 1, tuned: lens)
        let t = tokens.count
        let tunedPositions = doubles(reference["kl_tuned_positions"]), logitPositions = doubles(reference["kl_logit_positions"])
        for index in 0..<lens.translatorCount {
            #expect(relativeError(read.tunedLayers![index].klToFinal, Array(tunedPositions[(index * t)..<((index + 1) * t)])) < 1e-4)
            #expect(relativeError(read.layers[index].klToFinal, Array(logitPositions[(index * t)..<((index + 1) * t)])) < 1e-4)
            let n = Double(t - 1)
            #expect(abs(read.tunedLayers![index].nextTokenLoss.reduce(0, +) / n - doubles(reference["loss_tuned"])[index])
                    < 1e-4 * max(1, abs(doubles(reference["loss_tuned"])[index])))
            #expect(abs(read.layers[index].nextTokenLoss.reduce(0, +) / n - doubles(reference["loss_logit"])[index])
                    < 1e-4 * max(1, abs(doubles(reference["loss_logit"])[index])))
        }
        #expect(read.tunedLayers!.last!.klToFinal.allSatisfy { $0 == 0 })
    }

    @Test("windows split over several forwards (a short last group padded) give the loss and gradient of one forward, and of the per-window mean")
    func groups() throws {
        let (model, lens, reference) = try load("gpt2")
        let tokens = reference["tokens"]!.ints!
        let windows = (0..<5).map { Array(tokens[$0..<($0 + 6)]) }
        var whole = lens.parameters.map { [Float](repeating: 0, count: $0.count) }, split = whole, single = whole
        let one = try TunedLensObjective(model: model, length: 6, windows: 5).evaluate(lens, windows: windows, gradients: &whole)
        let two = try TunedLensObjective(model: model, length: 6, windows: 5, maxGroup: 2).evaluate(lens, windows: windows, gradients: &split)
        #expect(relativeError(two, one) < 1e-6)
        for i in whole.indices { #expect(relativeError(split[i].map(Double.init), whole[i].map(Double.init)) < 1e-5) }
        // The mean of the windows' own losses and gradients.
        var meanKL = [Double](repeating: 0, count: one.count), meanGradient = whole.map { [Double](repeating: 0, count: $0.count) }
        for w in windows {
            let kl = try TunedLensObjective(model: model, length: 6, windows: 1).evaluate(lens, windows: [w], gradients: &single)
            for i in kl.indices { meanKL[i] += kl[i] / 5 }
            for i in single.indices { for k in single[i].indices { meanGradient[i][k] += Double(single[i][k]) / 5 } }
        }
        #expect(relativeError(one, meanKL) < 1e-6)
        for i in whole.indices { #expect(relativeError(whole[i].map(Double.init), meanGradient[i]) < 1e-5) }
    }

    @Test("a damaged training state is refused, naming the file: an all-zero random state, a NaN, another model")
    func damagedState() throws {
        let directory = FixturePaths.models.appendingPathComponent("shakespeare-pre")
        let model = try Transformer.load(from: directory, threads: 1)
        let identity = try ModelIdentity(modelDirectory: directory)
        let tokens = try Data(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt")).prefix(4000).map(Int.init)
        var settings = TunedLensSettings()
        settings.steps = 4
        settings.warmup = 1
        settings.tokensPerStep = 128
        settings.context = 64
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("damaged-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out + ".state") }
        func trainer(_ identity: ModelIdentity, resume: Bool) throws -> TunedLensTrainer {
            try TunedLensTrainer(model: model, identity: identity, tokens: tokens, textName: "t", textSHA256: "x", settings: settings,
                                 output: out, resume: resume)
        }
        #expect(try trainer(identity, resume: false).run(stopAfter: 2) == nil)
        let state = try SafetensorsFile(path: out + ".state")
        let tensors = state.tensors.values.map { NamedTensor(name: $0.name, shape: $0.shape, values: state.floats($0)) }
        func rewrite(metadata change: [String: String] = [:], nanIn name: String? = nil) throws {
            let changed = tensors.map { t in
                t.name == name ? NamedTensor(name: t.name, shape: t.shape, values: [Float.nan] + t.values.dropFirst()) : t
            }
            try SafetensorsWriter.write(changed, to: out + ".state", metadata: state.metadata.merging(change) { $1 })
        }
        try rewrite(metadata: ["random": "0,0,0,0"])
        #expect(throws: TrainingError.badCheckpoint(path: out + ".state", reason: "its step or random state is unreadable")) {
            try trainer(identity, resume: true)
        }
        try rewrite(nanIn: "momentum.2")
        #expect(throws: TrainingError.badCheckpoint(path: out + ".state", reason: "tensor 'momentum.2' holds NaN or infinity")) {
            try trainer(identity, resume: true)
        }
        try rewrite()
        #expect(throws: TrainingError.self) {
            try trainer(ModelIdentity(name: "another", architectureSHA256: identity.architectureSHA256), resume: true)
        }
        #expect(try trainer(identity, resume: true).resumedAt == 2)
    }

    @Test("the gradient equals central finite differences of the loss")
    func finiteDifferences() throws {
        let (model, lens, reference) = try load("gpt2")
        let tokens = reference["tokens"]!.ints!
        let objective = TunedLensObjective(model: model, length: tokens.count, windows: 1)
        var gradients = lens.parameters.map { [Float](repeating: 0, count: $0.count) }
        _ = try objective.evaluate(lens, windows: [tokens], gradients: &gradients)
        var scratch = gradients
        let d = lens.width
        var checked = 0
        for index in 0..<lens.translatorCount {
            // The largest weight entry and the largest bias entry of each translator.
            let w = (0..<(d * d)).max { abs(gradients[index][$0]) < abs(gradients[index][$1]) }!
            let b = d * d + (0..<d).max { abs(gradients[index][d * d + $0]) < abs(gradients[index][d * d + $1]) }!
            for k in [w, b] {
                let h: Float = 1e-2
                var plus = lens, minus = lens
                plus.parameters[index][k] += h
                minus.parameters[index][k] -= h
                let up = try objective.evaluate(plus, windows: [tokens], gradients: &scratch).reduce(0, +)
                let down = try objective.evaluate(minus, windows: [tokens], gradients: &scratch).reduce(0, +)
                let numeric = (up - down) / Double(2 * h)
                let analytic = Double(gradients[index][k])
                #expect(abs(numeric - analytic) <= 2e-2 * abs(analytic) + 1e-4, "translator \(index) entry \(k): \(numeric) vs \(analytic)")
                checked += 1
            }
        }
        #expect(checked == 2 * lens.translatorCount)
    }

    @Test("a lens of zeros reads exactly what the logit lens reads", arguments: ["gpt2", "gemma2-bf16", "opt-post-proj"])
    func zeroLens(_ name: String) throws {
        let directory = FixturePaths.models.appendingPathComponent(name)
        let model = try Transformer.load(from: directory, threads: 1)
        let zero = TunedLens(zeroFor: model.architecture, model: try ModelIdentity(modelDirectory: directory))
        let read = try model.logitLens([1, 2, 3, 4, 5, 6], top: 3, tuned: zero)
        for (a, b) in zip(read.layers, read.tunedLayers!) {
            #expect(a.klToFinal == b.klToFinal && a.rank == b.rank && a.entropy == b.entropy && a.nextTokenLoss == b.nextTokenLoss)
            #expect(a.top.map { $0.map(\.token) } == b.top.map { $0.map(\.token) })
        }
    }

    @Test("a saved lens reads back; another model's is refused (wrong shapes and NaN: Fixtures/bad)")
    func fileRoundTrip() throws {
        let (model, lens, _) = try load("gpt2")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lens-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try lens.save(to: path)
        let identity = try ModelIdentity(modelDirectory: FixturePaths.models.appendingPathComponent("gpt2"))
        let back = try TunedLens.load(from: path, for: model.architecture, model: identity)
        #expect(back.parameters == lens.parameters)
        let other = try ModelIdentity(modelDirectory: FixturePaths.models.appendingPathComponent("openai-gpt"))
        #expect(throws: TunedLensError.self) { try TunedLens.load(from: path, for: model.architecture, model: other) }
    }

    @Test("the bundled lenses: held-out KL and next-token loss per layer equal the torch evaluation; tuned KL is below the logit lens's at every layer but the last",
          arguments: ["shakespeare-pre", "shakespeare-post"])
    func bundled(_ name: String) throws {
        let directory = FixturePaths.models.appendingPathComponent(name)
        let model = try Transformer.load(from: directory, threads: 2)
        let lens = try TunedLens.load(from: FixturePaths.models.appendingPathComponent("\(name).tuned-lens.safetensors").path,
                                      for: model.architecture, model: try ModelIdentity(modelDirectory: directory))
        let data = try Data(contentsOf: FixturePaths.reference.appendingPathComponent("\(name).tuned-lens.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let bytes = json["bytes"] as! Int, window = json["window"] as! Int
        let text = try Data(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt")).prefix(bytes)
        let windows = stride(from: 0, to: bytes, by: window).map { text[text.startIndex + $0 ..< text.startIndex + min(bytes, $0 + window)].map(Int.init) }
        #expect(windows.count == json["windows"] as! Int)
        let summary = try model.logitLensSummary(windows, tuned: lens)
        let layers = json["layers"] as! [[String: Any]]
        #expect(layers.count == model.architecture.layerCount + 1)
        for (k, reference) in layers.enumerated() {
            for (ours, key) in [(summary.layers[k].meanKLToFinal, "logit_kl_to_final"), (summary.tunedLayers![k].meanKLToFinal, "tuned_kl_to_final"),
                                (summary.layers[k].meanNextTokenLoss, "logit_next_token_loss"),
                                (summary.tunedLayers![k].meanNextTokenLoss, "tuned_next_token_loss")] {
                let expected = reference[key] as! Double
                #expect(abs(ours - expected) <= 1e-4 * max(abs(expected), 1e-3), "\(name) layer \(k - 1) \(key): \(ours) vs \(expected)")
            }
            if k < layers.count - 1 { #expect(summary.tunedLayers![k].meanKLToFinal < summary.layers[k].meanKLToFinal) }
        }
    }

    @Test("training lowers the held-out KL well below the logit lens's, and a run stopped and resumed equals an uninterrupted one")
    func trainAndResume() throws {
        let directory = FixturePaths.models.appendingPathComponent("shakespeare-pre")
        let model = try Transformer.load(from: directory, threads: 2)
        let text = try Data(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt")).prefix(40_000)
        let tokens = text.map(Int.init)
        var settings = TunedLensSettings()
        settings.steps = 12
        settings.warmup = 3
        settings.learningRate = 0.3
        settings.tokensPerStep = 1024
        settings.context = 128
        settings.checkpointEvery = 5
        let identity = try ModelIdentity(modelDirectory: directory)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tuned-\(UUID().uuidString)").path
        defer { for suffix in ["a", "b", "b.state"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
        let whole = try TunedLensTrainer(model: model, identity: identity, tokens: tokens, textName: "t", textSHA256: "x",
                                         settings: settings, output: base + "a", resume: false).run()!
        let tunedKL = whole.heldOut.tunedLayers!.map(\.meanKLToFinal).reduce(0, +)
        let logitKL = whole.heldOut.layers.map(\.meanKLToFinal).reduce(0, +)
        #expect(tunedKL < 0.5 * logitKL, "held-out KL summed over layers: tuned \(tunedKL), logit \(logitKL)")
        let first = try TunedLensTrainer(model: model, identity: identity, tokens: tokens, textName: "t", textSHA256: "x",
                                         settings: settings, output: base + "b", resume: false)
        #expect(try first.run(stopAfter: 7) == nil)
        #expect(FileManager.default.fileExists(atPath: base + "b.state") && !FileManager.default.fileExists(atPath: base + "b"))
        let second = try TunedLensTrainer(model: model, identity: identity, tokens: tokens, textName: "t", textSHA256: "x",
                                          settings: settings, output: base + "b", resume: true)
        #expect(second.resumedAt == 7)
        let resumed = try second.run()!
        #expect(resumed.lens.parameters == whole.lens.parameters)
        #expect(!FileManager.default.fileExists(atPath: base + "b.state"))
        // Another text is refused.
        _ = try? TunedLensTrainer(model: model, identity: identity, tokens: tokens, textName: "t", textSHA256: "x",
                                  settings: settings, output: base + "b", resume: false).run(stopAfter: 5)
        #expect(throws: TrainingError.self) {
            try TunedLensTrainer(model: model, identity: identity, tokens: tokens, textName: "t", textSHA256: "y",
                                 settings: settings, output: base + "b", resume: true)
        }
    }
}
