/// Attention-head scores as table, JSON, CSV, a picture of every head's
/// scores (one layer x head grid per score), and the patterns of chosen
/// layers as T x T heatmaps with token text on the axes.
public struct HeadScoresReport: ProbeReport {
    public let model: String
    /// Where the tokens came from, e.g. "repeated random sequence, 2 x 20 tokens, seed 0".
    public let source: String
    public let result: HeadScores
    /// The heads `patternsSVG` draws (nil: every head).
    public let patternHeads: [Int]?
    public let tokenText: TokenText

    public init(model: String, source: String, result: HeadScores, patternHeads: [Int]? = nil,
                tokenText: @escaping TokenText = tokenIDText) {
        self.model = model
        self.source = source
        self.result = result
        self.patternHeads = patternHeads
        self.tokenText = tokenText
    }

    static let names = ["previous_token", "duplicate_token", "induction", "first_token"]

    static func values(_ s: HeadScore) -> [Double] { [s.previousToken, s.duplicateToken, s.induction, s.firstToken] }

    public func table() -> String {
        var out = "model: \(model)\ninput: \(source)\n"
        out += "score = share of the head's attention on the positions each kind of head attends to (TransformerLens's head detector)\n\n"
        var table = TextTable(headers: ["layer", "head"] + Self.names, alignments: [.right, .right, .right, .right, .right, .right])
        for s in result.scores {
            table.add([String(s.layer), String(s.head)] + Self.values(s).map { Format.fixed($0, 4) })
        }
        out += table.render()
        for (k, name) in Self.names.enumerated() {
            if let best = result.scores.max(by: { Self.values($0)[k] < Self.values($1)[k] }) {
                out += "highest \(name): head \(best.layer).\(best.head) (\(Format.fixed(Self.values(best)[k], 3)))\n"
            }
        }
        return out
    }

    public func json() -> JSONOutput {
        .object([
            ("model", .string(model)), ("source", .string(source)), ("tokens", .ints(result.tokens)),
            ("scores", .array(result.scores.map { s in
                .object([("layer", .int(s.layer)), ("head", .int(s.head))]
                        + zip(Self.names, Self.values(s)).map { ($0, JSONOutput.double($1)) })
            })),
        ])
    }

    public func csv() -> String {
        "layer,head," + Self.names.joined(separator: ",") + "\n"
            + result.scores.map { s in "\(s.layer),\(s.head)," + Self.values(s).map { "\($0)" }.joined(separator: ",") + "\n" }.joined()
    }

    /// Four layer x head grids (one per score), colour: the score on a viridis scale.
    public func svg() -> String? {
        let layers = (result.scores.map(\.layer).max() ?? -1) + 1, heads = (result.scores.map(\.head).max() ?? -1) + 1
        let cell = max(14.0, min(34.0, 260.0 / Double(max(heads, 1)))), panel = cell * Double(heads) + 60
        let top = 84.0, left = 50.0
        var svg = SVGDocument(width: max(640, left + panel * 4 + 20), height: top + cell * Double(layers) + 50)
        svg.text("Attention heads: what each one attends to", x: 16, y: 24, size: 16, bold: true)
        svg.text("\(model) · \(source)", x: 16, y: 44, size: 11, color: "#555555")
        for (k, name) in Self.names.enumerated() {
            let x0 = left + Double(k) * panel
            svg.text(name.replacingOccurrences(of: "_", with: " "), x: x0 + cell * Double(heads) / 2, y: top - 14, size: 12,
                     anchor: .middle, bold: true)
            for s in result.scores {
                let v = Self.values(s)[k]
                let x = x0 + Double(s.head) * cell, y = top + Double(layers - 1 - s.layer) * cell
                svg.rect(x: x, y: y, width: cell, height: cell, fill: Palette.viridis(v), stroke: "#ffffff",
                         title: "layer \(s.layer), head \(s.head): \(name) \(Format.fixed(v, 3))")
                if cell >= 24 {
                    svg.text(Format.fixed(v, 2), x: x + cell / 2, y: y + cell / 2 + 3, size: 8, anchor: .middle,
                             color: Palette.lightTextOnViridis(v) ? "#ffffff" : "#222222")
                }
            }
            svg.text("head", x: x0 + cell * Double(heads) / 2, y: top + cell * Double(layers) + 16, size: 10, anchor: .middle)
        }
        for layer in 0..<layers {
            svg.text(String(layer), x: left - 6, y: top + Double(layers - 1 - layer) * cell + cell / 2 + 4, size: 10, anchor: .end)
        }
        svg.text("layer", x: 16, y: top + cell * Double(layers) / 2, size: 11, rotate: -90)
        return svg.render()
    }

    /// The patterns of the layers asked for: one T x T heatmap per head
    /// (row: query, column: key; colour: attention probability), token text on the axes.
    public func patternsSVG() -> String? {
        let layers = result.patterns.keys.sorted()
        guard let first = layers.first, let shape = result.patterns[first]?.shape, shape.count == 3 else { return nil }
        let drawn = (patternHeads ?? Array(0..<shape[0])).filter { $0 >= 0 && $0 < shape[0] }
        let heads = drawn.count, t = shape[1]
        guard heads > 0 else { return nil }
        let cell = max(4.0, min(18.0, 360.0 / Double(t))), size = cell * Double(t), gap = 70.0
        let perRow = max(1, min(heads, Int(1200 / (size + gap))))
        let rowsPerLayer = (heads + perRow - 1) / perRow
        let top = 60.0, left = 60.0
        let height = top + Double(layers.count * rowsPerLayer) * (size + gap) + 20
        var svg = SVGDocument(width: left + Double(perRow) * (size + gap), height: height)
        svg.text("Attention patterns (row: query, column: key)", x: 16, y: 24, size: 16, bold: true)
        svg.text("\(model) · \(source)", x: 16, y: 44, size: 11, color: "#555555")
        let labels = result.tokens.map { Format.token(tokenText($0)) }
        for (li, layer) in layers.enumerated() {
            let p = result.patterns[layer]!
            for (slot, head) in drawn.enumerated() {
                let x0 = left + Double(slot % perRow) * (size + gap)
                let y0 = top + Double(li * rowsPerLayer + slot / perRow) * (size + gap) + 16
                svg.text("layer \(layer), head \(head)", x: x0, y: y0 - 4, size: 10, bold: true)
                for i in 0..<t {
                    for j in 0...i {
                        let v = Double(p.scalars[(head * t + i) * t + j])
                        svg.rect(x: x0 + Double(j) * cell, y: y0 + Double(i) * cell, width: cell, height: cell, fill: Palette.viridis(v),
                                 title: "query \(i) \(labels[i]) -> key \(j) \(labels[j]): \(Format.fixed(v, 3))")
                    }
                }
                if cell >= 9 {
                    for i in 0..<t {
                        svg.text(labels[i], x: x0 - 2, y: y0 + Double(i) * cell + cell * 0.75, size: min(8, cell * 0.7), anchor: .end,
                                 monospace: true)
                        svg.text(labels[i], x: x0 + Double(i) * cell + cell * 0.7, y: y0 + size + 4, size: min(8, cell * 0.7),
                                 rotate: 90, monospace: true)
                    }
                }
            }
        }
        return svg.render()
    }
}
