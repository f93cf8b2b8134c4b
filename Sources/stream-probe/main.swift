import Foundation
import StreamLab

/// stream-probe: the command-line face of StreamLab. Each command parses its
/// flags, calls one library function and prints a report; all the work is in
/// the library.
enum StreamProbe {
    /// Every command: its interface and its body.
    static var commands: [String: (CommandSpec, (ParsedArguments) throws -> Void)] {
        [
            "ablate": (AblateCommand.spec, AblateCommand.run),
            "decompose": (DecomposeCommand.spec, DecomposeCommand.run),
            "patch": (PatchCommand.spec, PatchCommand.run),
            "paths": (PathsCommand.spec, PathsCommand.run),
            "lesion": (LesionCommand.spec, LesionCommand.run),
            "reorder": (ReorderCommand.spec, ReorderCommand.run),
            "prune": (PruneCommand.spec, PruneCommand.run),
            "attention": (AttentionCommand.spec, AttentionCommand.run),
            "generate": (GenerateCommand.spec, GenerateCommand.run),
            "info": (InfoCommand.spec, InfoCommand.run),
            "lens": (LensCommand.spec, LensCommand.run),
            "tokenize": (TokenizeCommand.spec, TokenizeCommand.run),
            "trace": (TraceCommand.spec, TraceCommand.run),
            "gradients": (GradientsCommand.spec, GradientsCommand.run),
            "train": (TrainCommand.spec, TrainCommand.run),
            "tuned-lens": (TunedLensCommand.spec, TunedLensCommand.run),
            "merge": (MergeCommand.spec, MergeCommand.run),
        ]
    }

    static let overview = """
        stream-probe \(StreamLab.version): look inside Transformers through their residual stream

        usage: stream-probe COMMAND [MODEL] [options]

        commands:
          ablate     remove each layer (sublayer, head) in turn and measure the damage
          lens       logit lens (and tuned lens): the prediction read from the stream after every layer
          tuned-lens `tuned-lens train`: one affine translator per layer, so each layer's read matches the output
          merge      combine the reports of a sweep's shards (--shard i/n) into the whole run's
          decompose  split the final stream into every write and attribute a logit to each
          paths      the input gradient split by path length (the ensemble view)
          lesion     skip random subsets of k blocks together: damage against k
          reorder    run the blocks in other orders (or every adjacent pair swapped)
          prune      rank spans of N blocks by angular distance, block influence and damage
          patch      activation patching: which layer, position or head carries the answer
          attention  attention heads: previous-token, duplicate-token, induction and sink scores, patterns
          generate   continue a prompt (KV cache), greedy or sampled, optionally steered
          trace      record every hook point of a forward pass to an .npz
          info       architecture, sizes and memory of a model
          tokenize   text to token ids and back
          gradients  gradient norm per layer: through the skip path and through the sublayers
          train      train a byte-level model and save it as a Hugging Face directory

        MODEL is a Hugging Face model directory (config.json + *.safetensors);
        without one, commands use the bundled model and a default prompt.
        Run `stream-probe COMMAND --help` for a command's options.
        """

    static func main(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first, name != "--help", name != "-h", name != "help" else {
            do { try Console.out(overview + "\n") } catch { return fail(error) }
            return arguments.isEmpty ? 2 : 0
        }
        if name == "--version" {
            do { try Console.out(StreamLab.version + "\n") } catch { return fail(error) }
            return 0
        }
        guard let (spec, run) = commands[name] else {
            let hint = ParsedArguments.closest(to: name, among: Array(commands.keys)).map { "; did you mean '\($0)'?" } ?? ""
            return fail(UsageError("unknown command '\(name)'\(hint) (commands: \(commands.keys.sorted().joined(separator: ", ")))"))
        }
        do {
            try checkRawArguments()
            var rest = Array(arguments.dropFirst())
            // `tuned-lens train`: the command's one verb comes first.
            if name == "tuned-lens" {
                if rest.first == "train" {
                    rest.removeFirst()
                } else if !(rest.first == "--help" || rest.first == "-h") {
                    throw UsageError("'tuned-lens' needs its verb: \(spec.usage)")
                }
            }
            let parsed = try ParsedArguments(rest, spec: spec)
            if parsed.has("--help") {
                try Console.out(spec.helpText)
                return 0
            }
            // Outputs are checked before any work, so an unwritable one does not cost the computation.
            // (With --shard, --out is a directory of shard reports: Inputs.shardFile.)
            for flag in ["--svg", "--out"] where name != "train" && !(flag == "--out" && parsed.value("--shard") != nil) {
                if let path = parsed.value(flag) { try Inputs.checkWritable(path, flag: flag) }
            }
            // --bootstrap N: the window statistics keep their values and give percentile intervals.
            let resamples = parsed.value("--bootstrap") == nil ? 0 : try parsed.int("--bootstrap", default: 0, range: 1...100_000)
            do { try WindowStatistic.$bootstrapResamples.withValue(resamples) { try run(parsed) } } catch let done as Inputs.ShardAlreadyDone {
                try Console.out("shard \(done.shard) already done: \(done.file)\n")
            }
            return 0
        } catch {
            return fail(error)
        }
    }

    /// Refuses an argument that is not valid UTF-8 (Swift would silently
    /// replace its bytes by U+FFFD), naming it and the option before it.
    static func checkRawArguments() throws {
        let argv = CommandLine.unsafeArgv
        for i in 1..<Int(CommandLine.argc) {
            guard let p = argv[i] else { continue }
            let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
            if let offset = TextFile.firstInvalidUTF8Offset(bytes) {
                let previous = i > 1 ? argv[i - 1].map { String(cString: $0) } : nil
                let which = previous.map { $0.hasPrefix("--") ? "the value of '\($0)'" : "argument \(i)" } ?? "argument \(i)"
                throw UsageError("\(which) is not valid UTF-8 (byte \(offset) of it)")
            }
        }
    }

    /// Prints `error: <one line>` to stderr; usage mistakes exit 2, others 1.
    static func fail(_ error: Error) -> Int32 {
        let message = Format.visible(String(describing: error))      // one line; nothing from a file reaches the terminal raw
        Console.err("error: \(message)\n")
        return error is UsageError ? 2 : 1
    }
}

AtomicFile.installInterruptCleanup()
StreamLab.keepLargeBuffersForReuse()
exit(StreamProbe.main(Array(CommandLine.arguments.dropFirst())))
