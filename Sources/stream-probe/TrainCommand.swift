import Foundation
import StreamLab

enum TrainCommand {
    static let spec = CommandSpec(
        name: "train",
        summary: "Train a byte-level model (GPT-2 layout for pre-norm, GPT-1 for post-norm, Gemma 2 for sandwich, OLMo 2 for output norms) and save it as a Hugging Face directory.",
        usage: "stream-probe train --corpus FILE --valid FILE [--layers N] [--width D] [--heads H] [--context T] [--norm pre|post|sandwich|output] [--plain] [--steps S] [--batch B] [--lr X] --out DIR [--format table|json|csv]",
        options: [
            OptionSpec(name: "--corpus", valueName: "FILE", help: "training text, read as bytes (vocabulary 256)"),
            OptionSpec(name: "--valid", valueName: "FILE", help: "validation text, scored in non-overlapping windows of the context"),
            OptionSpec(name: "--out", valueName: "DIR", help: "output directory: model, tokenizer, training.json, train-state.bin; built in DIR.partial and renamed to DIR when the run ends, so DIR is always one whole run; DIR.lock keeps a second run off it"),
            OptionSpec(name: "--layers", valueName: "N", help: "blocks (default 6)"),
            OptionSpec(name: "--width", valueName: "D", help: "residual width (default 128)"),
            OptionSpec(name: "--heads", valueName: "H", help: "attention heads, must divide the width (default 4)"),
            OptionSpec(name: "--context", valueName: "T", help: "context length in bytes (default 256)"),
            OptionSpec(name: "--norm", valueName: "pre|post|sandwich|output",
                       help: "norm placement (default pre): GPT-2, GPT-1, Gemma-2 or OLMo-2 layout"),
            OptionSpec(name: "--plain", valueName: nil, help: "no skip connections: x = F(x) (for the depth experiment)"),
            OptionSpec(name: "--steps", valueName: "S", help: "optimizer steps (default 4000)"),
            OptionSpec(name: "--batch", valueName: "B", help: "windows per step (default 16)"),
            OptionSpec(name: "--lr", valueName: "X", help: "peak learning rate (default 1.5e-3 post-norm, else 2e-3)"),
            OptionSpec(name: "--warmup", valueName: "N", help: "linear warm-up steps (default 400 post-norm, else 100)"),
            OptionSpec(name: "--min-lr-fraction", valueName: "F", help: "cosine decay ends at this fraction of the peak (default 0.1)"),
            OptionSpec(name: "--weight-decay", valueName: "X", help: "AdamW weight decay on matrices and embeddings (default 0.1)"),
            OptionSpec(name: "--clip", valueName: "X", help: "global gradient-norm clip, 0 for none (default 1.0)"),
            OptionSpec(name: "--seed", valueName: "N", help: "seed of the initialization and the data order (default 1234)"),
            OptionSpec(name: "--eval-every", valueName: "N", help: "validation every N steps, 0 for only at the end (default 250)"),
            OptionSpec(name: "--eval-bytes", valueName: "N", help: "validate on the first N bytes of --valid (default 65536)"),
            OptionSpec(name: "--checkpoint-every", valueName: "N", help: "save DIR.partial/train-state.bin every N steps (default 250); an interrupted run keeps DIR.partial for --resume"),
            OptionSpec(name: "--log-every", valueName: "N", help: "progress line every N steps (default 10)"),
            OptionSpec(name: "--resume", valueName: nil, help: "continue DIR.partial/train-state.bin (an interrupted run) or else DIR/train-state.bin (same settings and corpora, checked)"),
            OptionSpec(name: "--stop-after", valueName: "N", help: "stop at step N this time (checkpoint and model written); continue later with --resume"),
            OptionSpec(name: "--overwrite", valueName: nil, help: "start afresh although DIR (replaced at the end) or an unfinished DIR.partial exists"),
            Inputs.formatOption,
        ])

