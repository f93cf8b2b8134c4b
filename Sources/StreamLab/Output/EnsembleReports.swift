/// Reports of the ensemble-view probes: lesions, reordering, pruning.

/// The five metrics of a run against the clean one, as JSON fields.
func metricFields(_ m: AblationMetrics) -> [(String, JSONOutput)] {
    let s = m.standardErrors, c = m.intervals
    let values: [(String, Double, Double?, Interval?)] = [
        ("kl_mean", m.klMean, s.klMean, c.klMean), ("kl_last", m.klLast, s.klLast, c.klLast),
        ("top1_agreement", m.top1Agreement, s.top1Agreement, c.top1Agreement), ("loss", m.loss, s.loss, c.loss),
        ("delta_loss", m.deltaLoss, s.deltaLoss, c.deltaLoss)]
    // Each figure, then (over 2 or more windows) its standard error over windows as `<name>_se`
    // and (with --bootstrap N) its 95% bootstrap interval as `<name>_ci95`.
    return values.flatMap { name, value, se, ci in
        [(name, JSONOutput.double(value))] + (se.map { [(name + "_se", .double($0))] } ?? []) + (ci.map { [(name + "_ci95", $0.json)] } ?? [])
    }
}

/// The five metrics as table cells (delta loss signed).
func metricCells(_ m: AblationMetrics) -> [String] {
    let s = m.standardErrors
    func cell(_ text: String, _ se: Double?, _ digits: Int) -> String { Format.plusMinus(text, se, digits) }
    return [cell(Format.fixed(m.klMean, 4), s.klMean, 4), cell(Format.fixed(m.klLast, 4), s.klLast, 4),
            cell(Format.fixed(m.top1Agreement, 3), s.top1Agreement, 3), cell(Format.fixed(m.loss, 4), s.loss, 4),
            cell((m.deltaLoss >= 0 ? "+" : "") + Format.fixed(m.deltaLoss, 4), s.deltaLoss, 4)]
}

let metricHeaders = ["kl_mean", "kl_last", "top1_agree", "loss", "delta_loss"]

/// The five metrics as CSV cells.
func metricCSV(_ m: AblationMetrics) -> [String] {
    [m.klMean, m.klLast, m.top1Agreement, m.loss, m.deltaLoss].map(CSV.number)
}

/// The five metrics' standard errors over windows as CSV cells (empty below 2 windows).
func metricSECSV(_ m: AblationMetrics) -> [String] {
    let s = m.standardErrors
    return [s.klMean, s.klLast, s.top1Agreement, s.loss, s.deltaLoss].map { $0.map(CSV.number) ?? "" }
}

extension Interval {
    var json: JSONOutput { .array([.double(low), .double(high)]) }
}

/// A shard report's `run` and `partial` (none for an ordinary report).
func shardFields(_ run: SweepIdentity?, _ partial: JSONOutput?) -> [(String, JSONOutput)] {
    guard let run, let partial else { return [] }
    return [("run", run.json()), ("partial", partial)]
}

/// Input and clean-loss lines shared by the ensemble reports.
func header(model: String, source: String, positions: Int, cleanLoss: Double) -> String {
    "model: \(model)\ninput: \(source), \(positions) positions scored\nclean loss: \(Format.fixed(cleanLoss, 4)) nats/token\n"
}

