/// One model family's mapping between a Hugging Face checkpoint (config keys,
/// tensor names and layouts) and `Architecture` / `Weights` / `ParameterLayout`,
/// both ways. All of a family's quirks live in its one conforming type.
protocol FamilyMapping {
    /// `model_type` values this mapping reads.
    static var modelTypes: [String] { get }
    /// The architecture a config describes.
    static func architecture(_ config: ModelConfig, modelType: String) throws -> Architecture
    /// The weights, read from the checkpoint with strict shape checks.
    static func weights(_ architecture: Architecture, from source: WeightSource) throws -> Weights
    /// Parameters in `ParameterLayout` order (values, or gradients of the
    /// same layout) as the checkpoint's tensors, named and shaped as the
    /// family writes them. A tied unembedding is not listed.
    static func tensors(_ architecture: Architecture, _ parameters: ParameterValues) -> [NamedTensor]
    /// The `config.json` describing `architecture`.
    static func config(_ architecture: Architecture) throws -> JSONOutput
}

extension FamilyMapping {
    static func config(_ a: Architecture) throws -> JSONOutput {
        throw LoadError.unsupportedFeature(file: "config.json", feature: "writing a \(a.modelType) config")
    }
}

/// Every supported family.
enum Families {
    nonisolated(unsafe) static let all: [FamilyMapping.Type] = [GPT2Mapping.self, OpenAIGPTMapping.self, LlamaMapping.self,
                                            NeoXMapping.self, OPTMapping.self, GemmaMapping.self, OLMo2Mapping.self,
                                            Phi3Mapping.self, GPTJMapping.self, PhiMapping.self]
    static var supportedModelTypes: [String] { all.flatMap { $0.modelTypes } }

    static func mapping(for modelType: String) -> FamilyMapping.Type? {
        all.first { $0.modelTypes.contains(modelType) }
    }

    /// The mapping of `a`'s family, or an error naming its model type.
    static func mapping(of a: Architecture) throws -> FamilyMapping.Type {
        guard let m = mapping(for: a.modelType) else {
            throw LoadError.unsupportedFeature(file: "config.json", feature: "model_type '\(a.modelType)'")
        }
        return m
    }

    /// `parameters` (in `ParameterLayout(a)` order) as the family's checkpoint tensors.
    public static func checkpointTensors(_ a: Architecture, parameters: [Float]) throws -> [NamedTensor] {
        let layout = ParameterLayout(a)
        precondition(parameters.count == layout.count)
        return try mapping(of: a).tensors(a, ParameterValues(layout: layout, flat: parameters))
    }
}

/// One tensor in a checkpoint's layout.
public struct NamedTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]
}

/// A flat buffer in `ParameterLayout` order, read back into checkpoint
/// tensors by the families' writers: the inverse of `WeightSource`.
struct ParameterValues {
    let layout: ParameterLayout
    let flat: [Float]
    private(set) var tensors: [NamedTensor] = []

    init(layout: ParameterLayout, flat: [Float]) {
        self.layout = layout
        self.flat = flat
    }

    mutating func append(_ tensor: NamedTensor) { tensors.append(tensor) }

    /// `count` floats at `offset`, written as `name` `[count]`.
    mutating func vector(_ name: String, _ offset: Int?, _ count: Int) {
        guard let offset else { return }
        tensors.append(NamedTensor(name: name, shape: [count], values: Array(flat[offset..<(offset + count)])))
    }

    /// Columns `columns` of the `[inputs, outputs]` weight at `offset`, written
    /// as `name` in the checkpoint's layout: `[in, cols]` (`.inOut`, Conv1D)
    /// or `[cols, in]` (`.outIn`, `nn.Linear`).
    mutating func matrix(_ name: String, _ offset: Int?, inputs: Int, outputs: Int, columns: Range<Int>? = nil,
                         layout: WeightSource.Layout) {
        guard let offset else { return }
        tensors.append(NamedTensor(name: name, shape: [], values: [])
            .with(Self.columns(flat, offset, inputs: inputs, outputs: outputs, columns ?? 0..<outputs, layout: layout)))
    }

    /// An embedding-like table `[rows, width]` stored as is.
    mutating func table(_ name: String, _ offset: Int?, rows: Int, width: Int) {
        guard let offset else { return }
        tensors.append(NamedTensor(name: name, shape: [rows, width], values: Array(flat[offset..<(offset + rows * width)])))
    }

