import Foundation
import StreamLab

// stream-bench: speed of StreamLab's kernels and probes on random models built
// in memory (no downloads). Each figure is the best of several runs; GFLOP/s
// are reported beside the measured FMA peak of this machine.
//
//   swift run -c release stream-bench                 everything, table on stdout
//   swift run -c release stream-bench --json out.json also write the figures as JSON
//   swift run -c release stream-bench gemm            one group: peak gemm forward sweep lens patch paths memory tokenizer
//   swift run -c release stream-bench tokenizer --corpus FILE --vocab FILE
//   swift run -c release stream-bench big --model DIR [--tokens 64]   a checkpoint on disk (make_big_model.py)

struct Figure {
    let group: String
    let name: String
    let threads: Int
    let seconds: Double
    let gflops: Double?
    let note: String
}

let cores = ProcessInfo.processInfo.activeProcessorCount
var figures: [Figure] = []
var peak: [Int: Double] = [:]

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Best wall time of `repeats` runs after one warm-up.
func time(_ repeats: Int = 5, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = now()
        try body()
        best = min(best, now() - start)
    }
    return best
}

func report(_ f: Figure) {
    figures.append(f)
    var line = f.group.padding(toLength: 9, withPad: " ", startingAt: 0) + f.name.padding(toLength: 34, withPad: " ", startingAt: 0)
    line += " \(f.threads)T " + String(format: "%9.2f ms", f.seconds * 1000)
    if let g = f.gflops {
        line += String(format: " %7.1f GFLOP/s", g)
        if let p = peak[f.threads] { line += String(format: " (%3.0f%% of peak)", 100 * g / p) }
    }
    if !f.note.isEmpty { line += "  " + f.note }
    print(line)
    fflush(stdout)
}

// MARK: - Peak FMA throughput

@inline(never)
func fmaLoop(_ iterations: Int, _ seed: Float) -> Float {
    typealias V = SIMD8<Float>
    let m = V(repeating: -1e-7)
    var c0 = V(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5
    var c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
    for _ in 0..<iterations {
        c0 = c0.addingProduct(c0, m); c1 = c1.addingProduct(c1, m); c2 = c2.addingProduct(c2, m)
        c3 = c3.addingProduct(c3, m); c4 = c4.addingProduct(c4, m); c5 = c5.addingProduct(c5, m)
        c6 = c6.addingProduct(c6, m); c7 = c7.addingProduct(c7, m); c8 = c8.addingProduct(c8, m)
        c9 = c9.addingProduct(c9, m); c10 = c10.addingProduct(c10, m); c11 = c11.addingProduct(c11, m)
    }
    return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).sum()
}

func measurePeak() {
    let iterations = 20_000_000
    for threads in Set([1, cores]).sorted() {
        let seconds = time(3) {
            DispatchQueue.concurrentPerform(iterations: threads) { i in
                let r = fmaLoop(iterations, Float(i))
                if r == 42 { print(r) }
            }
        }
        let gflops = Double(threads * iterations * 12 * 8 * 2) / seconds / 1e9
        peak[threads] = gflops
        report(Figure(group: "peak", name: "FMA throughput (12 chains x 8 lanes)", threads: threads, seconds: seconds, gflops: gflops, note: ""))
    }
}

// MARK: - GEMM with packed weights

