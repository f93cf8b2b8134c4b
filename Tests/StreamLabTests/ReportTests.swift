import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import StreamLab

/// The reports people look at: each SVG is well-formed XML with one mark per
/// value, and tables of long inputs stay readable. Run on the bundled model.
@Suite("Reports")
struct ReportTests {
    static let model = FixturePaths.models.appendingPathComponent("shakespeare-pre")

    /// Parses an SVG document and returns its elements' `<title>` texts (one per bar or cell).
    func titles(_ svg: String) throws -> [String] {
        let document = try XMLDocument(data: Data(svg.utf8))
        let root = try #require(document.rootElement())
        #expect(root.name == "svg")
        let width = root.attributes?.first { $0.name == "width" }?.stringValue
        #expect(Double(width ?? "") ?? 0 > 0, "svg width \(width ?? "missing")")
        return try root.nodes(forXPath: "//*[local-name()='title']").compactMap(\.stringValue)
    }

    func text(_ s: String) -> [Int] { s.utf8.map { Int($0) } }

    @Test("ablation chart: two bars per layer, the 0.1-nat line, a subtitle that fits")
    func ablationChart() throws {
        let model = try Transformer.load(from: Self.model, threads: 2)
        let sweep = try model.ablationSweep(on: text("To be, or not to be, that is the question."))
        let longSource = String(repeating: "a very long description of the input ", count: 8)
        let svg = try #require(AblationReport(model: "shakespeare-pre", source: longSource, sweep: sweep).svg())
        let marks = try titles(svg)
        #expect(marks.count == 2 * model.architecture.layerCount)
        #expect(svg.contains("0.1 nats"))
        #expect(!svg.contains(longSource), "the subtitle is shortened to the chart's width")
    }

    @Test("logit lens: one cell per layer and position, wrapped into panels of 16 positions")
    func lensHeatmap() throws {
        let model = try Transformer.load(from: Self.model, threads: 2)
        let tokens = text("HAMLET: To be, or not to be, that is the question.")  // 50 positions
        let lens = try model.logitLens(tokens)
        let report = LensReport(model: "shakespeare-pre", lens: lens, tokenText: { String(UnicodeScalar(UInt8($0))) })
        let svg = try #require(report.svg())
        let cells = try titles(svg).filter { $0.hasPrefix("layer ") }
        #expect(cells.count == lens.layers.count * tokens.count)
        for start in [0, 16, 32, 48] { #expect(svg.contains(">input \(start)-<")) }
        let table = report.table()
        #expect(table.contains("positions 0-11") && table.contains("positions 48-49"))
        let longest = table.split(separator: "\n").map(\.count).max() ?? 0
        #expect(longest < 140, "a chunk of the lens table is \(longest) characters wide")
    }

    @Test("decomposition chart: one bar per component, the logit in the subtitle")
    func decompositionChart() throws {
        let model = try Transformer.load(from: Self.model, threads: 2)
        let d = try model.decompose(text("To be, or not to be"), heads: true)
        let svg = try #require(DecompositionReport(model: "shakespeare-pre", decomposition: d).svg())
        #expect(try titles(svg).count == d.components.count)
        #expect(svg.contains("logit \(Format.fixed(d.logit, 3))"))
    }

    @Test("a log-scale plot over many decades keeps every point inside the axes")
    func logPlotRange() throws {
        var plot = SVGPlot(title: "t", xLabel: "x", yLabel: "y")
        plot.logY = true
        plot.add(.init(name: "a", points: [(0, 2.4e-22), (5, 1e-15), (11, 5.3e-2)]))
        let document = try XMLDocument(data: Data(plot.render().utf8))
        let circles = try document.nodes(forXPath: "//*[local-name()='circle']").compactMap { $0 as? XMLElement }
        let ys = circles.compactMap { c in c.attributes?.first { $0.name == "cy" }?.stringValue.flatMap(Double.init) }
        #expect(ys.count == 3)
        // The plot area spans y = 40 ... height - 56.
        #expect(ys.allSatisfy { $0 >= 40 && $0 <= plot.height - 56 }, "points at \(ys)")
        // The tick labels reach past the largest value (5.3e-2).
        let labels = try document.nodes(forXPath: "//*[local-name()='text']").compactMap(\.stringValue)
        let exponents = labels.filter { $0.hasPrefix("1e") }.compactMap { Int($0.dropFirst(2)) }
        #expect((exponents.max() ?? -99) >= -1, "tick labels \(exponents)")
    }
}