/// Random block lesions: delta loss against the number of blocks skipped.
public struct LesionReport: ProbeReport {
    public let model: String
    public let source: String
    public let lesion: Lesion
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, lesion: Lesion, run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.lesion = lesion
        self.run = run
    }

    public func table() -> String {
        var out = header(model: model, source: source, positions: lesion.positions, cleanLoss: lesion.cleanLoss)
        out += "k blocks skipped together, up to \(lesion.samples) random subsets per k (seed \(lesion.seed))\n\n"
        var summary = TextTable(headers: ["k", "subsets", "delta_loss_mean", "delta_loss_std", "kl_mean_mean"],
                                alignments: [.right, .right, .right, .right, .right])
        for level in lesion.levels {
            summary.add([String(level.k), String(level.subsets.count), Format.fixed(level.deltaLossMean, 4),
                         Format.fixed(level.deltaLossStd, 4), Format.fixed(level.klMeanMean, 4)])
        }
        out += summary.render() + "\n"
        var table = TextTable(headers: ["k", "skipped"] + metricHeaders, alignments: [.right, .left] + Array(repeating: .right, count: 5))
        for level in lesion.levels {
            for (subset, m) in zip(level.subsets, level.metrics) {
                table.add([String(level.k), subset.isEmpty ? "-" : subset.map(String.init).joined(separator: "+")] + metricCells(m))
            }
        }
        return out + table.render()
    }

    public func json() -> JSONOutput {
        var fields: [(String, JSONOutput)] = [("model", .string(model))]
        if let tokens = lesion.tokens { fields.append(("tokens", .ints(tokens))) }
        fields += [("positions", .int(lesion.positions)), ("sequences", .int(lesion.sequences)),
                   ("clean", .object([("loss", .double(lesion.cleanLoss))])), ("samples", .int(lesion.samples)),
                   ("seed", .int(Int(truncatingIfNeeded: lesion.seed)))]
        fields.append(("results", .array(lesion.levels.map { level in
            let ms = level.metrics
            return .object([("k", .int(level.k)), ("subsets", .array(level.subsets.map(JSONOutput.ints))),
                            ("kl_mean", .array(ms.map { .double($0.klMean) })), ("kl_last", .array(ms.map { .double($0.klLast) })),
                            ("top1_agreement", .array(ms.map { .double($0.top1Agreement) })),
                            ("loss", .array(ms.map { .double($0.loss) })), ("delta_loss", .array(ms.map { .double($0.deltaLoss) })),
                            ("delta_loss_mean", .double(level.deltaLossMean)), ("delta_loss_std", .double(level.deltaLossStd)),
                            ("kl_mean_mean", .double(level.klMeanMean))])
        })))
        return .object(fields + shardFields(run, lesion.partial?.json()))
    }

    public func csv() -> String {
        var out = "k,skipped,kl_mean,kl_last,top1_agreement,loss,delta_loss,clean_loss,positions,kl_mean_se,kl_last_se,top1_agreement_se,loss_se,delta_loss_se\n"
        for level in lesion.levels {
            for (subset, m) in zip(level.subsets, level.metrics) {
                out += ([String(level.k), CSV.field(subset.map(String.init).joined(separator: "+"))] + metricCSV(m)
                        + [CSV.number(lesion.cleanLoss), String(lesion.positions)] + metricSECSV(m)).joined(separator: ",") + "\n"
            }
        }
        return out
    }

    /// Delta loss against k: every subset as a point, the mean and mean ± std as lines.
    public func svg() -> String? {
        var plot = SVGPlot(title: "Lesions: Δ loss with k random blocks skipped · \(model)", xLabel: "blocks skipped (k)",
                           yLabel: "Δ loss (nats/token)")
        let levels = lesion.levels
        plot.add(SVGPlot.Series(name: "mean", points: levels.map { (Double($0.k), $0.deltaLossMean) }))
        plot.add(SVGPlot.Series(name: "mean + std", points: levels.map { (Double($0.k), $0.deltaLossMean + $0.deltaLossStd) },
                                dashed: true))
        plot.add(SVGPlot.Series(name: "mean - std", points: levels.map { (Double($0.k), $0.deltaLossMean - $0.deltaLossStd) },
                                dashed: true))
        plot.markers = levels.flatMap { level in level.metrics.map { (Double(level.k), $0.deltaLoss) } }
        return plot.render()
    }
}

