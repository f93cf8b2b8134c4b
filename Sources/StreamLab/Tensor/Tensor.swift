/// A dense, row-major float32 array with a shape, e.g. `[T, D]` for a stream or
/// `[H, T, T]` for attention probabilities. A plain value type: copying is cheap
/// until one copy is written to (the storage is a Swift array).
public struct Tensor: Sendable, Hashable {
    /// Extent of each axis, outermost first.
    public let shape: [Int]
    /// `shape.reduce(1, *)` scalars in row-major order.
    public var scalars: [Float]

    /// Wraps `scalars`; their count must equal the product of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor whose every scalar `fill` writes through the pointer it is given
    /// (`shape.product` floats, uninitialized before): recorded arrays are computed
    /// straight into their storage, without a zeroed scratch buffer and a copy.
    init(shape: [Int], filling fill: (UnsafeMutablePointer<Float>) -> Void) {
        let n = shape.reduce(1, *)
        let scalars = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            if let base = buffer.baseAddress { fill(base) }
            initialized = n
        }
        self.init(shape: shape, scalars: scalars)
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Number of scalars.
    public var count: Int { scalars.count }

    /// Number of axes.
    public var rank: Int { shape.count }

    /// The same scalars under another shape of equal size.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// Row `i` of a rank-2 tensor `[R, C]`, as an array of C scalars.
    public func row(_ i: Int) -> [Float] {
        precondition(rank == 2 && i >= 0 && i < shape[0], "row \(i) of a tensor of shape \(shape)")
        let c = shape[1]
        return Array(scalars[(i * c)..<((i + 1) * c)])
    }

    /// Scalar at a multi-index, e.g. `t[2, 5]`.
    public subscript(_ index: Int...) -> Float {
        get { scalars[offset(index)] }
        set { scalars[offset(index)] = newValue }
    }

    private func offset(_ index: [Int]) -> Int {
        precondition(index.count == rank, "index \(index) into a tensor of shape \(shape)")
        var flat = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "index \(index) out of range for shape \(shape)")
            flat = flat * shape[axis] + i
        }
        return flat
    }

    /// Largest absolute value (0 for an empty tensor).
    public var maxAbs: Float { scalars.reduce(0) { max($0, abs($1)) } }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
