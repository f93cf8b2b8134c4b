import Foundation
import StreamLab

/// Turning flags into library inputs: model paths, tokenizers, token lists,
/// text-file windows. Shared by every command.
enum Inputs {
    /// The package root, found from this source file, for the bundled defaults.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The bundled default model (see Fixtures/models/README.md).
    static var defaultModel: URL {
        if let override = ProcessInfo.processInfo.environment["STREAMLAB_DEFAULT_MODEL"] { return URL(fileURLWithPath: override) }
        return packageRoot.appendingPathComponent("Fixtures/models/shakespeare-pre")
    }

    /// The prompt used when a command gets no input flag.
    static let defaultPrompt = "HAMLET:\nTo be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"

    /// The input options every model command shares.
    static let inputOptions: [OptionSpec] = [
        OptionSpec(name: "--tokens", valueName: "IDS", help: "comma-separated token ids, used as given (no BOS added)"),
        OptionSpec(name: "--prompt", valueName: "TEXT", help: "text, tokenized with the model's tokenizer"),
        OptionSpec(name: "--tokenizer", valueName: "PATH", help: "tokenizer.json, vocab.json or .tiktoken to use instead of the model's"),
    ]
    static let textFileOption = OptionSpec(name: "--text-file", valueName: "FILE", help: "a UTF-8 text file, cut into context-length windows")
    static let strideOption = OptionSpec(name: "--stride", valueName: "N", help: "tokens between window starts for --text-file (default: the full window)")
    static let formatOption = OptionSpec(name: "--format", valueName: "table|json|csv", help: "output format (default table)")
    static let svgOption = OptionSpec(name: "--svg", valueName: "FILE", help: "also write a chart as SVG")

    /// The model directory: the first positional, else the bundled default.
    static func modelPath(_ args: ParsedArguments) throws -> URL {
        if args.positionals.count > 1 {
            throw UsageError("expected at most one MODEL argument, got \(args.positionals.count): \(args.positionals.joined(separator: " "))")
        }
        if let path = args.positionals.first { return URL(fileURLWithPath: path) }
        let model = defaultModel
        guard FileManager.default.fileExists(atPath: model.path) else {
            throw UsageError("no MODEL given and the bundled default model '\(model.path)' is missing; give a model directory")
        }
        return model
    }

    /// How reports name a model directory: relative to the package for the bundled ones, else the path as given.
    static func displayName(_ url: URL) -> String {
        url.path.hasPrefix(packageRoot.path + "/") ? String(url.path.dropFirst(packageRoot.path.count + 1)) : url.path
    }

    /// A loaded model, where it came from, and its tokenizer (if any).
    struct LoadedModel {
        let model: Transformer
        let report: LoadReport
        let url: URL
        let tokenizer: (any Tokenizer)?

        /// How reports name the model: the path as given.
        var name: String { Inputs.displayName(url) }

        /// Token text for tables: the tokenizer's, else the id.
        var tokenText: TokenText {
            guard let tokenizer else { return tokenIDText }
            return { tokenizer.displayText(of: $0) }
        }
    }

    /// Loads the model with `--threads` and finds its tokenizer (`--tokenizer` overrides).
    static func loadModel(_ args: ParsedArguments) throws -> LoadedModel {
        let url = try modelPath(args)
        let threads = try args.int("--threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...1024)
        let (model, report) = try Transformer.loadWithReport(from: url, threads: threads)
        let tokenizer: (any Tokenizer)?
        if let path = args.value("--tokenizer") {
            tokenizer = try TokenizerLoader.load(from: URL(fileURLWithPath: path))
        } else {
            tokenizer = try TokenizerLoader.find(inModelDirectory: url)
        }
        return LoadedModel(model: model, report: report, url: url, tokenizer: tokenizer)
    }

    /// `--tokens 1,2,3` (or another `flag`'s value) as ids (range checks happen in the model).
    static func tokens(_ text: String, flag: String = "--tokens") throws -> [Int] {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { throw UsageError("option '\(flag)' is empty: give ids like 464,3290,318") }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let s = String(part).trimmingCharacters(in: .whitespaces)
            guard let id = Int(s) else { throw UsageError("option '\(flag)': '\(s)' is not a token id (expected integers separated by commas)") }
            return id
        }
    }

