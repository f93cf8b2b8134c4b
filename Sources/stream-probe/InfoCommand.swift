import Foundation
import StreamLab

enum InfoCommand {
    static let spec = CommandSpec(
        name: "info", summary: "Architecture, sizes and memory of a model.",
        usage: "stream-probe info [MODEL] [--format table|json|csv]",
        options: [Inputs.formatOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let url = try Inputs.modelPath(args)
        let threads = try args.int("--threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...1024)
        try Inputs.output(args, format, try ModelSummary.of(directory: url, path: Inputs.displayName(url), threads: threads))
    }
}

enum TraceCommand {
    static let spec = CommandSpec(
        name: "trace", summary: "Record the hook points of one forward pass into an .npz file (float32 arrays named as in TransformerLens).",
        usage: "stream-probe trace [MODEL] [--tokens IDS | --prompt TEXT] --out FILE.npz [--hooks NAMES]",
        options: Inputs.inputOptions + [
            OptionSpec(name: "--out", valueName: "FILE", help: "the .npz file to write"),
            OptionSpec(name: "--hooks", valueName: "NAMES", help: "only these kinds, e.g. hook_resid_post,attn.hook_pattern,logits (default: all)"),
        ])

    static func run(_ args: ParsedArguments) throws {
        guard let out = args.value("--out") else { throw UsageError("trace needs --out FILE.npz") }
        let kinds = try hookKinds(args.value("--hooks"))
        let loaded = try Inputs.loadModel(args)
        let tokens = try Inputs.sequence(args, loaded)
        let names = try loaded.model.trace(tokens, recording: kinds, to: out)
        Console.err("wrote \(names.count) arrays for \(tokens.count) tokens to \(out)\n")
    }

    /// `--hooks` as kinds (default all).
    static func hookKinds(_ text: String?) throws -> Set<HookKind> {
        guard let text else { return .all }
        do { return try HookKind.parse(list: text) } catch { throw UsageError("option '--hooks': \(error)") }
    }
}
