/// Turns probe results into text: aligned tables, JSON, CSV and SVG charts.
/// Value types in, strings out; the CLI only picks the format.

/// Text of a token for display (a tokenizer's, or the id when there is none).
public typealias TokenText = @Sendable (Int) -> String

/// The default `TokenText`: the id in angle brackets.
public let tokenIDText: TokenText = { "<\($0)>" }

// MARK: - Ablation

/// A probe's result ready to show: an aligned terminal table, JSON, CSV and an
/// SVG picture. The CLI picks one format with `--format` and writes the SVG with `--svg`.
public protocol ProbeReport: Sendable {
    func table() -> String
    func json() -> JSONOutput
    func csv() -> String
    /// The picture, for reports that have one.
    func svg() -> String?
}

extension ProbeReport {
    public func svg() -> String? { nil }

    /// The report in `format` (`table`, `json` or `csv`): what the CLI prints.
    public func rendered(as format: String) -> String {
        switch format {
        case "json": return json().serialized() + "\n"
        case "csv": return csv()
        default: return table()
        }
    }
}

/// Rows of (name, value) as CSV with a header.
func keyValueCSV(_ rows: [(String, String)]) -> String {
    "field,value\n" + rows.map { CSV.field($0.0) + "," + CSV.field($0.1) + "\n" }.joined()
}