func gemm() {
    let shapes: [(String, Int, Int)] = [("768x768", 768, 768), ("768x3072", 768, 3072), ("3072x768", 3072, 768), ("768x50257", 768, 50257)]
    var state: UInt64 = 88172645463325252
    func random(_ n: Int) -> [Float] {
        (0..<n).map { _ in state ^= state << 13; state ^= state >> 7; state ^= state << 17; return Float(state >> 40) / Float(1 << 24) - 0.5 }
    }
    for (name, k, n) in shapes {
        let b = random(k * n)
        let packed = b.withUnsafeBufferPointer { PackedMatrix(rowMajor: $0, rows: k, columns: n) }
        // The same B as a checkpoint stores it, read in place: [in, out] F32 (GPT-2's Conv1D),
        // [out, in] F32 / BF16 / F16 (nn.Linear); the multiply packs it on the fly.
        var bt = [Float](repeating: 0, count: k * n)
        for p in 0..<k { for j in 0..<n { bt[j * k + p] = b[p * n + j] } }
        let stored = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * k * n * 2 + 2 * k * n * 2, alignment: 64)
        let f32In = stored.baseAddress!, f32Out = f32In + 4 * k * n, bf16 = f32Out + 4 * k * n, f16 = bf16 + 2 * k * n
        for i in 0..<(k * n) {
            (f32In + 4 * i).storeBytes(of: b[i], as: Float.self)
            (f32Out + 4 * i).storeBytes(of: bt[i], as: Float.self)
            (bf16 + 2 * i).storeBytes(of: UInt16(bt[i].bitPattern >> 16), as: UInt16.self)
            (f16 + 2 * i).storeBytes(of: Float16(bt[i]).bitPattern, as: UInt16.self)
        }
        let variants: [(String, PackedMatrix)] = [
            ("F32 [in,out] in place", PackedMatrix(stored: [StoredColumns(base: f32In, element: .f32, layout: .rowsAreRows, columns: n, rowStride: n)], rows: k, owner: nil)),
            ("F32 [out,in] in place", PackedMatrix(stored: [StoredColumns(base: f32Out, element: .f32, layout: .columnsAreRows, columns: n, rowStride: k)], rows: k, owner: nil)),
            ("BF16 [out,in] in place", PackedMatrix(stored: [StoredColumns(base: bf16, element: .bf16, layout: .columnsAreRows, columns: n, rowStride: k)], rows: k, owner: nil)),
            ("F16 [out,in] in place", PackedMatrix(stored: [StoredColumns(base: f16, element: .f16, layout: .columnsAreRows, columns: n, rowStride: k)], rows: k, owner: nil)),
        ]
        for m in [64, 128, 512] {
            let a = random(m * k)
            var c = [Float](repeating: 0, count: m * n)
            for threads in Set([1, cores]).sorted() {
                for (label, matrix) in variants {
                    let seconds = time(m * k * n > 100_000_000 ? 3 : 10) {
                        a.withUnsafeBufferPointer { ap in
                            c.withUnsafeMutableBufferPointer { cp in
                                matrix.multiply(ap.baseAddress!, lda: k, m: m, into: cp.baseAddress!, ldc: n, threads: threads)
                            }
                        }
                    }
                    report(Figure(group: "gemm", name: "M=\(m) \(name) \(label)", threads: threads, seconds: seconds,
                                  gflops: 2.0 * Double(m * k * n) / seconds / 1e9, note: ""))
                }
            }
        }
        stored.deallocate()
        for m in [1, 16, 64, 128, 512] {
            let a = random(m * k)
            var c = [Float](repeating: 0, count: m * n)
            for threads in Set([1, cores]).sorted() {
                let repeats = m * k * n > 100_000_000 ? 3 : 10
                let seconds = time(repeats) {
                    a.withUnsafeBufferPointer { ap in
                        c.withUnsafeMutableBufferPointer { cp in
                            packed.multiply(ap.baseAddress!, lda: k, m: m, into: cp.baseAddress!, ldc: n, threads: threads)
                        }
                    }
                }
                report(Figure(group: "gemm", name: "M=\(m) \(name)", threads: threads, seconds: seconds,
                              gflops: 2.0 * Double(m * k * n) / seconds / 1e9, note: ""))
            }
        }
    }
}

// MARK: - Model workloads

func forwardFlops(_ a: Architecture, tokens t: Int) -> Double {
    let d = Double(a.width), l = Double(a.layerCount), f = Double(a.mlpWidth), tt = Double(t)
    let heads = Double(a.headCount * a.headDimension), up = f * (a.gatedMLP ? 2 : 1)
    let perLayer = 2 * tt * d * Double(a.qkvWidth) + 2 * tt * heads * d + 2 * tt * d * up + 2 * tt * f * d + 2 * 2 * tt * tt / 2 * heads
    return l * perLayer + 2 * tt * d * Double(a.vocabularySize)
}

func model() throws {
    let a = Architecture.gpt2Small
    let base = try Transformer.random(a, seed: 1)
    for t in [128, 512] {
        let tokens = (0..<t).map { ($0 * 7919) % a.vocabularySize }
        for threads in Set([1, cores]).sorted() {
            var m = base
            m.threads = threads
            let plain = try time(3) { _ = try m.run(tokens, recording: [.logits]) }
            report(Figure(group: "forward", name: "GPT-2 small, \(t) tokens, all logits", threads: threads, seconds: plain,
                          gflops: forwardFlops(a, tokens: t) / plain / 1e9, note: ""))
            let full = try time(3) { _ = try m.run(tokens, recording: .all) }
            report(Figure(group: "forward", name: "GPT-2 small, \(t) tokens, full recording", threads: threads, seconds: full, gflops: nil,
                          note: String(format: "%+.1f%% over plain", 100 * (full / plain - 1))))
            if t == 128 {
                let sweep = try time(2) { _ = try m.ablationSweep(sublayer: .block, mode: .skip, on: tokens) }
                report(Figure(group: "sweep", name: "skip each of 12 blocks, \(t) tokens", threads: threads, seconds: sweep, gflops: nil,
                              note: String(format: "%.2fx the time of 13 plain forwards", sweep / (13 * plain))))
                let lens = try time(3) { _ = try m.logitLens(tokens) }
                report(Figure(group: "lens", name: "logit lens, 13 reads, \(t) tokens", threads: threads, seconds: lens, gflops: nil,
                              note: String(format: "%.2fx one plain forward", lens / plain)))
            }
        }
    }
}

