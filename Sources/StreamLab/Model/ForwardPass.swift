/// What one block keeps from the forward pass: the inputs of every operation,
/// which its backward and the recorder read. N = B * T rows; D width; F MLP
/// width (2F for a gated MLP's up projection).
final class BlockActivations {
    let input: FloatBuffer?      // [N, D]  resid_pre (nil when the pass keeps one shared block)
    let ln1Out: FloatBuffer?     // [N, D]  pre/sandwich-norm and parallel: the attention's input
    let ln1Mean: FloatBuffer     // [N]
    let ln1Rstd: FloatBuffer     // [N]
    let qkv: FloatBuffer         // [N, (H + 2Hkv) Dh], q and k normed (if so) and rotated
    let qRaw: FloatBuffer?       // [N, H Dh]  q before its norm (query-key norms only)
    let kRaw: FloatBuffer?       // [N, Hkv Dh]
    let qMean: FloatBuffer?, qRstd: FloatBuffer?   // [N H] per head, [N] whole
    let kMean: FloatBuffer?, kRstd: FloatBuffer?   // [N Hkv] per head, [N] whole
    let probs: FloatBuffer       // [B, H, T, T]
    let z: FloatBuffer           // [N, H Dh]  heads before the output projection
    let attnRaw: FloatBuffer?    // [N, D]  sandwich/output: the attention output before ln1_post
    let ln1PostMean: FloatBuffer?, ln1PostRstd: FloatBuffer?   // [N]
    let h: FloatBuffer           // [N, D]  sequential: after the attention add (post-norm: ln1's input)
    let mid: FloatBuffer?        // [N, D]  post-norm: ln1's output (resid_mid)
    let ln2Out: FloatBuffer?     // [N, D]  pre/sandwich-norm: the MLP's input
    let ln2Mean: FloatBuffer     // [N]
    let ln2Rstd: FloatBuffer     // [N]
    let up: FloatBuffer          // [N, F] or [N, 2F]  before the nonlinearity
    let hidden: FloatBuffer      // [N, F]  after it (mlp.hook_post)
    let mlpRaw: FloatBuffer?     // [N, D]  sandwich/output: the MLP output before ln2_post
    let ln2PostMean: FloatBuffer?, ln2PostRstd: FloatBuffer?   // [N]
    let h2: FloatBuffer?         // [N, D]  post-norm: ln2's input

    init(_ a: Architecture, batch: Int, length: Int, ownsInput: Bool) {
        let n = batch * length, d = a.width, post = a.normPlacement == .post, dh = a.headDimension
        let written = a.normPlacement.normsWrite
        input = ownsInput ? FloatBuffer(n * d) : nil
        ln1Out = a.normPlacement.normsInput ? FloatBuffer(n * d) : nil
        ln1Mean = FloatBuffer(n); ln1Rstd = FloatBuffer(n)
        qkv = FloatBuffer(n * a.qkvWidth)
        let qRows = a.queryKeyNorm == .perHead ? n * a.headCount : n
        let kRows = a.queryKeyNorm == .perHead ? n * a.keyValueHeadCount : n
        let qk = a.queryKeyNorm != nil
        qRaw = qk ? FloatBuffer(n * a.headCount * dh) : nil
        kRaw = qk ? FloatBuffer(n * a.keyValueHeadCount * dh) : nil
        qMean = qk ? FloatBuffer(qRows) : nil; qRstd = qk ? FloatBuffer(qRows) : nil
        kMean = qk ? FloatBuffer(kRows) : nil; kRstd = qk ? FloatBuffer(kRows) : nil
        probs = FloatBuffer(batch * a.headCount * length * length)
        z = FloatBuffer(n * a.headCount * dh)
        attnRaw = written ? FloatBuffer(n * d) : nil
        ln1PostMean = written ? FloatBuffer(n) : nil; ln1PostRstd = written ? FloatBuffer(n) : nil
        h = FloatBuffer(a.parallelResidual ? 0 : n * d)
        mid = post ? FloatBuffer(n * d) : nil
        ln2Out = a.normPlacement.normsInput && !a.sharedParallelNorm ? FloatBuffer(n * d) : nil
        ln2Mean = FloatBuffer(n); ln2Rstd = FloatBuffer(n)
        up = FloatBuffer(n * a.mlpWidth * (a.gatedMLP ? 2 : 1))
        hidden = FloatBuffer(n * a.mlpWidth)
        mlpRaw = written ? FloatBuffer(n * d) : nil
        ln2PostMean = written ? FloatBuffer(n) : nil; ln2PostRstd = written ? FloatBuffer(n) : nil
        h2 = post ? FloatBuffer(n * d) : nil
    }
}