/// An ablation sweep with what it ran on.
public struct AblationReport: ProbeReport {
    public let model: String
    /// Where the positions came from, e.g. "12 tokens" or "valid.txt: 41 windows of 256 tokens".
    public let source: String
    public let sweep: AblationSweep
    public let tokenText: TokenText
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, sweep: AblationSweep, tokenText: @escaping TokenText = tokenIDText,
                run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.sweep = sweep
        self.tokenText = tokenText
        self.run = run
    }

    /// ShortGPT's Block Influence of a block entry's layer.
    func blockInfluence(_ e: AblationEntry) -> Double? {
        e.sublayer == "block" ? sweep.geometry.blockInfluence[e.layer] : nil
    }

    func blockInfluenceSE(_ e: AblationEntry) -> Double? {
        let se = sweep.geometry.blockInfluenceStandardErrors
        return e.sublayer == "block" && e.layer < se.count ? se[e.layer] : nil
    }

    func label(_ e: AblationEntry) -> String {
        switch e.sublayer {
        case "joint": return e.layers.map(String.init).joined(separator: "+")
        case "head": return "\(e.layer).\(e.head!)"
        default: return String(e.layer)
        }
    }

    public func table() -> String {
        var out = "model: \(model)\ninput: \(source), \(sweep.positions) positions scored\n"
        out += "clean loss: " + Format.plusMinus(sweep.cleanLoss, sweep.cleanLossStandardError, 4)
            + " nats/token" + (sweep.sequences >= 2 ? " (± one standard error over the \(sweep.sequences) windows)" : "") + "\n\n"
        let influence = sweep.entries.contains { $0.sublayer == "block" }
        var table = TextTable(headers: ["layer", "sublayer", "mode"] + metricHeaders + (influence ? ["block_influence"] : []),
                              alignments: [.right, .left, .left] + Array(repeating: .right, count: influence ? 6 : 5))
        for e in sweep.entries {
            table.add([label(e), e.sublayer, e.mode.rawValue] + metricCells(e.metrics)
                      + (influence ? [blockInfluence(e).map { Format.plusMinus($0, blockInfluenceSE(e), 4) } ?? ""] : []))
        }
        out += table.render()
        if influence {
            out += "block_influence = 1 - mean cos(resid_pre, resid_post) of the block in the clean run (ShortGPT)\n"
        }
        return out
    }

    public func json() -> JSONOutput {
        var fields: [(String, JSONOutput)] = [("model", .string(model))]
        if let tokens = sweep.tokens { fields.append(("tokens", .ints(tokens))) }
        fields.append(("positions", .int(sweep.positions)))
        fields.append(("sequences", .int(sweep.sequences)))
        fields.append(("clean", .object([("loss", .double(sweep.cleanLoss))]
                                        + (sweep.cleanLossStandardError.map { [("loss_se", JSONOutput.double($0))] } ?? []))))
        fields.append(("ablations", .array(sweep.entries.map { e in
            var entry: [(String, JSONOutput)] = [("layer", .int(e.layer))]
            if e.sublayer == "joint" { entry.append(("layers", .ints(e.layers))) }
            entry.append(("sublayer", .string(e.sublayer)))
            if let h = e.head { entry.append(("head", .int(h))) }
            entry += [("mode", .string(e.mode.rawValue))] + metricFields(e.metrics)
            if let bi = blockInfluence(e) { entry.append(("block_influence", .double(bi))) }
            if let se = blockInfluenceSE(e) { entry.append(("block_influence_se", .double(se))) }
            return .object(entry)
        })))
        // A shard's report also says which run it belongs to and carries the sums `merge` combines.
        return .object(fields + shardFields(run, sweep.partial?.json()))
    }

    public func csv() -> String {
        var out = "layer,sublayer,head,mode,kl_mean,kl_last,top1_agreement,loss,delta_loss,clean_loss,positions,block_influence,"
            + "kl_mean_se,kl_last_se,top1_agreement_se,loss_se,delta_loss_se\n"
        for e in sweep.entries {
            out += ([CSV.field(label(e)), e.sublayer, e.head.map(String.init) ?? "", e.mode.rawValue] + metricCSV(e.metrics)
                    + [CSV.number(sweep.cleanLoss), String(sweep.positions), blockInfluence(e).map(CSV.number) ?? ""]
                    + metricSECSV(e.metrics))
                .joined(separator: ",") + "\n"
        }
        return out
    }

    /// Two bar charts sharing the layer axis: delta loss (top) and mean KL (bottom).
    public func svg() -> String? {
        let entries = sweep.entries
        let count = max(entries.count, 1)
        let barWidth = max(10.0, min(100.0, 560.0 / Double(count)))
        let left = 72.0, right = 60.0, plotWidth = barWidth * Double(count)
        let width = max(left + plotWidth + right, 520)
        let panelHeight = 190.0, top = 84.0, gap = 84.0
        var svg = SVGDocument(width: width, height: top + 2 * panelHeight + gap + 60)
        let what = entries.first.map { "\($0.mode.rawValue) \($0.sublayer == "block" ? "each block" : $0.sublayer)" } ?? "ablation"
        svg.text("Ablation damage: \(what)", x: left, y: 24, size: 16, bold: true)
        let subtitle = "\(model) · \(source) · clean loss \(Format.fixed(sweep.cleanLoss, 3)) nats/token"
        let fits = Int((width - left - 8) / 6.2)  // about 6.2 px per character at 11 px
        svg.text(subtitle.count > fits ? String(subtitle.prefix(fits - 1)) + "…" : subtitle, x: left, y: 44, size: 11, color: "#555555")
        let panels: [(String, String, [Double], Double?, [Double?])] = [
            ("Δ loss (nats/token)", Palette.blue, entries.map(\.metrics.deltaLoss), 0.1, entries.map(\.metrics.standardErrors.deltaLoss)),
            ("mean KL(clean ‖ ablated) (nats)", Palette.orange, entries.map(\.metrics.klMean), nil, entries.map(\.metrics.standardErrors.klMean)),
        ]
        for (k, (title, color, values, reference, errors)) in panels.enumerated() {
            let y0 = top + Double(k) * (panelHeight + gap)
            let reach = zip(values, errors).map { $0 + ($1 ?? 0) }
            let lo = min(0, values.min() ?? 0), hi = max(reach.max() ?? 0, reference ?? 0, 1e-9)
            let ticks = AxisTicks.ticks(from: lo, to: hi)
            let vmax = ticks.last!, vmin = ticks.first!
            func y(_ v: Double) -> Double { y0 + panelHeight - (v - vmin) / (vmax - vmin) * panelHeight }
            svg.text(title, x: left, y: y0 - 22, size: 12, bold: true)
            let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
            for tick in ticks {
                svg.line(x1: left, y1: y(tick), x2: left + plotWidth, y2: y(tick), stroke: "#e4e4e4")
                svg.text(AxisTicks.label(tick, step: step), x: left - 6, y: y(tick) + 4, size: 10, anchor: .end, color: "#555555")
            }
            for (i, (e, value)) in zip(entries, values).enumerated() {
                let x = left + Double(i) * barWidth + barWidth * 0.15
                let top = y(max(value, 0)), bottom = y(min(value, 0))
                svg.rect(x: x, y: top, width: barWidth * 0.7, height: bottom - top, fill: color,
                         title: "\(label(e)): \(Format.fixed(value, 4))")
                // Whisker: ± one standard error over windows.
                var labelY = value >= 0 ? top - 3 : bottom + 11
                if let se = errors[i], se > 0 {
                    let yb = y(value + se)
                    svg.whisker(x: x + barWidth * 0.35, from: y(value - se), to: yb, stroke: "#222222")
                    if value >= 0 { labelY = min(labelY, yb - 3) }
                }
                if barWidth >= 26 {
                    svg.text(Format.fixed(value, value.magnitude < 1 ? 3 : 2), x: x + barWidth * 0.35,
                             y: labelY, size: 9, anchor: .middle, color: "#444444")
                }
            }
            svg.line(x1: left, y1: y(0), x2: left + plotWidth, y2: y(0), stroke: "#333333")
            if let reference, reference <= vmax {
                svg.line(x1: left, y1: y(reference), x2: left + plotWidth, y2: y(reference), stroke: Palette.red, dash: "4 3")
                svg.text("\(Format.fixed(reference, 1)) nats", x: left + plotWidth + 3, y: y(reference) + 4, size: 10, color: Palette.red)
            }
            for (i, e) in entries.enumerated() {
                svg.text(label(e), x: left + (Double(i) + 0.5) * barWidth, y: y0 + panelHeight + 16, size: 10, anchor: .middle)
            }
        }
        svg.text("layer", x: left + plotWidth / 2, y: top + 2 * panelHeight + gap + 38, size: 12, anchor: .middle)
        return svg.render()
    }
}

