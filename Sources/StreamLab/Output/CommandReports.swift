/// The reports of the commands that are not probes: `tokenize` and `train`.

/// Token ids of a text with each token's text (the `tokenize` command).
public struct TokenizationReport: ProbeReport {
    public let ids: [Int]
    public let tokens: [String]

    public init(ids: [Int], tokenizer: any Tokenizer) {
        self.ids = ids
        tokens = ids.map(tokenizer.displayText)
    }

    public func table() -> String {
        var table = TextTable(headers: ["position", "id", "token"], alignments: [.right, .right, .left])
        for (i, (id, token)) in zip(ids, tokens).enumerated() { table.add([String(i), String(id), Format.token(token)]) }
        return "\(ids.count) tokens\n" + table.render()
    }

    public func json() -> JSONOutput { .object([("ids", .ints(ids)), ("tokens", .strings(tokens))]) }

    public func csv() -> String {
        "position,id,token\n" + zip(ids, tokens).enumerated().map { "\($0),\($1.0),\(CSV.field($1.1))\n" }.joined()
    }
}

/// What `train` reports at the end: steps, time, throughput, the final losses
/// and the files written.
public struct TrainingReport: ProbeReport {
    public let summary: TrainingSummary
    public let plannedSteps: Int
    public let evalBytes: Int
    public let context: Int
    public let directory: String
    public let files: [String]

    public init(summary: TrainingSummary, plannedSteps: Int, evalBytes: Int, context: Int, directory: String, files: [String]) {
        self.summary = summary
        self.plannedSteps = plannedSteps
        self.evalBytes = evalBytes
        self.context = context
        self.directory = directory
        self.files = files
    }

    /// `m:ss` or `h:mm:ss`.
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60)
        let mm = h > 0 && m < 10 ? "0\(m)" : "\(m)"
        return (h > 0 ? "\(h):" : "") + mm + ":" + (sec < 10 ? "0\(sec)" : "\(sec)")
    }

    public func table() -> String {
        let s = summary
        return "trained \(s.steps)\(s.steps < plannedSteps ? " of \(plannedSteps)" : "") steps in \(Self.clock(s.elapsed)) (\(Format.fixed(s.tokensPerSecond / 1000, 2))k tokens/s)\n"
            + "final loss (first \(Format.count(evalBytes)) bytes, windows of \(context)): training \(Format.fixed(s.trainLoss, 4)), validation \(Format.fixed(s.validationLoss, 4)) nats/byte over \(Format.count(s.validationPositions)) positions\n"
            + "wrote \(directory): \(files.joined(separator: ", "))\n"
    }

    public func json() -> JSONOutput {
        let s = summary
        return .object([
            ("steps", .int(s.steps)), ("planned_steps", .int(plannedSteps)), ("elapsed_seconds", .double(s.elapsed)),
            ("tokens_per_second", .double(s.tokensPerSecond)), ("train_loss", .double(s.trainLoss)),
            ("validation_loss", .double(s.validationLoss)), ("validation_positions", .int(s.validationPositions)),
            ("eval_bytes", .int(evalBytes)), ("context", .int(context)), ("directory", .string(directory)),
            ("files", .strings(files)),
        ])
    }

    public func csv() -> String {
        let s = summary
        return keyValueCSV([
            ("steps", String(s.steps)), ("elapsed_seconds", String(s.elapsed)), ("tokens_per_second", String(s.tokensPerSecond)),
            ("train_loss", String(s.trainLoss)), ("validation_loss", String(s.validationLoss)),
            ("validation_positions", String(s.validationPositions)), ("directory", directory),
        ])
    }
}