/// The patching grid, attribution patching and KV-cache generation on the
/// GPT-2-small shape: the clean input is 64 tokens, the corrupted one differs
/// in 4 of them; the metric is the last position's logit difference.
func patching() throws {
    let a = Architecture.gpt2Small
    var m = try Transformer.random(a, seed: 1)
    m.threads = cores
    let t = 64
    let clean = (0..<t).map { ($0 * 7919) % a.vocabularySize }
    var corrupted = clean
    for i in [5, 21, 40, 58] { corrupted[i] = (clean[i] + 1000) % a.vocabularySize }
    let answer = 11, wrong = 13
    let plain = try time(3) { _ = try m.run(corrupted, recording: [.logits]) }
    report(Figure(group: "patch", name: "one forward, \(t) tokens", threads: cores, seconds: plain,
                  gflops: forwardFlops(a, tokens: t) / plain / 1e9, note: ""))
    let grid = try time(1) {
        _ = try m.patch(clean: clean, corrupted: corrupted, answer: answer, wrong: wrong, hook: .residPre)
    }
    report(Figure(group: "patch", name: "exact resid_pre grid, 12 x \(t)", threads: cores, seconds: grid, gflops: nil,
                  note: String(format: "%.1f forwards' time (%d entries)", grid / plain, a.layerCount * t)))
    let attribution = try time(3) {
        _ = try m.patch(clean: clean, corrupted: corrupted, answer: answer, wrong: wrong, hook: .residPre, method: .attribution)
    }
    report(Figure(group: "patch", name: "attribution resid_pre grid, 12 x \(t)", threads: cores, seconds: attribution, gflops: nil,
                  note: String(format: "%.2f forwards' time", attribution / plain)))
    let prompt = Array(clean.prefix(16)), new = 64
    for threads in Set([1, cores]).sorted() {
        m.threads = threads
        let seconds = try time(3) { _ = try m.generate(prompt, GenerationSettings(maxTokens: new)) }
        report(Figure(group: "generate", name: "greedy, 16-token prompt + \(new) tokens", threads: threads, seconds: seconds,
                      gflops: nil, note: String(format: "%.0f tokens/s", Double(new) / seconds)))
    }
}

/// The path-length spectrum on the GPT-2-small shape at 128 tokens against
/// one backward pass (forward, loss and the stream gradients).
func pathSpectrum() throws {
    let a = Architecture.gpt2Small
    var m = try Transformer.random(a, seed: 1)
    m.threads = cores
    let t = 128, n = 2 * a.layerCount
    let tokens = (0..<t).map { ($0 * 7919) % a.vocabularySize }
    let pass = GradientPass(a, batch: 1, length: t, threads: cores)
    pass.setSequence(tokens)
    let backward = time(3) {
        pass.forward(m)
        _ = pass.backward(m, into: nil)
    }
    report(Figure(group: "paths", name: "one backward (with its forward), \(t) tokens", threads: cores, seconds: backward,
                  gflops: nil, note: ""))
    let spectrum = try time(1) { _ = try m.paths(on: [tokens]) }
    report(Figure(group: "paths", name: "exact path spectrum, \(n) units, \(t) tokens", threads: cores, seconds: spectrum,
                  gflops: nil, note: String(format: "%.1f backwards' time (goal: at most n + 1 = %d)", spectrum / backward, n + 1)))
}

/// Peak resident memory of full recording on 1024 tokens, measured in a child
/// process so earlier work does not count.
/// A checkpoint on disk (the 7B-shaped one of Benchmarks/make_big_model.py):
/// load time, one forward over `tokens` tokens on 1 and all threads, and peak RSS.
func big(model path: String, tokens t: Int) throws {
    let url = URL(fileURLWithPath: path)
    let start = now()
    let model = try Transformer.load(from: url, threads: cores)     // one load: a second mapping would count twice in RSS
    let load = now() - start
    let a = model.architecture
    report(Figure(group: "big", name: "load (page cache warm)", threads: cores, seconds: load, gflops: nil,
                  note: "\(Format.bytes(model.weights.mappedBytes)) mapped in place, \(Format.bytes(model.weights.residentBytes)) private"))
    let tokens = (0..<t).map { ($0 * 7919) % a.vocabularySize }
    for threads in Set([1, cores]).sorted(by: >) {
        var m = model
        m.threads = threads
        let seconds = try time(1) { _ = try m.run(tokens, recording: [.logits]) }
        report(Figure(group: "big", name: "forward \(t) tokens, all logits", threads: threads, seconds: seconds,
                      gflops: forwardFlops(a, tokens: t) / seconds / 1e9, note: ""))
    }
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    report(Figure(group: "big", name: "peak RSS", threads: cores, seconds: 0, gflops: nil,
                  note: Format.bytes(Int(usage.ru_maxrss) * 1024)))
}

