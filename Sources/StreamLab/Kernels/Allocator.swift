#if canImport(CStreamLabSupport)
import CStreamLabSupport
#endif

/// The C allocator's settings for the kernels' large scratch buffers.
enum Allocator {
    /// Lets the C allocator keep large freed buffers for reuse, so repeated
    /// passes do not pay page faults and zeroing for their scratch space
    /// (measured: about 4% of a GPT-2-small forward, 5% of a training step).
    /// Memory stays at its peak afterwards.
    static func keepLargeBuffersForReuse() {
        #if canImport(CStreamLabSupport)
        _ = streamlab_tune_allocator()
        #endif
    }
}
