import Foundation
import Testing
@testable import StreamLab

/// Standard errors over windows: the sample standard deviation (ddof 1) of
/// the per-window figures over sqrt(windows), checked against the figures of
/// each window swept on its own.
@Suite("Standard errors over windows")
struct StandardErrorTests {
    func sampleStandardError(_ xs: [Double]) -> Double {
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count - 1)
        return (variance / Double(xs.count)).squareRoot()
    }

    @Test("merging statistics in any split equals one pass; fewer than 2 values has none")
    func merge() {
        let xs: [Double] = [0.3, 1.7, -2.2, 4.1, 0.0, 3.3, 2.9]
        var whole = WindowStatistic()
        xs.forEach { whole.add($0) }
        for cut in 0...xs.count {
            var a = WindowStatistic(), b = WindowStatistic()
            xs[..<cut].forEach { a.add($0) }
            xs[cut...].forEach { b.add($0) }
            a.merge(b)
            #expect(a.count == whole.count && abs(a.mean - whole.mean) < 1e-12)
            #expect(abs(a.standardError! - sampleStandardError(xs)) < 1e-12)
        }
        var one = WindowStatistic()
        one.add(1)
        #expect(one.standardError == nil)
    }

    @Test("bootstrap intervals: kept values only when asked, around the mean, about ±1.96 standard errors wide, the same after merging in any order")
    func bootstrap() {
        var random = SeededRandom(seed: 3)
        let xs = (0..<400).map { _ in random.normal() * 2 + 1 }
        var plain = WindowStatistic()
        xs.forEach { plain.add($0) }
        #expect(plain.values == nil && plain.bootstrapInterval == nil)
        WindowStatistic.$bootstrapResamples.withValue(2000) {
            var whole = WindowStatistic(), a = WindowStatistic(), b = WindowStatistic()
            xs.forEach { whole.add($0) }
            xs[200...].forEach { a.add($0) }
            xs[..<200].forEach { b.add($0) }
            a.merge(b)
            let ci = whole.bootstrapInterval!, se = whole.standardError!
            #expect(ci.low < whole.mean && whole.mean < ci.high)
            let width = ci.high - ci.low
            #expect(abs(width - 2 * 1.96 * se) < 0.15 * width, "width \(width) vs \(2 * 1.96 * se)")
            #expect(a.bootstrapInterval! == ci)
        }
    }

    @Test("an ablation sweep's standard errors equal those of its windows swept one by one")
    func ablation() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("shakespeare-pre"), threads: 2)
        let text = try Data(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt")).prefix(6 * 64)
        let windows = stride(from: 0, to: 6 * 64, by: 64).map { text[text.startIndex + $0 ..< text.startIndex + $0 + 64].map(Int.init) }
        let plan = try model.ablationPlan(layers: [1, 4])
        let sweep = try model.ablationSweep(plan, on: windows)
        let single = try windows.map { try model.ablationSweep(plan, on: [$0]) }
        #expect(single.allSatisfy { $0.entries.allSatisfy { $0.metrics.standardErrors == AblationMetrics.StandardErrors() } })
        #expect(abs(sweep.cleanLossStandardError! - sampleStandardError(single.map(\.cleanLoss))) < 1e-9)
        for (k, entry) in sweep.entries.enumerated() {
            let m = single.map { $0.entries[k].metrics }, s = entry.metrics.standardErrors
            for (got, values) in [(s.klMean, m.map(\.klMean)), (s.klLast, m.map(\.klLast)), (s.top1Agreement, m.map(\.top1Agreement)),
                                  (s.loss, m.map(\.loss)), (s.deltaLoss, m.map(\.deltaLoss))] {
                let expected = sampleStandardError(values)
                #expect(abs(got! - expected) <= 1e-9 + 1e-6 * expected, "entry \(k): \(got!) vs \(expected)")
            }
        }
    }
}