// MARK: - Logit lens

/// A logit lens with token texts.
public struct LensReport: ProbeReport {
    public let model: String
    public let lens: LogitLens
    public let tokenText: TokenText

    public init(model: String, lens: LogitLens, tokenText: @escaping TokenText = tokenIDText) {
        self.model = model
        self.lens = lens
        self.tokenText = tokenText
    }

    func layerName(_ l: Int) -> String { l < 0 ? "embed" : String(l) }

    public func table() -> String {
        let t = lens.tokens.count
        var out = "model: \(model)\n\ntop-1 prediction after each layer (probability); last row: the model's output\n"
        // Long inputs are shown in chunks of positions, so the table stays readable in a terminal.
        let chunk = 12
        for start in stride(from: 0, to: t, by: chunk) {
            let positions = start..<min(start + chunk, t)
            var grid = TextTable(headers: ["layer"] + positions.map { Format.token(tokenText(lens.tokens[$0])) },
                                 alignments: Array(repeating: .left, count: positions.count + 1))
            for layer in lens.layers {
                grid.add([layerName(layer.layer)] + positions.map { i in
                    let top = layer.top[i].first!
                    return Format.token(tokenText(top.token)) + " " + Format.fixed(top.probability, 2)
                })
            }
            if t > chunk { out += "\npositions \(positions.lowerBound)-\(positions.upperBound - 1)\n" }
            out += grid.render()
        }
        out += "\nper layer, mean over positions\n"
        let tuned = lens.tunedLayers
        var summary = TextTable(headers: ["layer", "kl_to_final", "entropy", "p(final top-1)", "rank 0"]
                                + (tuned == nil ? [] : ["tuned kl_to_final", "tuned rank 0"]))
        for (k, layer) in lens.layers.enumerated() {
            let n = Double(max(t, 1))
            summary.add([layerName(layer.layer), Format.fixed(layer.klToFinal.reduce(0, +) / n, 4),
                          Format.fixed(layer.entropy.reduce(0, +) / n, 3),
                          Format.fixed(layer.finalTokenProbability.reduce(0, +) / n, 3),
                          Format.fixed(Double(layer.rank.filter { $0 == 0 }.count) / n, 2)]
                        + (tuned.map { [Format.fixed($0[k].klToFinal.reduce(0, +) / n, 4),
                                        Format.fixed(Double($0[k].rank.filter { $0 == 0 }.count) / n, 2)] } ?? []))
        }
        return out + summary.render()
    }

