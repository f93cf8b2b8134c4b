/// What a run of a model needs in memory, in bytes, worked out before it
/// runs: the checkpoint mapped in place (file pages the kernel may evict and
/// read again), the private weights (norms, biases, packed copies), the
/// activations of a forward pass over B x T tokens, the arrays it records,
/// and the per-thread packing buffers. `Transformer.checkFits` refuses a run
/// that would not fit, with the figures and what would.
public struct MemoryPlan: Sendable, Equatable {
    public var mappedWeights: Int
    public var privateWeights: Int
    public var activations: Int
    public var recording: Int
    public var workspace: Int

    /// Private memory at the peak: everything but the mapped weights.
    public var privatePeak: Int { privateWeights + activations + recording + workspace }
    /// Everything, the mapped weights included.
    public var peak: Int { mappedWeights + privatePeak }

    /// The plan of `architecture` with weights of `mapped` / `privateBytes`
    /// bytes, for `batch` sequences of `length` tokens, recording `kinds`
    /// (kept in memory; `streamed`: handed on as produced, so only the one
    /// array a hook builds for itself is held); `keepsActivations` for a
    /// backward (every block's activations kept, the gradient buffers, one
    /// float per parameter for gradients and one for the transposed weights).
    /// Figures saturate instead of overflowing for absurd configs.
    public init(_ a: Architecture, mappedWeights mapped: Int, privateWeights privateBytes: Int, batch: Int = 1, length: Int,
                recording kinds: Set<HookKind> = [], streamed: Bool = false, keepsActivations: Bool = false, threads: Int = 1) {
        mappedWeights = mapped
        privateWeights = privateBytes
        func bytes(_ floats: Double) -> Int { floats * 4 >= Double(Int.max / 2) ? Int.max / 2 : Int(floats * 4) }
        let n = Double(batch * length), t = Double(length), b = Double(batch), d = Double(a.width)
        let dh = Double(a.headDimension), h = Double(a.headCount), kv = Double(a.keyValueHeadCount)
        let f = Double(a.mlpWidth), v = Double(a.vocabularySize), layers = Double(a.layerCount)
        let up = f * (a.gatedMLP ? 2 : 1)
        // One block's activations (BlockActivations): q|k|v, z, MLP, probabilities, the D-wide buffers, norm statistics.
        var block = n * (Double(a.qkvWidth) + h * dh + up + f) + b * h * t * t + n * 8
        block += n * d * Double(2 + (a.normPlacement.normsWrite ? 2 : 0) + (a.normPlacement == .post ? 2 : 0) + (a.parallelResidual ? 0 : 1))
        if a.queryKeyNorm != nil { block += n * (h + kv) * (dh + 2) }
        if keepsActivations { block += n * d }                               // each block keeps its input
        // The pass: stream, final norm (and its statistics), logits, the two writes, the embedding rows.
        var pass = n * (d * 4 + 2 + Double(a.embeddingWidth) * (a.hasProjection ? 2 : 0) + v)
        if a.queryKeyNorm != nil { pass += n * max(h, kv) * dh }
        if keepsActivations {
            // Gradient buffers (about one more block), dL/dlogits, the parameters' gradients and W^T.
            pass += block + n * d * 4 + n * v * (a.finalSoftCap != nil ? 2 : 1) + 2 * Double(a.parameterCount)
        }
        activations = bytes((keepsActivations ? layers : 1) * block + pass)
        func perLayer(_ kind: HookKind) -> Double {
            switch kind {
            case .embed, .posEmbed, .lnFinalNormalized, .lnFinalScale, .logits: return 0
            case .residPre, .residPost, .residMid, .attnOut, .mlpOut: return n * d
            case .ln1Scale, .ln2Scale, .ln1PostScale, .ln2PostScale: return n
            case .attnPattern: return b * h * t * t
            case .attnResult: return n * h * d
            case .attnZ: return n * h * dh
            case .mlpPost: return n * f
            }
        }
        var recorded = 0.0
        if streamed {
            // Only hook_result is built beside the pass (one layer at a time); the rest is written from its buffers.
            if kinds.contains(.attnResult) { recorded = n * h * d }
        } else {
            for kind in kinds {
                switch kind {
                case .embed, .posEmbed, .lnFinalNormalized: recorded += n * d
                case .lnFinalScale: recorded += n
                case .logits: recorded += n * v
                default: recorded += perLayer(kind) * layers
                }
            }
        }
        recording = bytes(recorded)
        // Per thread: one packed block of B (384 rows x 256 columns) and attention scratch (4 T^2 with a soft-cap).
        workspace = bytes(Double(max(1, threads)) * (384 * 256 + (a.attentionSoftCap != nil ? 4 : 3) * t * t + 4 * t * dh))
    }

