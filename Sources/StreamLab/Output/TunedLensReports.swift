/// The logit lens and a tuned lens side by side per layer, over a prompt or
/// a text: mean KL to the final distribution and mean cross-entropy on the
/// next token.
public struct LensComparisonReport: ProbeReport {
    public let model: String
    public let lensFile: String
    public let source: String
    /// A summary with `tunedLayers`.
    public let summary: LensSummary
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, lensFile: String, source: String, summary: LensSummary, run: SweepIdentity? = nil) {
        precondition(summary.tunedLayers != nil, "a comparison needs the tuned lens's layers")
        self.model = model
        self.lensFile = lensFile
        self.source = source
        self.summary = summary
        self.run = run
    }

    struct Row {
        let layer: Int
        let logitKL, tunedKL, logitLoss, tunedLoss: Double
        var logitKLSE, tunedKLSE, logitLossSE, tunedLossSE: Double?
        /// tuned KL / logit KL (nil when the logit lens's KL is 0: the model's own read).
        var ratio: Double? { logitKL > 0 ? tunedKL / logitKL : nil }
    }

    var rows: [Row] {
        zip(summary.layers, summary.tunedLayers!).map {
            Row(layer: $0.layer, logitKL: $0.meanKLToFinal, tunedKL: $1.meanKLToFinal,
                logitLoss: $0.meanNextTokenLoss, tunedLoss: $1.meanNextTokenLoss,
                logitKLSE: $0.standardErrors.klToFinal, tunedKLSE: $1.standardErrors.klToFinal,
                logitLossSE: $0.standardErrors.nextTokenLoss, tunedLossSE: $1.standardErrors.nextTokenLoss)
        }
    }

    static func layerName(_ l: Int) -> String { l < 0 ? "embed" : String(l) }

    public func table() -> String {
        var out = "model: \(model)\ntuned lens: \(lensFile)\ninput: \(source), \(summary.positions) positions\n\n"
        out += "per layer, mean over positions: KL(final ‖ layer) and cross-entropy on the next token (nats)\n"
        var table = TextTable(headers: ["layer", "KL logit lens", "KL tuned lens", "tuned / logit", "CE logit lens", "CE tuned lens"])
        func pm(_ x: Double, _ se: Double?) -> String { Format.plusMinus(x, se, 4) }
        for r in rows {
            table.add([Self.layerName(r.layer), pm(r.logitKL, r.logitKLSE), pm(r.tunedKL, r.tunedKLSE),
                       r.ratio.map { Format.fixed($0, 3) } ?? "-", pm(r.logitLoss, r.logitLossSE), pm(r.tunedLoss, r.tunedLossSE)])
        }
        return out + table.render() + (summary.sequences >= 2 ? "± one standard error over the \(summary.sequences) windows\n" : "")
    }

    public func json() -> JSONOutput {
        let fields: [(String, JSONOutput)] = [
            ("model", .string(model)), ("tuned_lens", .string(lensFile)), ("source", .string(source)),
            ("positions", .int(summary.positions)), ("sequences", .int(summary.sequences)),
            ("layers", .array(rows.map { r in
                var row: [(String, JSONOutput)] = [
                    ("layer", .int(r.layer)), ("logit_kl_to_final", .double(r.logitKL)), ("tuned_kl_to_final", .double(r.tunedKL)),
                    ("tuned_over_logit_kl", r.ratio.map(JSONOutput.double) ?? .null),
                    ("logit_next_token_loss", .double(r.logitLoss)), ("tuned_next_token_loss", .double(r.tunedLoss))]
                for (name, se) in [("logit_kl_to_final_se", r.logitKLSE), ("tuned_kl_to_final_se", r.tunedKLSE),
                                   ("logit_next_token_loss_se", r.logitLossSE), ("tuned_next_token_loss_se", r.tunedLossSE)] {
                    if let se { row.append((name, .double(se))) }
                }
                return .object(row)
            })),
        ]
        return .object(fields + shardFields(run, summary.partial?.json()))
    }

    public func csv() -> String {
        var out = "layer,logit_kl_to_final,tuned_kl_to_final,tuned_over_logit_kl,logit_next_token_loss,tuned_next_token_loss,positions\n"
        for r in rows {
            out += "\(r.layer),\(CSV.number(r.logitKL)),\(CSV.number(r.tunedKL)),\(r.ratio.map(CSV.number) ?? ""),"
                + "\(CSV.number(r.logitLoss)),\(CSV.number(r.tunedLoss)),\(summary.positions)\n"
        }
        return out
    }

    /// Two panels: KL to the final distribution and next-token cross-entropy
    /// against depth, the logit lens and the tuned lens in each.
    public func svg() -> String? {
        let rows = rows
        func panel(_ title: String, _ y: String, log: Bool, _ logit: (Row) -> Double, _ tuned: (Row) -> Double,
                   _ logitSE: (Row) -> Double?, _ tunedSE: (Row) -> Double?) -> String {
            var plot = SVGPlot(title: title, xLabel: "layer (-1 = embedding stream)", yLabel: y)
            plot.logY = log
            plot.width = 560
            plot.height = 400
            plot.add(SVGPlot.Series(name: "logit lens", points: rows.map { (Double($0.layer), logit($0)) }, errors: rows.map(logitSE)))
            plot.add(SVGPlot.Series(name: "tuned lens", points: rows.map { (Double($0.layer), tuned($0)) }, errors: rows.map(tunedSE)))
            return plot.render()
        }
        return SVGDocument.sideBySide(
            [panel("KL(final ‖ layer), log scale (the last layer's 0 not drawn)", "nats", log: true, \.logitKL, \.tunedKL,
                   \.logitKLSE, \.tunedKLSE),
             panel("cross-entropy on the next token", "nats", log: false, \.logitLoss, \.tunedLoss, \.logitLossSE, \.tunedLossSE)],
            width: 560, height: 400, title: "Logit lens and tuned lens · \(model) · \(source)")
    }
}

