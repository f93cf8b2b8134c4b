/// StreamLab: record and probe the residual stream of decoder-only Transformers.
public enum StreamLab {
    /// The library version, printed by `stream-probe --version`.
    public static let version = "0.1.0"

    /// Lets the C allocator keep large freed buffers for reuse, so repeated
    /// forward passes do not pay page faults and zeroing for their scratch
    /// space (measured: about 4% of a GPT-2-small forward). Programs that run
    /// many passes call it once at start; memory stays at its peak afterwards.
    public static func keepLargeBuffersForReuse() { Allocator.keepLargeBuffersForReuse() }
}
