import Foundation
import StreamLab

enum GradientsCommand {
    static let spec = CommandSpec(
        name: "gradients",
        summary: "Per layer: the gradient of the next-token loss at the block input, its skip-path and sublayer-path parts, and the block's parameter-gradient norm.",
        usage: "stream-probe gradients [MODEL] (--tokens IDS | --prompt TEXT | --text-file FILE) [--format table|json|csv] [--svg FILE]",
        options: [
            OptionSpec(name: "--tokens", valueName: "IDS", help: "comma-separated token ids, used as given (at least 2)"),
            OptionSpec(name: "--prompt", valueName: "TEXT", help: "text to encode (byte-level models for now)"),
            OptionSpec(name: "--text-file", valueName: "FILE", help: "average over non-overlapping windows of the model's context (byte-level models for now)"),
            OptionSpec(name: "--max-bytes", valueName: "N", help: "with --text-file: read at most the first N bytes (default 65536)"),
            OptionSpec(name: "--format", valueName: "table|json|csv", help: "output format (default table)"),
            OptionSpec(name: "--svg", valueName: "FILE", help: "also write a plot of the gradient norm against depth"),
        ])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args, ["table", "json", "csv"])
        let (model, _, url) = try Inputs.loadModel(args)
        let threads = try args.int("--threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...1024)
        if let problem = TrainableModel.supportProblem(model.architecture) {
            throw TrainingError.unsupportedModel("gradients: \(problem)")
        }
        let (sequences, source) = try GradientInput.sequences(args, model: model, directory: url)
        let report = try GradientAnalysis.run(model, sequences: sequences, threads: threads)
        if let svg = args.value("--svg") {
            let a = model.architecture
            let title = "Gradient norm by depth: \(url.lastPathComponent) (\(a.normPlacement.rawValue)-norm\(a.skipConnections ? "" : ", plain"), \(a.layerCount) layers)"
            try AtomicFile.write(report.plot(title: title).render(), to: svg)
        }
        switch format {
        case "json":
            var fields: [(String, JSONOutput)] = [("model", .string(url.path)), ("input", .string(source))]
            if case let .object(rest) = report.json { fields += rest }
            print(JSONOutput.object(fields).serialized())
        case "csv":
            print(report.csv, terminator: "")
        default:
            print("\(url.path): \(source)")
            print(report.table, terminator: "")
        }
    }
}

/// The token sequences of `gradients` (and, later, of every command that
/// reads text): one place that turns `--tokens`, `--prompt` and
/// `--text-file` into ids. Text is encoded by `encode`; until the tokenizer
/// lands it handles byte-level models (a `tokenizer.json` of the 256 byte
/// symbols and no merges), whose token ids are the UTF-8 bytes.
enum GradientInput {
    static func sequences(_ args: ParsedArguments, model: Transformer, directory: URL) throws -> ([[Int]], String) {
        let given = ["--tokens", "--prompt", "--text-file"].filter { args.has($0) }
        if given.count != 1 {
            throw UsageError(given.isEmpty ? "give the input with --tokens 1,2,3, --prompt TEXT or --text-file FILE"
                                           : "give only one of \(given.joined(separator: ", "))")
        }
        if args.has("--max-bytes") && !args.has("--text-file") { throw UsageError("option '--max-bytes' goes with --text-file") }
        if let text = args.value("--tokens") {
            let ids = try Inputs.tokens(text)
            try model.validate(tokens: ids)
            return ([ids], "\(ids.count) tokens")
        }
        if let prompt = args.value("--prompt") {
            let ids = try encode(Data(prompt.utf8), directory: directory, flag: "--prompt")
            try model.validate(tokens: ids)
            return ([ids], "prompt of \(ids.count) tokens")
        }
        let path = args.value("--text-file")!
        let limit = try args.int("--max-bytes", default: 65536, range: 1...Int.max)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError("cannot read --text-file '\(path)'")
        }
        guard !data.isEmpty else { throw UsageError("--text-file '\(path)' is empty") }
        let ids = try encode(data.prefix(limit), directory: directory, flag: "--text-file")
        let window = model.architecture.maxPositions
        var windows: [[Int]] = []
        var start = 0
        while start + 1 < ids.count {
            windows.append(Array(ids[start..<min(ids.count, start + window)]))
            start += window
        }
        guard !windows.isEmpty else { throw UsageError("--text-file '\(path)' holds fewer than 2 tokens") }
        return (windows, "\(path): \(windows.count) window\(windows.count == 1 ? "" : "s") of up to \(window) tokens")
    }

    /// Token ids of UTF-8 `text` for the model in `directory` (raw bytes, so a
    /// byte-level model sees exactly the file's bytes).
    static func encode(_ text: Data, directory: URL, flag: String) throws -> [Int] {
        guard ByteLevelVocabulary.isByteLevel(directory: directory) else {
            throw UsageError("\(flag) needs the model's tokenizer; for now only byte-level models (a tokenizer.json of the 256 byte symbols, no merges) are supported: use --tokens")
        }
        return text.map { Int($0) }
    }
}