/// The buffers of forward passes over a batch of `B` sequences of `T` tokens,
/// allocated once and reused by every pass of that shape.
///
/// A pass that `keepsActivations` holds one `BlockActivations` per block (what
/// `Transformer.backward` needs); otherwise all blocks share one and the stream
/// is updated in place (inference: the recorder copies what it is asked for).
public final class ForwardPass {
    public let batch: Int
    public let length: Int
    public let keepsActivations: Bool
    let architecture: Architecture

    let tokens: UnsafeMutablePointer<Int32>     // [N]
    let embedded: FloatBuffer?                  // [N, E]  project_in's input (OPT-350m)
    let blocks: [BlockActivations]              // L blocks, or 1 shared
    /// The running stream `[N, D]`; after the blocks, the last `resid_post`.
    let stream: FloatBuffer
    let finalNormed: FloatBuffer?               // [N, D]
    let finalMean: FloatBuffer, finalRstd: FloatBuffer   // [N]
    let projected: FloatBuffer?                 // [N, E]  project_out's output
    let logits: FloatBuffer                     // [N, V]
    let attnWrite: FloatBuffer                  // [N, D]
    let mlpWrite: FloatBuffer                   // [N, D]
    /// Rotary tables of global and local layers (nil without rotary positions).
    private(set) var rotary: RotaryTable?
    private(set) var localRotary: RotaryTable?
    /// Decoding with a KV cache: the tokens of this pass sit at positions
    /// `positionOffset ..< positionOffset + length` after the cached ones.
    private(set) var positionOffset = 0
    let cache: KVCache?
    /// Contiguous q or k rows for the query-key norms `[N, max(H, Hkv) Dh]`.
    let queryKeyScratch: FloatBuffer?
    /// The order the last forward ran the blocks in (slot -> layer), and
    /// whether it ran with interventions (the backward refuses those).
    var order: [Int] = []
    var intervened = false
    /// The first hook point of the last forward whose array held NaN or
    /// infinity (`logits` for the final read), if any.
    public internal(set) var firstNonFinite: HookPoint?
    /// Scratch of the backward pass, made on first use.
    lazy var gradients = GradientBuffers(architecture, rows: rows)

    public init(_ a: Architecture, batch: Int = 1, length: Int, keepsActivations: Bool = false, cache: KVCache? = nil) {
        precondition(cache == nil || (batch == 1 && !keepsActivations))
        self.cache = cache
        precondition(batch > 0 && length > 0)
        architecture = a
        self.batch = batch
        self.length = length
        self.keepsActivations = keepsActivations
        let n = batch * length, d = a.width
        tokens = .allocate(capacity: n)
        tokens.initialize(repeating: 0, count: n)
        embedded = a.hasProjection ? FloatBuffer(n * a.embeddingWidth) : nil
        blocks = keepsActivations
            ? (0..<a.layerCount).map { _ in BlockActivations(a, batch: batch, length: length, ownsInput: true) }
            : [BlockActivations(a, batch: batch, length: length, ownsInput: false)]
        stream = FloatBuffer(n * d)
        finalNormed = a.hasFinalNorm ? FloatBuffer(n * d) : nil
        finalMean = FloatBuffer(n)
        finalRstd = FloatBuffer(n)
        projected = a.hasProjection ? FloatBuffer(n * a.embeddingWidth) : nil
        logits = FloatBuffer(n * a.vocabularySize)
        attnWrite = FloatBuffer(n * d)
        mlpWrite = FloatBuffer(n * d)
        queryKeyScratch = a.queryKeyNorm != nil ? FloatBuffer(n * max(a.headCount, a.keyValueHeadCount) * a.headDimension) : nil
        setPositions(offset: 0)
    }

