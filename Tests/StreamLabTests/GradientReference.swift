import Foundation
@testable import StreamLab

/// A naive Float64 forward pass of a Transformer of any norm placement
/// (pre, post, sandwich, output; sequential or parallel blocks), written from
/// the definitions (plain loops, no kernels, no code
/// shared with `Transformer` or `GradientPass`), used as the independent reference of the
/// finite-difference gradient checks. Parameters are read by slot name from a
/// flat Float64 copy of a `TrainableModel`'s parameters.
struct Float64Transformer {
    let a: Architecture
    let layout: ParameterLayout
    var flat: [Double]

    init(_ model: TrainableModel) {
        a = model.architecture
        layout = model.layout
        flat = model.flatParameters.map { Double($0) }
    }

    /// A perturbation of the stream: `delta` added to element `index` of
    /// `resid_pre` of block `layer` (flattened `[B, T, D]`).
    struct StreamDelta { let layer: Int; let index: Int; let delta: Double }

    func p(_ name: String) -> ArraySlice<Double> {
        guard let s = layout.slot(name) else { fatalError("no parameter \(name)") }
        return flat[s.offset..<(s.offset + s.count)]
    }

    func has(_ name: String) -> Bool { layout.slot(name) != nil }

    /// Mean cross-entropy over the positions with a target >= 0.
    func loss(tokens: [[Int]], targets: [[Int]], streamDelta: StreamDelta? = nil) -> Double {
        var total = 0.0, count = 0
        for (b, seq) in tokens.enumerated() {
            let logits = forward(seq, sequenceIndex: b, streamDelta: streamDelta)
            for (t, target) in targets[b].enumerated() where target >= 0 {
                let row = logits[t]
                let m = row.max()!
                let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
                total += lse - row[target]
                count += 1
            }
        }
        return total / Double(count)
    }

    func matmul(_ x: [[Double]], _ w: ArraySlice<Double>, inputs: Int, outputs: Int, bias: ArraySlice<Double>?) -> [[Double]] {
        let w0 = w.startIndex
        return x.map { row in
            (0..<outputs).map { o in
                var s = bias.map { $0[$0.startIndex + o] } ?? 0
                for i in 0..<inputs { s += row[i] * w[w0 + i * outputs + o] }
                return s
            }
        }
    }

    func norm(_ x: [[Double]], _ prefix: String, rms: Bool? = nil) -> [[Double]] {
        let w = p(prefix + ".weight"), bias = has(prefix + ".bias") ? p(prefix + ".bias") : nil
        let eps = Double(a.normEpsilon), offset = Double(a.normWeightOffset)
        let rms = rms ?? (a.normKind == .rmsNorm)
        return x.map { row in
            let n = Double(row.count)
            let mean = rms ? 0 : row.reduce(0, +) / n
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
            let s = 1 / (variance + eps).squareRoot()
            return row.indices.map { i in
                (row[i] - mean) * s * (offset + w[w.startIndex + i]) + (bias.map { $0[$0.startIndex + i] } ?? 0)
            }
        }
    }

    func activation(_ x: Double) -> Double {
        switch a.activation {
        case .relu: return max(x, 0)
        case .silu: return x / (1 + exp(-x))
        case .geluExact: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .geluTanh: return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        }
    }