/// Blocks run in other orders: each order's metrics against the clean run.
public struct ReorderReport: ProbeReport {
    public let model: String
    public let source: String
    public let sweep: AblationSweep
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, sweep: AblationSweep, run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.sweep = sweep
        self.run = run
    }

    var orders: [[Int]] {
        sweep.entries.map { entry in
            if case let .order(order)? = entry.interventions.first?.action { return order }
            return []
        }
    }

    /// "swap 3-4" for an adjacent swap of the identity, else the order itself.
    static func label(_ order: [Int]) -> String {
        let moved = order.indices.filter { order[$0] != $0 }
        if order.count > 1, Set(order) == Set(order.indices), moved.count == 2, moved[1] == moved[0] + 1 {
            return "swap \(moved[0])-\(moved[1])"
        }
        return order.map(String.init).joined(separator: ",")
    }

    public func table() -> String {
        let out = header(model: model, source: source, positions: sweep.positions, cleanLoss: sweep.cleanLoss) + "\n"
        var table = TextTable(headers: ["order"] + metricHeaders, alignments: [.left] + Array(repeating: .right, count: 5))
        for (order, e) in zip(orders, sweep.entries) { table.add([Self.label(order)] + metricCells(e.metrics)) }
        return out + table.render()
    }

    public func json() -> JSONOutput {
        var fields: [(String, JSONOutput)] = [("model", .string(model))]
        if let tokens = sweep.tokens { fields.append(("tokens", .ints(tokens))) }
        fields += [("positions", .int(sweep.positions)), ("sequences", .int(sweep.sequences)),
                   ("clean", .object([("loss", .double(sweep.cleanLoss))]))]
        fields.append(("orders", .array(zip(orders, sweep.entries).map { order, e in
            .object([("order", .ints(order))] + metricFields(e.metrics))
        })))
        return .object(fields + shardFields(run, sweep.partial?.json()))
    }

    public func csv() -> String {
        var out = "order,kl_mean,kl_last,top1_agreement,loss,delta_loss,clean_loss,positions,kl_mean_se,kl_last_se,top1_agreement_se,loss_se,delta_loss_se\n"
        for (order, e) in zip(orders, sweep.entries) {
            out += ([CSV.field(order.map(String.init).joined(separator: " "))] + metricCSV(e.metrics)
                    + [CSV.number(sweep.cleanLoss), String(sweep.positions)] + metricSECSV(e.metrics)).joined(separator: ",") + "\n"
        }
        return out
    }

    /// Delta loss per order (for adjacent swaps: against the first block of the pair).
    public func svg() -> String? {
        let labels = orders.map(Self.label)
        let swaps = labels.allSatisfy { $0.hasPrefix("swap ") }
        var plot = SVGPlot(title: "Reordered blocks: Δ loss · \(model)",
                           xLabel: swaps ? "adjacent pair swapped (first block)" : "order (as listed)", yLabel: "Δ loss (nats/token)")
        plot.add(SVGPlot.Series(name: "", points: sweep.entries.enumerated().map { i, e in
            let x = swaps ? Double(labels[i].dropFirst(5).split(separator: "-")[0]) ?? Double(i) : Double(i)
            return (x, e.metrics.deltaLoss)
        }, errors: sweep.entries.map(\.metrics.standardErrors.deltaLoss)))
        return plot.render()
    }
}

