#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Element types a checkpoint may store. Computation is always float32.
public enum StorageDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 2 }
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: StorageDType
    public let shape: [Int]
    /// Absolute byte range in the file.
    public let byteRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped `.safetensors` file: an 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the
/// data area. Everything in the header is checked before any byte is used.
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: TensorInfo]
    /// `__metadata__` strings, if any.
    public let metadata: [String: String]
    let file: MappedFile

    /// Largest header accepted (the format's own limit is 100 MB).
    static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let size = file.count
        guard size >= 8 else {
            throw LoadError.malformedHeader(file: path, reason: "file has \(size) bytes, fewer than the 8-byte header length")
        }
        let lengthBytes = file.bytes(0..<8)
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(lengthBytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maxHeaderBytes), Int(headerLength) <= size - 8 else {
            throw LoadError.malformedHeader(file: path, reason: "header length \(headerLength) exceeds the file size \(size)")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = Array(file.bytes(8..<dataStart))
        guard headerBytes.isEmpty || String(validating: headerBytes, as: UTF8.self) != nil else {
            throw LoadError.malformedHeader(file: path, reason: "header is not valid UTF-8")
        }
        let header: JSONValue
        do { header = try JSONReader.parseLocated(headerBytes) } catch {
            throw LoadError.malformedHeader(file: path, reason: "header is not valid JSON (\(error))")
        }
        guard let entries = header.members else {
            throw LoadError.malformedHeader(file: path, reason: "header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, entry) in entries {
            if name == "__metadata__" {
                for (k, v) in entry.members ?? [] { if let s = v.string { metadata[k] = s } }
                continue
            }
            if tensors[name] != nil {
                throw LoadError.malformedHeader(file: path, reason: "tensor '\(name)' is listed twice")
            }
            tensors[name] = try Self.parseEntry(name: name, entry: entry, path: path,
                                               dataStart: dataStart, fileSize: size)
        }
        try Self.checkLayout(tensors.values, path: path, dataStart: dataStart, fileSize: size)
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func parseEntry(name: String, entry: JSONValue, path: String,
                                   dataStart: Int, fileSize: Int) throws -> TensorInfo {
        guard let dtypeName = entry["dtype"]?.string,
              let shapeValues = entry["shape"]?.array,
              let offsets = entry["data_offsets"]?.array, offsets.count == 2,
              let begin = offsets[0].int, let end = offsets[1].int
        else {
            throw LoadError.malformedHeader(file: path, reason: "entry '\(name)' lacks dtype, shape or data_offsets [begin, end]")
        }
        guard let dtype = StorageDType(rawValue: dtypeName) else {
            throw LoadError.unsupportedDType(file: path, tensor: name, dtype: dtypeName)
        }
        var shape: [Int] = []
        var count = 1
        for v in shapeValues {
            guard let d = v.int, d >= 0 else {
                throw LoadError.malformedHeader(file: path, reason: "tensor '\(name)' has an invalid shape entry \(v.preview)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw LoadError.malformedHeader(file: path, reason: "tensor '\(name)' has an absurd shape \(shapeValues.map(\.preview))")
            }
            count = product
            shape.append(d)
        }
        guard begin >= 0, end >= begin else {
            throw LoadError.malformedHeader(file: path, reason: "tensor '\(name)' has data_offsets [\(begin), \(end)]")
        }
        let (absoluteEnd, overflow) = dataStart.addingReportingOverflow(end)
        guard !overflow, absoluteEnd <= fileSize else {
            throw LoadError.tensorOutOfBounds(file: path, tensor: name, end: overflow ? Int.max : absoluteEnd, available: fileSize)
        }
        guard end - begin == count * dtype.size else {
            throw LoadError.badTensorSize(file: path, tensor: name, shape: shape, dtype: dtypeName, bytes: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<absoluteEnd)
    }

    /// The tensors must tile the data area exactly, as the format's reference
    /// reader requires: sorted by offset, each starting where the previous one
    /// ended, none overlapping, the last ending at the end of the file.
    private static func checkLayout(_ infos: Dictionary<String, TensorInfo>.Values, path: String,
                                    dataStart: Int, fileSize: Int) throws {
        let sorted = infos.sorted { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        var end = dataStart
        var previous: String?
        for info in sorted {
            if info.byteRange.lowerBound < end, let previous {
                throw LoadError.malformedHeader(file: path, reason: "tensors '\(previous)' and '\(info.name)' overlap")
            }
            if info.byteRange.lowerBound > end {
                throw LoadError.malformedHeader(file: path, reason: "\(info.byteRange.lowerBound - end) bytes before tensor '\(info.name)' belong to no tensor")
            }
            end = info.byteRange.upperBound
            previous = info.name
        }
        if end != fileSize {
            throw LoadError.malformedHeader(file: path, reason: "\(fileSize - end) bytes after the last tensor belong to no tensor")
        }
    }

    /// The raw bytes of a tensor, straight from the map.
    public func rawBytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        file.bytes(info.byteRange)
    }

    /// A tensor converted to float32.
    public func floats(_ info: TensorInfo) -> [Float] {
        let raw = rawBytes(info)
        let n = info.elementCount
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch info.dtype {
            case .f32:
                for i in 0..<n { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
            case .f16:
                for i in 0..<n { out[i] = HalfFloat.float(fromHalf: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
            case .bf16:
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) << 16) }
            }
            initialized = n
        }
    }
}

/// IEEE half-precision conversion, portable (no `Float16` type needed).
enum HalfFloat {
    @inline(__always)
    static func float(fromHalf h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal: mantissa * 2^-24.
            let v = Float(mantissa) * Float(bitPattern: 0x3380_0000)
            return sign != 0 ? -v : v
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    }
}