    public func json() -> JSONOutput {
        .object([
            ("model", .string(model)),
            ("tokens", .ints(lens.tokens)),
            ("token_texts", .strings(lens.tokens.map(tokenText))),
            ("layers", .array(lens.layers.enumerated().map { k, layer in
                func top(_ layer: LensLayer) -> JSONOutput {
                    .array(layer.top.map { cell in
                        .array(cell.map { .object([("token", .int($0.token)), ("text", .string(tokenText($0.token))),
                                                   ("prob", .double($0.probability))]) })
                    })
                }
                var fields: [(String, JSONOutput)] = [
                    ("layer", .int(layer.layer)),
                    ("kl_to_final", .array(layer.klToFinal.map(JSONOutput.double))),
                    ("rank", .ints(layer.rank)),
                    ("entropy", .array(layer.entropy.map(JSONOutput.double))),
                    ("next_token_loss", .array(layer.nextTokenLoss.map(JSONOutput.double))),
                    ("top", top(layer)),
                ]
                if let tuned = lens.tunedLayers?[k] {
                    fields += [("tuned_kl_to_final", .array(tuned.klToFinal.map(JSONOutput.double))), ("tuned_rank", .ints(tuned.rank)),
                               ("tuned_entropy", .array(tuned.entropy.map(JSONOutput.double))),
                               ("tuned_next_token_loss", .array(tuned.nextTokenLoss.map(JSONOutput.double))), ("tuned_top", top(tuned))]
                }
                return .object(fields)
            })),
        ])
    }

    public func csv() -> String {
        let tuned = lens.tunedLayers
        var out = "layer,position,token,token_text,kl_to_final,rank,entropy,final_token_prob,top1,top1_text,top1_prob,next_token_loss"
            + (tuned == nil ? "\n" : ",tuned_kl_to_final,tuned_rank,tuned_entropy,tuned_top1,tuned_top1_text,tuned_top1_prob,tuned_next_token_loss\n")
        for (k, layer) in lens.layers.enumerated() {
            for (i, token) in lens.tokens.enumerated() {
                let top = layer.top[i].first!
                var fields = [String(layer.layer), String(i), String(token), CSV.field(tokenText(token)), CSV.number(layer.klToFinal[i]),
                              String(layer.rank[i]), CSV.number(layer.entropy[i]), CSV.number(layer.finalTokenProbability[i]),
                              String(top.token), CSV.field(tokenText(top.token)), CSV.number(top.probability),
                              i < layer.nextTokenLoss.count ? CSV.number(layer.nextTokenLoss[i]) : ""]
                if let t = tuned?[k] {
                    let tt = t.top[i].first!
                    fields += [CSV.number(t.klToFinal[i]), String(t.rank[i]), CSV.number(t.entropy[i]), String(tt.token),
                               CSV.field(tokenText(tt.token)), CSV.number(tt.probability),
                               i < t.nextTokenLoss.count ? CSV.number(t.nextTokenLoss[i]) : ""]
                }
                out += fields.joined(separator: ",") + "\n"
            }
        }
        return out
    }

