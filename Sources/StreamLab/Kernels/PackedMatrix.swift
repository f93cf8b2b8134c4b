/// A `[K, N]` float matrix for fast multiplication `C[M, N] = A[M, K] · B[K, N]`,
/// held one of two ways:
///
/// - *packed* once into column panels (activations, trained parameters):
///   `ceil(N / 16)` panels; panel `p` holds rows `0..<K` of columns
///   `16p ..< 16p + 16` as `K` consecutive groups of 16 floats (zero padded
///   past `N`);
/// - *stored*: read where it lies (a memory-mapped checkpoint, F32, F16 or
///   BF16, `[out, in]` or `[in, out]`, possibly several tensors side by
///   side), with no private copy; each multiply packs blocks of `kc` rows x
///   up to 256 columns into a thread-local float32 buffer in the same panel
///   layout (GotoBLAS style: O(K N) packing against O(M K N) arithmetic).
///
/// Either way the micro-kernel reads one panel as a stream while holding a
/// `6 x 16` block of C in twelve `SIMD8<Float>` registers (AVX2 + FMA).
public final class PackedMatrix: @unchecked Sendable {
    /// Rows of B (the shared dimension).
    public let rows: Int
    /// Columns of B (the output width).
    public let columns: Int
    static let panelWidth = 16
    let panelCount: Int
    /// The packed panels (packed matrices only).
    let storage: UnsafeMutablePointer<Float>
    /// The stored pieces, left to right (stored matrices only).
    let pieces: [StoredColumns]
    /// First column of each piece, and N at the end.
    let pieceStarts: [Int]
    /// Keeps the memory the pieces point into alive.
    let owner: AnyObject?

    /// Packs B given row-major as `[K, N]` (`element(p, j) = source[p * N + j]`),
    /// e.g. a Conv1D weight `[in, out]`.
    public convenience init(rowMajor source: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        precondition(source.count >= rows * columns)
        self.init(rowMajor: source.baseAddress!, rows: rows, columns: columns, rowStride: columns)
    }

    /// Packs a row-major `[K, N]` matrix with row stride `rowStride`.
    convenience init(rowMajor source: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int) {
        self.init(uninitializedRows: rows, columns: columns)
        for panel in 0..<panelCount {
            let base = storage + panel * rows * Self.panelWidth
            let j0 = panel * Self.panelWidth
            let width = min(Self.panelWidth, columns - j0)
            for p in 0..<rows {
                (base + p * Self.panelWidth).update(from: source + p * rowStride + j0, count: width)
            }
        }
    }

    /// Packs from the transpose `[N, K]` with row stride `rowStride` (reads each
    /// source row once, contiguously).
    convenience init(transposed source: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int) {
        self.init(uninitializedRows: rows, columns: columns)
        for j in 0..<columns {
            let base = storage + (j / Self.panelWidth) * rows * Self.panelWidth + j % Self.panelWidth
            let row = source + j * rowStride
            for p in 0..<rows { base[p * Self.panelWidth] = row[p] }
        }
    }

    /// Packs B given as its transpose `[N, K]` (`element(p, j) = source[j * K + p]`),
    /// e.g. an `nn.Linear` weight `[out, in]`.
    public convenience init(transposed source: UnsafeBufferPointer<Float>, rows: Int, columns: Int) {
        precondition(source.count >= rows * columns)
        self.init(transposed: source.baseAddress!, rows: rows, columns: columns, rowStride: rows)
    }

    /// Zero-filled storage (padding columns stay zero), or with `zeroed`
    /// false storage the caller fills entirely.
    private init(uninitializedRows rows: Int, columns: Int, zeroed: Bool = true) {
        self.rows = rows
        self.columns = columns
        panelCount = (columns + Self.panelWidth - 1) / Self.panelWidth
        let size = max(1, panelCount * rows * Self.panelWidth)
        storage = UnsafeMutablePointer<Float>.allocate(capacity: size)
        if zeroed { storage.initialize(repeating: 0, count: size) }
        pieces = []
        pieceStarts = []
        owner = nil
    }

    /// B `[K, N]` read in place from `pieces` (their columns side by side),
    /// kept alive by `owner`.
    public init(stored pieces: [StoredColumns], rows: Int, owner: AnyObject?) {
        precondition(!pieces.isEmpty)
        self.rows = rows
        self.pieces = pieces
        var starts = [0]
        for piece in pieces { starts.append(starts.last! + piece.columns) }
        pieceStarts = starts
        columns = starts.last!
        panelCount = (columns + Self.panelWidth - 1) / Self.panelWidth
        storage = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        self.owner = owner
    }

    deinit { storage.deallocate() }

    /// Whether B is read in place (not packed).
    public var isStored: Bool { !pieces.isEmpty }

