/// A small line (or bar) chart rendered as standalone SVG text: axes with
/// ticks and labels, one polyline with markers (or one group of bars) per
/// series, a legend. Value types in, text out; no dependencies.
///
///     var plot = SVGPlot(title: "Gradient norm by depth", xLabel: "layer", yLabel: "||dL/dx||")
///     plot.logY = true
///     plot.add(SVGPlot.Series(name: "resid_pre", points: [(0, 1.2), (1, 0.8)]))
///     let svg = plot.render()
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Drawn dashed and wider (for a total drawn over its parts).
        public var dashed: Bool
        public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
            self.name = name
            self.points = points
            self.dashed = dashed
        }
    }

    public enum Style: Sendable { case lines, bars }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    public var style: Style = .lines
    /// Logarithmic y axis (non-positive values are left out).
    public var logY = false
    /// Integer x ticks at every integer (for layers), else 5 nice ticks.
    public var integerX = true
    public var width = 720.0
    public var height = 440.0

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    public mutating func add(_ s: Series) { series.append(s) }

    public func render() -> String {
        let left = 78.0, right = 170.0, top = 40.0, bottom = 56.0
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" "
            + "viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(n(left + plotW / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        guard !all.isEmpty else { return out + "<text x=\"\(n(width / 2))\" y=\"\(n(height / 2))\" text-anchor=\"middle\">no data</text>\n</svg>\n" }

        // Ranges.
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!
        if style == .bars { x0 -= 0.5; x1 += 0.5 }
        if x1 == x0 { x0 -= 1; x1 += 1 }
        let ys = all.map { logY ? log10($0.y) : $0.y }
        var y0 = ys.min()!, y1 = ys.max()!
        if logY {
            y0 = y0.rounded(.down); y1 = y1.rounded(.up)
            if y1 == y0 { y1 += 1 }
        } else {
            if style == .bars || y0 > 0 { y0 = min(0, y0) }
            if y1 == y0 { y1 = y0 + 1 }
            let (lo, hi, _) = Self.niceRange(y0, y1)
            y0 = lo; y1 = hi
        }
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double {
            let v = logY ? log10(y) : y
            return top + plotH - (v - y0) / (y1 - y0) * plotH
        }

        // Axes, grid and ticks.
        out += "<g stroke=\"#ccc\" stroke-width=\"1\">\n"
        var yTicks: [(Double, String)] = []
        if logY {
            let every = max(1, ((y1 - y0) / 12).rounded(.up))
            var e = y0
            while e <= y1 + 1e-9 { yTicks.append((pow10(e), "1e" + String(Int(e)))); e += every }
        } else {
            let (_, _, step) = Self.niceRange(y0, y1)
            var v = y0
            while v <= y1 + step * 1e-6 { yTicks.append((v, Self.label(v, step: step))); v += step }
        }
        for (v, _) in yTicks { out += "<line x1=\"\(n(left))\" x2=\"\(n(left + plotW))\" y1=\"\(n(py(v)))\" y2=\"\(n(py(v)))\"/>\n" }
        out += "</g>\n"
        out += "<g stroke=\"black\" stroke-width=\"1\" fill=\"none\"><rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotW))\" height=\"\(n(plotH))\"/></g>\n"
        out += "<g text-anchor=\"end\">\n"
        for (v, text) in yTicks { out += "<text x=\"\(n(left - 6))\" y=\"\(n(py(v) + 4))\">\(text)</text>\n" }
        out += "</g>\n<g text-anchor=\"middle\">\n"
        var xTicks: [Double] = []
        if integerX {
            let first = x0.rounded(.up), last = x1.rounded(.down)
            let stride = max(1, ((last - first) / 12).rounded(.up))
            var v = first
            while v <= last { xTicks.append(v); v += stride }
        } else {
            let (lo, hi, step) = Self.niceRange(x0, x1)
            var v = lo
            while v <= hi + step * 1e-6 { if v >= x0 && v <= x1 { xTicks.append(v) }; v += step }
        }
        for v in xTicks {
            out += "<text x=\"\(n(px(v)))\" y=\"\(n(top + plotH + 16))\">\(integerX ? String(Int(v)) : Self.label(v, step: 0))</text>\n"
        }
        out += "</g>\n"
        out += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 14))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        out += "<text transform=\"translate(18 \(n(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"

        // Data.
        let barGroup = 0.8 / Double(max(series.count, 1))
        for (k, s) in series.enumerated() {
            let color = Self.palette[k % Self.palette.count]
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
            switch style {
            case .lines:
                let coords = points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
                let stroke = s.dashed ? "stroke-width=\"3\" stroke-dasharray=\"7 4\"" : "stroke-width=\"2\""
                out += "<polyline fill=\"none\" stroke=\"\(color)\" \(stroke) points=\"\(coords)\"/>\n"
                for p in points {
                    out += "<circle cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"3\" fill=\"\(color)\"><title>\(escape(s.name)) \(Self.label(p.x, step: 0)): \(Self.label(p.y, step: 0))</title></circle>\n"
                }
            case .bars:
                let base = logY ? pow10(y0) : 0
                for p in points {
                    let xa = px(p.x - 0.4 + Double(k) * barGroup), xb = px(p.x - 0.4 + Double(k + 1) * barGroup)
                    let ya = py(p.y), yb = py(base)
                    out += "<rect x=\"\(n(xa))\" y=\"\(n(min(ya, yb)))\" width=\"\(n(max(0.5, xb - xa - 1)))\" height=\"\(n(abs(yb - ya)))\" fill=\"\(color)\"><title>\(escape(s.name)) \(Self.label(p.x, step: 0)): \(Self.label(p.y, step: 0))</title></rect>\n"
                }
            }
        }

        // Legend.
        for (k, s) in series.enumerated() {
            let color = Self.palette[k % Self.palette.count]
            let y = top + 10 + Double(k) * 20
            out += "<rect x=\"\(n(left + plotW + 14))\" y=\"\(n(y - 6))\" width=\"14\" height=\"4\" fill=\"\(color)\"/>\n"
            out += "<text x=\"\(n(left + plotW + 34))\" y=\"\(n(y))\">\(escape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    /// A range covering lo...hi with a 1/2/5 x 10^k step and about five ticks.
    static func niceRange(_ lo: Double, _ hi: Double) -> (Double, Double, Double) {
        let span = max(hi - lo, 1e-12)
        let raw = span / 5
        let magnitude = pow10(log10(raw).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        return ((lo / step).rounded(.down) * step, (hi / step).rounded(.up) * step, step)
    }

    /// A tick label with as many decimals as the step needs.
    static func label(_ v: Double, step: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 {
            let e = Int(log10(a).rounded(.down))
            return Format.fixed(v / pow10(Double(e)), 2) + "e" + String(e)
        }
        let digits = step > 0 ? max(0, -Int(log10(step).rounded(.down))) : (a >= 100 ? 1 : a >= 1 ? 3 : 4)
        return Format.fixed(v, digits)
    }

    func n(_ x: Double) -> String { Format.fixed(x, 1) }

    func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}

@inline(__always) private func log10(_ x: Double) -> Double { CMath.log(x) / 2.302585092994046 }
@inline(__always) private func pow10(_ e: Double) -> Double {
    var r = 1.0
    let k = Int(e.rounded())
    for _ in 0..<abs(k) { r *= 10 }
    return k < 0 ? 1 / r : r
}
