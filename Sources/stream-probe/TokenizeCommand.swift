import Foundation
import StreamLab

enum TokenizeCommand {
    static let spec = CommandSpec(
        name: "tokenize", summary: "Text to token ids, with each token's text.",
        usage: "stream-probe tokenize PATH (--prompt TEXT | --text-file FILE) [--format table|json|csv]",
        options: [
            OptionSpec(name: "--prompt", valueName: "TEXT", help: "the text to tokenize"),
            Inputs.textFileOption,
            OptionSpec(name: "--special", valueName: nil, help: "add the tokenizer's special tokens (e.g. Llama's BOS)"),
            Inputs.formatOption,
        ])

    static func run(_ args: ParsedArguments) throws {
        let format = try Inputs.format(args)
        guard args.positionals.count == 1 else {
            throw UsageError("tokenize needs one PATH: a model directory, a tokenizer.json or a .tiktoken file")
        }
        let tokenizer = try TokenizerLoader.load(from: URL(fileURLWithPath: args.positionals[0]))
        let text: String
        switch (args.value("--prompt"), args.value("--text-file")) {
        case let (prompt?, nil): text = prompt
        case let (nil, file?): text = try TextFile.readUTF8(URL(fileURLWithPath: file))
        case (nil, nil): throw UsageError("give --prompt TEXT or --text-file FILE")
        default: throw UsageError("give only one of --prompt and --text-file")
        }
        let ids = tokenizer.encode(text, addSpecialTokens: args.has("--special"))
        try Inputs.output(args, format, TokenizationReport(ids: ids, tokenizer: tokenizer))
    }
}
