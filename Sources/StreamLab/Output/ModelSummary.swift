#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `stream-probe info` shows about a loaded model: architecture facts in
/// words, sizes, and what it costs in memory.
public struct ModelSummary: ProbeReport {
    public let path: String
    public let architecture: Architecture
    public let parameterCount: Int
    public let dtypes: [String]
    public let fileCount: Int
    /// Bytes of weights the loaded model keeps in private memory (norms, biases).
    public let residentBytes: Int
    /// Bytes of weights read straight from the memory-mapped checkpoint, in their stored dtype.
    public let mappedBytes: Int
    /// The memory plan of one forward over `planTokens` tokens recording every hook point.
    public let plan: MemoryPlan
    public let planTokens: Int
    /// The machine's physical and available memory, when known.
    public let machine: (total: Int, available: Int)?
    public let unusedTensors: [String]
    /// Whether the weights were loaded; false when the model does not fit in
    /// memory and was described from its config and checkpoint headers.
    public let loaded: Bool
    /// Memory available when a model did not fit.
    public let availableBytes: Int?

    public init(path: String, model: Transformer, report: LoadReport) {
        self.path = path
        architecture = model.architecture
        parameterCount = report.storedParameterCount
        dtypes = report.dtypes
        fileCount = report.fileCount
        residentBytes = model.weights.residentBytes
        mappedBytes = model.weights.mappedBytes
        unusedTensors = report.unusedTensors
        loaded = true
        availableBytes = nil
        planTokens = min(model.architecture.maxPositions, 2048)
        plan = model.memoryPlan(length: planTokens, recording: .all)
        machine = MemoryPlan.machine
    }

    /// A model that was not loaded: `residentBytes` is what loading would take.
    public init(path: String, architecture: Architecture, report: LoadReport, availableBytes: Int?) {
        self.path = path
        self.architecture = architecture
        parameterCount = architecture.parameterCount      // what config.json implies (tensors not validated)
        dtypes = report.dtypes
        fileCount = report.fileCount
        residentBytes = 0
        let elementSize = report.dtypes.contains("F32") && report.dtypes.count == 1 ? 4 : 2
        mappedBytes = architecture.parameterCount.multipliedReportingOverflow(by: elementSize).overflow
            ? Int.max : architecture.parameterCount * elementSize
        unusedTensors = report.unusedTensors
        loaded = false
        self.availableBytes = availableBytes
        planTokens = min(architecture.maxPositions, 2048)
        plan = MemoryPlan(architecture, mappedWeights: mappedBytes, privateWeights: 0, length: planTokens, recording: .all)
        machine = MemoryPlan.machine
    }

    /// The summary of the model directory `directory` (named `path` in the
    /// report): loaded when it fits in memory, else described from its config
    /// and checkpoint headers with the memory it would need.
    public static func of(directory: URL, path: String, threads: Int? = nil) throws -> ModelSummary {
        do {
            let (model, report) = try Transformer.loadWithReport(from: directory, threads: threads)
            return ModelSummary(path: path, model: model, report: report)
        } catch LoadError.insufficientMemory(_, _, let available) {
            let (architecture, report) = try Transformer.describe(directory: directory)
            return ModelSummary(path: path, architecture: architecture, report: report, availableBytes: available)
        }
    }