    /// Bytes of private memory held by the packed copy (0 for a stored matrix).
    public var byteCount: Int { isStored ? 0 : panelCount * rows * Self.panelWidth * MemoryLayout<Float>.size }

    /// Bytes of the stored pieces it reads in place (0 for a packed matrix).
    public var storedByteCount: Int { pieces.reduce(0) { $0 + $1.columns * rows * $1.element.size } }

    /// Element `(p, j)` of B (slow; for tests and small reads).
    public func element(_ p: Int, _ j: Int) -> Float {
        if isStored {
            let i = piece(containing: j)
            return pieces[i].element(p, j - pieceStarts[i])
        }
        return storage[(j / Self.panelWidth) * rows * Self.panelWidth + p * Self.panelWidth + j % Self.panelWidth]
    }

    /// `x[p] = sum_j y[j] B[p, j]` for `p` in `0..<K`: one row `y` `[N]` times
    /// B^T, reading only the columns where `y` is non-zero (the gradient of a
    /// metric of a few logits has a few), so no transposed copy is made.
    func multiplyTransposed(row y: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>) {
        x.update(repeating: 0, count: rows)
        for j in 0..<columns where y[j] != 0 {
            let scale = y[j]
            if isStored {
                let i = piece(containing: j), piece = pieces[i], jj = j - pieceStarts[i]
                for p in 0..<rows { x[p] += scale * piece.element(p, jj) }
            } else {
                let column = storage + (j / Self.panelWidth) * rows * Self.panelWidth + j % Self.panelWidth
                for p in 0..<rows { x[p] += scale * column[p * Self.panelWidth] }
            }
        }
    }

    /// The piece holding column `j`.
    func piece(containing j: Int) -> Int {
        var lo = 0, hi = pieces.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if pieceStarts[mid] <= j { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// B^T `[N, K]`, what a backward pass multiplies by. A matrix stored in
    /// one piece is read in place the other way round (no copy); a packed one
    /// is packed again straight from its panels: rows p0..<p0+16 of one
    /// source panel are a contiguous 16 x 16 block, and so is its transpose
    /// in the target panel, so the copy is a sequence of small in-cache block
    /// transposes, target panels split over `threads`.
    public func transposed(threads: Int = 1) -> PackedMatrix {
        if isStored {
            if pieces.count == 1, let piece = pieces.first {
                let flipped = StoredColumns(base: piece.base, element: piece.element,
                                            layout: piece.layout == .columnsAreRows ? .rowsAreRows : .columnsAreRows,
                                            columns: rows, rowStride: piece.rowStride)
                return PackedMatrix(stored: [flipped], rows: columns, owner: owner)
            }
            return unpacked().withUnsafeBufferPointer { PackedMatrix(transposed: $0, rows: columns, columns: rows) }
        }
        let t = PackedMatrix(uninitializedRows: columns, columns: rows, zeroed: false)
        let w = Self.panelWidth
        if rows % w != 0 {                                     // the last target panel's padding lanes stay zero
            (t.storage + (t.panelCount - 1) * columns * w).initialize(repeating: 0, count: columns * w)
        }
        let source = SharedPointer(storage), target = SharedPointer(t.storage)
        let (k, n, panelCount) = (self.rows, self.columns, self.panelCount)
        Parallel.forEachSlice(t.panelCount, threads: k * n < 1 << 16 ? 1 : threads) { panels in
            for targetPanel in panels {                        // 16 rows p0..<p0+16 of B
                let p0 = targetPanel * w, pCount = min(w, k - p0)
                for sourcePanel in 0..<panelCount {            // 16 columns j0..<j0+16 of B
                    let j0 = sourcePanel * w, jCount = min(w, n - j0)
                    let from = source.base + sourcePanel * k * w + p0 * w          // [pCount, 16]: element (p0 + q, j0 + jj)
                    let to = target.base + targetPanel * n * w + j0 * w            // [jCount, 16]: element (j0 + jj, p0 + q)
                    for jj in 0..<jCount {
                        for q in 0..<pCount { to[jj * w + q] = from[q * w + jj] }
                    }
                }
            }
        }
        return t
    }

    /// B as a row-major `[K, N]` array.
    public func unpacked() -> [Float] {
        if isStored {
            return [Float](unsafeUninitializedCapacity: rows * columns) { out, count in
                for (i, piece) in pieces.enumerated() {
                    piece.pack(rows: 0..<rows, columns: 0..<piece.columns, into: out.baseAddress! + pieceStarts[i], stride: columns)
                }
                count = rows * columns
            }
        }
        var out = [Float](repeating: 0, count: rows * columns)
        for p in 0..<rows { for j in 0..<columns { out[p * columns + j] = element(p, j) } }
        return out
    }

    /// `C[M, N] (+)= A[M, K'] · B[kRange, N]` where `K' = kRange.count`.
    ///
    /// - Parameters:
    ///   - a: row-major A with row stride `lda` (>= K').
    ///   - c: row-major C with row stride `ldc` (>= N).
    ///   - accumulate: add to C instead of overwriting it.
    ///   - kRange: the rows of B to use (default all); lets one head's slice
    ///     of an output projection be applied alone.
    ///   - threads: column panels are split across this many threads.
    public func multiply(
        _ a: UnsafePointer<Float>, lda: Int, m: Int,
        into c: UnsafeMutablePointer<Float>, ldc: Int,
        accumulate: Bool = false, kRange: Range<Int>? = nil, threads: Int = 1
    ) {
        let ks = kRange ?? 0..<rows
        precondition(ks.lowerBound >= 0 && ks.upperBound <= rows && lda >= ks.count && ldc >= columns)
        if m == 0 || columns == 0 { return }
        if ks.isEmpty {
            if !accumulate { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: columns) } }
            return
        }
        let work = m * ks.count * columns
        let useThreads = work < 1 << 20 ? 1 : threads
        let cShared = SharedPointer(c)
        if isStored {
            multiplyStored(a, lda: lda, m: m, c: c, ldc: ldc, accumulate: accumulate, ks: ks, threads: useThreads)
            return
        }
        Parallel.forEachSlice(panelCount, threads: useThreads) { panels in
            self.multiplyPanels(panels, a: a, lda: lda, m: m, c: cShared.base, ldc: ldc,
                                accumulate: accumulate, ks: ks)
        }
    }

