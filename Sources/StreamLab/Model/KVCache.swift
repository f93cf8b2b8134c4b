/// The keys and values of the tokens seen so far, per layer, for decoding
/// one token at a time: each new token's attention reads them instead of
/// recomputing the prefix. Keys are stored normed and rotated, as used.
public final class KVCache {
    /// Most tokens the cache holds.
    public let capacity: Int
    /// Tokens cached so far.
    public internal(set) var count = 0
    let width: Int                                  // Hkv Dh
    let keys: [FloatBuffer], values: [FloatBuffer]  // per layer [capacity, Hkv Dh]

    public init(_ a: Architecture, capacity: Int) {
        self.capacity = capacity
        width = a.keyValueHeadCount * a.headDimension
        keys = (0..<a.layerCount).map { _ in FloatBuffer(capacity * a.keyValueHeadCount * a.headDimension) }
        values = (0..<a.layerCount).map { _ in FloatBuffer(capacity * a.keyValueHeadCount * a.headDimension) }
    }
}
