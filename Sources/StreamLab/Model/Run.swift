/// The result of one forward pass: the tokens and every recorded array.
public struct Run: Sendable {
    /// The input token ids.
    public let tokens: [Int]
    /// Recorded arrays by hook point.
    public internal(set) var arrays: [HookPoint: Tensor]

    public init(tokens: [Int], arrays: [HookPoint: Tensor]) {
        self.tokens = tokens
        self.arrays = arrays
    }

    /// The array recorded at `point`, if it was recorded.
    public subscript(point: HookPoint) -> Tensor? { arrays[point] }

    /// The array recorded under a TransformerLens-style name, e.g.
    /// `run["blocks.3.hook_attn_out"]`.
    public subscript(name: String) -> Tensor? {
        guard let point = HookPoint(name: name) else { return nil }
        return arrays[point]
    }

    /// Logits `[T, V]`, if recorded.
    public var logits: Tensor? { arrays[.logits] }

    /// Recorded points in computation order.
    public var points: [HookPoint] { arrays.keys.sorted() }
}

/// Decides what a forward pass keeps and collects it.
struct Recorder {
    let kinds: Set<HookKind>
    var arrays: [HookPoint: Tensor] = [:]
    /// Where arrays go as they are produced instead of `arrays` (a streamed
    /// trace); the first error it throws stops it and is kept in `sinkError`.
    let sink: ((HookPoint, UnsafeBufferPointer<Float>, [Int]) throws -> Void)?
    private(set) var sinkError: Error?

    init(_ kinds: Set<HookKind>, sink: ((HookPoint, UnsafeBufferPointer<Float>, [Int]) throws -> Void)? = nil) {
        self.kinds = kinds
        self.sink = sink
    }

    @inline(__always) func wants(_ kind: HookKind) -> Bool { kinds.contains(kind) }

    /// Copies `shape.product` floats from `source` if `point`'s kind is wanted.
    mutating func record(_ point: HookPoint, _ source: UnsafePointer<Float>, shape: [Int]) {
        guard kinds.contains(point.kind) else { return }
        let n = shape.reduce(1, *)
        if let sink {
            guard sinkError == nil else { return }
            do { try sink(point, UnsafeBufferPointer(start: source, count: n), shape) } catch { sinkError = error }
            return
        }
        arrays[point] = Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: source, count: n)))
    }

    /// Stores an already built tensor if wanted.
    mutating func record(_ point: HookPoint, _ tensor: @autoclosure () -> Tensor) {
        guard kinds.contains(point.kind) else { return }
        let t = tensor()
        if sink != nil {
            t.scalars.withUnsafeBufferPointer { record(point, $0.baseAddress!, shape: t.shape) }
            return
        }
        arrays[point] = t
    }
}