    /// Rows of B packed per block of a stored multiply (K is blocked so a
    /// block of B stays in L2 while the rows of A stream past it).
    static let blockRows = 256
    /// Rows of A per pass over one block of B (96 rows x 256 floats = 96 KB).
    static let blockRowsOfA = 96

    /// The stored multiply: column blocks of up to 16 panels are split across
    /// threads; each thread packs one `kc x 16` panel group of B at a time into
    /// its own buffer and runs the micro-kernel over every row of A.
    private func multiplyStored(_ a: UnsafePointer<Float>, lda: Int, m: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                accumulate: Bool, ks: Range<Int>, threads: Int) {
        let k = ks.count
        let kc = k <= Self.blockRows + Self.blockRows / 2 ? k : Self.blockRows
        let perBlock = threads == 1 ? 16 : max(1, min(16, panelCount / (2 * threads)))
        let blocks = (panelCount + perBlock - 1) / perBlock
        let cShared = SharedPointer(c)
        Parallel.forEachSlice(blocks, threads: threads) { range in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: kc * perBlock * Self.panelWidth)
            defer { buffer.deallocate() }
            for block in range {
                let panels = (block * perBlock)..<min(panelCount, (block + 1) * perBlock)
                var k0 = ks.lowerBound
                while k0 < ks.upperBound {
                    let kCount = min(kc, ks.upperBound - k0)
                    self.pack(rows: k0..<(k0 + kCount), panels: panels, into: buffer)
                    let add = accumulate || k0 > ks.lowerBound
                    var i0 = 0
                    while i0 < m {
                        let i1 = min(m, i0 + Self.blockRowsOfA)
                        for (q, panel) in panels.enumerated() {
                            let j0 = panel * Self.panelWidth
                            Self.panelRows(b: buffer + q * kCount * Self.panelWidth, k: kCount,
                                           a: a + (k0 - ks.lowerBound), lda: lda, rows: i0..<i1,
                                           c: cShared.base + j0, ldc: ldc, width: min(Self.panelWidth, columns - j0),
                                           accumulate: add)
                        }
                        i0 = i1
                    }
                    k0 += kCount
                }
            }
        }
    }

    /// Packs rows `rowRange` of the stored columns of `panels` into `dst`:
    /// panel q at `dst + q * K' * 16` as `[K', 16]`, zero past N.
    func pack(rows rowRange: Range<Int>, panels: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let kCount = rowRange.count, w = Self.panelWidth
        var pieceIndex = piece(containing: panels.lowerBound * w)
        for (q, panel) in panels.enumerated() {
            let out = dst + q * kCount * w
            let j0 = panel * w, width = min(w, columns - j0)
            if width < w { out.update(repeating: 0, count: kCount * w) }
            var j = j0
            while j < j0 + width {
                while pieceStarts[pieceIndex + 1] <= j { pieceIndex += 1 }
                let piece = pieces[pieceIndex]
                let local = j - pieceStarts[pieceIndex]
                let run = min(j0 + width, pieceStarts[pieceIndex + 1]) - j          // columns of this piece in the panel
                piece.pack(rows: rowRange, columns: local..<(local + run), into: out + (j - j0), stride: w)
                j += run
            }
        }
    }

    /// Rows `rows` of C's 16 columns at `c` (+)= A · one packed panel `b` `[k, 16]`.
    @inline(__always)
    static func panelRows(b: UnsafePointer<Float>, k: Int, a: UnsafePointer<Float>, lda: Int, rows: Range<Int>,
                          c: UnsafeMutablePointer<Float>, ldc: Int, width: Int, accumulate: Bool) {
        var i = rows.lowerBound
        let m = rows.upperBound
        while i + 6 <= m {
            Microkernel.rows6(k: k, a: a + i * lda, lda: lda, b: b, c: c + i * ldc, ldc: ldc,
                              width: width, rows: 6, accumulate: accumulate)
            i += 6
        }
        if m - i >= 2 {
            Microkernel.rows6(k: k, a: a + i * lda, lda: lda, b: b, c: c + i * ldc, ldc: ldc,
                              width: width, rows: m - i, accumulate: accumulate)
        } else if m - i == 1 {
            Microkernel.rows1(k: k, a: a + i * lda, b: b, c: c + i * ldc, width: width, accumulate: accumulate)
        }
    }

    /// The single-threaded body: panels `panels` of C, all rows. K is not
    /// blocked: measured here, a whole K x 16 panel (<= 200 KB) streams well
    /// from L2 and each C tile is then written once.
    private func multiplyPanels(
        _ panels: Range<Int>, a: UnsafePointer<Float>, lda: Int, m: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool, ks: Range<Int>
    ) {
        let k = ks.count
        for panel in panels {
            let b = UnsafePointer(storage + panel * rows * Self.panelWidth + ks.lowerBound * Self.panelWidth)
            let j0 = panel * Self.panelWidth
            Self.panelRows(b: b, k: k, a: a, lda: lda, rows: 0..<m, c: c + j0, ldc: ldc,
                           width: min(Self.panelWidth, columns - j0), accumulate: accumulate)
        }
    }
}

