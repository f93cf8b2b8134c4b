import Foundation
import StreamLab

enum GradientsCommand {
    static let spec = CommandSpec(
        name: "gradients",
        summary: "Per layer: the gradient of the next-token loss at the block input, its skip-path and sublayer-path parts, and the block's parameter-gradient norm.",
        usage: "stream-probe gradients [MODEL] [--tokens IDS | --prompt TEXT | --text-file FILE] [--format table|json|csv] [--svg FILE]",
        options: Inputs.inputOptions + [Inputs.textFileOption, Inputs.strideOption, Inputs.shardOption, Inputs.shardOutOption, Inputs.bootstrapOption, Inputs.formatOption,
                                        OptionSpec(name: "--svg", valueName: "FILE", help: "also write a plot of the gradient norm against depth")])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        let loaded = try Inputs.loadModel(args)
        let model = loaded.model
        let threads = try args.int("--threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...1024)
        let (report, source, run) = try Inputs.sweep(args, loaded, command: "gradients") {
            try GradientAnalysis.run(model, sequences: $0, threads: threads, progress: $1)
        }
        let a = model.architecture
        let title = "Gradient norm by depth: \(loaded.url.lastPathComponent) (\(a.normPlacement.rawValue)-norm\(a.parallelResidual ? ", parallel blocks" : "")\(a.skipConnections ? "" : ", plain"), \(a.layerCount) layers)"
        try Inputs.output(args, format, GradientsReport(model: loaded.name, source: source, title: title, report: report, run: run))
    }
}