    /// A sequence given as `--NAME-tokens IDS` or as `--NAME TEXT` (through the tokenizer).
    static func namedSequence(_ args: ParsedArguments, _ loaded: LoadedModel, _ name: String) throws -> [Int] {
        let idsFlag = "--\(name)-tokens", textFlag = "--\(name)"
        switch (args.value(idsFlag), args.value(textFlag)) {
        case let (ids?, nil): return try tokens(ids, flag: idsFlag)
        case let (nil, text?):
            let ids = try requireTokenizer(loaded, for: textFlag).encode(text, addSpecialTokens: true)
            if ids.isEmpty { throw UsageError("option '\(textFlag)': the text encodes to no tokens") }
            return ids
        case (nil, nil): throw UsageError("give \(idsFlag) IDS or \(textFlag) TEXT")
        default: throw UsageError("give only one of \(idsFlag) and \(textFlag)")
        }
    }

    /// A token given as `--NAME ID` or as `--NAME-text TEXT` (exactly one token of the tokenizer).
    static func namedToken(_ args: ParsedArguments, _ loaded: LoadedModel, _ name: String) throws -> Int {
        let idFlag = "--\(name)", textFlag = "--\(name)-text"
        switch (args.value(idFlag), args.value(textFlag)) {
        case (_?, nil): return try args.int(idFlag, default: 0, range: 0...Int.max / 2)
        case let (nil, text?): return try requireTokenizer(loaded, for: textFlag).singleToken(text)
        case (nil, nil): throw UsageError("give \(idFlag) ID or \(textFlag) TEXT")
        default: throw UsageError("give only one of \(idFlag) and \(textFlag)")
        }
    }

    /// The tokenizer, or a usage error saying how to get one.
    static func requireTokenizer(_ loaded: LoadedModel, for flag: String) throws -> any Tokenizer {
        guard let tokenizer = loaded.tokenizer else {
            throw UsageError("\(flag) needs a tokenizer, but '\(loaded.name)' has none (no tokenizer.json or vocab.json + merges.txt); give --tokens or --tokenizer PATH")
        }
        return tokenizer
    }

    /// The single token sequence of a command: `--tokens`, `--prompt`, or the
    /// default prompt when neither is given.
    static func sequence(_ args: ParsedArguments, _ loaded: LoadedModel) throws -> [Int] {
        let given = ["--tokens", "--prompt", "--text-file"].filter { args.value($0) != nil }
        if given.count > 1 { throw UsageError("give only one of \(given.joined(separator: ", "))") }
        let ids: [Int]
        if let text = args.value("--tokens") {
            ids = try tokens(text)
        } else {
            let prompt = args.value("--prompt") ?? defaultPrompt
            let tokenizer = try requireTokenizer(loaded, for: args.value("--prompt") != nil ? "--prompt" : "the default prompt")
            ids = tokenizer.encode(prompt, addSpecialTokens: true)
            if ids.isEmpty { throw UsageError("option '--prompt': the text encodes to no tokens") }
        }
        try loaded.model.validate(tokens: ids)
        return ids
    }

    /// Token windows of `--text-file`, streamed: the file is read, tokenized
    /// and cut into windows of the model's context length every `--stride`
    /// tokens while the probe runs.
    static func windows(_ args: ParsedArguments, _ loaded: LoadedModel) throws -> TokenWindows? {
        guard let path = args.value("--text-file") else {
            if args.value("--shard") != nil { throw UsageError("option '--shard' needs --text-file FILE (it splits the file's windows)") }
            return nil
        }
        if args.value("--tokens") != nil || args.value("--prompt") != nil {
            throw UsageError("give only one of --text-file, --tokens, --prompt")
        }
        let tokenizer = try requireTokenizer(loaded, for: "--text-file")
        let context = loaded.model.architecture.maxPositions
        let stride = try args.int("--stride", default: context, range: 1...context)
        let windows = try TokenWindows(url: URL(fileURLWithPath: path), tokenizer: tokenizer, length: context, stride: stride)
        do { windows.shard = try args.value("--shard").map(Shard.init(parsing:)) } catch { throw UsageError("\(error)") }
        return windows
    }

