/// Columns of a weight matrix B `[K, N']` as a checkpoint stores them, read
/// in place: float32, float16 or bfloat16, either `[N', K]` (`nn.Linear`'s
/// `[out, in]`: row j of the stored tensor is column j of B) or `[K, N']`
/// (GPT-2's `Conv1D` `[in, out]`). Row `r` of the stored tensor starts
/// `rowStride` elements after row `r - 1`.
public struct StoredColumns: @unchecked Sendable {
    public enum Element: Sendable {
        case f32, f16, bf16
        /// Bytes per element.
        public var size: Int { self == .f32 ? 4 : 2 }
    }

    public enum Layout: Sendable {
        /// Stored `[N', K]` (`nn.Linear` weights, embedding tables read as an unembedding).
        case columnsAreRows
        /// Stored `[K, N']` (`Conv1D` weights).
        case rowsAreRows
    }

    public let base: UnsafeRawPointer
    public let element: Element
    public let layout: Layout
    /// N': columns of B held here.
    public let columns: Int
    /// Elements between the starts of consecutive stored rows.
    public let rowStride: Int

    public init(base: UnsafeRawPointer, element: Element, layout: Layout, columns: Int, rowStride: Int) {
        self.base = base
        self.element = element
        self.layout = layout
        self.columns = columns
        self.rowStride = rowStride
    }

    /// Element `(p, j)` of these columns of B.
    func element(_ p: Int, _ j: Int) -> Float {
        let index = layout == .columnsAreRows ? j * rowStride + p : p * rowStride + j
        return Self.float(base, index, element)
    }