    deinit { tokens.deallocate() }

    /// Places this pass's tokens at `offset` (after `offset` cached ones) and
    /// builds the rotary tables for the `offset + length` positions (dynamic
    /// and long-rope frequencies depend on that length, as in transformers).
    func setPositions(offset: Int) {
        positionOffset = offset
        let total = offset + length
        func table(_ r: Rotary?) -> RotaryTable? {
            guard let r else { return nil }
            let (frequencies, factor) = r.frequencies(length: total)
            return RotaryTable(inverseFrequencies: frequencies, attentionFactor: factor, interleaved: r.pairing == .interleaved,
                               length: total)
        }
        if case let .rotary(global) = architecture.positions {
            rotary = table(global)
            localRotary = architecture.localRotary != nil && architecture.layerKinds.contains(.local) ? table(architecture.localRotary) : nil
        }
    }

    /// N = B * T.
    public var rows: Int { batch * length }

    /// Sets the input tokens `[B * T]` (checked by the caller).
    func setTokens(_ ids: some Collection<Int>) {
        precondition(ids.count == rows)
        for (i, id) in ids.enumerated() { tokens[i] = Int32(id) }
    }

    /// The rotary table of `layer`, if the model has rotary positions.
    func rotaryTable(layer: Int) -> RotaryTable? {
        architecture.layerKinds[layer] == .local ? localRotary ?? rotary : rotary
    }

    /// The activations of the block run in `slot`.
    func activations(_ slot: Int) -> BlockActivations { keepsActivations ? blocks[slot] : blocks[0] }

    /// The stream entering the block run in `slot` `[N, D]`.
    func input(_ slot: Int) -> UnsafeMutablePointer<Float> {
        keepsActivations && slot < blocks.count ? blocks[slot].input!.pointer : stream.pointer
    }

    /// The stream leaving the block run in `slot` `[N, D]`.
    func output(_ slot: Int) -> UnsafeMutablePointer<Float> { input(slot + 1) }

    /// Logits of the last forward pass `[N, V]`.
    public var logitsTensor: Tensor { logits.tensor([rows, architecture.vocabularySize]) }
}

/// Scratch buffers of one backward pass over N rows.
final class GradientBuffers {
    let stream: FloatBuffer       // [N, D]  dL/d stream, walked down the blocks
    let temp: FloatBuffer         // [N, D]
    let temp2: FloatBuffer        // [N, D]
    let written: FloatBuffer      // [N, D]  d(a sublayer's output before its write norm)
    let qkv: FloatBuffer          // [N, (H + 2Hkv) Dh]
    let z: FloatBuffer            // [N, H Dh]
    let up: FloatBuffer           // [N, F] or [N, 2F]
    let hidden: FloatBuffer       // [N, F]
    let embedded: FloatBuffer?    // [N, E]
    let queryKey: FloatBuffer?    // [N, max(H, Hkv) Dh]  query-key norms' gradients, contiguous
    let uncappedLogits: FloatBuffer?  // [N, V]  soft-capped models: dL/d(logits before the cap)
    let transposes = TransposeWorkspace()

    init(_ a: Architecture, rows n: Int) {
        let d = a.width
        stream = FloatBuffer(n * max(d, a.embeddingWidth))
        temp = FloatBuffer(n * max(d, a.embeddingWidth))
        temp2 = FloatBuffer(n * d)
        written = FloatBuffer(a.normPlacement.normsWrite || a.sharedParallelNorm ? n * d : 0)
        qkv = FloatBuffer(n * a.qkvWidth)
        z = FloatBuffer(n * a.headCount * a.headDimension)
        up = FloatBuffer(n * a.mlpWidth * (a.gatedMLP ? 2 : 1))
        hidden = FloatBuffer(n * a.mlpWidth)
        embedded = a.hasProjection ? FloatBuffer(n * a.embeddingWidth) : nil
        queryKey = a.queryKeyNorm != nil ? FloatBuffer(n * max(a.headCount, a.keyValueHeadCount) * a.headDimension) : nil
        uncappedLogits = a.finalSoftCap != nil ? FloatBuffer(n * a.vocabularySize) : nil
    }
}