/// What `tuned-lens train` did: settings, time, and the held-out comparison.
public struct TunedLensTrainingReport: ProbeReport {
    public let model: String
    public let output: String
    public let training: TunedLensTraining
    public let settings: TunedLensSettings

    public init(model: String, output: String, training: TunedLensTraining, settings: TunedLensSettings) {
        self.model = model
        self.output = output
        self.training = training
        self.settings = settings
    }

    var comparison: LensComparisonReport {
        LensComparisonReport(model: model, lensFile: output, source: "held-out split (\(Format.count(training.heldOutTokens)) tokens)",
                             summary: training.heldOut)
    }

    public func table() -> String {
        var out = "tuned lens for \(model) written to \(output)\n"
        out += "\(training.steps) steps of \(Format.count(max(1, settings.tokensPerStep / training.context) * training.context)) tokens"
            + " (windows of \(training.context)), "
            + (settings.optimizer == .sgd ? "SGD Nesterov momentum \(settings.momentum)" : "Adam") + ", lr \(settings.learningRate),"
            + " weight decay \(settings.weightDecay), warm-up \(settings.warmup), seed \(settings.seed)\n"
        out += "trained on \(Format.count(training.trainTokens)) tokens in \(TrainingReport.clock(training.elapsed))"
            + (training.resumedAt.map { " (resumed at step \($0))" } ?? "") + "\n\n"
        return out + comparison.table()
    }

    public func json() -> JSONOutput {
        .object([
            ("model", .string(model)), ("output", .string(output)), ("steps", .int(training.steps)),
            ("context", .int(training.context)), ("tokens_per_step", .int(settings.tokensPerStep)),
            ("optimizer", .string(settings.optimizer.rawValue)), ("lr", .double(settings.learningRate)),
            ("momentum", .double(settings.momentum)),
            ("weight_decay", .double(settings.weightDecay)), ("warmup", .int(settings.warmup)), ("seed", .int(Int(settings.seed))),
            ("train_tokens", .int(training.trainTokens)), ("held_out_tokens", .int(training.heldOutTokens)),
            ("elapsed_seconds", .double(training.elapsed)), ("resumed_at", training.resumedAt.map(JSONOutput.int) ?? .null),
            ("held_out", comparison.json()),
        ])
    }

    public func csv() -> String { comparison.csv() }
    public func svg() -> String? { comparison.svg() }
}