    /// One stored element as float32.
    @inline(__always)
    static func float(_ base: UnsafeRawPointer, _ index: Int, _ element: Element) -> Float {
        switch element {
        case .f32: return base.loadUnaligned(fromByteOffset: 4 * index, as: Float.self)
        case .bf16: return Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)) << 16)
        case .f16: return halfToFloat(SIMD8(repeating: UInt32(base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))))[0]
        }
    }

    /// Eight consecutive stored elements from `index` as float32.
    @inline(__always)
    static func load8(_ base: UnsafeRawPointer, _ index: Int, _ element: Element) -> SIMD8<Float> {
        switch element {
        case .f32:
            return base.loadUnaligned(fromByteOffset: 4 * index, as: SIMD8<Float>.self)
        case .bf16:
            let h = SIMD8<UInt32>(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: 2 * index, as: SIMD8<UInt16>.self))
            return unsafeBitCast(h &<< 16, to: SIMD8<Float>.self)
        case .f16:
            #if !(os(macOS) && arch(x86_64))
            // The hardware conversion (F16C's vcvtph2ps on x86_64).
            return SIMD8<Float>(base.loadUnaligned(fromByteOffset: 2 * index, as: SIMD8<Float16>.self))
            #else
            return halfToFloat(SIMD8<UInt32>(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: 2 * index, as: SIMD8<UInt16>.self)))
            #endif
        }
    }

    /// IEEE half to float, exactly, eight at a time: the exponent and
    /// mantissa shifted into float position and scaled by 2^112 (normals and
    /// subnormals alike); infinities and NaNs get the all-ones exponent.
    @inline(__always)
    static func halfToFloat(_ h: SIMD8<UInt32>) -> SIMD8<Float> {
        let sign = (h & 0x8000) &<< 16
        let magnitude = (h & 0x7FFF) &<< 13
        let scaled = unsafeBitCast(magnitude, to: SIMD8<Float>.self) * Float(bitPattern: 0x7780_0000)     // 2^112
        var bits = unsafeBitCast(scaled, to: SIMD8<UInt32>.self) | sign
        let special = (h & 0x7C00) .== 0x7C00
        bits.replace(with: magnitude | 0x7F80_0000 | sign, where: special)
        return unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    /// The transpose of the 8 x 8 block whose rows are `v0`...`v7`: three
    /// rounds of the whole-block deinterleave (even elements of each pair of
    /// rows, then odd ones), each of which rotates the index bits by one.
    @inline(__always)
    static func transpose(_ v0: SIMD8<Float>, _ v1: SIMD8<Float>, _ v2: SIMD8<Float>, _ v3: SIMD8<Float>,
                          _ v4: SIMD8<Float>, _ v5: SIMD8<Float>, _ v6: SIMD8<Float>, _ v7: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        var a = (v0, v1, v2, v3, v4, v5, v6, v7)
        for _ in 0..<3 {
            let p0 = SIMD16(lowHalf: a.0, highHalf: a.1), p1 = SIMD16(lowHalf: a.2, highHalf: a.3)
            let p2 = SIMD16(lowHalf: a.4, highHalf: a.5), p3 = SIMD16(lowHalf: a.6, highHalf: a.7)
            a = (p0.evenHalf, p1.evenHalf, p2.evenHalf, p3.evenHalf, p0.oddHalf, p1.oddHalf, p2.oddHalf, p3.oddHalf)
        }
        return a
    }

    /// Packs rows `rows` of columns `cols` as float32 into `out`: element
    /// (p, j) at `out[(p - rows.lowerBound) * stride + (j - cols.lowerBound)]`.
    func pack(rows: Range<Int>, columns cols: Range<Int>, into out: UnsafeMutablePointer<Float>, stride: Int) {
        let k = rows.count
        switch layout {
        case .columnsAreRows:
            // Each column is a contiguous stored row: 8 columns x 8 rows are
            // loaded (and converted) as 8 vectors and transposed in registers.
            var jj = 0
            let n = cols.count
            while jj + 8 <= n {
                let s0 = (cols.lowerBound + jj) * rowStride + rows.lowerBound, r = rowStride
                var p = 0
                while p + 8 <= k {
                    let t = Self.transpose(
                        Self.load8(base, s0 + p, element), Self.load8(base, s0 + r + p, element),
                        Self.load8(base, s0 + 2 * r + p, element), Self.load8(base, s0 + 3 * r + p, element),
                        Self.load8(base, s0 + 4 * r + p, element), Self.load8(base, s0 + 5 * r + p, element),
                        Self.load8(base, s0 + 6 * r + p, element), Self.load8(base, s0 + 7 * r + p, element))
                    let o = UnsafeMutableRawPointer(out + p * stride + jj), rowBytes = 4 * stride
                    o.storeBytes(of: t.0, as: SIMD8<Float>.self)
                    (o + rowBytes).storeBytes(of: t.1, as: SIMD8<Float>.self)
                    (o + 2 * rowBytes).storeBytes(of: t.2, as: SIMD8<Float>.self)
                    (o + 3 * rowBytes).storeBytes(of: t.3, as: SIMD8<Float>.self)
                    (o + 4 * rowBytes).storeBytes(of: t.4, as: SIMD8<Float>.self)
                    (o + 5 * rowBytes).storeBytes(of: t.5, as: SIMD8<Float>.self)
                    (o + 6 * rowBytes).storeBytes(of: t.6, as: SIMD8<Float>.self)
                    (o + 7 * rowBytes).storeBytes(of: t.7, as: SIMD8<Float>.self)
                    p += 8
                }
                while p < k {
                    for c in 0..<8 { out[p * stride + jj + c] = Self.float(base, s0 + c * r + p, element) }
                    p += 1
                }
                jj += 8
            }
            while jj < n {
                let start = (cols.lowerBound + jj) * rowStride + rows.lowerBound
                for p in 0..<k { out[p * stride + jj] = Self.float(base, start + p, element) }
                jj += 1
            }
        case .rowsAreRows:
            // Each row of B is a contiguous stored row: convert 8 at a time in place.
            let width = cols.count
            for (pp, p) in rows.enumerated() {
                let start = p * rowStride + cols.lowerBound
                let o = out + pp * stride
                var j = 0
                while j + 8 <= width {
                    UnsafeMutableRawPointer(o + j).storeBytes(of: Self.load8(base, start + j, element), as: SIMD8<Float>.self)
                    j += 8
                }
                while j < width { o[j] = Self.float(base, start + j, element); j += 1 }
            }
        }
    }
}