/// Pruning a span of blocks: the spans by angular distance, Block Influence and measured damage.
public struct PruneReport: ProbeReport {
    public let model: String
    public let source: String
    public let pruning: Pruning
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, pruning: Pruning, run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.pruning = pruning
        self.run = run
    }

    static func span(_ s: Pruning.Span, blocks n: Int) -> String { "\(s.start)-\(s.start + n - 1)" }

    public func table() -> String {
        let p = pruning
        var out = header(model: model, source: source, positions: p.positions, cleanLoss: p.cleanLoss)
        out += "spans of \(p.blocks) consecutive blocks skipped together\n\n"
        var table = TextTable(headers: ["span", "angular_distance", "block_influence"] + metricHeaders,
                              alignments: [.left] + Array(repeating: .right, count: 7))
        for s in p.spans {
            table.add([Self.span(s, blocks: p.blocks), Format.fixed(s.distance, 4), Format.fixed(s.blockInfluence, 4)] + metricCells(s.metrics))
        }
        out += table.render() + "\n"
        for (name, s) in [("by angular distance", p.byAngularDistance), ("by block influence", p.byBlockInfluence),
                          ("best measured", p.bestMeasured)] {
            out += "\(name): cut blocks \(Self.span(s, blocks: p.blocks)), delta loss \(Format.fixed(s.metrics.deltaLoss, 4))\n"
        }
        let rho = p.spearmanBlockInfluenceVsDeltaLoss
        out += "Spearman correlation of block influence and single-block skip delta loss: \(rho.map { Format.fixed($0, 3) } ?? "n/a (constant)")\n"
        return out
    }

    func spanJSON(_ s: Pruning.Span) -> JSONOutput {
        .object([("start", .int(s.start)), ("distance", .double(s.distance)), ("bi", .double(s.blockInfluence))]
                + metricFields(s.metrics))
    }

    public func json() -> JSONOutput {
        let p = pruning
        var fields: [(String, JSONOutput)] = [("model", .string(model))]
        if let tokens = p.tokens { fields.append(("tokens", .ints(tokens))) }
        fields += [("positions", .int(p.positions)), ("sequences", .int(p.sequences)),
                   ("clean", .object([("loss", .double(p.cleanLoss))])), ("blocks", .int(p.blocks)),
                   ("by_angular_distance", spanJSON(p.byAngularDistance)), ("by_block_influence", spanJSON(p.byBlockInfluence)),
                   ("best_measured", spanJSON(p.bestMeasured)),
                   ("spans", .array(p.spans.map { s in
                       .object([("start", .int(s.start)), ("distance", .double(s.distance))]
                               + (s.distanceStandardError.map { [("distance_se", JSONOutput.double($0))] } ?? [])
                               + [("bi", .double(s.blockInfluence)), ("delta_loss", .double(s.metrics.deltaLoss))]
                               + (s.metrics.standardErrors.deltaLoss.map { [("delta_loss_se", JSONOutput.double($0))] } ?? []))
                   })),
                   ("block_influence", .array(p.blockInfluence.map(JSONOutput.double))),
                   ("single_block_delta_loss", .array(p.singleBlocks.map { .double($0.deltaLoss) })),
                   ("spearman_bi_vs_delta_loss", p.spearmanBlockInfluenceVsDeltaLoss.map(JSONOutput.double) ?? .null)]
        return .object(fields + shardFields(run, p.partial?.json()))
    }

    public func csv() -> String {
        var out = "start,blocks,angular_distance,block_influence,kl_mean,kl_last,top1_agreement,loss,delta_loss,kl_mean_se,kl_last_se,top1_agreement_se,loss_se,delta_loss_se\n"
        for s in pruning.spans {
            out += ([String(s.start), String(pruning.blocks), CSV.number(s.distance), CSV.number(s.blockInfluence)]
                    + metricCSV(s.metrics) + metricSECSV(s.metrics)).joined(separator: ",") + "\n"
        }
        return out
    }

    /// Per span start: angular distance, summed Block Influence and measured delta loss.
    public func svg() -> String? {
        let p = pruning
        var plot = SVGPlot(title: "Pruning \(p.blocks) consecutive blocks · \(model)", xLabel: "first block of the span",
                           yLabel: "distance / influence / Δ loss")
        plot.add(SVGPlot.Series(name: "angular distance", points: p.spans.map { (Double($0.start), $0.distance) }))
        plot.add(SVGPlot.Series(name: "block influence (sum)", points: p.spans.map { (Double($0.start), $0.blockInfluence) }))
        plot.add(SVGPlot.Series(name: "Δ loss (nats/token)", points: p.spans.map { (Double($0.start), $0.metrics.deltaLoss) },
                                errors: p.spans.map(\.metrics.standardErrors.deltaLoss)))
        return plot.render()
    }
}

