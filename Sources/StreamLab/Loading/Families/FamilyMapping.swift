/// One model family's mapping from a Hugging Face config and checkpoint names
/// to `Architecture` and `Weights`. All of a family's quirks live in its one
/// conforming type.
protocol FamilyMapping {
    /// `model_type` values this mapping reads.
    static var modelTypes: [String] { get }
    /// The architecture a config describes.
    static func architecture(_ config: ModelConfig, modelType: String) throws -> Architecture
    /// The weights, read from the checkpoint with strict shape checks.
    static func weights(_ architecture: Architecture, from source: WeightSource) throws -> Weights
}

/// Every supported family.
enum Families {
    nonisolated(unsafe) static let all: [FamilyMapping.Type] = [GPT2Mapping.self, OpenAIGPTMapping.self, LlamaMapping.self,
                                            NeoXMapping.self, OPTMapping.self]
    static var supportedModelTypes: [String] { all.flatMap { $0.modelTypes } }

    static func mapping(for modelType: String) -> FamilyMapping.Type? {
        all.first { $0.modelTypes.contains(modelType) }
    }
}

/// Reads named tensors from a checkpoint into the layouts `Transformer` uses.
/// Linear weights come either as `[out, in]` (`nn.Linear`) or as `[in, out]`
/// (GPT-2's `Conv1D`); both end up packed as `[in, out]`.
struct WeightSource {
    let checkpoint: Checkpoint
    /// Prepended to every name (e.g. "transformer.").
    var prefix: String = ""

    enum Layout { case outIn, inOut }

    func floats(_ name: String, _ shape: [Int]) throws -> [Float] {
        try checkpoint.floats(prefix + name, shape: shape)
    }

    func has(_ name: String) -> Bool { checkpoint.contains(prefix + name) }

    func vector(_ name: String, _ count: Int) throws -> [Float] { try floats(name, [count]) }

    /// An embedding table `[rows, width]`, from the memory map when possible.
    func table(_ name: String, rows: Int, width: Int) throws -> FloatTable {
        try checkpoint.table(prefix + name, rows: rows, width: width)
    }

    /// A weight matrix as row-major `[in, out]`.
    func matrix(_ name: String, layout: Layout, inputs: Int, outputs: Int) throws -> [Float] {
        switch layout {
        case .inOut:
            return try floats(name, [inputs, outputs])
        case .outIn:
            let w = try floats(name, [outputs, inputs])
            return Self.transpose(w, rows: outputs, columns: inputs)
        }
    }

    /// An affine map; `bias` nil for none. Packs straight from the stored
    /// layout (no intermediate transpose).
    func linear(_ weight: String, bias: String?, layout: Layout, inputs: Int, outputs: Int) throws -> Linear {
        let b = try bias.map { try vector($0, outputs) }
        switch layout {
        case .inOut:
            return Self.linear(try floats(weight, [inputs, outputs]), inputs: inputs, outputs: outputs, bias: b)
        case .outIn:
            let w = try floats(weight, [outputs, inputs])
            let packed = w.withUnsafeBufferPointer { PackedMatrix(transposed: $0, rows: inputs, columns: outputs) }
            return Linear(weight: packed, bias: b)
        }
    }

    /// Packs a row-major `[in, out]` matrix.
    static func linear(_ w: [Float], inputs: Int, outputs: Int, bias: [Float]?) -> Linear {
        let packed = w.withUnsafeBufferPointer { PackedMatrix(rowMajor: $0, rows: inputs, columns: outputs) }
        return Linear(weight: packed, bias: bias)
    }

    /// Several `nn.Linear` maps on the same input fused into one: the
    /// weights `{prefix}{name}.weight` (`[out_k, in]`) stacked along outputs,
    /// with their `.bias` vectors when `bias` is set. E.g. q | k | v.
    func fused(_ prefix: String, _ names: [String], outputs: [Int], inputs: Int, bias: Bool) throws -> Linear {
        var stacked: [Float] = []                                      // [sum out_k, in]
        var biases: [Float] = []
        for (name, out) in zip(names, outputs) {
            stacked += try floats(prefix + name + ".weight", [out, inputs])
            if bias { biases += try vector(prefix + name + ".bias", out) }
        }
        let total = outputs.reduce(0, +)
        let packed = stacked.withUnsafeBufferPointer { PackedMatrix(transposed: $0, rows: inputs, columns: total) }
        return Linear(weight: packed, bias: bias ? biases : nil)
    }

    static func transpose(_ w: [Float], rows: Int, columns: Int) -> [Float] {
        var t = [Float](repeating: 0, count: w.count)
        for r in 0..<rows { for c in 0..<columns { t[c * rows + r] = w[r * columns + c] } }
        return t
    }

    /// A norm's parameters: weight always, bias when `bias` is given.
    func norm(_ weight: String, bias: String?, width: Int) throws -> NormWeights {
        NormWeights(weight: try vector(weight, width), bias: try bias.map { try vector($0, width) })
    }

    /// The unembedding `[E, V]`: the checkpoint's `name` (`[V, E]`, no prefix)
    /// when untied or when the file carries it anyway, else the transposed
    /// token embedding `[V, E]`.
    func unembedding(_ name: String, embedding: FloatTable, architecture a: Architecture) throws -> Linear {
        var head = self
        head.prefix = ""
        let e = a.embeddingWidth, v = a.vocabularySize
        if !a.tiedEmbeddings || head.has(name) {
            return try head.linear(name, bias: nil, layout: .outIn, inputs: e, outputs: v)
        }
        return Linear(weight: PackedMatrix(transposed: embedding.base, rows: e, columns: v, rowStride: e), bias: nil)
    }

    /// Marks known non-weights (mask buffers, rotary caches) as used.
    func ignore(where matches: (String) -> Bool) {
        for name in checkpoint.names where matches(name) { checkpoint.markUsed(name) }
    }
}