    /// Heatmap: layers (rows, embedding at the bottom) x positions (columns),
    /// colored by the probability of the model's final prediction, with each
    /// layer's top-1 token written in its cell.
    public func svg() -> String? {
        let t = lens.tokens.count, rows = lens.layers.count
        // Long inputs wrap into panels of `perPanel` positions stacked top to bottom.
        let perPanel = 16, panels = max(1, (t + perPanel - 1) / perPanel), columns = min(t, perPanel)
        let cellWidth = 68.0, cellHeight = 26.0, left = 64.0, top = 84.0
        let panelHeight = cellHeight * Double(rows) + 64
        let width = left + cellWidth * Double(columns) + 110, height = top + panelHeight * Double(panels) + 12
        var svg = SVGDocument(width: max(width, 480), height: height)
        svg.text("Logit lens: probability of the final prediction, layer by layer", x: left, y: 24, size: 16, bold: true)
        svg.text("\(model) · cell text: that layer's top-1 token · colour: p(model's final top-1)", x: left, y: 44, size: 11, color: "#555555")
        func short(_ s: String) -> String {
            let shown = Format.token(s)
            return shown.count > 9 ? String(shown.prefix(8)) + "…" : shown
        }
        for panel in 0..<panels {
            let y0 = top + Double(panel) * panelHeight
            let positions = (panel * perPanel)..<min((panel + 1) * perPanel, t)
            for (column, i) in positions.enumerated() {
                let x = left + (Double(column) + 0.5) * cellWidth
                svg.text(short(tokenText(lens.tokens[i])), x: x, y: y0 - 10, size: 10, anchor: .middle, monospace: true)
                svg.text("→ " + short(tokenText(lens.finalTop[i])), x: x, y: y0 + cellHeight * Double(rows) + 16, size: 10,
                         anchor: .middle, color: "#333333", monospace: true)
            }
            svg.text(panels > 1 ? "input \(positions.lowerBound)-" : "input", x: left - 8, y: y0 - 10, size: 10, anchor: .end, color: "#555555")
            svg.text("output", x: left - 8, y: y0 + cellHeight * Double(rows) + 16, size: 10, anchor: .end, color: "#555555")
            for (r, layer) in lens.layers.reversed().enumerated() {
                let y = y0 + Double(r) * cellHeight
                svg.text(layerName(layer.layer), x: left - 8, y: y + cellHeight / 2 + 4, size: 11, anchor: .end)
                for (column, i) in positions.enumerated() {
                    let p = layer.finalTokenProbability[i]
                    let x = left + Double(column) * cellWidth
                    let top1 = layer.top[i].first!
                    svg.rect(x: x, y: y, width: cellWidth, height: cellHeight, fill: Palette.viridis(p), stroke: "#ffffff",
                             title: "layer \(layerName(layer.layer)), position \(i): top-1 \(Format.token(tokenText(top1.token))) \(Format.fixed(top1.probability, 3)); p(final) \(Format.fixed(p, 3)); KL \(Format.fixed(layer.klToFinal[i], 3))")
                    svg.text(short(tokenText(top1.token)), x: x + cellWidth / 2, y: y + cellHeight / 2 + 4, size: 10, anchor: .middle,
                             color: Palette.lightTextOnViridis(p) ? "#ffffff" : "#111111", monospace: true)
                }
            }
            svg.text("layer", x: 14, y: y0 + cellHeight * Double(rows) / 2, size: 11, anchor: .middle, rotate: -90)
        }
        // Colour bar, beside the first panel.
        let barX = left + cellWidth * Double(columns) + 30, barHeight = cellHeight * Double(rows)
        for k in 0..<50 {
            let f = Double(k) / 49
            svg.rect(x: barX, y: top + barHeight * (1 - f) - barHeight / 50, width: 14, height: barHeight / 50 + 0.5, fill: Palette.viridis(f))
        }
        for f in [0.0, 0.5, 1.0] {
            svg.text(Format.fixed(f, 1), x: barX + 20, y: top + barHeight * (1 - f) + 4, size: 10)
        }
        svg.text("p(final)", x: barX, y: top - 10, size: 10)
        return svg.render()
    }
}

// MARK: - Decomposition

/// A decomposition with token texts.
public struct DecompositionReport: ProbeReport {
    public let model: String
    public let decomposition: Decomposition
    public let tokenText: TokenText

    public init(model: String, decomposition: Decomposition, tokenText: @escaping TokenText = tokenIDText) {
        self.model = model
        self.decomposition = decomposition
        self.tokenText = tokenText
    }

    public func table() -> String {
        let d = decomposition
        var out = "model: \(model)\n"
        out += "position \(d.position) (token \(Format.token(tokenText(d.tokens[d.position])))), target \(d.target) \(Format.token(tokenText(d.target)))\n"
        let sum = d.components.filter { !$0.isDetail }.reduce(0) { $0 + $1.attribution }
        if let before = d.logitBeforeCap {
            out += "logit \(Format.fixed(d.logit, 4)) after the soft-cap, \(Format.fixed(before, 4)) before it (attributed)"
        } else {
            out += "logit \(Format.fixed(d.logit, 4))"
        }
        out += "; sum of attributions \(Format.fixed(sum, 4))"
        out += "; reconstruction error \(String(format6: d.reconstructionError)), attribution error \(String(format6: d.attributionError))\n"
        if d.components.contains(where: \.isDetail) { out += "rows marked * are per-head detail of their layer's row (not added again)\n" }
        out += "\n"
        var table = TextTable(headers: ["component", "kind", "norm", "cosine", "attribution"],
                              alignments: [.left, .left, .right, .right, .right])
        for c in d.components {
            table.add([(c.isDetail ? "  * " : "") + c.name, c.kind.rawValue, c.norm.map { Format.fixed($0, 3) } ?? "",
                       c.cosine.map { Format.fixed($0, 3) } ?? "", (c.attribution >= 0 ? "+" : "") + Format.fixed(c.attribution, 4)])
        }
        return out + table.render()
    }