    /// Human-readable (label, value) rows.
    public var rows: [(String, String)] {
        let a = architecture
        let activation: String
        switch a.activation {
        case .geluExact: activation = "GELU (exact)"
        case .geluTanh: activation = "GELU (tanh approximation)"
        case .relu: activation = "ReLU"
        case .silu: activation = "SiLU"
        }
        var positions: String
        switch a.positions {
        case let .learned(offset): positions = "learned, \(a.maxPositions) positions" + (offset != 0 ? " (offset \(offset))" : "")
        case let .rotary(r):
            positions = "rotary on \(r.dimensions) of \(a.headDimension) head dims, \(r.summary)"
            if let local = a.localRotary { positions += "; local layers: \(local.summary)" }
            positions += "; max \(a.maxPositions) positions"
        }
        var heads = "\(a.headCount) x \(a.headDimension) dims"
        if a.keyValueHeadCount != a.headCount {
            heads += a.keyValueHeadCount == 1 ? ", multi-query (1 key-value head)" : ", grouped-query (\(a.keyValueHeadCount) key-value heads)"
        }
        let defaultScale = 1 / Float(a.headDimension).squareRoot()
        if abs(a.attentionScale - defaultScale) > 1e-6 * defaultScale {
            heads += ", scores scaled by \(Format.general(Double(a.attentionScale)))"
        }
        if let q = a.queryKeyNorm { heads += ", RMSNorm on queries and keys (\(q.rawValue))" }
        if let c = a.attentionSoftCap { heads += ", scores soft-capped at \(Format.general(Double(c)))" }
        let placement: String
        switch a.normPlacement {
        case .pre: placement = "Pre-Norm x + f(norm(x))"
        case .post: placement = "Post-Norm norm(x + f(x))"
        case .sandwich: placement = "Sandwich-Norm x + norm(f(norm(x)))"
        case .output: placement = "Output-Norm x + norm(f(x))"
        }
        var norm = "\(placement), \(a.normKind.rawValue)" + (a.normWeightOffset != 0 ? " scaled by (\(Format.general(Double(a.normWeightOffset))) + w)" : "")
            + ", eps \(a.normEpsilon)" + (a.hasFinalNorm ? ", final norm" : ", no final norm")
        if a.sharedParallelNorm { norm += ", one norm shared by attention and MLP" }
        var layers = String(a.layerCount)
        if a.layerKinds.contains(.local), let w = a.slidingWindow {
            let local = a.layerKinds.filter { $0 == .local }.count
            layers += a.layerKinds.contains(.global)
                ? ": \(local) local (window \(w)), \(a.layerCount - local) global, pattern \(a.layerKinds.map { $0 == .local ? "L" : "G" }.joined())"
                : ", all local (sliding window \(w))"
        }
        var embedding = String(a.width) + (a.hasProjection ? " (embeddings \(a.embeddingWidth), project in/out)" : "")
        if a.embeddingScale != 1 { embedding += ", embeddings scaled by \(Format.general(Double(a.embeddingScale)))" }
        var rows: [(String, String)] = [
            ("model", path),
            ("model_type", a.modelType),
            ("norm", norm),
            ("layers", layers),
            ("width", embedding),
            ("heads", heads),
            ("mlp", "\(a.mlpWidth), \(a.gatedMLP ? "gated (\(activation) x linear)" : activation)"),
            ("positions", positions),
            ("residual", a.parallelResidual ? (a.sharedParallelNorm ? "parallel (x + attn(ln1 x) + mlp(ln1 x))" : "parallel (x + attn(ln1 x) + mlp(ln2 x))") : "sequential"),
            ("biases", [a.qkvBias ? "qkv" : nil, a.outputBias ? "attn out" : nil, a.mlpBias ? "mlp" : nil]
                .compactMap { $0 }.joined(separator: ", ").ifEmpty("none")),
            ("unembedding", (a.tiedEmbeddings ? "tied to the token embedding" : "separate matrix") + (a.unembeddingBias ? ", with bias" : "")
                + (a.finalSoftCap.map { ", logits soft-capped at \(Format.general(Double($0)))" } ?? "")),
            ("vocabulary", Format.count(a.vocabularySize)),
            ("parameters", Format.count(parameterCount)),
            ("dtype", dtypes.joined(separator: ", ") + " on disk, computed in F32"),
            ("files", fileCount == 1 ? "1 safetensors file" : "\(fileCount) safetensors shards"),
            loaded
                ? ("weights", Format.bytes(mappedBytes) + " read in place from the memory map in their stored dtype (paged in as used, "
                    + "packed 256 rows at a time for each multiply) + " + Format.bytes(residentBytes) + " private (norms, biases)")
                : ("weights", "need about " + Format.bytes(mappedBytes) + " of memory to stay mapped; the machine has "
                    + (availableBytes.map { Format.bytes($0) } ?? "an unknown amount") + ": too large to load here"
                    + " (described from config.json and the checkpoint headers; other commands refuse it)"),
            ("memory plan", "\(planTokens) tokens recording every hook: activations \(Format.bytes(plan.activations)), "
                + "recording \(Format.bytes(plan.recording)), packing buffers \(Format.bytes(plan.workspace)); peak "
                + "\(Format.bytes(plan.peak)) with the mapped weights"
                + (machine.map { "; this machine: \(Format.bytes($0.total)), \(Format.bytes($0.available)) available" } ?? "")),
        ]
        if !unusedTensors.isEmpty {
            rows.append(("unused tensors", unusedTensors.prefix(5).joined(separator: ", ") + (unusedTensors.count > 5 ? ", ... (\(unusedTensors.count))" : "")))
        }
        return rows
    }