/// Register-blocked inner loops of the packed multiply.
enum Microkernel {
    typealias V = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, width: Int, accumulate: Bool) {
        if width >= 8 {
            let out = accumulate ? v + load(p) : v
            UnsafeMutableRawPointer(p).storeBytes(of: out, as: V.self)
        } else {
            for l in 0..<max(width, 0) { p[l] = accumulate ? p[l] + v[l] : v[l] }
        }
    }

    @inline(__always)
    static func storeRow(_ lo: V, _ hi: V, _ c: UnsafeMutablePointer<Float>, width: Int, accumulate: Bool) {
        store(lo, c, width: width, accumulate: accumulate)
        store(hi, c + 8, width: width - 8, accumulate: accumulate)
    }

    /// C[rows, 16] (+)= A[rows, k] · panel[k, 16] for 2 <= rows <= 6; rows
    /// past `rows` read the last real row of A and are not stored.
    @inline(__always)
    static func rows6(k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                      c: UnsafeMutablePointer<Float>, ldc: Int, width: Int, rows: Int, accumulate: Bool) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        let last = rows - 1
        let a0 = a, a1 = a + min(1, last) * lda, a2 = a + min(2, last) * lda, a3 = a + min(3, last) * lda
        let a4 = a + min(4, last) * lda, a5 = a + min(5, last) * lda
        var bp = b
        for p in 0..<k {
            let b0 = load(bp), b1 = load(bp + 8)
            var x = V(repeating: a0[p]); c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = V(repeating: a1[p]); c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = V(repeating: a2[p]); c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = V(repeating: a3[p]); c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = V(repeating: a4[p]); c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = V(repeating: a5[p]); c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            bp += 16
        }
        storeRow(c00, c01, c, width: width, accumulate: accumulate)
        storeRow(c10, c11, c + ldc, width: width, accumulate: accumulate)
        if rows > 2 { storeRow(c20, c21, c + 2 * ldc, width: width, accumulate: accumulate) }
        if rows > 3 { storeRow(c30, c31, c + 3 * ldc, width: width, accumulate: accumulate) }
        if rows > 4 { storeRow(c40, c41, c + 4 * ldc, width: width, accumulate: accumulate) }
        if rows > 5 { storeRow(c50, c51, c + 5 * ldc, width: width, accumulate: accumulate) }
    }

    /// C[1, 16] (+)= A[1, k] · panel[k, 16], summed in the same order as
    /// `rows6` (one chain over k), so a row's result does not depend on how
    /// many rows are multiplied with it (batched windows equal single ones).
    @inline(__always)
    static func rows1(k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                      c: UnsafeMutablePointer<Float>, width: Int, accumulate: Bool) {
        var s0 = V(), s1 = V()
        var bp = b
        for p in 0..<k {
            let x = V(repeating: a[p])
            s0 = s0.addingProduct(x, load(bp)); s1 = s1.addingProduct(x, load(bp + 8))
            bp += 16
        }
        storeRow(s0, s1, c, width: width, accumulate: accumulate)
    }
}