    /// The fused q | k | v of block `b` as separate `nn.Linear` tensors
    /// `{prefix}q_proj.weight` ... (and `.bias` when the layout has one).
    mutating func separateQKV(_ prefix: String, _ b: BlockSlots, _ a: Architecture) {
        let d = a.width, q = a.headCount * a.headDimension, kv = a.keyValueHeadCount * a.headDimension, qkv = a.qkvWidth
        for (name, range) in [("q_proj", 0..<q), ("k_proj", q..<(q + kv)), ("v_proj", (q + kv)..<qkv)] {
            matrix(prefix + name + ".weight", b.qkvWeight, inputs: d, outputs: qkv, columns: range, layout: .outIn)
            if let o = b.qkvBias { vector(prefix + name + ".bias", o + range.lowerBound, range.count) }
        }
    }

    /// The fused gate | up of block `b` as `{prefix}gate_proj.weight` and
    /// `{prefix}up_proj.weight` (with biases when the layout has them).
    mutating func separateGateUp(_ prefix: String, _ b: BlockSlots, _ a: Architecture) {
        let d = a.width, f = a.mlpWidth
        for (name, range) in [("gate_proj", 0..<f), ("up_proj", f..<(2 * f))] {
            matrix(prefix + name + ".weight", b.upWeight, inputs: d, outputs: 2 * f, columns: range, layout: .outIn)
            if let o = b.upBias { vector(prefix + name + ".bias", o + range.lowerBound, f) }
        }
    }

    static func columns(_ flat: [Float], _ offset: Int, inputs: Int, outputs: Int, _ columns: Range<Int>,
                        layout: WeightSource.Layout) -> (shape: [Int], values: [Float]) {
        let w = columns.count
        var out = [Float](repeating: 0, count: inputs * w)
        for r in 0..<inputs {
            for (k, c) in columns.enumerated() {
                let v = flat[offset + r * outputs + c]
                switch layout {
                case .inOut: out[r * w + k] = v
                case .outIn: out[k * inputs + r] = v
                }
            }
        }
        return (layout == .inOut ? [inputs, w] : [w, inputs], out)
    }
}

extension NamedTensor {
    func with(_ m: (shape: [Int], values: [Float])) -> NamedTensor { NamedTensor(name: name, shape: m.shape, values: m.values) }
}

/// Several objects kept alive together (the shards a fused weight reads from).
final class KeepAlive {
    let objects: [AnyObject]
    init(_ objects: [AnyObject]) { self.objects = objects }
}