    public func json() -> JSONOutput {
        let d = decomposition
        return .object([
            ("model", .string(model)),
            ("tokens", .ints(d.tokens)),
            ("position", .int(d.position)),
            ("target", .int(d.target)),
            ("target_text", .string(tokenText(d.target))),
            ("logit", .double(d.logit)),
            ("logit_before_cap", .double(d.logitBeforeCap ?? d.logit)),
            ("components", .array(d.components.map { c in
                .object([
                    ("name", .string(c.name)), ("kind", .string(c.kind.rawValue)),
                    ("layer", c.layer.map { .int($0) } ?? .null), ("head", c.head.map { .int($0) } ?? .null),
                    ("detail", .bool(c.isDetail)),
                    ("norm", c.norm.map(JSONOutput.double) ?? .null), ("cosine", c.cosine.map(JSONOutput.double) ?? .null),
                    ("attribution", .double(c.attribution)),
                ])
            })),
            ("reconstruction_error", .double(d.reconstructionError)),
            ("attribution_error", .double(d.attributionError)),
        ])
    }

    public func csv() -> String {
        var out = "name,kind,layer,head,detail,norm,cosine,attribution\n"
        for c in decomposition.components {
            out += [c.name, c.kind.rawValue, c.layer.map(String.init) ?? "", c.head.map(String.init) ?? "", c.isDetail ? "true" : "false",
                    c.norm.map(CSV.number) ?? "", c.cosine.map(CSV.number) ?? "", CSV.number(c.attribution)].joined(separator: ",") + "\n"
        }
        return out
    }

    /// Horizontal bars of direct logit attribution, one per component in
    /// computation order (per-head detail rows lighter and indented).
    public func svg() -> String? {
        let d = decomposition, comps = d.components
        let rowHeight = 20.0, left = 190.0, plotWidth = 460.0, top = 78.0
        var svg = SVGDocument(width: left + plotWidth + 90, height: top + rowHeight * Double(comps.count) + 50)
        svg.text("Direct logit attribution to \(Format.token(tokenText(d.target))) at position \(d.position)", x: 16, y: 24, size: 16, bold: true)
        if let before = d.logitBeforeCap {
            svg.text("logit before the soft-cap \(Format.fixed(before, 3)) = sum of the non-detail bars; after the cap \(Format.fixed(d.logit, 3))",
                     x: 16, y: 60, size: 11, color: "#555555")
        }
        let logitLine = d.logitBeforeCap == nil ? "logit \(Format.fixed(d.logit, 3)) = sum of the non-detail bars" : "soft-capped logits"
        svg.text("\(model) · \(logitLine) · reconstruction error \(String(format6: d.reconstructionError))",
                 x: 16, y: 44, size: 11, color: "#555555")
        let values = comps.map(\.attribution)
        let lo = min(0, values.min() ?? 0), hi = max(0, values.max() ?? 0)
        let ticks = AxisTicks.ticks(from: lo, to: max(hi, lo + 1e-9))
        let vmin = ticks.first!, vmax = ticks.last!
        func x(_ v: Double) -> Double { left + (v - vmin) / max(vmax - vmin, 1e-12) * plotWidth }
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        let bottom = top + rowHeight * Double(comps.count)
        for tick in ticks {
            svg.line(x1: x(tick), y1: top - 4, x2: x(tick), y2: bottom, stroke: "#e4e4e4")
            svg.text(AxisTicks.label(tick, step: step), x: x(tick), y: bottom + 14, size: 10, anchor: .middle, color: "#555555")
        }
        for (i, c) in comps.enumerated() {
            let y = top + Double(i) * rowHeight
            let v = c.attribution
            let color = v >= 0 ? Palette.blue : Palette.red
            svg.text((c.isDetail ? "   " : "") + c.name, x: left - 8, y: y + rowHeight / 2 + 4, size: c.isDetail ? 10 : 11,
                     anchor: .end, color: c.isDetail ? "#777777" : "#222222")
            svg.rect(x: min(x(0), x(v)), y: y + 3, width: abs(x(v) - x(0)), height: rowHeight - 6,
                     fill: c.isDetail ? (v >= 0 ? "#a9c1e3" : "#eab0ab") : color, title: "\(c.name): \(Format.fixed(v, 4))")
            svg.text((v >= 0 ? "+" : "") + Format.fixed(v, 3), x: max(x(v), x(0)) + 4, y: y + rowHeight / 2 + 4, size: 10,
                     color: "#444444")
        }
        svg.line(x1: x(0), y1: top - 4, x2: x(0), y2: bottom, stroke: "#333333")
        svg.text("attribution (logit units)", x: left + plotWidth / 2, y: bottom + 32, size: 11, anchor: .middle)
        return svg.render()
    }
}

