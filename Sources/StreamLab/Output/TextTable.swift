/// An aligned plain-text table for the terminal: a header row, a rule, and
/// rows; numeric columns right-aligned. Cells are measured in terminal
/// columns (wide CJK characters count two).
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public var headers: [String]
    public var alignments: [Alignment]
    public var rows: [[String]] = []

    public init(headers: [String], alignments: [Alignment]? = nil) {
        self.headers = headers
        self.alignments = alignments ?? headers.indices.map { $0 == 0 ? .left : .right }
    }

    public mutating func add(_ row: [String]) {
        precondition(row.count == headers.count, "row has \(row.count) cells for \(headers.count) columns")
        rows.append(row)
    }

    /// The table as text, each line ending in a newline.
    public func render() -> String {
        var widths = headers.map { Self.displayWidth(Format.visible($0)) }
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], Self.displayWidth(Format.visible(cell))) } }
        func line(_ raw: [String]) -> String {
            let cells = raw.map(Format.visible)       // strings from files never reach the terminal raw
            var parts: [String] = []
            for (i, cell) in cells.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - Self.displayWidth(cell))
                parts.append(alignments[i] == .left ? cell + pad : pad + cell)
            }
            var text = parts.joined(separator: "  ")
            while text.hasSuffix(" ") { text.removeLast() }
            return text + "\n"
        }
        var out = line(headers)
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in rows { out += line(row) }
        return out
    }

    /// Terminal columns taken by `s`: East Asian wide and fullwidth characters
    /// and most emoji count two, combining marks zero.
    public static func displayWidth(_ s: String) -> Int {
        var width = 0
        for ch in s {
            guard let first = ch.unicodeScalars.first else { continue }
            let v = first.value
            if first.properties.generalCategory == .nonspacingMark || first.properties.generalCategory == .enclosingMark { continue }
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v) || (0x1F900...0x1F9FF).contains(v)
                || (0x20000...0x3FFFD).contains(v)
            width += wide ? 2 : 1
        }
        return width
    }
}
