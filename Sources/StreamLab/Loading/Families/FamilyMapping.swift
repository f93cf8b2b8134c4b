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

    /// Several `[in, out_k]` matrices side by side as one `[in, sum out_k]`.
    static func concatenateColumns(_ parts: [[Float]], inputs: Int) -> [Float] {
        let widths = parts.map { $0.count / max(inputs, 1) }
        var out = [Float]()
        out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for r in 0..<inputs {
            for (p, w) in zip(parts, widths) { out.append(contentsOf: p[(r * w)..<((r + 1) * w)]) }
        }
        return out
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
