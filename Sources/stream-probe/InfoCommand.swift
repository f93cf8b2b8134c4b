import Foundation
import StreamLab

enum InfoCommand {
    static let spec = CommandSpec(
        name: "info", summary: "Architecture, sizes and memory of a model.",
        usage: "stream-probe info [MODEL] [--format table|json]",
        options: [OptionSpec(name: "--format", valueName: "table|json", help: "output format (default table)")])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let loaded = try Inputs.loadModel(args)
        let summary = ModelSummary(path: loaded.name, model: loaded.model, report: loaded.report)
        if format == "json" {
            print(summary.json.serialized())
        } else {
            let width = summary.rows.map { $0.0.count }.max() ?? 0
            for (label, value) in summary.rows {
                print(label + String(repeating: " ", count: width - label.count + 2) + value)
            }
        }
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
        let run = try loaded.model.run(tokens, recording: kinds)
        let writer = try NpzWriter(path: out)
        do {
            try writer.add("tokens", ints: tokens)
            for point in run.points { try writer.add(point.name, run[point]!) }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        FileHandle.standardError.write(Data("wrote \(run.points.count) arrays for \(tokens.count) tokens to \(out)\n".utf8))
    }

    /// Kind names as they end a hook name (`hook_resid_post`, `attn.hook_pattern`, `logits`).
    static func hookKinds(_ text: String?) throws -> Set<HookKind> {
        guard let text else { return .all }
        let byName: [String: HookKind] = Dictionary(uniqueKeysWithValues: HookKind.allCases.map { kind in
            let example = HookPoint.example(of: kind).name
            let suffix = example.hasPrefix("blocks.0.") ? String(example.dropFirst("blocks.0.".count)) : example
            return (suffix, kind)
        })
        var kinds: Set<HookKind> = []
        for part in text.split(separator: ",") {
            let name = String(part).trimmingCharacters(in: .whitespaces)
            guard let kind = byName[name] else {
                throw UsageError("option '--hooks': unknown hook '\(name)' (known: \(byName.keys.sorted().joined(separator: ", ")))")
            }
            kinds.insert(kind)
        }
        return kinds
    }
}
