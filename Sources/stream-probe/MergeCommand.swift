import Foundation
import StreamLab

enum MergeCommand {
    static let spec = CommandSpec(
        name: "merge",
        summary: "Combine the JSON reports of one sweep's shards (--shard i/n) into the report of the whole run.",
        usage: "stream-probe merge SHARD.json... | DIR [--partial] [--format table|json|csv] [--svg FILE]",
        options: [
            OptionSpec(name: "--partial", valueName: nil, help: "merge the shards that are there, saying which are missing"),
            OptionSpec(name: "--bootstrap", valueName: "N", help: "intervals from N resamples (default: the shards' own --bootstrap; they must have kept their windows' values)"),
            Inputs.formatOption, Inputs.svgOption,
        ])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        var files = args.positionals
        if files.isEmpty { throw UsageError("merge needs the shards' JSON reports (files, or one directory holding them)") }
        var isDirectory: ObjCBool = false
        if files.count == 1, FileManager.default.fileExists(atPath: files[0], isDirectory: &isDirectory), isDirectory.boolValue {
            let directory = files[0]
            files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
                .map { (directory as NSString).appendingPathComponent($0) }
            if files.isEmpty { throw UsageError("directory '\(directory)' holds no .json shard reports") }
        }
        let shards = try files.map { try ShardReport(file: $0) }
        // Without --bootstrap here, the shards' own setting (their kept values need it to give intervals).
        let own = args.value("--bootstrap") == nil ? shards.first?.identity.settings["--bootstrap"].flatMap(Int.init) : nil
        try WindowStatistic.$bootstrapResamples.withValue(own ?? WindowStatistic.bootstrapResamples) {
            let (sweep, run, missing) = try ShardReport.merge(shards, allowMissing: args.has("--partial"))
            try output(args, format, sweep, run, missing)
        }
    }

    static func output(_ args: ParsedArguments, _ format: String, _ sweep: MergedSweep, _ run: SweepIdentity, _ missing: [Int]) throws {
        if !missing.isEmpty {
            Console.err("merged \(run.shard.count - missing.count) of \(run.shard.count) shards; missing: \(missing.map(String.init).joined(separator: ", "))\n")
        }
        let source = "\(run.text): \(run.textTokens) tokens in windows of up to \(run.window) every \(run.stride)"
            + (missing.isEmpty ? "" : " (shards \(missing.map(String.init).joined(separator: ", ")) of \(run.shard.count) missing)")
        switch sweep {
        case let .ablation(sweep):
            switch run.command {
            case "lesion":
                let lesion = Lesion(merged: sweep, samples: Int(run.settings["--samples"] ?? "") ?? 10,
                                    seed: UInt64(run.settings["--seed"] ?? "") ?? 0)
                try Inputs.output(args, format, LesionReport(model: run.model, source: source, lesion: lesion))
            case "reorder":
                try Inputs.output(args, format, ReorderReport(model: run.model, source: source, sweep: sweep))
            case "prune":
                let pruning = Pruning(merged: sweep, blocks: Int(run.settings["--blocks"] ?? "") ?? 1)
                try Inputs.output(args, format, PruneReport(model: run.model, source: source, pruning: pruning))
            default:
                try Inputs.output(args, format, AblationReport(model: run.model, source: source, sweep: sweep))
            }
        case let .paths(spectrum):
            try Inputs.output(args, format, PathsReport(model: run.model, source: source, spectrum: spectrum))
        case let .gradients(report, title):
            try Inputs.output(args, format, GradientsReport(model: run.model, source: source, title: title, report: report))
        case let .lens(summary):
            if run.settings["--compare"] != nil, let lens = run.settings["--tuned"] {
                try Inputs.output(args, format, LensComparisonReport(model: run.model, lensFile: lens, source: source, summary: summary))
            } else {
                try Inputs.output(args, format, LensSummaryReport(model: run.model, source: source, summary: summary))
            }
        }
    }
}
