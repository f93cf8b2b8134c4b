#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What loading found besides the model: facts for `stream-probe info`.
public struct LoadReport: Sendable {
    /// Storage dtypes of the checkpoint's tensors.
    public let dtypes: [String]
    /// Number of checkpoint files (shards).
    public let fileCount: Int
    /// Stored parameters of the model (tied ones once; skipped buffers and vision towers not counted).
    public let storedParameterCount: Int
    /// Checkpoint tensors the family mapping did not use (reported, not fatal).
    public let unusedTensors: [String]
}

extension Transformer {
    /// Loads a Hugging Face model directory: `config.json` plus
    /// `model.safetensors` or sharded safetensors with their index.
    public static func load(from directory: URL, threads: Int? = nil) throws -> Transformer {
        try loadWithReport(from: directory, threads: threads).model
    }

    /// `load`, plus what the loader saw (dtypes, shards, unused tensors).
    public static func loadWithReport(from directory: URL, threads: Int? = nil) throws -> (model: Transformer, report: LoadReport) {
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw LoadError.missingFile(path: directory.path, what: "model directory")
        }
        guard (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) != nil else {
            throw LoadError.notADirectory(path: directory.path)
        }
        let config = try ModelConfig(url: directory.appendingPathComponent("config.json"))
        let architecture = try architecture(config)
        let needed = architecture.estimatedWeightBytes
        if let available = MemoryInfo.availableBytes, needed > available {
            throw LoadError.insufficientMemory(directory: directory.path, needed: needed, available: available)
        }
        let checkpoint = try Checkpoint(directory: directory)
        guard let mapping = Families.mapping(for: architecture.modelType) else {
            throw LoadError.unsupportedModelType(file: config.file, modelType: architecture.modelType,
                                                 supported: Families.supportedModelTypes)
        }
        let weights = try mapping.weights(architecture, from: WeightSource(checkpoint: checkpoint))
        let model = try Transformer(architecture: architecture, weights: weights, threads: threads)
        // Every parameter was read with its exact shape, so the architecture's
        // count is the stored one (tied matrices once; mask buffers, rotary
        // caches and a vision tower, which are skipped, not counted).
        let report = LoadReport(
            dtypes: checkpoint.dtypes.map(\.rawValue).sorted(), fileCount: checkpoint.files.count,
            storedParameterCount: architecture.parameterCount, unusedTensors: checkpoint.unusedNames)
        return (model, report)
    }

    /// What a model directory holds, from its config and the checkpoint
    /// headers, without reading any weight (for a model too large to load):
    /// the architecture and what loading would report (every stored tensor
    /// counted; none reported unused).
    public static func describe(directory: URL) throws -> (architecture: Architecture, report: LoadReport) {
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw LoadError.missingFile(path: directory.path, what: "model directory")
        }
        let config = try ModelConfig(url: directory.appendingPathComponent("config.json"))
        let architecture = try architecture(config)
        let checkpoint = try Checkpoint(directory: directory)
        let stored = checkpoint.names.reduce(0) { $0 + (checkpoint.info($1)?.elementCount ?? 0) }
        return (architecture, LoadReport(dtypes: checkpoint.dtypes.map(\.rawValue).sorted(), fileCount: checkpoint.files.count,
                                         storedParameterCount: stored, unusedTensors: []))
    }

    /// The architecture a config describes, without reading any weights.
    public static func architecture(_ config: ModelConfig) throws -> Architecture {
        let modelType = try config.string("model_type")
        guard let mapping = Families.mapping(for: modelType) else {
            throw LoadError.unsupportedModelType(file: config.file, modelType: modelType,
                                                 supported: Families.supportedModelTypes)
        }
        let architecture = try mapping.architecture(config, modelType: modelType)
        if let problem = architecture.validationProblem() {
            throw LoadError.malformedConfig(file: config.file, reason: problem)
        }
        return architecture
    }
}

extension Architecture {
    /// Private memory the loaded weights take: every parameter as float32 in
    /// packed panels, plus the packed copy of a tied unembedding. Checked
    /// against the machine before any weight is read.
    public var estimatedWeightBytes: Int {
        let (params, overflow) = parameterCount.multipliedReportingOverflow(by: 4)
        let tied = tiedEmbeddings ? vocabularySize.multipliedReportingOverflow(by: embeddingWidth * 4).partialValue : 0
        return overflow ? Int.max : params &+ tied
    }
}

/// What the machine has.
public enum MemoryInfo {
    /// Memory available to a new allocation (Linux `MemAvailable`), if known.
    public static var availableBytes: Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kib = Int(parts[1]) { return kib * 1024 }
        }
        return nil
    }
}
