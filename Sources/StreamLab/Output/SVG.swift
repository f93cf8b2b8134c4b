/// A minimal SVG builder for report charts: rectangles, lines, polylines and
/// text, escaped properly, rendered as one standalone document.
public struct SVGDocument: Sendable {
    public let width: Double
    public let height: Double
    private var elements: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
        rect(x: 0, y: 0, width: width, height: height, fill: "#ffffff")
    }

    public mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                              stroke: String? = nil, title: String? = nil) {
        var e = "<rect x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(width, 0)))\" height=\"\(n(max(height, 0)))\" fill=\"\(fill)\""
        if let stroke { e += " stroke=\"\(stroke)\" stroke-width=\"0.5\"" }
        if let title { e += "><title>\(Self.escape(title))</title></rect>" } else { e += "/>" }
        elements.append(e)
    }

    /// An error whisker: a vertical line from `y1` to `y2` at `x` with short caps.
    public mutating func whisker(x: Double, from y1: Double, to y2: Double, stroke: String) {
        line(x1: x, y1: y1, x2: x, y2: y2, stroke: stroke)
        line(x1: x - 4, y1: y1, x2: x + 4, y2: y1, stroke: stroke)
        line(x1: x - 4, y1: y2, x2: x + 4, y2: y2, stroke: stroke)
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#333333",
                              width: Double = 1, dash: String? = nil) {
        var e = "<line x1=\"\(n(x1))\" y1=\"\(n(y1))\" x2=\"\(n(x2))\" y2=\"\(n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\""
        if let dash { e += " stroke-dasharray=\"\(dash)\"" }
        elements.append(e + "/>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2) {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        elements.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(n(width))\" stroke-linejoin=\"round\"/>")
    }

    public mutating func circle(x: Double, y: Double, radius: Double, fill: String) {
        elements.append("<circle cx=\"\(n(x))\" cy=\"\(n(y))\" r=\"\(n(radius))\" fill=\"\(fill)\"/>")
    }

    public enum Anchor: String, Sendable { case start, middle, end }

    public mutating func text(_ s: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                              color: String = "#222222", bold: Bool = false, rotate: Double? = nil, monospace: Bool = false) {
        var e = "<text x=\"\(n(x))\" y=\"\(n(y))\" font-size=\"\(n(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(color)\""
        e += monospace ? " font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\"" : ""
        if bold { e += " font-weight=\"bold\"" }
        if let rotate { e += " transform=\"rotate(\(n(rotate)) \(n(x)) \(n(y)))\"" }
        elements.append(e + ">\(Self.escape(s))</text>")
    }

    /// Places a rendered SVG document (e.g. an `SVGPlot`) at (x, y).
    public mutating func embed(_ document: String, x: Double, y: Double) {
        var body = document
        if body.hasPrefix("<?xml"), let end = body.firstIndex(of: "\n") { body = String(body[body.index(after: end)...]) }
        if body.hasPrefix("<svg ") { body = "<svg x=\"\(n(x))\" y=\"\(n(y))\" " + body.dropFirst(5) }
        elements.append(body.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Rendered documents of `width` x `height` side by side under a title.
    public static func sideBySide(_ parts: [String], width: Double, height: Double, title: String) -> String {
        var doc = SVGDocument(width: width * Double(parts.count), height: height + 36)
        doc.text(title, x: 16, y: 24, size: 15, bold: true)
        for (i, part) in parts.enumerated() { doc.embed(part, x: width * Double(i), y: 36) }
        return doc.render()
    }

    /// The document as text.
    public func render() -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\""
        out += " font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        for e in elements { out += e + "\n" }
        return out + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default:
                // XML 1.0 forbids most control characters, even escaped.
                if u.value < 0x20 && u != "\t" && u != "\n" { out += "?" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    private func n(_ x: Double) -> String { Format.fixed(x, 1) }
}

/// Colors for charts.
public enum Palette {
    public static let blue = "#3b6fb6", orange = "#e07b39", green = "#3a9a5b", red = "#c8453a", grey = "#888888"

    /// Viridis-like sequential scale, `t` in 0...1 (dark purple to yellow).
    public static func viridis(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [
            (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
            (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
        ]
        let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2)
        let f = x - Double(i)
        let a = stops[i], b = stops[i + 1]
        return hex(a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
    }

    /// Whether text on a viridis(t) background should be white.
    public static func lightTextOnViridis(_ t: Double) -> Bool { t < 0.55 }

    static func hex(_ r: Double, _ g: Double, _ b: Double) -> String {
        func h(_ v: Double) -> String {
            let s = String(Int(min(max(v.rounded(), 0), 255)), radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        return "#" + h(r) + h(g) + h(b)
    }
}

/// "Nice" axis ticks covering `0...maximum` (or `minimum...maximum`).
public enum AxisTicks {
    /// Evenly spaced round ticks whose first is <= `minimum` and last >= `maximum`.
    public static func ticks(from minimum: Double, to maximum: Double, count: Int = 5) -> [Double] {
        guard maximum > minimum, maximum.isFinite, minimum.isFinite else { return [minimum, minimum + 1] }
        let raw = (maximum - minimum) / Double(max(count, 1))
        var magnitude = 1.0
        while magnitude * 10 <= raw { magnitude *= 10 }
        while magnitude > raw { magnitude /= 10 }
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        let first = (minimum / step + 1e-9).rounded(.down), last = (maximum / step - 1e-9).rounded(.up)
        return stride(from: first, through: last, by: 1).map { k in abs(k * step) < step * 1e-9 ? 0 : k * step }
    }

    /// Tick label with as many decimals as the step needs.
    public static func label(_ x: Double, step: Double) -> String {
        var digits = 0
        var s = step
        while s < 1 && digits < 6 { s *= 10; digits += 1 }
        if s.rounded() != s && digits < 6 { digits += 1 }
        return Format.fixed(x, digits)
    }
}
