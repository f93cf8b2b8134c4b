import Foundation
import StreamLab

enum AblateCommand {
    static let spec = CommandSpec(
        name: "ablate",
        summary: "Remove each listed layer (or sublayer, or head) in turn and measure the damage: KL to the clean predictions, top-1 agreement, loss.",
        usage: "stream-probe ablate [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] [--layers all|0,3,5] [--sublayer block|attn|mlp|head] [--mode skip|zero|mean] [--joint] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption,
            OptionSpec(name: "--layers", valueName: "all|LIST", help: "layers to ablate, one entry each (default all)"),
            OptionSpec(name: "--sublayer", valueName: "block|attn|mlp|head", help: "what to remove in each layer (default block; head = every head of the layer)"),
            OptionSpec(name: "--mode", valueName: "skip|zero|mean", help: "how to remove it (default skip)"),
            OptionSpec(name: "--joint", valueName: nil, help: "remove all listed layers together, as one entry"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let sublayer = Sublayer(rawValue: try args.choice("--sublayer", Sublayer.allCases.map(\.rawValue), default: "block"))!
        let mode = AblationMode(rawValue: try args.choice("--mode", AblationMode.allCases.map(\.rawValue), default: "skip"))!
        let loaded = try Inputs.loadModel(args)
        let model = loaded.model
        let plan = try model.ablationPlan(layers: try Inputs.layers(args), sublayer: sublayer, mode: mode, joint: args.has("--joint"))
        let (sweep, source, run) = try Inputs.sweep(args, loaded, command: "ablate") { try model.ablationSweep(plan, on: $0, progress: $1) }
        let report = AblationReport(model: loaded.name, source: source, sweep: sweep, tokenText: loaded.tokenText, run: run)
        try Inputs.output(args, format, report)
    }
}

enum LensCommand {
    static let spec = CommandSpec(
        name: "lens",
        summary: "Logit lens: read the stream after every layer through the model's own final norm and unembedding.",
        usage: "stream-probe lens [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] [--tuned LENS.safetensors [--compare]] [--top K] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption,
            OptionSpec(name: "--top", valueName: "K", help: "tokens kept per layer and position (default 5)"),
            OptionSpec(name: "--tuned", valueName: "FILE", help: "also read every layer through this tuned lens (from 'stream-probe tuned-lens train')"),
            OptionSpec(name: "--compare", valueName: nil, help: "with --tuned: logit lens and tuned lens side by side per layer (KL to final, next-token loss), SVG of both"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        if args.has("--compare") && args.value("--tuned") == nil { throw UsageError("option '--compare' needs --tuned LENS.safetensors") }
        let loaded = try Inputs.loadModel(args)
        let model = loaded.model
        let top = try args.int("--top", default: 5, range: 1...min(100, model.architecture.vocabularySize))
        let tuned = try args.value("--tuned").map {
            try TunedLens.load(from: $0, for: model.architecture, model: try ModelIdentity(modelDirectory: loaded.url))
        }
        if let windows = try Inputs.windows(args, loaded) {
            let (summary, source) = try Inputs.overWindows(windows) { try model.logitLensSummary($0, tuned: tuned, progress: $1) }
            let run = try Inputs.sweepIdentity(args, loaded, windows, command: "lens")
            if args.has("--compare") {
                try Inputs.output(args, format, LensComparisonReport(model: loaded.name, lensFile: args.value("--tuned")!, source: source,
                                                                     summary: summary, run: run))
            } else {
                try Inputs.output(args, format, LensSummaryReport(model: loaded.name, source: source, summary: summary, run: run))
            }
            return
        }
        let tokens = try Inputs.sequence(args, loaded)
        if args.has("--compare") {
            if tokens.count < 2 { throw UsageError("option '--compare' needs at least 2 tokens (the next-token loss needs a next token)") }
            let summary = try model.logitLensSummary([tokens], tuned: tuned)
            try Inputs.output(args, format, LensComparisonReport(model: loaded.name, lensFile: args.value("--tuned")!,
                                                                 source: "\(tokens.count) tokens", summary: summary))
            return
        }
        let report = LensReport(model: loaded.name, lens: try model.logitLens(tokens, top: top, tuned: tuned), tokenText: loaded.tokenText)
        try Inputs.output(args, format, report)
    }
}

enum DecomposeCommand {
    static let spec = CommandSpec(
        name: "decompose",
        summary: "Split the final stream at a position into the exact contribution of every write, with each one's direct logit attribution.",
        usage: "stream-probe decompose [MODEL] [--tokens IDS | --prompt TEXT] [--position P] [--target ID | --target-text TEXT] [--heads] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [
            OptionSpec(name: "--position", valueName: "P", help: "position to decompose; negative counts from the end (default -1)"),
            OptionSpec(name: "--target", valueName: "ID", help: "token whose logit is attributed (default: the model's top prediction)"),
            OptionSpec(name: "--target-text", valueName: "TEXT", help: "the target as a token's text (needs a tokenizer)"),
            OptionSpec(name: "--heads", valueName: nil, help: "also list every attention head beside its layer"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let loaded = try Inputs.loadModel(args)
        let tokens = try Inputs.sequence(args, loaded)
        let position = try args.int("--position", default: -1, range: Int.min / 2...Int.max / 2)
        if args.value("--target") != nil && args.value("--target-text") != nil {
            throw UsageError("give only one of --target and --target-text")
        }
        var target = try args.value("--target").map { _ in try args.int("--target", default: 0, range: Int.min / 2...Int.max / 2) }
        if let text = args.value("--target-text") {
            target = try Inputs.requireTokenizer(loaded, for: "--target-text").singleToken(text)
        }
        let decomposition = try loaded.model.decompose(tokens, position: position, target: target, heads: args.has("--heads"))
        let report = DecompositionReport(model: loaded.name, decomposition: decomposition, tokenText: loaded.tokenText)
        try Inputs.output(args, format, report)
    }
}

enum PatchCommand {
    static let spec = CommandSpec(
        name: "patch",
        summary: "Activation patching: run the corrupted input with one activation from the clean run (or the reverse) and measure the logit difference of the answer.",
        usage: "stream-probe patch [MODEL] (--clean-tokens IDS --corrupted-tokens IDS | --clean TEXT --corrupted TEXT) (--answer ID | --answer-text TEXT) (--wrong ID | --wrong-text TEXT) [--hook resid_pre|resid_mid|attn_out|mlp_out|head] [--method exact|attribution] [--direction denoising|noising] [--positions LIST] [--format table|json|csv] [--svg FILE]",
        options: [
            OptionSpec(name: "--clean-tokens", valueName: "IDS", help: "the clean input as token ids"),
            OptionSpec(name: "--corrupted-tokens", valueName: "IDS", help: "the corrupted input, as many tokens as the clean one"),
            OptionSpec(name: "--clean", valueName: "TEXT", help: "the clean input as text (needs a tokenizer)"),
            OptionSpec(name: "--corrupted", valueName: "TEXT", help: "the corrupted input as text"),
            OptionSpec(name: "--answer", valueName: "ID", help: "the right answer's token; the metric is logit[answer] - logit[wrong] at the last position"),
            OptionSpec(name: "--answer-text", valueName: "TEXT", help: "the answer as one token's text"),
            OptionSpec(name: "--wrong", valueName: "ID", help: "the wrong answer's token"),
            OptionSpec(name: "--wrong-text", valueName: "TEXT", help: "the wrong answer as one token's text"),
            OptionSpec(name: "--hook", valueName: "resid_pre|resid_mid|attn_out|mlp_out|head", help: "what is patched (default resid_pre): one layer and position at a time, or one head at every position"),
            OptionSpec(name: "--method", valueName: "exact|attribution", help: "exact (default): one forward per entry; attribution: the linear estimate from one backward"),
            OptionSpec(name: "--direction", valueName: "denoising|noising", help: "denoising (default): patch the corrupted run from the clean one; noising: the reverse"),
            OptionSpec(name: "--positions", valueName: "LIST", help: "only these positions, e.g. 0,3,-1 (default all)"),
            Inputs.inputOptions[2], Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let hook = PatchHook(rawValue: try args.choice("--hook", PatchHook.allCases.map(\.rawValue), default: "resid_pre"))!
        let direction = PatchDirection(rawValue: try args.choice("--direction", ["denoising", "noising"], default: "denoising"))!
        let method = PatchMethod(rawValue: try args.choice("--method", ["exact", "attribution"], default: "exact"))!
        var positions: [Int]?
        if let text = args.value("--positions") {
            positions = try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
                let s = part.trimmingCharacters(in: .whitespaces)
                guard let p = Int(s) else { throw UsageError("option '--positions': '\(s)' is not a position (use indices like 0,3,-1)") }
                return p
            }
            if hook == .head { throw UsageError("--positions applies to resid_pre, resid_mid, attn_out and mlp_out (a head is patched at every position)") }
        }
        let loaded = try Inputs.loadModel(args)
        let clean = try Inputs.namedSequence(args, loaded, "clean")
        let corrupted = try Inputs.namedSequence(args, loaded, "corrupted")
        let answer = try Inputs.namedToken(args, loaded, "answer")
        let wrong = try Inputs.namedToken(args, loaded, "wrong")
        let patching = try loaded.model.patch(clean: clean, corrupted: corrupted, answer: answer, wrong: wrong, hook: hook,
                                              method: method, direction: direction, positions: positions)
        try Inputs.output(args, format, PatchReport(model: loaded.name, patching: patching, tokenText: loaded.tokenText))
    }
}

enum AttentionCommand {
    static let spec = CommandSpec(
        name: "attention",
        summary: "Attention heads: every head's previous-token, duplicate-token, induction and first-token scores, and pictures of the patterns.",
        usage: "stream-probe attention [MODEL] [--tokens IDS | --prompt TEXT] [--length N] [--seed S] [--layers LIST] [--heads LIST] [--patterns FILE] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [
            OptionSpec(name: "--length", valueName: "N", help: "without --tokens/--prompt: a random sequence of N tokens repeated once (default 20, at most half the context)"),
            OptionSpec(name: "--seed", valueName: "S", help: "seed of that random sequence (default 0)"),
            OptionSpec(name: "--layers", valueName: "LIST", help: "layers whose patterns --patterns draws (default 0)"),
            OptionSpec(name: "--heads", valueName: "LIST", help: "heads whose patterns --patterns draws (default all)"),
            OptionSpec(name: "--patterns", valueName: "FILE", help: "write the patterns of --layers and --heads as SVG heatmaps"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        if let path = args.value("--patterns") { try Inputs.checkWritable(path, flag: "--patterns") }
        let loaded = try Inputs.loadModel(args)
        let model = loaded.model
        let layers = try Inputs.layers(args) ?? [0]
        for layer in layers where layer < 0 || layer >= model.architecture.layerCount {
            throw UsageError("option '--layers': layer \(layer) is outside 0..<\(model.architecture.layerCount)")
        }
        let heads = try Inputs.indices(args, "--heads", what: "head")
        for head in heads ?? [] where head < 0 || head >= model.architecture.headCount {
            throw UsageError("option '--heads': head \(head) is outside 0..<\(model.architecture.headCount)")
        }
        let tokens: [Int], source: String
        if args.value("--tokens") != nil || args.value("--prompt") != nil {
            tokens = try Inputs.sequence(args, loaded)
            source = "\(tokens.count) tokens"
        } else {
            let longest = model.architecture.maxPositions / 2
            guard longest >= 2 else { throw UsageError("the model's context (\(model.architecture.maxPositions)) is too short for a repeated sequence") }
            let length = try args.int("--length", default: min(20, longest), range: 2...longest)
            let seed = try args.int("--seed", default: 0, range: 0...Int.max)
            tokens = model.repeatedRandomTokens(length: length, seed: UInt64(seed))
            source = "a random sequence of \(length) tokens repeated once (seed \(seed))"
        }
        let result = try model.headScores(tokens, patternLayers: layers)
        let report = HeadScoresReport(model: loaded.name, source: source, result: result, patternHeads: heads,
                                      tokenText: loaded.tokenText)
        if let path = args.value("--patterns"), let svg = report.patternsSVG() {
            try AtomicFile.write(svg, to: path)
            Console.err("wrote \(path)\n")
        }
        try Inputs.output(args, format, report)
    }
}

enum GenerateCommand {
    static let spec = CommandSpec(
        name: "generate",
        summary: "Continue a prompt token by token (KV cache), greedy or sampled, optionally steered by adding an activation difference to the stream.",
        usage: "stream-probe generate [MODEL] [--tokens IDS | --prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K] [--seed S] [--steer LAYER --add TEXT --subtract TEXT [--coefficient C]] [--format table|json]",
        options: Inputs.inputOptions + [
            OptionSpec(name: "--max-tokens", valueName: "N", help: "new tokens at most (default 32); generation also stops at the tokenizer's EOS"),
            OptionSpec(name: "--temperature", valueName: "T", help: "0 (default): greedy; above 0: sample from softmax(logits / T)"),
            OptionSpec(name: "--top-k", valueName: "K", help: "sample among the K most likely tokens only"),
            OptionSpec(name: "--seed", valueName: "S", help: "seed of the sampling (default 0)"),
            OptionSpec(name: "--steer", valueName: "LAYER", help: "add a steering vector at resid_pre of this layer, at every position (ActAdd)"),
            OptionSpec(name: "--add", valueName: "TEXT", help: "steering: the prompt whose mean resid_pre is added"),
            OptionSpec(name: "--subtract", valueName: "TEXT", help: "steering: the prompt whose mean resid_pre is subtracted"),
            OptionSpec(name: "--coefficient", valueName: "C", help: "steering: scale of the difference (default 4)"),
            Inputs.formatOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try args.choice("--format", ["table", "json"], default: "table")
        let loaded = try Inputs.loadModel(args)
        let model = loaded.model
        let prompt = try Inputs.sequence(args, loaded)
        let room = model.architecture.maxPositions - prompt.count
        let maxTokens = try args.int("--max-tokens", default: min(32, max(room, 0)), range: 0...max(room, 0))
        let temperature = try args.double("--temperature", default: 0, range: 0...1e6)
        let topK = try args.value("--top-k").map { _ in try args.int("--top-k", default: 1, range: 1...model.architecture.vocabularySize) }
        let seed = try args.int("--seed", default: 0, range: 0...Int.max)
        var interventions: [Intervention] = []
        if args.value("--steer") != nil {
            let layer = try args.int("--steer", default: 0, range: 0...(model.architecture.layerCount - 1))
            guard let add = args.value("--add"), let subtract = args.value("--subtract") else {
                throw UsageError("--steer needs --add TEXT and --subtract TEXT")
            }
            let tokenizer = try Inputs.requireTokenizer(loaded, for: "--steer")
            let encode = { (text: String, flag: String) throws -> [Int] in
                let ids = tokenizer.encode(text, addSpecialTokens: true)
                if ids.isEmpty { throw UsageError("option '\(flag)': the text encodes to no tokens") }
                return ids
            }
            let coefficient = try args.double("--coefficient", default: 4, range: -1e6...1e6)
            let vector = try model.steeringVector(layer: layer, add: try encode(add, "--add"), subtract: try encode(subtract, "--subtract"),
                                                  coefficient: Float(coefficient))
            interventions = [Intervention(.hook(.residPre(layer)), .add(vector))]
        } else if args.value("--add") != nil || args.value("--subtract") != nil {
            throw UsageError("--add and --subtract need --steer LAYER")
        }
        let stop: Set<Int> = loaded.tokenizer?.eosTokenID.map { [$0] } ?? []
        let settings = GenerationSettings(maxTokens: maxTokens, temperature: temperature, topK: topK, seed: UInt64(seed), stopTokens: stop)
        let text = { (ids: [Int]) -> String in
            if let tokenizer = loaded.tokenizer, let s = try? tokenizer.decode(ids) { return s }
            return ids.map { "<\($0)>" }.joined()
        }
        if format == "table" { try Console.out(text(prompt)) }
        let generated = try model.generate(prompt, settings, interventions: interventions) { token in
            if format == "table" { try? Console.out(text([token])) }
        }
        if format == "table" {
            try Console.out("\n")
            Console.err("generated \(generated.count) tokens\(interventions.isEmpty ? "" : " (steered)")\n")
        } else {
            try Console.out(JSONOutput.object([
                ("model", .string(loaded.name)), ("prompt", .ints(prompt)), ("generated", .ints(generated)),
                ("text", .string(text(generated))), ("temperature", .double(temperature)),
                ("steered", .bool(!interventions.isEmpty)),
            ]).serialized() + "\n")
        }
    }
}