    /// Bytes of the machine: physical memory and what a new allocation can
    /// have now (Linux `MemTotal`, `MemAvailable`), when known.
    public static var machine: (total: Int, available: Int)? {
        guard let text = try? FileBytes.read("/proc/meminfo", limit: ReadLimit.json),
              let string = String(validating: text, as: UTF8.self) else { return nil }
        var total: Int?, available: Int?
        for line in string.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let kib = Int(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = kib * 1024 }
            if parts[0] == "MemAvailable:" { available = kib * 1024 }
        }
        guard let total, let available else { return nil }
        return (total, available)
    }

    /// Why the plan does not fit a machine of `total` bytes with `available`
    /// free, or nil when it fits: the private peak must fit what is
    /// available, and the mapped weights with it in physical memory (else
    /// every forward reads the weights from disk again).
    public func problem(total: Int, available: Int) -> String? {
        if privatePeak > available {
            return "needs \(Format.bytes(privatePeak)) of private memory (activations \(Format.bytes(activations)), "
                + "recording \(Format.bytes(recording)), weights \(Format.bytes(privateWeights))) but \(Format.bytes(available)) is available"
        }
        if peak > total {
            return "needs \(Format.bytes(peak)) in all (\(Format.bytes(mappedWeights)) of weights mapped in place + "
                + "\(Format.bytes(privatePeak)) private) but the machine has \(Format.bytes(total))"
        }
        return nil
    }
}

extension Transformer {
    /// The memory plan of a run over `batch` x `length` tokens recording
    /// `kinds` (with `keepsActivations`, a forward and backward).
    public func memoryPlan(batch: Int = 1, length: Int, recording kinds: Set<HookKind> = [], streamed: Bool = false,
                           keepsActivations: Bool = false) -> MemoryPlan {
        MemoryPlan(architecture, mappedWeights: weights.mappedBytes, privateWeights: weights.residentBytes, batch: batch,
                   length: length, recording: kinds, streamed: streamed, keepsActivations: keepsActivations, threads: threads)
    }

    /// Refuses a run whose plan does not fit this machine, before anything
    /// is allocated: the message gives the figures and what would fit (fewer
    /// tokens, fewer recorded kinds). Small plans are not checked.
    public func checkFits(batch: Int = 1, length: Int, recording kinds: Set<HookKind> = [], streamed: Bool = false,
                          keepsActivations: Bool = false) throws {
        let plan = memoryPlan(batch: batch, length: length, recording: kinds, streamed: streamed, keepsActivations: keepsActivations)
        guard plan.privatePeak > 64 << 20 || plan.peak > 1 << 30, let machine = MemoryPlan.machine,
              let problem = plan.problem(total: machine.total, available: machine.available) else { return }
        func fits(_ t: Int, _ k: Set<HookKind>) -> Bool {
            memoryPlan(batch: batch, length: t, recording: k, streamed: streamed, keepsActivations: keepsActivations)
                .problem(total: machine.total, available: machine.available) == nil
        }
        var advice: [String] = []
        if length > 1 && fits(1, kinds) {
            var lo = 1, hi = length
            while lo + 1 < hi { let mid = (lo + hi) / 2; if fits(mid, kinds) { lo = mid } else { hi = mid } }
            advice.append("\(lo) tokens would fit")
        }
        if !kinds.isEmpty && fits(length, []) {
            let heavy = kinds.sorted { $0.rawValue < $1.rawValue }.filter { fits(length, kinds.subtracting([$0])) }
            advice.append("\(length) tokens would fit recording fewer kinds (--hooks" + (heavy.isEmpty ? "" : ", without "
                + heavy.map(\.hookName).joined(separator: ", ")) + ")")
        }
        if advice.isEmpty { advice.append("not even one token fits: the weights alone are too large for this machine") }
        throw ModelError.insufficientMemory("\(batch > 1 ? "\(batch) x " : "")\(length) tokens of this model \(problem); "
                                           + advice.joined(separator: "; "))
    }
}
