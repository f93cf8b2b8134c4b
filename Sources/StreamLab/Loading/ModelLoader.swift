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
        // The weights are read in place: they need physical memory to stay
        // mapped (else every forward reads them from disk again), not a copy.
        // What config.json implies is checked before the checkpoint is opened.
        let implied = architecture.parameterCount.multipliedReportingOverflow(by: 2)
        if let machine = MemoryPlan.machine, implied.overflow || implied.partialValue > machine.total {
            throw LoadError.insufficientMemory(directory: directory.path, needed: implied.overflow ? Int.max : implied.partialValue,
                                               available: machine.total)
        }
        let checkpoint = try Checkpoint(directory: directory)
        let needed = checkpoint.byteCount
        if let machine = MemoryPlan.machine, needed > machine.total {
            throw LoadError.insufficientMemory(directory: directory.path, needed: needed, available: machine.total)
        }
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