    /// `overInput` for a command that shards: also the shard's run identity (with `--shard`).
    static func sweep<R>(_ args: ParsedArguments, _ loaded: LoadedModel, command: String,
                         _ body: (AnySequence<[Int]>, ((Int) -> Void)?) throws -> R) throws -> (R, String, SweepIdentity?) {
        if args.value("--out") != nil && args.value("--shard") == nil {
            throw UsageError("option '--out' needs --shard i/n (it names a directory of shard reports)")
        }
        if let file = try shardFile(args, command: command), FileManager.default.fileExists(atPath: file),
           let done = try? ShardReport(file: file), done.identity.command == command, done.identity.model == loaded.name,
           done.identity.shard.description == args.value("--shard"), let text = args.value("--text-file"),
           let hashed = try? SHA256.ofFile(text), done.identity.textBytes == hashed.bytes, done.identity.textSHA256 == hashed.hex,
           done.identity.architectureSHA256 == (try? ModelIdentity(modelDirectory: loaded.url).architectureSHA256),
           done.identity.settings == settings(args) {
            throw ShardAlreadyDone(shard: done.identity.shard.description, file: file)
        }
        if let windows = try windows(args, loaded) {
            let (result, source) = try overWindows(windows) { try body(AnySequence($0), $1) }
            return (result, source, try sweepIdentity(args, loaded, windows, command: command))
        }
        let (result, source) = try overInput(args, loaded, body)
        return (result, source, nil)
    }

    static let shardOption = OptionSpec(name: "--shard", valueName: "i/n",
                                        help: "with --text-file: only windows w with w mod n = i; the JSON report carries what 'merge' needs")
    static let bootstrapOption = OptionSpec(name: "--bootstrap", valueName: "N",
                                            help: "with --text-file: 95% percentile intervals of every figure from N resamples of the windows (JSON <name>_ci95)")
    static let shardOutOption = OptionSpec(name: "--out", valueName: "DIR",
                                           help: "with --shard: write the report to DIR/<command>-shard-<i>-of-<n>.json; a rerun skips a shard already there")

    /// Thrown when `--out DIR` already holds this shard's complete report of the same run.
    struct ShardAlreadyDone: Error { let shard: String; let file: String }

    /// With `--shard i/n --out DIR`: the shard's report file.
    static func shardFile(_ args: ParsedArguments, command: String) throws -> String? {
        guard let dir = args.value("--out"), let text = args.value("--shard") else { return nil }
        let shard: Shard
        do { shard = try Shard(parsing: text) } catch { throw UsageError("\(error)") }
        return (dir as NSString).appendingPathComponent("\(command)-shard-\(shard.index)-of-\(shard.count).json")
    }

    /// The run a `--shard` report belongs to (nil without `--shard`): the
    /// model, the options that change a number, the text and its windows.
    static func sweepIdentity(_ args: ParsedArguments, _ loaded: LoadedModel, _ windows: TokenWindows?, command: String) throws -> SweepIdentity? {
        guard let windows, let shard = windows.shard, let textSHA256 = windows.textSHA256 else { return nil }
        return SweepIdentity(command: command, model: loaded.name, architectureSHA256: try ModelIdentity(modelDirectory: loaded.url).architectureSHA256,
                             settings: settings(args), text: (windows.path as NSString).lastPathComponent, textSHA256: textSHA256,
                             textBytes: windows.totalBytes, textTokens: windows.tokenCount, window: windows.length,
                             stride: windows.stride, shard: shard)
    }

    /// Runs `body` over the windows with a progress bar on stderr, then
    /// reports a reading error or an empty file; returns `body`'s result and a
    /// description of the input for the report.
    static func overWindows<R>(_ windows: TokenWindows, _ body: (TokenWindows, @escaping (Int) -> Void) throws -> R) throws -> (R, String) {
        let bar = ProgressBar(total: windows.totalBytes, label: "MB")
        let result = try body(windows) { _ in bar.update(windows.bytesRead) }
        bar.finish()
        if let error = windows.error { throw error }
        if windows.tokenCount < 2 {
            throw UsageError("text file '\(windows.path)' has \(windows.tokenCount) token(s); at least 2 are needed to score a prediction")
        }
        let name = (windows.path as NSString).lastPathComponent
        return (result, "\(name): \(windows.tokenCount) tokens in windows of up to \(windows.length) every \(windows.stride)")
    }

