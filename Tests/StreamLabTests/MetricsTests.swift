import Testing
@testable import StreamLab

@Suite("Ablation metrics")
struct MetricsTests {
    @Test("positions split across threads give the single-thread sums")
    func threadedSums() {
        let t = 70, v = 301
        var rng = SeededRandom(seed: 7)
        let p = (0..<(t * v)).map { _ in Float(rng.integer(below: 2000)) / 200 - 5 }
        let q = (0..<(t * v)).map { _ in Float(rng.integer(below: 2000)) / 200 - 5 }
        let tokens = (0..<t).map { _ in rng.integer(below: v) }
        let logZ = p.withUnsafeBufferPointer { b in (0..<t).map { Distribution.logSumExp(b.baseAddress! + $0 * v, v) } }
        func sums(threads: Int) -> MetricSums {
            var s = MetricSums()
            p.withUnsafeBufferPointer { pb in
                q.withUnsafeBufferPointer { qb in
                    s.add(clean: pb.baseAddress!, logZClean: logZ, intervened: qb.baseAddress!, tokens: tokens, vocabulary: v,
                          threads: threads)
                }
            }
            return s
        }
        let one = sums(threads: 1).metrics(cleanLoss: 1), four = sums(threads: 4).metrics(cleanLoss: 1)
        #expect(one.positions == t && four.positions == t && four.sequences == 1)
        #expect(abs(one.klMean - four.klMean) <= 1e-12 * one.klMean)
        #expect(one.klLast == four.klLast && one.top1Agreement == four.top1Agreement)
        #expect(abs(one.loss - four.loss) <= 1e-12 * one.loss)
    }
}
