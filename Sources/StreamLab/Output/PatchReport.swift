/// An activation-patching sweep as table, JSON, CSV and a heatmap of
/// `normalized` (layer x position, or layer x head).
public struct PatchReport: ProbeReport {
    public let model: String
    public let patching: Patching
    public let tokenText: TokenText

    public init(model: String, patching: Patching, tokenText: @escaping TokenText = tokenIDText) {
        self.model = model
        self.patching = patching
        self.tokenText = tokenText
    }

    var method: String { patching.method.rawValue }

    func columnLabel(_ e: PatchEntry) -> String {
        if let head = e.head { return "head \(head)" }
        let p = e.position!
        return "\(p) " + Format.token(tokenText(patching.clean[p]))
    }

    public func table() -> String {
        let p = patching
        var out = "model: \(model)\n"
        out += "patching \(p.hook.rawValue), \(method), \(p.direction.rawValue): "
            + (p.direction == .denoising ? "the corrupted run with one activation from the clean run\n"
                                         : "the clean run with one activation from the corrupted run\n")
        out += "logit difference \(Format.token(tokenText(p.answer))) - \(Format.token(tokenText(p.wrong))) at the last position: "
            + "clean \(Format.fixed(p.cleanLogitDiff, 4)), corrupted \(Format.fixed(p.corruptedLogitDiff, 4))\n"
        out += "normalized = (patched - corrupted) / (clean - corrupted): 1 restores the clean answer, 0 changes nothing\n\n"
        var table = TextTable(headers: ["layer", p.hook == .head ? "head" : "position", "logit_diff", "normalized"],
                              alignments: [.right, .left, .right, .right])
        for e in p.entries {
            table.add([String(e.layer), columnLabel(e), Format.fixed(e.logitDiff, 4), Format.fixed(e.normalized, 4)])
        }
        return out + table.render()
    }

    public func json() -> JSONOutput {
        let p = patching
        return .object([
            ("model", .string(model)), ("hook", .string(p.hook.rawValue)), ("method", .string(method)),
            ("direction", .string(p.direction.rawValue)),
            ("clean_tokens", .ints(p.clean)), ("corrupted_tokens", .ints(p.corrupted)),
            ("answer", .int(p.answer)), ("wrong", .int(p.wrong)),
            ("clean_logit_diff", .double(p.cleanLogitDiff)), ("corrupted_logit_diff", .double(p.corruptedLogitDiff)),
            ("results", .array(p.entries.map { e in
                var fields: [(String, JSONOutput)] = [("layer", .int(e.layer))]
                if let head = e.head { fields.append(("head", .int(head))) }
                if let position = e.position { fields.append(("position", .int(position))) }
                return .object(fields + [("logit_diff", .double(e.logitDiff)), ("normalized", .double(e.normalized))])
            })),
        ])
    }

    public func csv() -> String {
        var out = "hook,method,direction,layer,position,head,logit_diff,normalized\n"
        for e in patching.entries {
            out += [patching.hook.rawValue, method, patching.direction.rawValue, String(e.layer),
                    e.position.map(String.init) ?? "", e.head.map(String.init) ?? "",
                    "\(e.logitDiff)", "\(e.normalized)"].joined(separator: ",") + "\n"
        }
        return out
    }

    /// Layers as rows (last on top, as the stream flows up), positions or heads
    /// as columns; colour: `normalized` on a diverging scale (blue below 0,
    /// white at 0, red at 1 and above), the value printed in each cell.
    public func svg() -> String? {
        let p = patching
        let columns = Array(Set(p.entries.map(columnLabel))).sorted { a, b in
            let ia = p.entries.firstIndex { columnLabel($0) == a }!, ib = p.entries.firstIndex { columnLabel($0) == b }!
            return ia < ib
        }
        let layers = Array(Set(p.entries.map(\.layer))).sorted()
        let cell = 54.0, height = 26.0, left = 70.0, top = 96.0
        var svg = SVGDocument(width: max(640, left + cell * Double(columns.count) + 130), height: top + height * Double(layers.count) + 60)
        svg.text("Activation patching: \(p.hook.rawValue), \(p.direction.rawValue)", x: 16, y: 24, size: 16, bold: true)
        svg.text("\(model) · logit difference \(Format.token(tokenText(p.answer))) - \(Format.token(tokenText(p.wrong))): "
                 + "clean \(Format.fixed(p.cleanLogitDiff, 3)), corrupted \(Format.fixed(p.corruptedLogitDiff, 3))",
                 x: 16, y: 44, size: 11, color: "#555555")
        svg.text("cell: normalized = (patched - corrupted) / (clean - corrupted)", x: 16, y: 60, size: 11, color: "#555555")
        func colour(_ x: Double) -> String {
            let t = min(max(x, -1), 1)
            let (r, g, b) = t >= 0 ? (1.0, 1 - 0.75 * t, 1 - 0.8 * t) : (1 + 0.8 * t, 1 + 0.6 * t, 1.0)
            return Palette.hex(255 * r, 255 * g, 255 * b)
        }
        for (c, label) in columns.enumerated() {
            svg.text(label, x: left + (Double(c) + 0.5) * cell, y: top - 8, size: 9, anchor: .middle, monospace: true)
        }
        for (r, layer) in layers.reversed().enumerated() {
            let y = top + Double(r) * height
            svg.text(String(layer), x: left - 8, y: y + height / 2 + 4, size: 11, anchor: .end)
            for e in p.entries where e.layer == layer {
                let c = Double(columns.firstIndex(of: columnLabel(e))!)
                svg.rect(x: left + c * cell, y: y, width: cell, height: height, fill: colour(e.normalized), stroke: "#dddddd",
                         title: "layer \(layer), \(columnLabel(e)): logit diff \(Format.fixed(e.logitDiff, 4)), normalized \(Format.fixed(e.normalized, 4))")
                svg.text(Format.fixed(e.normalized, 2), x: left + (c + 0.5) * cell, y: y + height / 2 + 4, size: 9, anchor: .middle)
            }
        }
        svg.text("layer", x: 18, y: top + height * Double(layers.count) / 2, size: 11, rotate: -90)
        // Legend.
        let lx = left + cell * Double(columns.count) + 30
        for (i, value) in [1.0, 0.5, 0, -0.5, -1].enumerated() {
            svg.rect(x: lx, y: top + Double(i) * 18, width: 16, height: 16, fill: colour(value), stroke: "#dddddd")
            svg.text(Format.fixed(value, 1), x: lx + 22, y: top + Double(i) * 18 + 12, size: 10)
        }
        return svg.render()
    }
}