    /// Logits `[T][V]` of one sequence.
    func forward(_ tokens: [Int], sequenceIndex b: Int = 0, streamDelta: StreamDelta? = nil) -> [[Double]] {
        let t = tokens.count, d = a.width, f = a.mlpWidth
        let h = a.headCount, kvh = a.keyValueHeadCount, dh = a.headDimension
        let wte = p("embed.weight")
        let scale = Double(a.embeddingScale)
        var x: [[Double]] = tokens.map { id in wte[(wte.startIndex + id * d)..<(wte.startIndex + (id + 1) * d)].map { $0 * scale } }
        if case let .learned(offset) = a.positions {
            let wpe = p("pos_embed.weight")
            for i in 0..<t { for c in 0..<d { x[i][c] += wpe[wpe.startIndex + (i + offset) * d + c] } }
        }
        let placement = a.normPlacement, skip = a.skipConnections
        func add(_ u: [[Double]], _ v: [[Double]]) -> [[Double]] { zip(u, v).map { zip($0, $1).map(+) } }
        for layer in 0..<a.layerCount {
            let pre = "blocks.\(layer)."
            if let sd = streamDelta, sd.layer == layer {
                let row = sd.index / d - b * t, col = sd.index % d
                if row >= 0 && row < t { x[row][col] += sd.delta }
            }
            func attention(_ input: [[Double]]) -> [[Double]] {
                var qkv = matmul(input, p(pre + "attn.qkv.weight"), inputs: d, outputs: a.qkvWidth,
                                 bias: has(pre + "attn.qkv.bias") ? p(pre + "attn.qkv.bias") : nil)
                if let kind = a.queryKeyNorm {
                    for (heads, column, name) in [(h, 0, "q_norm"), (kvh, h * dh, "k_norm")] {
                        let parts = kind == .perHead ? heads : 1, width = kind == .perHead ? dh : heads * dh
                        for i in 0..<t {
                            for part in 0..<parts {
                                let start = column + part * width
                                let normed = norm([Array(qkv[i][start..<(start + width)])], pre + "attn." + name, rms: true)[0]
                                for c in 0..<width { qkv[i][start + c] = normed[c] }
                            }
                        }
                    }
                }
                if let rotary = a.rotary(layer: layer) {
                    let (frequencies, factor) = rotary.frequencies(length: t)
                    let half = rotary.dimensions / 2, interleaved = rotary.pairing == .interleaved
                    for i in 0..<t {
                        for head in 0..<(h + kvh) {
                            for k in 0..<half {
                                let angle = Double(Float(i) * frequencies[k])
                                let c = Double(Float(cos(angle)) * factor), s = Double(Float(sin(angle)) * factor)
                                let first = head * dh + (interleaved ? 2 * k : k), second = first + (interleaved ? 1 : half)
                                let x1 = qkv[i][first], x2 = qkv[i][second]
                                qkv[i][first] = x1 * c - x2 * s
                                qkv[i][second] = x2 * c + x1 * s
                            }
                        }
                    }
                }
                var z = [[Double]](repeating: [Double](repeating: 0, count: h * dh), count: t)
                let window = a.window(layer: layer)
                for head in 0..<h {
                    let kvHead = head / (h / kvh)
                    let qo = head * dh, ko = (h + kvHead) * dh, vo = (h + kvh + kvHead) * dh
                    for i in 0..<t {
                        let first = window == Int.max ? 0 : max(0, i - window + 1)
                        var scores: [Double] = []
                        for j in first...i {
                            var s = 0.0
                            for c in 0..<dh { s += qkv[i][qo + c] * qkv[j][ko + c] }
                            s *= Double(a.attentionScale)
                            if let cap = a.attentionSoftCap.map(Double.init) { s = cap * tanh(s / cap) }
                            scores.append(s)
                        }
                        let m = scores.max()!
                        let e = scores.map { exp($0 - m) }
                        let sum = e.reduce(0, +)
                        for (k, j) in (first...i).enumerated() {
                            for c in 0..<dh { z[i][qo + c] += e[k] / sum * qkv[j][vo + c] }
                        }
                    }
                }
                let out = matmul(z, p(pre + "attn.out.weight"), inputs: h * dh, outputs: d,
                                 bias: has(pre + "attn.out.bias") ? p(pre + "attn.out.bias") : nil)
                return placement.normsWrite ? norm(out, pre + "ln1_post") : out
            }
            func mlp(_ input: [[Double]]) -> [[Double]] {
                let upWidth = a.gatedMLP ? 2 * f : f
                let up = matmul(input, p(pre + "mlp.up.weight"), inputs: d, outputs: upWidth,
                                bias: has(pre + "mlp.up.bias") ? p(pre + "mlp.up.bias") : nil)
                let hidden: [[Double]] = up.map { row in
                    a.gatedMLP ? (0..<f).map { activation(row[$0]) * row[f + $0] } : row.map(activation)
                }
                let out = matmul(hidden, p(pre + "mlp.down.weight"), inputs: f, outputs: d,
                                 bias: has(pre + "mlp.down.bias") ? p(pre + "mlp.down.bias") : nil)
                return placement.normsWrite ? norm(out, pre + "ln2_post") : out
            }
            if a.parallelResidual {
                let ln1 = norm(x, pre + "ln1")
                x = add(add(x, attention(ln1)), mlp(a.sharedParallelNorm ? ln1 : norm(x, pre + "ln2")))
                continue
            }
            let attnOut = attention(placement.normsInput ? norm(x, pre + "ln1") : x)
            let hSum = skip ? add(attnOut, x) : attnOut
            let mid = placement == .post ? norm(hSum, pre + "ln1") : hSum
            let mlpOut = mlp(placement.normsInput ? norm(mid, pre + "ln2") : mid)
            let out = skip ? add(mlpOut, mid) : mlpOut
            x = placement == .post ? norm(out, pre + "ln2") : out
        }
        if a.hasFinalNorm { x = norm(x, "ln_final") }
        let v = a.vocabularySize
        var logits: [[Double]]
        if has("unembed.weight") {
            logits = matmul(x, p("unembed.weight"), inputs: d, outputs: v, bias: nil)
        } else {
            logits = x.map { row in
                (0..<v).map { id in (0..<d).reduce(0.0) { $0 + row[$1] * wte[wte.startIndex + id * d + $1] } }
            }
        }
        if has("unembed.bias") {
            let ub = p("unembed.bias")
            for i in 0..<t { for id in 0..<v { logits[i][id] += ub[ub.startIndex + id] } }
        }
        if let cap = a.finalSoftCap.map(Double.init) { logits = logits.map { $0.map { cap * tanh($0 / cap) } } }
        return logits
    }
}
