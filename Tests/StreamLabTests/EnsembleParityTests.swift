import Foundation
import Testing
@testable import StreamLab

@Suite("Paths, lesions, reordering and redundancy against the independent PyTorch reference")
struct EnsembleParityTests {
    typealias Object = [String: Any]

    /// Fixtures with a `<name>.ensemble.json` from Fixtures/reference/make_ensemble_reference.py:
    /// pre, post, sandwich and output norm placements and a parallel block.
    static let fixtures = ["gemma2-bf16", "gpt2", "neox-parallel", "olmo2", "openai-gpt"]

    static func reference(_ name: String) throws -> Object {
        let url = FixturePaths.reference.appendingPathComponent(name + ".ensemble.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
    }

    static func metricsClose(_ m: AblationMetrics, _ ref: Object, _ context: String) {
        for (value, key) in [(m.klMean, "kl_mean"), (m.klLast, "kl_last"), (m.top1Agreement, "top1_agreement"), (m.loss, "loss"),
                             (m.deltaLoss, "delta_loss")] {
            let r = ref[key] as! Double
            #expect(scalarClose(value, r, 1e-4), "\(context): \(key) \(value) vs torch \(r)")
        }
    }

    @Test("the references cover five placements")
    func referenceCount() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.reference.path).filter { $0.hasSuffix(".ensemble.json") }
        #expect(files.map { String($0.dropLast(".ensemble.json".count)) }.sorted() == Self.fixtures)
    }

    @Test("the path-length spectrum equals torch's vector-Jacobian recursion", arguments: fixtures)
    func paths(_ name: String) throws {
        let reference = try Self.reference(name), expected = reference["paths"] as! Object
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let got = try model.paths(on: [reference["tokens"] as! [Int]])
        let lengths = expected["lengths"] as! [Object]
        #expect(got.units == expected["units"] as! Int)
        try #require(got.lengths.count == lengths.count && lengths.count == got.units + 1)
        var worst = 0.0
        for (length, ref) in zip(got.lengths, lengths) {
            #expect(length.k == ref["k"] as! Int && length.paths == ref["paths"] as! Double)
            let r = ref["norm"] as! Double
            worst = max(worst, abs(length.norm - r) / max(1, abs(r)))
            #expect(scalarClose(length.norm, r, 1e-4), "\(name) k = \(length.k): \(length.norm) vs torch \(r)")
        }
        #expect(scalarClose(got.totalNorm, expected["total_norm"] as! Double, 1e-4))
        #expect(got.reconstructionError <= 1e-5 * max(1, got.totalNorm))
        print("paths parity \(name): \(lengths.count) lengths, worst relative error \(worst), reconstruction \(got.reconstructionError)")
    }

    @Test("reordered blocks, lesions, Block Influence and angular distances equal torch's", arguments: fixtures)
    func redundancy(_ name: String) throws {
        let reference = try Self.reference(name)
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let tokens = reference["tokens"] as! [Int], l = model.architecture.layerCount

        let orders = reference["orders"] as! [Object]
        try #require(orders.count >= 4, "\(name): \(orders.count) orders")
        let reordered = try model.reorder(orders.map { $0["order"] as! [Int] }, on: [tokens])
        for (entry, ref) in zip(reordered.entries, orders) { Self.metricsClose(entry.metrics, ref, "\(name) order \(ref["order"]!)") }

        let lesions = reference["lesions"] as! [Object]
        #expect(lesions.count == 1 << l, "\(name): \(lesions.count) lesions, expected every subset")
        let lesion = try model.lesion(samples: 1 << l, on: [tokens])
        var byMask: [[Int]: AblationMetrics] = [:]
        for level in lesion.levels { for (subset, m) in zip(level.subsets, level.metrics) { byMask[subset] = m } }
        for ref in lesions {
            let subset = ref["skipped"] as! [Int]
            let m = try #require(byMask[subset], "\(name): subset \(subset) not run")
            Self.metricsClose(m, ref, "\(name) lesion \(subset)")
        }
        #expect(scalarClose(lesion.cleanLoss, reference["clean_loss"] as! Double, 1e-4))

        let bi = reference["block_influence"] as! [Double]
        let sweep = try model.ablationSweep(on: tokens)
        #expect(zip(sweep.geometry.blockInfluence, bi).allSatisfy { abs($0 - $1) <= 1e-5 } && bi.count == l,
                "\(name): block influence \(sweep.geometry.blockInfluence) vs torch \(bi)")
        let distances = reference["angular_distance"] as! [Object]
        #expect(distances.count == l - 1)
        for entry in distances {
            let n = entry["blocks"] as! Int, expected = entry["distances"] as! [Double]
            let pruning = try model.prune(blocks: n, on: [tokens])
            #expect(pruning.spans.count == expected.count)
            for (span, d) in zip(pruning.spans, expected) {
                #expect(abs(span.distance - d) <= 1e-5, "\(name) span \(span.start)+\(n): \(span.distance) vs torch \(d)")
            }
        }
    }

    @Test("sum over k of g_k is the full input gradient on every fixture family")
    func reconstruction() throws {
        #expect(ReferenceFixture.all.count == 25)
        for fixture in ReferenceFixture.all {
            let model = try Transformer.load(from: fixture.modelDirectory, threads: 2)
            let tokens = try fixture.sequences()[1].tokens
            let spectrum = try model.paths(on: [tokens])
            #expect(spectrum.lengths.count == spectrum.units + 1)
            #expect(spectrum.reconstructionError <= 1e-5 * max(1, spectrum.totalNorm), "\(fixture.name): \(spectrum.reconstructionError)")
        }
    }

    @Test("lesion subsets: distinct, seeded, all of them when few")
    func subsets() {
        let all = Transformer.lesionSubsets(layerCount: 4, maxK: 4, samples: 10, seed: 0)
        #expect(all.map(\.count) == [1, 4, 6, 4, 1])
        #expect(all[2] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
        let sampled = Transformer.lesionSubsets(layerCount: 12, maxK: 6, samples: 5, seed: 3)
        #expect(sampled[6].count == 5 && Set(sampled[6]).count == 5 && sampled[6].allSatisfy { $0.count == 6 && $0 == $0.sorted() })
        #expect(sampled == Transformer.lesionSubsets(layerCount: 12, maxK: 6, samples: 5, seed: 3))
        #expect(sampled != Transformer.lesionSubsets(layerCount: 12, maxK: 6, samples: 5, seed: 4))
    }

    @Test("Spearman's rank correlation with ties (average ranks)")
    func spearman() {
        // By hand: ranks [1,2,3,4,5] and [1,2,3.5,5,3.5]: 8 / sqrt(10 x 9.5).
        #expect(abs(Statistics.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])! - 8 / (95.0).squareRoot()) < 1e-12)
        #expect(Statistics.spearman([1, 2, 3], [3, 2, 1]) == -1)
        #expect(Statistics.spearman([1, 1, 1], [1, 2, 3]) == nil)
    }
}
