import Foundation
import StreamLab

enum LesionCommand {
    static let spec = CommandSpec(
        name: "lesion",
        summary: "Skip random subsets of k blocks together, for k = 0..K: how smoothly the damage grows as blocks go (Veit et al.).",
        usage: "stream-probe lesion [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] [--max-k K] [--samples N] [--seed S] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption,
            OptionSpec(name: "--max-k", valueName: "K", help: "largest number of blocks skipped together (default: all)"),
            OptionSpec(name: "--samples", valueName: "N", help: "random subsets per k (default 10; all of them when there are fewer)"),
            OptionSpec(name: "--seed", valueName: "S", help: "seed of the subsets (default 0)"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let loaded = try Inputs.loadModel(args)
        let l = loaded.model.architecture.layerCount
        let maxK = try args.int("--max-k", default: l, range: 0...l)
        let samples = try args.int("--samples", default: 10, range: 1...100_000)
        let seed = try args.int("--seed", default: 0, range: 0...Int.max)
        let (lesion, source, run) = try Inputs.sweep(args, loaded, command: "lesion") {
            try loaded.model.lesion(maxK: maxK, samples: samples, seed: UInt64(seed), on: $0, progress: $1)
        }
        try Inputs.output(args, format, LesionReport(model: loaded.name, source: source, lesion: lesion, run: run))
    }
}

enum ReorderCommand {
    static let spec = CommandSpec(
        name: "reorder",
        summary: "Run the blocks in other orders (repeats and omissions allowed) and measure the damage (Lad et al.).",
        usage: "stream-probe reorder [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] (--order LIST ... | --swaps) [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption,
            OptionSpec(name: "--order", valueName: "LIST", help: "blocks in the order to run them, e.g. 0,2,1,3 (may be repeated)",
                       repeatable: true),
            OptionSpec(name: "--swaps", valueName: nil, help: "every adjacent pair of blocks swapped in turn"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let texts = args.repeated["--order"] ?? []
        guard !texts.isEmpty || args.has("--swaps") else { throw UsageError("reorder needs --order LIST or --swaps") }
        let loaded = try Inputs.loadModel(args)
        let l = loaded.model.architecture.layerCount
        var orders = try texts.map { text -> [Int] in
            try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
                let s = part.trimmingCharacters(in: .whitespaces)
                guard let block = Int(s) else { throw UsageError("option '--order': '\(s)' is not a block index (use indices like 0,2,1,3)") }
                guard block >= 0 && block < l else { throw UsageError("option '--order': block \(block) is outside 0..<\(l)") }
                return block
            }
        }
        if args.has("--swaps") {
            guard l >= 2 else { throw UsageError("--swaps needs at least two blocks; the model has \(l)") }
            orders += Transformer.adjacentSwaps(layerCount: l)
        }
        let (sweep, source, run) = try Inputs.sweep(args, loaded, command: "reorder") { try loaded.model.reorder(orders, on: $0, progress: $1) }
        try Inputs.output(args, format, ReorderReport(model: loaded.name, source: source, sweep: sweep, run: run))
    }
}

enum PruneCommand {
    static let spec = CommandSpec(
        name: "prune",
        summary: "Rank every span of N consecutive blocks by angular distance, Block Influence and measured damage when cut.",
        usage: "stream-probe prune [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] --blocks N [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption,
            OptionSpec(name: "--blocks", valueName: "N", help: "consecutive blocks to cut (default 1; below the number of blocks)"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let loaded = try Inputs.loadModel(args)
        let l = loaded.model.architecture.layerCount
        guard l >= 2 else { throw UsageError("prune needs at least two blocks; the model has \(l)") }
        let n = try args.int("--blocks", default: 1, range: 1...(l - 1))
        let (pruning, source, run) = try Inputs.sweep(args, loaded, command: "prune") { try loaded.model.prune(blocks: n, on: $0, progress: $1) }
        try Inputs.output(args, format, PruneReport(model: loaded.name, source: source, pruning: pruning, run: run))
    }
}

enum PathsCommand {
    static let spec = CommandSpec(
        name: "paths",
        summary: "Split the input gradient of the loss by path length: the stack unrolled into 2^n paths of skip or sublayer at each unit (Veit et al.).",
        usage: "stream-probe paths [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] [--samples N] [--seed S] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption,
            OptionSpec(name: "--samples", valueName: "N", help: "also follow N random single paths of each length (their mean norm)"),
            OptionSpec(name: "--seed", valueName: "S", help: "seed of those paths (default 0)"),
            Inputs.formatOption, Inputs.svgOption])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let samples = try args.int("--samples", default: 0, range: 1...100_000)
        let seed = try args.int("--seed", default: 0, range: 0...Int.max)
        if samples > 0 && args.value("--shard") != nil {
            throw UsageError("option '--samples' cannot be sharded (each shard would follow other random paths); run sampled paths unsharded")
        }
        let loaded = try Inputs.loadModel(args)
        let (spectrum, source, run) = try Inputs.sweep(args, loaded, command: "paths") {
            try loaded.model.paths(on: $0, samples: samples, seed: UInt64(seed), progress: $1)
        }
        try Inputs.output(args, format, PathsReport(model: loaded.name, source: source, spectrum: spectrum, run: run))
    }
}
