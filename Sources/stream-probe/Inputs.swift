import Foundation
import StreamLab

/// Turning flags into library inputs: model paths, token lists.
enum Inputs {
    /// The model directory: the first positional, else the bundled default.
    static func modelPath(_ args: ParsedArguments) throws -> URL {
        if args.positionals.count > 1 {
            throw UsageError("expected at most one MODEL argument, got \(args.positionals.count): \(args.positionals.joined(separator: " "))")
        }
        if let path = args.positionals.first { return URL(fileURLWithPath: path) }
        throw UsageError("give a MODEL directory (a Hugging Face folder with config.json and *.safetensors)")
    }

    /// Loads the model with `--threads`.
    static func loadModel(_ args: ParsedArguments) throws -> (Transformer, LoadReport, URL) {
        let url = try modelPath(args)
        let threads = try args.int("--threads", default: ProcessInfo.processInfo.activeProcessorCount, range: 1...1024)
        let (model, report) = try Transformer.loadWithReport(from: url, threads: threads)
        return (model, report, url)
    }

    /// `--tokens 1,2,3` as ids (range checks happen in the model).
    static func tokens(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        if text.trimmingCharacters(in: .whitespaces).isEmpty { throw UsageError("option '--tokens' is empty: give ids like 464,3290,318") }
        return try parts.map { part in
            let s = String(part).trimmingCharacters(in: .whitespaces)
            guard let id = Int(s) else { throw UsageError("option '--tokens': '\(s)' is not a token id (expected integers separated by commas)") }
            return id
        }
    }

    /// The token sequence of a command: `--tokens`.
    static func sequence(_ args: ParsedArguments, model: Transformer) throws -> [Int] {
        guard let text = args.value("--tokens") else {
            throw UsageError("give the input with --tokens 1,2,3")
        }
        let ids = try tokens(text)
        try model.validate(tokens: ids)
        return ids
    }

    /// `--format` among `choices`.
    static func format(_ args: ParsedArguments, _ choices: [String] = ["table", "json"]) throws -> String {
        try args.choice("--format", choices, default: "table")
    }
}