func memory() throws {
    if CommandLine.arguments.contains("--child-memory") {
        let a = Architecture.gpt2Small
        let m = try Transformer.random(a, seed: 1)
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        let weights = Double(usage.ru_maxrss) / 1024
        let tokens = (0..<1024).map { ($0 * 7919) % a.vocabularySize }
        let run = try m.run(tokens, recording: .all)
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        let recorded = run.arrays.values.reduce(0) { $0 + $1.count } * 4
        print(String(format: "%.0f %.0f %.0f", weights, Double(usage.ru_maxrss) / 1024, Double(recorded) / 1048576))
        return
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = ["memory", "--child-memory"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    process.waitUntilExit()
    let parts = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    guard parts.count == 3 else { return }
    report(Figure(group: "memory", name: "GPT-2 small, full recording, 1024 tok", threads: cores, seconds: 0, gflops: nil,
                  note: String(format: "peak RSS %.0f MiB (weights alone %.0f MiB, recorded arrays %.0f MiB)", parts[1], parts[0], parts[2])))
}

func tokenizer(corpus: String?, vocab: String?) throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let corpusURL = URL(fileURLWithPath: corpus ?? root.appendingPathComponent("Fixtures/corpora/shakespeare-train.txt").path)
    let vocabURL = URL(fileURLWithPath: vocab ?? root.appendingPathComponent("Fixtures/tokenizers/gpt2.tiktoken").path)
    let (mbps, tokens) = try runTokenizerBenchmark(corpus: corpusURL, vocabulary: vocabURL)
    if CommandLine.arguments.contains("tokenizer") && (corpus != nil || vocab != nil) {
        print("{\"mb_per_s\": \(mbps), \"tokens\": \(tokens)}")
        return
    }
    report(Figure(group: "tokenize", name: "GPT-2 BPE, shakespeare-train (4.8 MB)", threads: 1, seconds: 0, gflops: nil,
                  note: String(format: "%.1f MB/s, %d tokens", mbps, tokens)))
}

// MARK: - Main

var arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(i...(i + 1)) }
    return arguments[i + 1]
}
let jsonPath = option("--json")
let bigModel = option("--model"), bigTokens = Int(option("--tokens") ?? "64") ?? 64
let corpus = option("--corpus"), vocab = option("--vocab")
let groups = Set(arguments.filter { !$0.hasPrefix("--") })
func wants(_ g: String) -> Bool { groups.isEmpty || groups.contains(g) }


StreamLab.keepLargeBuffersForReuse()
do {
    if groups == ["tokenizer"] { try tokenizer(corpus: corpus, vocab: vocab); exit(0) }
    if groups == ["memory"] && CommandLine.arguments.contains("--child-memory") { try memory(); exit(0) }
    print("stream-bench on \(cores) cores; best of several runs")
    measurePeak()
    if wants("gemm") { gemm() }
    if wants("forward") || wants("sweep") || wants("lens") { try model() }
    if wants("patch") { try patching() }
    if wants("paths") { try pathSpectrum() }
    if wants("memory") { try memory() }
    if groups.contains("big") {
        guard let bigModel else { throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "big needs --model DIR (Benchmarks/make_big_model.py writes one)"]) }
        try big(model: bigModel, tokens: bigTokens)
    }
    if wants("tokenizer") { try tokenizer(corpus: corpus, vocab: vocab) }
    if let jsonPath {
        let items = figures.map { f -> JSONOutput in
            .object([("group", .string(f.group)), ("name", .string(f.name)), ("threads", .int(f.threads)),
                     ("seconds", .double(f.seconds)), ("gflops", f.gflops.map(JSONOutput.double) ?? .null), ("note", .string(f.note))])
        }
        let peaks = peak.sorted { $0.key < $1.key }.map { JSONOutput.object([("threads", .int($0.key)), ("gflops", .double($0.value))]) }
        try AtomicFile.write(JSONOutput.object([("peak", .array(peaks)), ("figures", .array(items))]).serialized() + "\n", to: jsonPath)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