/// The input gradient by path length, with Veit et al.'s three panels.
public struct PathsReport: ProbeReport {
    public let model: String
    public let source: String
    public let spectrum: PathSpectrum
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, spectrum: PathSpectrum, run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.spectrum = spectrum
        self.run = run
    }

    public func table() -> String {
        let s = spectrum
        var out = "model: \(model)\ninput: \(source), \(s.positions) positions\n"
        out += "\(s.units) units; g_k = the gradient of the loss at the input of block 0 summed over the paths through exactly k sublayers\n"
        out += "||full gradient|| \(Format.fixed(s.totalNorm, 6)); reconstruction error max |sum_k g_k - full| = \(Format.scientific(s.reconstructionError))\n\n"
        var headers = ["k", "paths", "norm", "share"]
        if s.samples > 0 { headers.append("sampled_mean_norm") }
        var table = TextTable(headers: headers, alignments: Array(repeating: .right, count: headers.count))
        let total = s.lengths.reduce(0) { $0 + $1.norm }
        for length in s.lengths {
            var row = [String(length.k), Format.count(length.paths),
                       Format.plusMinus(length.norm, s.normStandardError(length.k), 6),
                       Format.fixed(total > 0 ? length.norm / total : 0, 3)]
            if let m = length.sampledMeanNorm { row.append(Format.scientific(m)) }
            table.add(row)
        }
        out += table.render()
        out += "most of the gradient comes through paths of length \(s.dominantLength) (share = norm / sum of the norms)\n"
        return out
    }

    public func json() -> JSONOutput {
        let s = spectrum
        var fields: [(String, JSONOutput)] = [("model", .string(model))]
        if let tokens = s.tokens { fields.append(("tokens", .ints(tokens))) }
        fields += [("sequences", .int(s.sequences)), ("positions", .int(s.positions)), ("units", .int(s.units)),
                   ("total_norm", .double(s.totalNorm))]
        if let se = s.totalNormStandardError { fields.append(("total_norm_se", .double(se))) }
        fields += [("reconstruction_error", .double(s.reconstructionError)), ("samples", .int(s.samples)),
                   ("lengths", .array(s.lengths.map { length in
                       var entry: [(String, JSONOutput)] = [("k", .int(length.k)), ("paths", .double(length.paths)),
                                                            ("norm", .double(length.norm))]
                       if let se = s.normStandardError(length.k) { entry.append(("norm_se", .double(se))) }
                       if let ci = s.normInterval(length.k) { entry.append(("norm_ci95", ci.json)) }
                       if let m = length.sampledMeanNorm { entry.append(("sampled_mean_norm", .double(m))) }
                       return .object(entry)
                   }))]
        return .object(fields + shardFields(run, s.partial?.json()))
    }

    public func csv() -> String {
        "k,paths,norm,sampled_mean_norm,norm_se\n" + spectrum.lengths.map { l in
            [String(l.k), CSV.number(l.paths), CSV.number(l.norm), l.sampledMeanNorm.map(CSV.number) ?? "",
             spectrum.normStandardError(l.k).map(CSV.number) ?? ""].joined(separator: ",") + "\n"
        }.joined()
    }

    /// Veit et al.'s Figure 6: paths per length, gradient per path, total per length.
    public func svg() -> String? {
        let s = spectrum
        let ks = s.lengths.map { Double($0.k) }
        let perPath: [Double] = s.lengths.map { $0.sampledMeanNorm ?? ($0.paths > 0 ? $0.norm / $0.paths : 0) }
        let panels: [(String, String, [Double], Bool)] = [
            ("number of paths", "paths", s.lengths.map(\.paths), true),
            (s.samples > 0 ? "gradient norm of one path (mean of \(s.samples) samples)" : "||g_k|| / number of paths",
             "norm", perPath, true),
            ("||g_k||: all paths of length k together", "norm", s.lengths.map(\.norm), false),
        ]
        var parts: [String] = []
        for (title, yLabel, values, logY) in panels {
            var plot = SVGPlot(title: title, xLabel: "path length k (sublayers on the path)", yLabel: yLabel)
            plot.width = 520
            plot.height = 360
            plot.logY = logY
            // The total panel has whiskers of one standard error over windows.
            let errors: [Double?]? = logY ? nil : s.lengths.map { s.normStandardError($0.k) }
            plot.add(SVGPlot.Series(name: "", points: zip(ks, values).map { ($0, $1) }, errors: errors))
            parts.append(plot.render())
        }
        return SVGDocument.sideBySide(parts, width: 520, height: 360,
                                      title: "Gradient by path length · \(model) · \(s.units) units · \(source)")
    }
}