    public func json() -> JSONOutput {
        let a = architecture
        var positions: [(String, JSONOutput)] = []
        switch a.positions {
        case let .learned(offset): positions = [("kind", .string("learned")), ("offset", .int(offset))]
        case let .rotary(r): positions = rotaryJSON(r)
        }
        func rotaryJSON(_ r: Rotary) -> [(String, JSONOutput)] {
            [("kind", .string("rotary")), ("dimensions", .int(r.dimensions)), ("base", .float(r.base)),
             ("pairing", .string(r.pairing.rawValue)), ("scaling", .string(r.scaling.name))]
        }
        return .object([
            ("model", .string(path)), ("model_type", .string(a.modelType)),
            ("norm_placement", .string(a.normPlacement.rawValue)), ("norm", .string(a.normKind.rawValue)),
            ("norm_epsilon", .float(a.normEpsilon)), ("final_norm", .bool(a.hasFinalNorm)),
            ("layers", .int(a.layerCount)), ("width", .int(a.width)), ("embedding_width", .int(a.embeddingWidth)),
            ("heads", .int(a.headCount)), ("key_value_heads", .int(a.keyValueHeadCount)),
            ("head_dim", .int(a.headDimension)), ("mlp_width", .int(a.mlpWidth)),
            ("activation", .string(a.activation.rawValue)), ("gated_mlp", .bool(a.gatedMLP)),
            ("positions", .object(positions)), ("max_positions", .int(a.maxPositions)),
            ("sliding_window", a.slidingWindow.map { .int($0) } ?? .null),
            ("layer_kinds", .strings(a.layerKinds.map(\.rawValue))),
            ("local_positions", a.localRotary.map { .object(rotaryJSON($0)) } ?? .null),
            ("norm_weight_offset", .float(a.normWeightOffset)), ("embedding_scale", .float(a.embeddingScale)),
            ("attention_scale", .float(a.attentionScale)),
            ("query_key_norm", a.queryKeyNorm.map { .string($0.rawValue) } ?? .null),
            ("attention_soft_cap", a.attentionSoftCap.map { .float($0) } ?? .null),
            ("final_soft_cap", a.finalSoftCap.map { .float($0) } ?? .null),
            ("shared_parallel_norm", .bool(a.sharedParallelNorm)), ("unembedding_bias", .bool(a.unembeddingBias)),
            ("parallel_residual", .bool(a.parallelResidual)), ("tied_embeddings", .bool(a.tiedEmbeddings)),
            ("vocab_size", .int(a.vocabularySize)), ("parameters", .int(parameterCount)),
            ("dtypes", .strings(dtypes)), ("files", .int(fileCount)),
            ("loaded", .bool(loaded)), ("resident_bytes", .int(residentBytes)), ("mapped_bytes", .int(mappedBytes)),
            ("memory_plan", .object([("tokens", .int(planTokens)), ("mapped_weights", .int(plan.mappedWeights)),
                                     ("private_weights", .int(plan.privateWeights)), ("activations", .int(plan.activations)),
                                     ("recording", .int(plan.recording)), ("workspace", .int(plan.workspace)), ("peak", .int(plan.peak))])),
            ("machine_bytes", machine.map { .int($0.total) } ?? .null),
            ("available_bytes", availableBytes.map { .int($0) } ?? .null),
            ("unused_tensors", .strings(unusedTensors)),
        ])
    }
}

extension ModelSummary {
    /// Aligned `label  value` lines.
    public func table() -> String {
        let width = rows.map { $0.0.count }.max() ?? 0
        return rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count + 2) + Format.visible($0.1) + "\n" }.joined()
    }

    public func csv() -> String { keyValueCSV(rows) }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