// MARK: - CSV

enum CSV {
    static func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "" }

    /// A field quoted when it holds a comma, quote or line break.
    static func field(_ s: String) -> String {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + s.replacingAll("\"", with: "\"\"") + "\""
        }
        return s
    }
}

extension String {
    init(format6 x: Double) { self = x == 0 ? "0" : (abs(x) >= 1e-3 ? Format.fixed(x, 6) : Format.scientific(x)) }

    func replacingAll(_ a: Character, with b: String) -> String {
        var out = ""
        for ch in self { if ch == a { out += b } else { out.append(ch) } }
        return out
    }
}

// MARK: - Logit lens over a text

/// Per-layer logit-lens means over a text file.
public struct LensSummaryReport: ProbeReport {
    public let model: String
    public let source: String
    public let summary: LensSummary
    /// For a shard (`--shard i/n`): the run it belongs to; its JSON then carries `run` and `partial`.
    public let run: SweepIdentity?

    public init(model: String, source: String, summary: LensSummary, run: SweepIdentity? = nil) {
        self.model = model
        self.source = source
        self.summary = summary
        self.run = run
    }

    public func table() -> String {
        let out = "model: \(model)\ninput: \(source), \(summary.positions) positions\n\nper layer, mean over all positions\n"
        let tuned = summary.tunedLayers
        var table = TextTable(headers: ["layer", "kl_to_final", "entropy", "p(final top-1)", "top-1 = final", "next-token loss"]
                              + (tuned == nil ? [] : ["tuned kl_to_final", "tuned top-1 = final", "tuned next-token loss"]))
        let pm = Format.plusMinus as (Double, Double?, Int) -> String
        for (k, l) in summary.layers.enumerated() {
            let s = l.standardErrors
            table.add([l.layer < 0 ? "embed" : String(l.layer), pm(l.meanKLToFinal, s.klToFinal, 4), pm(l.meanEntropy, s.entropy, 3),
                       pm(l.meanFinalTokenProbability, s.finalTokenProbability, 3), pm(l.top1Match, s.top1Match, 3),
                       pm(l.meanNextTokenLoss, s.nextTokenLoss, 4)]
                      + (tuned.map { [pm($0[k].meanKLToFinal, $0[k].standardErrors.klToFinal, 4),
                                      pm($0[k].top1Match, $0[k].standardErrors.top1Match, 3),
                                      pm($0[k].meanNextTokenLoss, $0[k].standardErrors.nextTokenLoss, 4)] } ?? []))
        }
        return out + table.render() + (summary.sequences >= 2 ? "± one standard error over the \(summary.sequences) windows\n" : "")
    }

    public func json() -> JSONOutput {
        let fields: [(String, JSONOutput)] = [
            ("model", .string(model)), ("positions", .int(summary.positions)), ("sequences", .int(summary.sequences)),
            ("layers", .array(summary.layers.enumerated().map { k, l in
                var fields: [(String, JSONOutput)] = [("layer", .int(l.layer))] + l.figureFields(prefix: "")
                if let t = summary.tunedLayers?[k] { fields += t.figureFields(prefix: "tuned_") }
                return .object(fields)
            })),
        ]
        return .object(fields + shardFields(run, summary.partial?.json()))
    }

    public func csv() -> String {
        let tuned = summary.tunedLayers
        let names = LensSummaryLayer.figureNames
        var out = "layer," + names.joined(separator: ",") + ",positions"
            + (tuned == nil ? "" : "," + names.map { "tuned_" + $0 }.joined(separator: ","))
            + "," + names.map { $0 + "_se" }.joined(separator: ",")
            + (tuned == nil ? "\n" : "," + names.map { "tuned_" + $0 + "_se" }.joined(separator: ",") + "\n")
        for (k, l) in summary.layers.enumerated() {
            var cells = [String(l.layer)] + l.figures.map { CSV.number($0.value) } + [String(summary.positions)]
            if let t = tuned?[k] { cells += t.figures.map { CSV.number($0.value) } }
            cells += l.figures.map { $0.se.map(CSV.number) ?? "" }
            if let t = tuned?[k] { cells += t.figures.map { $0.se.map(CSV.number) ?? "" } }
            out += cells.joined(separator: ",") + "\n"
        }
        return out
    }

