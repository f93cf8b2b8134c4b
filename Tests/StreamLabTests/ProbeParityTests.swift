import Foundation
import Testing
@testable import StreamLab

/// Scalar parity (docs/definitions.md, Numbers and tolerances): |got - ref| <= tol or <= tol * |ref|.
func scalarClose(_ got: Double, _ ref: Double, _ tolerance: Double) -> Bool {
    let error = abs(got - ref)
    return error <= tolerance || error <= tolerance * abs(ref)
}

@Suite("Probes against the independent PyTorch reference")
struct ProbeParityTests {
    typealias Object = [String: Any]

    static func reference(_ fixture: ReferenceFixture) throws -> [Object] {
        let url = FixturePaths.reference.appendingPathComponent(fixture.name + ".probes.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
        let sequences = object["sequences"] as! [Object]
        #expect(sequences.count == 2, "\(fixture.name): \(sequences.count) reference sequences")
        return sequences
    }

    @Test("ablation metrics match", arguments: ReferenceFixture.all)
    func ablations(_ fixture: ReferenceFixture) throws {
        let model = try Transformer.load(from: fixture.modelDirectory, threads: 2)
        let tolerance = Double(fixture.tolerance)
        var worst = 0.0
        for sequence in try Self.reference(fixture) {
            let tokens = sequence["tokens"] as! [Int]
            let entries = sequence["ablations"] as! [Object]
            let plan: [[Intervention]] = entries.map { e in
                let mode = AblationMode(rawValue: e["mode"] as! String)!
                let layers = e["layers"] as! [Int]
                switch e["target"] as! String {
                case "block", "joint": return layers.map { Intervention(.block(layer: $0), mode: mode) }
                case "attn": return [Intervention(.attention(layer: layers[0]), mode: mode)]
                case "mlp": return [Intervention(.mlp(layer: layers[0]), mode: mode)]
                case "head": return [Intervention(.head(layer: layers[0], head: e["head"] as! Int), mode: mode)]
                default: fatalError("unknown target in reference")
                }
            }
            let sweep = try model.ablationSweep(plan, on: [tokens])
            #expect(sweep.entries.count == entries.count && entries.count >= 9 * model.architecture.layerCount)
            #expect(scalarClose(sweep.cleanLoss, sequence["clean_loss"] as! Double, tolerance))
            for (entry, reference) in zip(sweep.entries, entries) {
                let m = entry.metrics
                for (name, got) in [("kl_mean", m.klMean), ("kl_last", m.klLast), ("top1_agreement", m.top1Agreement),
                                    ("loss", m.loss), ("delta_loss", m.deltaLoss)] {
                    let ref = reference[name] as! Double
                    worst = max(worst, abs(got - ref) / max(1, abs(ref)))
                    #expect(scalarClose(got, ref, tolerance),
                            "\(fixture.name) \(entry.interventions) \(name): got \(got), reference \(ref)")
                }
            }
        }
        print("probe parity \(fixture.name) ablation: worst error \(worst)")
    }

    @Test("logit lens matches", arguments: ReferenceFixture.all)
    func lens(_ fixture: ReferenceFixture) throws {
        let model = try Transformer.load(from: fixture.modelDirectory, threads: 2)
        let tolerance = Double(fixture.tolerance)
        for sequence in try Self.reference(fixture) {
            let tokens = sequence["tokens"] as! [Int]
            let references = sequence["lens"] as! [Object]
            let lens = try model.logitLens(tokens, top: 5)
            #expect(lens.layers.count == references.count)
            for (layer, reference) in zip(lens.layers, references) {
                #expect(layer.layer == reference["layer"] as! Int)
                let kl = reference["kl_to_final"] as! [Double], entropy = reference["entropy"] as! [Double]
                let topTokens = reference["top_tokens"] as! [[Int]], topProbs = reference["top_probs"] as! [[Double]]
                for i in tokens.indices {
                    #expect(scalarClose(layer.klToFinal[i], kl[i], tolerance), "\(fixture.name) layer \(layer.layer) pos \(i) kl")
                    #expect(scalarClose(layer.entropy[i], entropy[i], tolerance), "\(fixture.name) layer \(layer.layer) pos \(i) entropy")
                    #expect(layer.rank[i] == (reference["rank"] as! [Int])[i], "\(fixture.name) layer \(layer.layer) pos \(i) rank")
                    #expect(layer.top[i].map(\.token) == topTokens[i], "\(fixture.name) layer \(layer.layer) pos \(i) top tokens")
                    for (got, ref) in zip(layer.top[i].map(\.probability), topProbs[i]) {
                        #expect(scalarClose(got, ref, tolerance))
                    }
                }
            }
        }
    }