/// Reads named tensors from a checkpoint into the layouts `Transformer` uses.
/// Linear weights come either as `[out, in]` (`nn.Linear`) or as `[in, out]`
/// (GPT-2's `Conv1D`); both are read in place as the columns of B `[in, out]`.
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

    /// The stored tensor `name` as columns of B, read in place: `[out, in]`
    /// (`.outIn`) is `outputs` columns of `inputs` values each; `[in, out]`
    /// (`.inOut`) is `inputs` rows of `outputs`. With the mapping's owner.
    func columns(_ name: String, layout: Layout, inputs: Int, outputs: Int) throws -> (StoredColumns, AnyObject) {
        switch layout {
        case .outIn:
            let (base, element, owner) = try checkpoint.stored(prefix + name, rows: outputs, width: inputs)
            return (StoredColumns(base: base, element: element, layout: .columnsAreRows, columns: outputs, rowStride: inputs), owner)
        case .inOut:
            let (base, element, owner) = try checkpoint.stored(prefix + name, rows: inputs, width: outputs)
            return (StoredColumns(base: base, element: element, layout: .rowsAreRows, columns: outputs, rowStride: outputs), owner)
        }
    }

    /// An affine map `[inputs -> outputs]` whose weight is read in place from
    /// the checkpoint (no copy); `bias` nil for none.
    func linear(_ weight: String, bias: String?, layout: Layout, inputs: Int, outputs: Int) throws -> Linear {
        let (piece, owner) = try columns(weight, layout: layout, inputs: inputs, outputs: outputs)
        return Linear(weight: PackedMatrix(stored: [piece], rows: inputs, owner: owner), bias: try bias.map { try vector($0, outputs) })
    }

    /// Several `nn.Linear` maps on the same input fused into one, read in
    /// place side by side: the weights `{prefix}{name}.weight` (`[out_k, in]`)
    /// along the outputs, with their `.bias` vectors when `bias` is set. E.g. q | k | v.
    func fused(_ prefix: String, _ names: [String], outputs: [Int], inputs: Int, bias: Bool) throws -> Linear {
        var pieces: [StoredColumns] = [], owners: [AnyObject] = []
        var biases: [Float] = []
        for (name, out) in zip(names, outputs) {
            let (piece, owner) = try columns(prefix + name + ".weight", layout: .outIn, inputs: inputs, outputs: out)
            pieces.append(piece)
            owners.append(owner)
            if bias { biases += try vector(prefix + name + ".bias", out) }
        }
        return Linear(weight: PackedMatrix(stored: pieces, rows: inputs, owner: KeepAlive(owners)), bias: bias ? biases : nil)
    }

    /// Separate `{prefix}q_proj`, `k_proj`, `v_proj` (`nn.Linear`) fused into q | k | v.
    func separateQKV(_ prefix: String, _ a: Architecture, bias: Bool) throws -> Linear {
        let q = a.headCount * a.headDimension, kv = a.keyValueHeadCount * a.headDimension
        return try fused(prefix, ["q_proj", "k_proj", "v_proj"], outputs: [q, kv, kv], inputs: a.width, bias: bias)
    }

    /// Separate `{prefix}gate_proj`, `up_proj` (`nn.Linear`) fused into gate | up.
    func separateGateUp(_ prefix: String, _ a: Architecture, bias: Bool) throws -> Linear {
        try fused(prefix, ["gate_proj", "up_proj"], outputs: [a.mlpWidth, a.mlpWidth], inputs: a.width, bias: bias)
    }

    /// `Weights` around `blocks` in the Llama-style layout: `embed_tokens`,
    /// the final norm `{finalNorm}.weight` (and `.bias`), `lm_head.weight`
    /// (and `.bias`) unless tied.
    func llamaStyle(_ a: Architecture, blocks: [BlockWeights], finalNorm: String = "norm") throws -> Weights {
        let embedding = try table("embed_tokens.weight", rows: a.vocabularySize, width: a.width)
        return Weights(
            tokenEmbedding: embedding, positionEmbedding: nil, projectIn: nil, blocks: blocks,
            finalNorm: try norm(finalNorm + ".weight", bias: a.normBias ? finalNorm + ".bias" : nil, width: a.width),
            projectOut: nil,
            unembedding: try unembedding("lm_head.weight", bias: a.unembeddingBias ? "lm_head.bias" : nil, embedding: embedding,
                                         architecture: a))
    }

    /// A norm's parameters: weight always, bias when `bias` is given.
    func norm(_ weight: String, bias: String?, width: Int) throws -> NormWeights {
        NormWeights(weight: try vector(weight, width), bias: try bias.map { try vector($0, width) })
    }

    /// The unembedding `[E, V]`: the checkpoint's `name` (`[V, E]`, no prefix)
    /// when untied, else the transposed token embedding `[V, E]` (as
    /// transformers ties them: a tied model's `name` in the file is not used,
    /// and `info` lists it as unused).
    func unembedding(_ name: String, bias: String? = nil, embedding: FloatTable, architecture a: Architecture) throws -> Linear {
        var head = self
        head.prefix = ""
        let e = a.embeddingWidth, v = a.vocabularySize
        if !a.tiedEmbeddings {
            return try head.linear(name, bias: bias, layout: .outIn, inputs: e, outputs: v)
        }
        return Linear(weight: embedding.transposedMatrix(), bias: try bias.map { try head.vector($0, v) })
    }

    /// Marks known non-weights (mask buffers, rotary caches) as used.
    func ignore(where matches: (String) -> Bool) {
        for name in checkpoint.names where matches(name) { checkpoint.markUsed(name) }
    }
}

/// The config keys a rotary Llama-style family writes: its activation's
/// transformers name, `rope_theta` (plain rotate-half rotary over the whole
/// head only), and the shared tail (no dropout, no special tokens, float32).
func rotaryConfigFields(_ a: Architecture, activationKey: String) throws -> [(String, JSONOutput)] {
    guard case let .rotary(r) = a.positions, r.scaling == .none, r.pairing == .rotateHalf, r.dimensions == a.headDimension else {
        throw LoadError.unsupportedFeature(file: "config.json", feature: "writing a \(a.modelType) config with other than plain rotary positions")
    }
    let activation: String
    switch a.activation {
    case .geluTanh: activation = "gelu_pytorch_tanh"
    case .geluExact: activation = "gelu"
    case .relu: activation = "relu"
    case .silu: activation = "silu"
    }
    return [
        ("vocab_size", .int(a.vocabularySize)), ("hidden_size", .int(a.width)), ("intermediate_size", .int(a.mlpWidth)),
        ("num_hidden_layers", .int(a.layerCount)), ("num_attention_heads", .int(a.headCount)),
        ("num_key_value_heads", .int(a.keyValueHeadCount)), ("head_dim", .int(a.headDimension)),
        ("max_position_embeddings", .int(a.maxPositions)), ("rms_norm_eps", .double(Double(a.normEpsilon))),
        (activationKey, .string(activation)), ("rope_theta", .double(Double(r.base))),
        ("attention_bias", .bool(a.qkvBias)), ("attention_dropout", .int(0)), ("tie_word_embeddings", .bool(a.tiedEmbeddings)),
        ("bos_token_id", .null), ("eos_token_id", .null), ("pad_token_id", .null), ("dtype", .string("float32")),
    ]
}
