extension GradientReport {
    /// One JSON object: the loss, counts, and one entry per layer.
    public var json: JSONOutput {
        // Each figure, then (over 2 or more windows) `<name>_se`, its standard error over windows.
        func with(_ name: String, _ value: Double, _ se: Double?, _ ci: Interval? = nil) -> [(String, JSONOutput)] {
            [(name, .double(value))] + (se.map { [(name + "_se", JSONOutput.double($0))] } ?? []) + (ci.map { [(name + "_ci95", $0.json)] } ?? [])
        }
        let totals = [("final_stream_grad_norm", finalStream), ("embedding_param_grad_norm", embeddingParameters),
                      ("final_read_param_grad_norm", finalReadParameters)]
        return .object(
            with("loss", loss, standardError(total: 3), interval(total: 3)) + [("sequences", .int(sequences)), ("positions", .int(positions))]
            + totals.enumerated().flatMap { k, t in with(t.0, t.1, standardError(total: k), interval(total: k)) }
            + [("layers", .array(layers.map { l in
                .object([("layer", .int(l.layer))] + zip(Self.columns.dropFirst(), figures(l)).enumerated().flatMap { j, f in
                    with(f.0, f.1, standardError(layer: l.layer, figure: j), interval(layer: l.layer, figure: j))
                })
            }))])
    }

    func figures(_ l: Layer) -> [Double] {
        [l.residPre, l.skip, l.attention, l.mlp, l.parameters, l.attentionParameters, l.mlpParameters]
    }

    static let columns = ["layer", "resid_pre_grad_norm", "skip_path_norm", "attention_path_norm", "mlp_path_norm",
                          "param_grad_norm", "attention_param_grad_norm", "mlp_param_grad_norm"]

    func cells(_ l: Layer, format: (Double) -> String) -> [String] {
        [String(l.layer), format(l.residPre), format(l.skip), format(l.attention), format(l.mlp), format(l.parameters),
         format(l.attentionParameters), format(l.mlpParameters)]
    }

    /// CSV with a header row, one row per layer.
    public var csv: String {
        var out = (Self.columns + Self.columns.dropFirst().map { $0 + "_se" }).joined(separator: ",") + "\n"
        for l in layers {
            let se = (0..<7).map { standardError(layer: l.layer, figure: $0).map { JSONOutput.double($0).serialized() } ?? "" }
            out += (cells(l) { JSONOutput.double($0).serialized() } + se).joined(separator: ",") + "\n"
        }
        return out
    }

    /// An aligned table, one row per layer, plus the totals under it.
    public var table: String {
        var t = TextTable(headers: ["layer", "|dL/d resid_pre|", "skip path", "attention path", "mlp path", "|dL/d params|"])
        for l in layers {
            func cell(_ x: Double, _ j: Int) -> String { Self.short(x) + (standardError(layer: l.layer, figure: j).map { " ± " + Self.short($0) } ?? "") }
            t.add([String(l.layer), cell(l.residPre, 0), cell(l.skip, 1), cell(l.attention, 2), cell(l.mlp, 3), cell(l.parameters, 4)])
        }
        var out = t.render()
        out += "|dL/d resid_post| of the last block: \(Self.short(finalStream)); embeddings' |dL/d params|: \(Self.short(embeddingParameters))\n"
        out += "loss " + Format.plusMinus(loss, standardError(total: 3), 4) + " (mean over \(Format.count(positions)) positions of \(sequences) sequence\(sequences == 1 ? "" : "s")); "
            + "norms are L2 over each sequence's [T, D] array, averaged over sequences\n"
        return out
    }

    /// Four significant digits, scientific notation outside [1e-3, 1e4).
    static func short(_ x: Double) -> String {
        guard x.isFinite else { return Format.fixed(x, 0) }
        if x == 0 { return "0" }
        if x >= 1e4 || x < 1e-3 {
            var e = 0, m = x
            while m >= 10 { m /= 10; e += 1 }
            while m < 1 { m *= 10; e -= 1 }
            return Format.fixed(m, 3) + "e" + String(e)
        }
        let digits = x >= 1000 ? 0 : x >= 100 ? 1 : x >= 10 ? 2 : x >= 1 ? 3 : 4
        return Format.fixed(x, digits)
    }

    /// Gradient norm against depth: dL/d resid_pre (dashed, drawn last), its three paths and the
    /// block's parameter-gradient norm per layer, on a log scale.
    public func plot(title: String) -> SVGPlot {
        var p = SVGPlot(title: title, xLabel: "layer (block input)", yLabel: "L2 norm of the gradient")
        p.logY = true
        // Zero norms (the skip path of a plain stack) have no place on a log axis and are left out.
        // A path that is zero everywhere is named as such in the legend.
        func path(_ name: String, _ norm: (Layer) -> Double) {
            let points = layers.map { (Double($0.layer), norm($0)) }
            p.add(.init(name: points.allSatisfy { $0.1 == 0 } ? "\(name): none" : name, points: points))
        }
        path("skip path", \.skip)
        path("attention path", \.attention)
        path("mlp path", \.mlp)
        p.add(.init(name: "block parameters", points: layers.map { (Double($0.layer), $0.parameters) }))
        p.add(.init(name: "dL/d resid_pre", points: layers.map { (Double($0.layer), $0.residPre) }, dashed: true,
                    errors: layers.map { standardError(layer: $0.layer, figure: 0) }))
        return p
    }
}

/// The `gradients` command's report: a gradient analysis with what it ran on.
public struct GradientsReport: ProbeReport {
    public let model: String
    public let source: String
    public let title: String
    public let report: GradientReport
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, title: String, report: GradientReport, run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.title = title
        self.report = report
        self.run = run
    }

    public func table() -> String {
        let text = "\(model): \(source)\n" + report.table
        return text.hasSuffix("\n") ? text : text + "\n"
    }

    public func json() -> JSONOutput {
        var fields: [(String, JSONOutput)] = [("model", .string(model)), ("input", .string(source))]
        if case let .object(rest) = report.json { fields += rest }
        return .object(fields + shardFields(run, report.partial?.json(title: title)))
    }

    public func csv() -> String { report.csv }

    public func svg() -> String? { report.plot(title: title).render() }
}