    @Test("decomposition matches and sums to the logit", arguments: ReferenceFixture.all)
    func decomposition(_ fixture: ReferenceFixture) throws {
        let model = try Transformer.load(from: fixture.modelDirectory, threads: 2)
        let tolerance = Double(fixture.tolerance)
        var worstIdentity = 0.0
        for sequence in try Self.reference(fixture) {
            let tokens = sequence["tokens"] as! [Int]
            #expect((sequence["decompositions"] as! [Object]).count >= 2)
            for reference in sequence["decompositions"] as! [Object] {
                let d = try model.decompose(tokens, position: reference["position"] as! Int, target: reference["target"] as? Int,
                                            heads: reference["heads"] as! Bool)
                #expect(scalarClose(d.logit, reference["logit"] as! Double, tolerance))
                if let before = reference["logit_before_cap"] as? Double {
                    #expect(scalarClose(d.logitBeforeCap ?? d.logit, before, tolerance), "\(fixture.name): logit before the cap")
                }
                #expect((d.logitBeforeCap != nil) == (model.architecture.finalSoftCap != nil))
                let refComponents = reference["components"] as! [Object]
                #expect(d.components.map(\.name) == refComponents.map { $0["name"] as! String }, "\(fixture.name): component names differ")
                for (c, r) in zip(d.components, refComponents) {
                    #expect(c.isDetail == r["detail"] as! Bool)
                    #expect(scalarClose(c.attribution, r["attribution"] as! Double, tolerance), "\(fixture.name) \(c.name) attribution \(c.attribution) vs \(r["attribution"]!)")
                    if let n = r["norm"] as? Double { #expect(scalarClose(c.norm!, n, tolerance), "\(fixture.name) \(c.name) norm") }
                    if let cos = r["cosine"] as? Double { #expect(scalarClose(c.cosine!, cos, tolerance), "\(fixture.name) \(c.name) cosine") }
                }
                // The identity: non-detail attributions (bias rows included) sum to the logit (before any soft-cap).
                let identity = d.attributionError / max(1, abs(d.logitBeforeCap ?? d.logit))
                worstIdentity = max(worstIdentity, identity)
                #expect(identity <= 1e-4, "\(fixture.name): attributions miss the logit by \(d.attributionError)")
                #expect(d.reconstructionError <= 1e-4 * max(1, d.components.compactMap(\.norm).max() ?? 1))
            }
        }
        print("probe parity \(fixture.name) decomposition identity: worst relative error \(worstIdentity)")
    }

    @Test("windows batched into one forward give the numbers of one window per forward", arguments: ["gpt2", "gemma2-bf16", "neox-parallel"])
    func batchedWindows(_ name: String) throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let v = model.architecture.vocabularySize
        var rng = TestRandom(seed: 5)
        // 11 windows of 12 tokens, then 3 of 7: two batches of one length, then a different one.
        let windows = (0..<11).map { _ in (0..<12).map { _ in Int((rng.next() + 1) * 0.5 * Float(v - 1)) } }
            + (0..<3).map { _ in (0..<7).map { _ in Int((rng.next() + 1) * 0.5 * Float(v - 1)) } }
        let plan = try model.ablationPlan(sublayer: .attn, mode: .mean) + model.ablationPlan(sublayer: .head, mode: .zero)
            + model.ablationPlan()
        let one = try model.ablationSweep(plan, on: windows, batch: 1)
        let batched = try model.ablationSweep(plan, on: windows, batch: 8)
        #expect(batched.cleanLoss == one.cleanLoss)
        #expect(batched.positions == one.positions && batched.sequences == 14)
        for (a, b) in zip(batched.entries, one.entries) {
            let m = a.metrics, n = b.metrics
            for (got, ref) in [(m.klMean, n.klMean), (m.klLast, n.klLast), (m.top1Agreement, n.top1Agreement), (m.loss, n.loss)] {
                #expect(abs(got - ref) <= 1e-12 * max(1, abs(ref)), "\(name) \(a.interventions): \(got) vs \(ref)")
            }
        }
    }

    @Test("a sweep equals separate full forward passes")
    func sweepEqualsFullPasses() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("openai-gpt"), threads: 1)
        let tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5]
        let sweep = try model.ablationSweep(sublayer: .attn, mode: .mean, on: tokens)
        let clean = try model.logits(tokens)
        for entry in sweep.entries {
            // Full pass with the intervention, metrics computed here from scratch.
            let ablated = try model.logits(tokens, interventions: entry.interventions)
            var sums = MetricSums()
            let v = model.architecture.vocabularySize
            clean.scalars.withUnsafeBufferPointer { p in
                ablated.scalars.withUnsafeBufferPointer { q in
                    let logZ = (0..<tokens.count).map { Distribution.logSumExp(p.baseAddress! + $0 * v, v) }
                    sums.add(clean: p.baseAddress!, logZClean: logZ, intervened: q.baseAddress!, tokens: tokens, vocabulary: v)
                }
            }
            let full = sums.metrics(cleanLoss: sweep.cleanLoss)
            #expect(abs(full.klMean - entry.metrics.klMean) <= 1e-9)
            #expect(abs(full.loss - entry.metrics.loss) <= 1e-9)
        }
    }
}

@Suite("Probe API errors")
struct ProbeErrorTests {
    @Test("out-of-range layers, heads, positions and targets are refused with their numbers")
    func refusals() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("gpt2"), threads: 1)
        #expect(throws: ModelError.layerOutOfRange(layer: 3, layerCount: 3)) { try model.ablate(.block(layer: 3), on: [1, 2]) }
        #expect(throws: ModelError.headOutOfRange(layer: 0, head: 4, headCount: 4)) { try model.ablate(.head(layer: 0, head: 4), on: [1, 2]) }
        #expect(throws: ModelError.positionOutOfRange(position: -3, length: 2)) { try model.decompose([1, 2], position: -3) }
        #expect(throws: ModelError.targetOutOfRange(target: 128, vocabularySize: 128)) { try model.decompose([1, 2], target: 128) }
        #expect(throws: ModelError.emptyTokens) { try model.logitLens([]) }
    }
}
