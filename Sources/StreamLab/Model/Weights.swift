/// An affine map `y[M, out] = x[M, in] · W[in, out] + b`, W packed once for the
/// fast multiply.
public struct Linear: Sendable {
    /// W as `[in, out]`, packed.
    public let weight: PackedMatrix
    /// b `[out]`, if the map has one.
    public let bias: [Float]?

    public init(weight: PackedMatrix, bias: [Float]?) {
        precondition(bias == nil || bias!.count == weight.columns)
        self.weight = weight
        self.bias = bias
    }

    public var inputs: Int { weight.rows }
    public var outputs: Int { weight.columns }

    /// `y = x · W + b` for `rows` rows; `y` has row stride `outputs`.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, threads: Int) {
        weight.multiply(x, lda: inputs, m: rows, into: y, ldc: outputs, threads: threads)
        if let bias {
            bias.withUnsafeBufferPointer { Elementwise.addRow($0.baseAddress!, into: y, rows: rows, width: outputs) }
        }
    }
}

/// The learned parameters of one norm `[D]`; a missing bias acts as zeros
/// (RMSNorm has none).
public struct NormWeights: Sendable {
    public let weight: [Float]
    public let bias: [Float]?
    public init(weight: [Float], bias: [Float]?) {
        self.weight = weight
        self.bias = bias
    }
}

/// One block's parameters. `ln1` is the attention's norm and `ln2` the MLP's,
/// whatever their Hugging Face names (for post-norm models they follow the
/// add); `ln1Post` / `ln2Post` normalise the writes (sandwich and output
/// placements). Which norms exist follows `Architecture.normPlacement`.
public struct BlockWeights: Sendable {
    public let ln1: NormWeights?
    /// q | k | v fused: `[D, (H + 2 Hkv) Dh]`, q columns first, head-major.
    public let qkv: Linear
    /// Query and key norms `[Dh]` (per head) or `[H Dh]`, `[Hkv Dh]` (whole projection).
    public let queryNorm: NormWeights?
    public let keyNorm: NormWeights?
    /// Attention output projection `[H Dh, D]`.
    public let output: Linear
    public let ln1Post: NormWeights?
    public let ln2: NormWeights?
    /// `[D, F]`, or for a gated MLP `[D, 2F]` holding gate | up.
    public let up: Linear
    /// `[F, D]`.
    public let down: Linear
    public let ln2Post: NormWeights?

    public init(ln1: NormWeights?, qkv: Linear, queryNorm: NormWeights? = nil, keyNorm: NormWeights? = nil,
                output: Linear, ln1Post: NormWeights? = nil, ln2: NormWeights?, up: Linear, down: Linear,
                ln2Post: NormWeights? = nil) {
        self.ln1 = ln1
        self.qkv = qkv
        self.queryNorm = queryNorm
        self.keyNorm = keyNorm
        self.output = output
        self.ln1Post = ln1Post
        self.ln2 = ln2
        self.up = up
        self.down = down
        self.ln2Post = ln2Post
    }

    /// Every norm of the block, in forward order.
    var norms: [NormWeights] { [ln1, queryNorm, keyNorm, ln1Post, ln2, ln2Post].compactMap { $0 } }
}

/// A float32 table `[rows, width]` read row by row (token and position
/// embeddings). Its storage is either a private array or, for an F32
/// checkpoint whose tensor is 4-byte aligned, a view straight into the
/// memory-mapped file: no copy, and only the rows used are ever paged in.
public final class FloatTable: @unchecked Sendable {
    public let rows: Int
    public let width: Int
    /// Whether the rows are read from the memory map (not a private copy).
    public let isMapped: Bool
    let base: UnsafePointer<Float>
    private let owner: AnyObject

    /// A table holding its own copy of `values` (`rows * width` floats).
    public init(_ values: [Float], rows: Int, width: Int) {
        precondition(values.count == rows * width)
        let buffer = FloatBuffer(copying: values)
        self.rows = rows
        self.width = width
        isMapped = false
        base = UnsafePointer(buffer.pointer)
        owner = buffer
    }

    /// A view of `rows * width` floats at `base`, kept alive by `owner`.
    init(mapped base: UnsafePointer<Float>, rows: Int, width: Int, owner: AnyObject) {
        self.rows = rows
        self.width = width
        isMapped = true
        self.base = base
        self.owner = owner
    }

    /// Row `i` (`width` floats).
    @inline(__always) public func row(_ i: Int) -> UnsafePointer<Float> { base + i * width }

    /// All values, copied.
    public var values: [Float] { Array(UnsafeBufferPointer(start: base, count: rows * width)) }

    /// Bytes of private memory (0 when mapped).
    public var privateBytes: Int { isMapped ? 0 : rows * width * 4 }
}

/// All parameters of a model, in the layout `Transformer` computes with.
public final class Weights: Sendable {
    /// `[V, E]` token embedding rows.
    public let tokenEmbedding: FloatTable
    /// `[P + offset, D]` learned positions, if the model has them.
    public let positionEmbedding: FloatTable?
    /// `[E, D]` (OPT-350m), if any.
    public let projectIn: Linear?
    public let blocks: [BlockWeights]
    public let finalNorm: NormWeights?
    /// `[D, E]`, if any.
    public let projectOut: Linear?
    /// `[E, V]` with optional bias.
    public let unembedding: Linear

    public init(tokenEmbedding: FloatTable, positionEmbedding: FloatTable?, projectIn: Linear?, blocks: [BlockWeights],
                finalNorm: NormWeights?, projectOut: Linear?, unembedding: Linear) {
        self.tokenEmbedding = tokenEmbedding
        self.positionEmbedding = positionEmbedding
        self.projectIn = projectIn
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.projectOut = projectOut
        self.unembedding = unembedding
    }

    /// Bytes of float32 parameters held in private memory (packed copies
    /// included; tables read from the memory map count as 0).
    public var residentBytes: Int {
        var n = tokenEmbedding.privateBytes + (positionEmbedding?.privateBytes ?? 0)
        func linear(_ l: Linear?) -> Int { guard let l else { return 0 }; return l.weight.byteCount + (l.bias?.count ?? 0) * 4 }
        func norm(_ w: NormWeights?) -> Int { ((w?.weight.count ?? 0) + (w?.bias?.count ?? 0)) * 4 }
        n += linear(projectIn) + linear(projectOut) + linear(unembedding) + norm(finalNorm)
        for b in blocks {
            n += b.norms.reduce(0) { $0 + norm($1) } + linear(b.qkv) + linear(b.output) + linear(b.up) + linear(b.down)
        }
        return n
    }

    /// Bytes of tables used straight from the memory-mapped checkpoint.
    public var mappedBytes: Int {
        (tokenEmbedding.isMapped ? tokenEmbedding.rows * tokenEmbedding.width * 4 : 0)
            + (positionEmbedding.map { $0.isMapped ? $0.rows * $0.width * 4 : 0 } ?? 0)
    }
}
