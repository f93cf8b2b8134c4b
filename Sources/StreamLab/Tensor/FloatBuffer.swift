/// A heap buffer of floats with a stable address, freed with its owner:
/// scratch space for the forward pass (no copy-on-write, no bounds checks).
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    init(copying array: [Float]) {
        count = array.count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        array.withUnsafeBufferPointer { if let b = $0.baseAddress { pointer.update(from: b, count: count) } }
    }

    init(copying source: UnsafeBufferPointer<Float>) {
        count = source.count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        if let b = source.baseAddress { pointer.update(from: b, count: count) }
    }

    deinit { pointer.deallocate() }

    func zero() { pointer.update(repeating: 0, count: count) }

    /// A copy of the first `shape.product` floats as a tensor.
    func tensor(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        precondition(n <= count)
        return Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: pointer, count: n)))
    }

    /// A copy of all floats.
    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// Calls `body` with the array's base address, or nil for a nil array.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
