/// A line chart on top of `SVGDocument`: axes with ticks and labels, a
/// linear or logarithmic y axis, one polyline with markers per series, a
/// legend. Value types in, text out.
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
        /// Half-lengths of error whiskers, one per point (nil: none), e.g. one standard error.
        public var errors: [Double?]?
        public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false, errors: [Double?]? = nil) {
            self.name = name
            self.points = points
            self.dashed = dashed
            self.errors = errors
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    /// Loose points drawn in grey behind the series (e.g. every sample of a mean), and part of the axis range.
    public var markers: [(x: Double, y: Double)] = []
    /// Logarithmic y axis (non-positive values are left out).
    public var logY = false
    /// Ticks at integers (layers), else round values.
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

    func plotted(_ s: Series) -> [(x: Double, y: Double)] {
        s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
    }

    public func render() -> String {
        let left = 80.0, right = series.contains { !$0.name.isEmpty } ? 180.0 : 30.0, top = 40.0, bottom = 56.0
        let plotW = width - left - right, plotH = height - top - bottom
        var doc = SVGDocument(width: width, height: height)
        doc.text(title, x: left + plotW / 2, y: 22, size: 15, anchor: .middle)
        let all = series.flatMap(plotted) + plotted(Series(name: "", points: markers))
        guard !all.isEmpty else {
            doc.text("no data", x: width / 2, y: height / 2, anchor: .middle)
            return doc.render()
        }

        // Ranges: x over the data; y in decades (log) or round ticks (linear).
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!
        if x1 == x0 { x0 -= 1; x1 += 1 }
        let ys = all.map { logY ? Self.log10($0.y) : $0.y }
        var y0 = ys.min()!, y1 = ys.max()!
        var yTicks: [(value: Double, label: String)]
        if logY {
            y0 = y0.rounded(.down)
            y1 = max(y1.rounded(.up), y0 + 1)
            let every = max(1, ((y1 - y0) / 12).rounded(.up))
            y1 = y0 + ((y1 - y0) / every).rounded(.up) * every   // the top tick covers the largest value
            yTicks = stride(from: y0, through: y1, by: every).map { ($0, "1e" + String(Int($0))) }
        } else {
            let ticks = AxisTicks.ticks(from: min(0, y0), to: y1 > y0 ? y1 : y0 + 1)
            let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
            y0 = ticks.first!
            y1 = ticks.last!
            yTicks = ticks.map { ($0, AxisTicks.label($0, step: step)) }
        }
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ v: Double) -> Double { top + plotH - (v - y0) / (y1 - y0) * plotH }      // v on the axis scale
        func pointY(_ y: Double) -> Double { py(logY ? Self.log10(y) : y) }

        // Grid, frame, ticks, labels.
        for t in yTicks {
            doc.line(x1: left, y1: py(t.value), x2: left + plotW, y2: py(t.value), stroke: "#dddddd")
            doc.text(t.label, x: left - 6, y: py(t.value) + 4, size: 11, anchor: .end)
        }
        doc.line(x1: left, y1: top, x2: left, y2: top + plotH)
        doc.line(x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH)
        let xTicks: [Double]
        if integerX {
            let first = x0.rounded(.up), last = x1.rounded(.down)
            let every = max(1, ((last - first) / 12).rounded(.up))
            xTicks = Array(stride(from: first, through: last, by: every))
        } else {
            xTicks = AxisTicks.ticks(from: x0, to: x1).filter { $0 >= x0 && $0 <= x1 }
        }
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for v in xTicks {
            doc.line(x1: px(v), y1: top + plotH, x2: px(v), y2: top + plotH + 4)
            doc.text(integerX ? String(Int(v)) : AxisTicks.label(v, step: xStep), x: px(v), y: top + plotH + 17,
                     size: 11, anchor: .middle)
        }
        doc.text(xLabel, x: left + plotW / 2, y: height - 14, anchor: .middle)
        doc.text(yLabel, x: 20, y: top + plotH / 2, anchor: .middle, rotate: -90)

        // Markers, series and legend.
        for p in plotted(Series(name: "", points: markers)) {
            doc.circle(x: px(p.x), y: pointY(p.y), radius: 2.5, fill: "#aaaaaa")
        }
        for (k, s) in series.enumerated() {
            let color = Self.palette[k % Self.palette.count]
            let points = plotted(s).map { (px($0.x), pointY($0.y)) }
            if s.dashed {
                for (a, b) in zip(points, points.dropFirst()) {
                    doc.line(x1: a.0, y1: a.1, x2: b.0, y2: b.1, stroke: color, width: 3, dash: "7 4")
                }
            } else {
                doc.polyline(points, stroke: color)
            }
            for p in points { doc.circle(x: p.0, y: p.1, radius: 3, fill: color) }
            // Whiskers: y ± error (on a log axis, the part above zero).
            if let errors = s.errors {
                for (p, e) in zip(s.points, errors) where p.x.isFinite && p.y.isFinite && (e ?? 0) > 0 {
                    let e = e!, low = logY ? max(p.y - e, p.y / 1e3) : p.y - e
                    guard !logY || p.y > 0 else { continue }
                    doc.whisker(x: px(p.x), from: pointY(low), to: pointY(p.y + e), stroke: color)
                }
            }
            if s.name.isEmpty { continue }                       // unnamed: no legend entry
            let ly = top + 10 + Double(k) * 20
            doc.line(x1: left + plotW + 14, y1: ly - 4, x2: left + plotW + 30, y2: ly - 4, stroke: color, width: 3,
                     dash: s.dashed ? "5 3" : nil)
            doc.text(s.name, x: left + plotW + 36, y: ly, size: 12)
        }
        return doc.render()
    }

    static func log10(_ x: Double) -> Double { CMath.log(x) / 2.302585092994046 }
}
