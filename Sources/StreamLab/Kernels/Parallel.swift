import Dispatch

/// Splits work across threads. `threads <= 1` runs inline on the caller.
enum Parallel {
    /// Calls `body(range)` for `threads` contiguous, nearly equal slices of
    /// `0..<count`, concurrently. Slices are disjoint, so bodies that only
    /// write their own slice's outputs are race-free.
    @inline(__always)
    static func forEachSlice(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(max(threads, 1), count)
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = count * part / parts
                let end = count * (part + 1) / parts
                if start < end { box.value(start..<end) }
            }
        }
    }
}

/// A mutable pointer that may cross into concurrently running closures. Each
/// closure must write a disjoint region; the type only silences the checker
/// where that discipline is kept by construction.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Carries a value into concurrently running closures; the caller guarantees
/// the value is used race-free (disjoint writes, read-only sharing).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