    static func run(_ args: ParsedArguments) throws {
        if !args.positionals.isEmpty {
            throw UsageError("train takes no MODEL argument (got '\(args.positionals[0])'); it builds a new model")
        }
        guard let corpusPath = args.value("--corpus") else { throw UsageError("train needs --corpus FILE") }
        guard let validPath = args.value("--valid") else { throw UsageError("train needs --valid FILE") }
        guard let out = args.value("--out") else { throw UsageError("train needs --out DIR") }
        if args.has("--resume") && args.has("--overwrite") {
            throw UsageError("give either --resume (continue DIR) or --overwrite (start DIR afresh), not both")
        }
        let format = try Inputs.format(args)
        let settings = try settings(args)
        let threads = try args.int("--threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...1024)
        // Validate the whole invocation before reading large files or writing anything.
        _ = try settings.architecture()
        let corpus = try ByteCorpus(path: corpusPath)
        let valid = try ByteCorpus(path: validPath)
        let trainer = try Trainer(settings: settings, corpus: corpus, validation: valid, directory: out, threads: threads,
                                  resume: args.has("--resume"), overwrite: args.has("--overwrite"))
        let stopAfter = try args.value("--stop-after").map { _ in try args.int("--stop-after", default: 0, range: 1...Int.max) }
        let summary = try trainer.run(stopAfter: stopAfter) { event in
            let line: String
            switch event {
            case let .started(parameters, start, threads):
                line = "training \(Format.count(parameters)) parameters on \(Format.count(corpus.count)) bytes, \(threads) thread\(threads == 1 ? "" : "s")"
                    + (start > 0 ? ", resuming at step \(start)" : "")
            case let .step(e, steps, eta):
                let width = String(steps).count
                let stepText = String(repeating: " ", count: max(0, width - String(e.step).count)) + String(e.step)
                line = "step \(stepText)/\(steps)  loss \(Format.fixed(e.loss, 4))  lr \(scientific(e.learningRate))"
                    + "  |g| \(Format.fixed(e.gradientNorm, 2))  \(Format.fixed(e.tokensPerSecond / 1000, 1))k tok/s"
                    + "  elapsed \(TrainingReport.clock(e.elapsed))  ETA \(TrainingReport.clock(eta))"
            case let .validation(step, loss, positions):
                line = "step \(step): validation loss \(Format.fixed(loss, 4)) nats/byte over \(Format.count(positions)) positions"
            case let .checkpoint(step, path):
                line = "step \(step): checkpoint \(path)"
            }
            Console.err((line + "\n"))
        }
        try Inputs.output(args, format, TrainingReport(
            summary: summary, plannedSteps: settings.steps, evalBytes: settings.evalBytes, context: settings.context,
            directory: out, files: ModelExport.files + [Trainer.logName, Trainer.checkpointName]))
    }

    /// The settings from the flags; defaults in docs/training.md.
    static func settings(_ args: ParsedArguments) throws -> TrainingSettings {
        var s = TrainingSettings()
        s.layers = try args.int("--layers", default: s.layers, range: 1...4096)
        s.width = try args.int("--width", default: s.width, range: 1...65536)
        s.heads = try args.int("--heads", default: s.heads, range: 1...4096)
        s.context = try args.int("--context", default: s.context, range: 2...1_000_000)
        s.norm = Architecture.NormPlacement(rawValue: try args.choice("--norm", ["pre", "post", "sandwich", "output"], default: "pre"))!
        s.plain = args.has("--plain")
        s.steps = try args.int("--steps", default: s.steps, range: 1...100_000_000)
        s.batch = try args.int("--batch", default: s.batch, range: 1...1_000_000)
        s.learningRate = try float(args, "--lr", default: s.norm == .post ? 1.5e-3 : 2e-3, positive: true)
        s.warmup = try args.int("--warmup", default: s.norm == .post ? 400 : 100, range: 0...100_000_000)
        s.finalFraction = try float(args, "--min-lr-fraction", default: s.finalFraction, positive: false)
        if s.finalFraction > 1 { throw UsageError("option '--min-lr-fraction' must be within 0...1, got \(s.finalFraction)") }
        s.weightDecay = try float(args, "--weight-decay", default: s.weightDecay, positive: false)
        s.clip = try float(args, "--clip", default: s.clip, positive: false)
        if let text = args.value("--seed") {
            guard let seed = UInt64(text) else { throw UsageError("option '--seed' expects a non-negative integer, got '\(text)'") }
            s.seed = seed
        }
        s.evalEvery = try args.int("--eval-every", default: s.evalEvery, range: 0...100_000_000)
        s.evalBytes = try args.int("--eval-bytes", default: s.evalBytes, range: 1...Int.max)
        s.checkpointEvery = try args.int("--checkpoint-every", default: s.checkpointEvery, range: 0...100_000_000)
        s.logEvery = try args.int("--log-every", default: s.logEvery, range: 1...100_000_000)
        return s
    }

    static func float(_ args: ParsedArguments, _ name: String, default value: Float, positive: Bool) throws -> Float {
        guard let text = args.value(name) else { return value }
        guard let wide = Double(text.trimmingCharacters(in: .whitespaces)), wide.isFinite else {
            throw UsageError("option '\(name)' expects a finite number, got '\(text)'")
        }
        let x = Float(wide)
        if wide != 0 && (x == 0 || !x.isFinite || abs(x) < Float.leastNormalMagnitude) {
            throw UsageError("option '\(name)' is \(text), outside the range of a 32-bit float (about 1.2e-38 to 3.4e38)")
        }
        if positive ? x <= 0 : x < 0 {
            throw UsageError("option '\(name)' must be \(positive ? "positive" : "non-negative"), got \(text)")
        }
        return x
    }

    /// `1.50e-03`.
    static func scientific(_ x: Float) -> String { String(format: "%.2e", Double(x)) }
}
