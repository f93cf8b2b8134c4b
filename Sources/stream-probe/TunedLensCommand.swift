import Foundation
import StreamLab

enum TunedLensCommand {
    static let spec = CommandSpec(
        name: "tuned-lens",
        summary: "Train a tuned lens: one affine translator per layer, h + A h + b, so that each layer's read through the final norm and unembedding matches the model's output (KL to the final distribution).",
        usage: "stream-probe tuned-lens train [MODEL] --text-file FILE --out LENS.safetensors [--steps N] [--lr X] [--seed S] [--resume] [--format table|json|csv] [--svg FILE]",
        options: [
            OptionSpec(name: "--text-file", valueName: "FILE", help: "UTF-8 training text; its last 10% (at most 65,536 tokens) is held out for the evaluation"),
            OptionSpec(name: "--out", valueName: "FILE", help: "the lens (safetensors); FILE.state keeps the training state every 50 steps"),
            OptionSpec(name: "--steps", valueName: "N", help: "optimizer steps (default 250)"),
            OptionSpec(name: "--optimizer", valueName: "sgd|adam", help: "SGD with Nesterov momentum 0.9 (default, as Belrose et al.) or Adam"),
            OptionSpec(name: "--lr", valueName: "X", help: "peak learning rate (default 1.0 for sgd, 1e-3 for adam)"),
            OptionSpec(name: "--warmup", valueName: "N", help: "linear warm-up steps, then linear decay to 0 (default 25)"),
            OptionSpec(name: "--tokens-per-step", valueName: "N", help: "tokens per step, in windows of the context (default 8192)"),
            OptionSpec(name: "--context", valueName: "T", help: "window length (default 256, at most the model's positions)"),
            OptionSpec(name: "--seed", valueName: "S", help: "seed of the window sampling (default 0)"),
            OptionSpec(name: "--resume", valueName: nil, help: "continue from FILE.state (same model, text and settings, checked)"),
            OptionSpec(name: "--overwrite", valueName: nil, help: "discard an unfinished run's FILE.state and start afresh"),
            OptionSpec(name: "--stop-after", valueName: "N", help: "stop at step N this time (state saved in FILE.state); continue later with --resume"),
            Inputs.formatOption, Inputs.svgOption,
        ])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        guard let textPath = args.value("--text-file") else { throw UsageError("tuned-lens train needs --text-file FILE") }
        guard let out = args.value("--out") else { throw UsageError("tuned-lens train needs --out LENS.safetensors") }
        var settings = TunedLensSettings()
        settings.steps = try args.int("--steps", default: settings.steps, range: 1...10_000_000)
        settings.optimizer = TunedLensSettings.Optimizer(rawValue: try args.choice("--optimizer", ["sgd", "adam"], default: "sgd"))!
        settings.learningRate = try args.double("--lr", default: settings.optimizer == .sgd ? 1.0 : 1e-3, range: 1e-12...1e6)
        settings.warmup = try args.int("--warmup", default: min(settings.warmup, settings.steps), range: 0...settings.steps)
        settings.tokensPerStep = try args.int("--tokens-per-step", default: settings.tokensPerStep, range: 1...100_000_000)
        settings.context = try args.int("--context", default: settings.context, range: 2...1_000_000)
        settings.seed = UInt64(try args.int("--seed", default: 0, range: 0...Int.max))
        if args.has("--resume") && args.has("--overwrite") {
            throw UsageError("give either --resume (continue FILE.state) or --overwrite (discard it), not both")
        }
        let loaded = try Inputs.loadModel(args)
        let tokenizer = try Inputs.requireTokenizer(loaded, for: "--text-file")
        let url = URL(fileURLWithPath: textPath)
        let text = try TextFile.readUTF8(url)
        if text.isEmpty { throw UsageError("option '--text-file': '\(textPath)' is empty; the tuned lens needs text to train on") }
        let tokens = tokenizer.encode(text, addSpecialTokens: false)
        let trainer = try TunedLensTrainer(
            model: loaded.model, identity: try ModelIdentity(modelDirectory: loaded.url), tokens: tokens,
            textName: url.lastPathComponent, textSHA256: SHA256.hex(Array(text.utf8)), settings: settings, output: out,
            resume: args.has("--resume"), overwrite: args.has("--overwrite"))
        if let step = trainer.resumedAt { Console.err("resuming \(trainer.statePath) at step \(step)\n") }
        let stopAfter = try args.value("--stop-after").map { _ in try args.int("--stop-after", default: 0, range: 1...Int.max) }
        let finished = try trainer.run(stopAfter: stopAfter) { p in
            if p.step % 10 == 0 || p.step == p.steps || p.step == 1 {
                let eta = p.elapsed / Double(max(1, p.step - (trainer.resumedAt ?? 0))) * Double(p.steps - p.step)
                Console.err("step \(p.step)/\(p.steps)  mean KL \(Format.fixed(p.meanKL, 4))  lr \(Format.scientific(p.learningRate))"
                            + "  \(Format.fixed(p.tokensPerSecond / 1000, 1))k tok/s  elapsed \(TrainingReport.clock(p.elapsed))"
                            + "  ETA \(TrainingReport.clock(eta))\n")
            }
        }
        guard let training = finished else {
            Console.err("stopped at step \(stopAfter!); the state is in \(trainer.statePath): continue with --resume\n")
            return
        }
        try Inputs.output(args, format, TunedLensTrainingReport(model: loaded.name, output: out, training: training, settings: settings))
    }
}