    /// Mean KL to the final distribution (left axis) and top-1 agreement
    /// (right axis, 0..1) against depth.
    public func svg() -> String? {
        let left = 70.0, top = 70.0, plotWidth = 460.0, plotHeight = 260.0
        var svg = SVGDocument(width: left + plotWidth + 80, height: top + plotHeight + 70)
        svg.text("Logit lens over a text: how far each layer is from the output", x: left, y: 24, size: 16, bold: true)
        svg.text("\(model) · \(source)", x: left, y: 44, size: 11, color: "#555555")
        let layers = summary.layers
        let kls = layers.map(\.meanKLToFinal)
        let ticks = AxisTicks.ticks(from: 0, to: max(kls.max() ?? 1, 1e-9))
        let kmax = ticks.last!
        func x(_ i: Int) -> Double { left + Double(i) / Double(max(layers.count - 1, 1)) * plotWidth }
        func yk(_ v: Double) -> Double { top + plotHeight - v / kmax * plotHeight }
        func yp(_ v: Double) -> Double { top + plotHeight - v * plotHeight }
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        for t in ticks {
            svg.line(x1: left, y1: yk(t), x2: left + plotWidth, y2: yk(t), stroke: "#e4e4e4")
            svg.text(AxisTicks.label(t, step: step), x: left - 6, y: yk(t) + 4, size: 10, anchor: .end, color: Palette.blue)
        }
        for p in [0.0, 0.25, 0.5, 0.75, 1.0] {
            svg.text(Format.fixed(p, 2), x: left + plotWidth + 6, y: yp(p) + 4, size: 10, color: Palette.orange)
        }
        svg.polyline(layers.indices.map { (x($0), yk(kls[$0])) }, stroke: Palette.blue)
        svg.polyline(layers.indices.map { (x($0), yp(layers[$0].top1Match)) }, stroke: Palette.orange)
        for (i, l) in layers.enumerated() {
            if let se = l.standardErrors.klToFinal, se > 0 {        // ± one standard error over windows
                svg.whisker(x: x(i), from: yk(max(0, kls[i] - se)), to: yk(min(kmax, kls[i] + se)), stroke: Palette.blue)
            }
            svg.circle(x: x(i), y: yk(kls[i]), radius: 3, fill: Palette.blue)
            svg.circle(x: x(i), y: yp(l.top1Match), radius: 3, fill: Palette.orange)
            svg.text(l.layer < 0 ? "emb" : String(l.layer), x: x(i), y: top + plotHeight + 16, size: 10, anchor: .middle)
        }
        svg.line(x1: left, y1: top + plotHeight, x2: left + plotWidth, y2: top + plotHeight)
        svg.text("mean KL(final ‖ layer) (nats)", x: 16, y: top + plotHeight / 2, size: 11, anchor: .middle, color: Palette.blue, rotate: -90)
        svg.text("top-1 = final (fraction)", x: left + plotWidth + 52, y: top + plotHeight / 2, size: 11, anchor: .middle, color: Palette.orange, rotate: 90)
        svg.text("layer (read after the block)", x: left + plotWidth / 2, y: top + plotHeight + 40, size: 12, anchor: .middle)
        return svg.render()
    }
}

extension LensSummaryLayer {
    static let figureNames = ["kl_to_final", "entropy", "final_token_prob", "top1_match", "next_token_loss"]

    /// The five figures with their standard errors over windows.
    var figures: [(value: Double, se: Double?)] {
        let s = standardErrors
        return [(meanKLToFinal, s.klToFinal), (meanEntropy, s.entropy), (meanFinalTokenProbability, s.finalTokenProbability),
                (top1Match, s.top1Match), (meanNextTokenLoss, s.nextTokenLoss)]
    }

    /// JSON fields `<prefix><name>` and, over 2 or more windows, `<prefix><name>_se`.
    func figureFields(prefix: String) -> [(String, JSONOutput)] {
        var fields: [(String, JSONOutput)] = []
        for (i, (name, f)) in zip(Self.figureNames, figures).enumerated() {
            fields.append((prefix + name, .double(f.value)))
            if let se = f.se { fields.append((prefix + name + "_se", .double(se))) }
            if let ci = intervals[i] { fields.append((prefix + name + "_ci95", ci.json)) }
        }
        return fields
    }
}