    /// Runs `body` over the `--text-file` windows (with a progress bar), or
    /// over the one sequence of `--tokens` / `--prompt` / the default prompt;
    /// returns its result and a description of the input for the report.
    static func overInput<R>(_ args: ParsedArguments, _ loaded: LoadedModel,
                             _ body: (AnySequence<[Int]>, ((Int) -> Void)?) throws -> R) throws -> (R, String) {
        if let windows = try windows(args, loaded) {
            return try overWindows(windows) { try body(AnySequence($0), $1) }
        }
        let tokens = try sequence(args, loaded)
        let source = args.value("--tokens") != nil ? "\(tokens.count) tokens" : "prompt of \(tokens.count) tokens"
        return (try body(AnySequence([tokens]), nil), source)
    }

    /// `--format` among `choices`.
    static func format(_ args: ParsedArguments, _ choices: [String] = ["table", "json", "csv"]) throws -> String {
        try args.choice("--format", choices, default: "table")
    }

    /// `--layers all|0,3,5` as indices (nil for all; range checks happen in the library).
    static func layers(_ args: ParsedArguments) throws -> [Int]? {
        try indices(args, "--layers", what: "layer")
    }

    /// A comma-separated list of indices (`0,3,5`), or nil for `all` or absent.
    static func indices(_ args: ParsedArguments, _ flag: String, what: String) throws -> [Int]? {
        guard let text = args.value(flag), text != "all" else { return nil }
        var indices: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let s = part.trimmingCharacters(in: .whitespaces)
            guard let index = Int(s) else { throw UsageError("option '\(flag)': '\(s)' is not a \(what) index (use all, or indices like 0,3,5)") }
            if !indices.contains(index) { indices.append(index) }
        }
        return indices
    }

    /// Whether an output file can be written, checked before any work: its
    /// directory exists and is writable, and the path is not a directory.
    static func checkWritable(_ path: String, flag: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw UsageError("option '\(flag)': '\(path)' is a directory")
        }
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw OutputError.cannotWrite(path: path, reason: "the directory '\(directory)' does not exist")
        }
        guard access(directory, W_OK) == 0 else {
            throw OutputError.cannotWrite(path: path, reason: "the directory '\(directory)' is not writable")
        }
    }

    /// The one output function of every command: writes the report's picture
    /// to `--svg FILE` if asked, then prints the report in `format`.
    /// The options of a run that change a number (what shards of one run share).
    static func settings(_ args: ParsedArguments) -> [String: String] {
        let ignored: Set<String> = ["--threads", "--format", "--svg", "--shard", "--text-file", "--out"]
        var settings: [String: String] = [:]
        for (name, value) in args.values where !ignored.contains(name) { settings[name] = value }
        for name in args.flags where !ignored.contains(name) { settings[name] = "true" }
        return settings
    }

    static func output(_ args: ParsedArguments, _ format: String, _ report: some ProbeReport) throws {
        if let file = try shardFile(args, command: args.command) {
            // One JSON file per shard, written atomically (an interrupted run leaves none).
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.write(report.rendered(as: "json"), to: file)
            try Console.out("wrote \(file)\n")
            return
        }
        if let path = args.value("--svg") {
            guard let svg = report.svg() else { throw UsageError("option '--svg': this command draws no picture") }
            try AtomicFile.write(svg, to: path)
            Console.err("wrote \(path)\n")
        }
        try Console.out(report.rendered(as: format))
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
final class ProgressBar {
    let total: Int
    let label: String
    let start = Date()
    let enabled = isatty(2) != 0
    private var drawn = false

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    /// Redraws with `done` of `total` (bytes are shown as MB).
    func update(_ done: Int) {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = min(width, width * done / total)
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(max(total - done, 0)) : 0
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let amount = label == "MB" ? String(format: "%.1f/%.1f MB", Double(done) / 1e6, Double(total) / 1e6) : "\(done)/\(total) \(label)"
        var line = "\r[\(bar)] \(amount), \(Int(elapsed))s elapsed"
        if done < total { line += ", ETA \(Int(eta.rounded()))s   " }
        Console.err(line)
        drawn = true
    }

    /// Ends the line if anything was drawn.
    func finish() {
        if drawn { Console.err("\n") }
    }
}
