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

/// A table `[rows, width]` read row by row (token and position embeddings),
/// converted to float32 as rows are read. Its storage is either a private
/// float32 array or the checkpoint itself, in place in the memory map (F32,
/// F16 or BF16): no copy, and only the rows used are ever paged in.
public final class FloatTable: @unchecked Sendable {
    public let rows: Int
    public let width: Int
    /// Whether the rows are read from the memory map (not a private copy).
    public let isMapped: Bool
    /// The rows as stored.
    let storage: StoredColumns
    private let owner: AnyObject

    /// A table holding its own copy of `values` (`rows * width` floats).
    public init(_ values: [Float], rows: Int, width: Int) {
        precondition(values.count == rows * width)
        let buffer = FloatBuffer(copying: values)
        self.rows = rows
        self.width = width
        isMapped = false
        storage = StoredColumns(base: UnsafeRawPointer(buffer.pointer), element: .f32, layout: .columnsAreRows, columns: rows,
                                rowStride: width)
        owner = buffer
    }

    /// A view of `rows * width` float32 values at `base`, kept alive by `owner` (not counted as mapped).
    init(floats base: UnsafePointer<Float>, rows: Int, width: Int, owner: AnyObject) {
        self.rows = rows
        self.width = width
        isMapped = false
        storage = StoredColumns(base: UnsafeRawPointer(base), element: .f32, layout: .columnsAreRows, columns: rows, rowStride: width)
        self.owner = owner
    }

    /// The stored table at `base` (`rows * width` elements), kept alive by `owner`.
    init(stored base: UnsafeRawPointer, element: StoredColumns.Element, rows: Int, width: Int, owner: AnyObject) {
        self.rows = rows
        self.width = width
        isMapped = true
        storage = StoredColumns(base: base, element: element, layout: .columnsAreRows, columns: rows, rowStride: width)
        self.owner = owner
    }

    /// Row `i` as float32 into `out` (`width` floats).
    @inline(__always) public func copyRow(_ i: Int, into out: UnsafeMutablePointer<Float>) {
        storage.pack(rows: 0..<width, columns: i..<(i + 1), into: out, stride: 1)
    }

    /// Rows `range` as float32 into `out` (`range.count * width` floats).
    public func copyRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        for (k, i) in range.enumerated() { copyRow(i, into: out + k * width) }
    }

    /// The table as the unembedding B `[width, rows]` (row i of the table is column i), read in place.
    func transposedMatrix() -> PackedMatrix { PackedMatrix(stored: [storage], rows: width, owner: owner) }

    /// All values, copied.
    public var values: [Float] {
        [Float](unsafeUninitializedCapacity: rows * width) { buffer, count in
            copyRows(0..<rows, into: buffer.baseAddress!)
            count = rows * width
        }
    }

    /// Bytes of private memory (0 when mapped).
    public var privateBytes: Int { isMapped ? 0 : rows * width * 4 }

    /// Bytes read in place from the memory map (0 when private).
    public var mappedBytes: Int { isMapped ? rows * width * storage.element.size : 0 }
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

    private var linears: [Linear] {
        [projectIn, projectOut, unembedding].compactMap { $0 } + blocks.flatMap { [$0.qkv, $0.output, $0.up, $0.down] }
    }

    /// Bytes of float32 parameters held in private memory (packed copies,
    /// biases and norms; weights read from the memory map count as 0).
    public var residentBytes: Int {
        var n = tokenEmbedding.privateBytes + (positionEmbedding?.privateBytes ?? 0)
        func norm(_ w: NormWeights?) -> Int { ((w?.weight.count ?? 0) + (w?.bias?.count ?? 0)) * 4 }
        n += linears.reduce(0) { $0 + $1.weight.byteCount + ($1.bias?.count ?? 0) * 4 } + norm(finalNorm)
        for b in blocks { n += b.norms.reduce(0) { $0 + norm($1) } }
        return n
    }

    /// Bytes of weights used straight from the memory-mapped checkpoint (a
    /// tied unembedding shares the embedding's bytes and is counted once).
    public var mappedBytes: Int {
        let tiedUnembedding = tokenEmbedding.isMapped && unembedding.weight.pieces.count == 1
            && unembedding.weight.pieces[0].base == tokenEmbedding.storage.base
        return tokenEmbedding.mappedBytes + (positionEmbedding?.mappedBytes ?? 0)
            + linears.reduce(0) { $0 + $1.weight.storedByteCount } - (tiedUnembedding ? tokenEmbedding.mappedBytes : 0)
    }
}
