#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Errors reading `.npz` / `.npy` data; each names the file and member.
public enum NpzError: Error, CustomStringConvertible, Equatable {
    case malformed(file: String, reason: String)
    case unsupportedMember(file: String, member: String, reason: String)

    public var description: String {
        switch self {
        case let .malformed(file, reason): return "malformed npz '\(file)': \(reason)"
        case let .unsupportedMember(file, member, reason): return "npz '\(file)', member '\(member)': \(reason)"
        }
    }
}

/// One array read from an `.npy` member.
public struct NpyArray: Sendable, Equatable {
    /// Element storage, converted on read to one of three Swift types.
    public enum Values: Sendable, Equatable {
        case float([Float])
        case double([Double])
        case int([Int])
    }

    public let shape: [Int]
    /// The numpy dtype string, e.g. `<f4`.
    public let descr: String
    public let values: Values

    /// The array as a float32 tensor (integers and doubles converted).
    public var tensor: Tensor {
        switch values {
        case let .float(f): return Tensor(shape: shape, scalars: f)
        case let .double(d): return Tensor(shape: shape, scalars: d.map { Float($0) })
        case let .int(i): return Tensor(shape: shape, scalars: i.map { Float($0) })
        }
    }

    /// The array's elements as integers, if it holds integers.
    public var ints: [Int]? {
        if case let .int(i) = values { return i }
        return nil
    }
}

/// Writes `.npz` archives (uncompressed zip of `.npy` v1.0 members) that
/// `numpy.load` opens, streaming each array to disk; zip64 records are added
/// when the archive passes 4 GiB. The file appears only when complete.
public final class NpzWriter {
    private let file: AtomicFile
    private var offset: UInt64 = 0
    private var central: [UInt8] = []
    private var entryCount = 0

    public init(path: String) throws {
        file = try AtomicFile(path: path)
    }

    /// Adds `name.npy` holding a float32 array.
    public func add(_ name: String, _ tensor: Tensor) throws {
        try tensor.scalars.withUnsafeBytes { try add(name, descr: "<f4", shape: tensor.shape, bytes: $0) }
    }

    /// Adds `name.npy` holding float32 `values` of `shape`.
    public func add(_ name: String, floats values: UnsafeBufferPointer<Float>, shape: [Int]) throws {
        try add(name, descr: "<f4", shape: shape, bytes: UnsafeRawBufferPointer(values))
    }

    /// Adds `name.npy` holding an int64 array.
    public func add(_ name: String, ints: [Int], shape: [Int]? = nil) throws {
        let values = ints.map { Int64($0).littleEndian }
        try values.withUnsafeBytes { try add(name, descr: "<i8", shape: shape ?? [ints.count], bytes: $0) }
    }

    private func add(_ name: String, descr: String, shape: [Int], bytes: UnsafeRawBufferPointer) throws {
        let header = Self.npyHeader(descr: descr, shape: shape)
        var crc = CRC32()
        header.withUnsafeBytes { crc.update($0) }
        crc.update(bytes)
        let size = UInt64(header.count + bytes.count)
        let memberName = Array((name + ".npy").utf8)
        let needsZip64 = size >= 0xFFFF_FFFF || offset >= 0xFFFF_FFFF

        var local: [UInt8] = []
        local.le32(0x0403_4B50)
        local.le16(needsZip64 ? 45 : 20)
        local.le16(0)                      // flags
        local.le16(0)                      // stored
        local.le16(0); local.le16(0x21)    // 1980-01-01 00:00
        local.le32(crc.value)
        local.le32(needsZip64 ? 0xFFFF_FFFF : UInt32(size))
        local.le32(needsZip64 ? 0xFFFF_FFFF : UInt32(size))
        local.le16(UInt16(memberName.count))
        local.le16(needsZip64 ? 20 : 0)
        local += memberName
        if needsZip64 {
            local.le16(0x0001); local.le16(16)
            local.le64(size); local.le64(size)
        }

        central.le32(0x0201_4B50)
        central.le16(needsZip64 ? 45 : 20)
        central.le16(needsZip64 ? 45 : 20)
        central.le16(0); central.le16(0)
        central.le16(0); central.le16(0x21)
        central.le32(crc.value)
        central.le32(needsZip64 ? 0xFFFF_FFFF : UInt32(size))
        central.le32(needsZip64 ? 0xFFFF_FFFF : UInt32(size))
        central.le16(UInt16(memberName.count))
        central.le16(needsZip64 ? 28 : 0)
        central.le16(0); central.le16(0); central.le16(0)
        central.le32(0)
        central.le32(needsZip64 ? 0xFFFF_FFFF : UInt32(offset))
        central += memberName
        if needsZip64 {
            central.le16(0x0001); central.le16(24)
            central.le64(size); central.le64(size); central.le64(offset)
        }

        try file.write(local)
        try file.write(header)
        try file.write(bytes)
        offset += UInt64(local.count) + size
        entryCount += 1
    }

    /// Writes the central directory and moves the archive into place.
    public func finish() throws {
        let centralOffset = offset
        try file.write(central)
        var end: [UInt8] = []
        let zip64 = centralOffset >= 0xFFFF_FFFF || entryCount >= 0xFFFF
        if zip64 {
            let zip64EndOffset = centralOffset + UInt64(central.count)
            end.le32(0x0606_4B50); end.le64(44)
            end.le16(45); end.le16(45); end.le32(0); end.le32(0)
            end.le64(UInt64(entryCount)); end.le64(UInt64(entryCount))
            end.le64(UInt64(central.count)); end.le64(centralOffset)
            end.le32(0x0706_4B50); end.le32(0); end.le64(zip64EndOffset); end.le32(1)
        }
        end.le32(0x0605_4B50)
        end.le16(0); end.le16(0)
        end.le16(UInt16(min(entryCount, 0xFFFF))); end.le16(UInt16(min(entryCount, 0xFFFF)))
        end.le32(UInt32(min(UInt64(central.count), 0xFFFF_FFFF)))
        end.le32(zip64 ? 0xFFFF_FFFF : UInt32(centralOffset))
        end.le16(0)
        try file.write(end)
        try file.commit()
    }

    /// Removes the partial file.
    public func abandon() { file.abandon() }

    /// `\x93NUMPY` v1.0 header, padded with spaces so the data starts on a
    /// 64-byte boundary.
    static func npyHeader(descr: String, shape: [Int]) -> [UInt8] {
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var dict = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        let unpadded = 10 + dict.count + 1
        dict += [UInt8](repeating: 0x20, count: (64 - unpadded % 64) % 64)
        dict.append(0x0A)
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        out.le16(UInt16(dict.count))
        return out + dict
    }
}

/// Reads `.npz` archives written by `numpy.savez` (or `NpzWriter`): stored
/// (uncompressed) members, zip64 included. Every offset and size is checked
/// against the file before use.
public enum NpzReader {
    /// All members, keyed by name without the `.npy` suffix.
    public static func read(path: String) throws -> [String: NpyArray] {
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch let e as LoadError { throw e }
        let bytes = mapped.bytes(0..<mapped.count)
        return try read(bytes, file: path)
    }

    static func read(_ bytes: UnsafeRawBufferPointer, file: String) throws -> [String: NpyArray] {
        let n = bytes.count
        func u16(_ o: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian) }
        func u32(_ o: Int) -> Int { Int(bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian) }
        func u64(_ o: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
        func bad(_ reason: String) -> NpzError { .malformed(file: file, reason: reason) }

        guard n >= 22 else { throw bad("too short to be a zip archive (\(n) bytes)") }
        var eocd = -1
        var i = n - 22
        while i >= max(0, n - 22 - 65_535) {
            if u32(i) == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw bad("no zip end-of-central-directory record") }
        var entryCount = u16(eocd + 10)
        var centralSize = UInt64(u32(eocd + 12))
        var centralOffset = UInt64(u32(eocd + 16))
        if (centralOffset == 0xFFFF_FFFF || entryCount == 0xFFFF), eocd >= 20, u32(eocd - 20) == 0x0706_4B50 {
            let z = u64(eocd - 12)
            guard z <= UInt64(n - 56), u32(Int(z)) == 0x0606_4B50 else { throw bad("bad zip64 end record") }
            let zi = Int(z)
            guard u64(zi + 32) < UInt64(Int.max) else { throw bad("absurd entry count") }
            entryCount = Int(u64(zi + 32))
            centralSize = u64(zi + 40)
            centralOffset = u64(zi + 48)
        }
        guard centralOffset <= UInt64(n), centralSize <= UInt64(n) - centralOffset else {
            throw bad("central directory lies outside the file")
        }
        var arrays: [String: NpyArray] = [:]
        var p = Int(centralOffset)
        let centralEnd = Int(centralOffset + centralSize)
        for _ in 0..<entryCount {
            guard p + 46 <= centralEnd, u32(p) == 0x0201_4B50 else { throw bad("bad central directory entry") }
            let method = u16(p + 10)
            var compressed = UInt64(u32(p + 20))
            var size = UInt64(u32(p + 24))
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            var localOffset = UInt64(u32(p + 42))
            guard p + 46 + nameLength + extraLength + commentLength <= centralEnd else { throw bad("entry runs past the directory") }
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(p + 46)..<(p + 46 + nameLength)])
            let name = String(decoding: nameBytes, as: UTF8.self)
            // zip64 extra: the fields that are 0xFFFFFFFF, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = u16(e), length = u16(e + 2)
                guard e + 4 + length <= extraEnd else { throw bad("bad extra field in '\(name)'") }
                if id == 0x0001 {
                    var q = e + 4
                    if size == 0xFFFF_FFFF, q + 8 <= e + 4 + length { size = u64(q); q += 8 }
                    if compressed == 0xFFFF_FFFF, q + 8 <= e + 4 + length { compressed = u64(q); q += 8 }
                    if localOffset == 0xFFFF_FFFF, q + 8 <= e + 4 + length { localOffset = u64(q); q += 8 }
                }
                e += 4 + length
            }
            p = extraEnd + commentLength
            guard method == 0 else {
                throw NpzError.unsupportedMember(file: file, member: name, reason: "compressed (method \(method)); write with numpy.savez, not savez_compressed")
            }
            guard compressed == size else { throw bad("member '\(name)' has inconsistent sizes") }
            guard localOffset <= UInt64(n - 30), u32(Int(localOffset)) == 0x0403_4B50 else {
                throw bad("member '\(name)' has no local header at offset \(localOffset)")
            }
            let lo = Int(localOffset)
            let dataStart = lo + 30 + u16(lo + 26) + u16(lo + 28)
            guard size <= UInt64(n), dataStart <= n - Int(size) else {
                throw bad("member '\(name)' runs past the end of the file (truncated?)")
            }
            let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart..<(dataStart + Int(size))])
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            arrays[key] = try parseNpy(data, file: file, member: name)
        }
        return arrays
    }

    /// Parses one `.npy` payload.
    static func parseNpy(_ data: UnsafeRawBufferPointer, file: String, member: String) throws -> NpyArray {
        func bad(_ reason: String) -> NpzError { .unsupportedMember(file: file, member: member, reason: reason) }
        guard data.count >= 10, data[0] == 0x93, Array(data[1..<6]) == Array("NUMPY".utf8) else {
            throw bad("not an .npy array (bad magic)")
        }
        let major = data[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(data[8]) | Int(data[9]) << 8
            headerStart = 10
        case 2, 3:
            guard data.count >= 12 else { throw bad("truncated header") }
            headerLength = Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
            headerStart = 12
        default:
            throw bad("npy format version \(major) is not supported")
        }
        guard headerLength <= data.count - headerStart else { throw bad("header runs past the member") }
        let header = String(decoding: UnsafeRawBufferPointer(rebasing: data[headerStart..<(headerStart + headerLength)]), as: UTF8.self)
        guard let descr = Self.field("descr", in: header)?.trimming(["'", "\""]),
              let fortran = Self.field("fortran_order", in: header),
              let shapeText = Self.field("shape", in: header)
        else { throw bad("header lacks descr, fortran_order or shape") }
        guard fortran == "False" else { throw bad("Fortran-ordered arrays are not supported") }
        let inner = shapeText.trimming(["(", ")", " "])
        var shape: [Int] = []
        var count = 1
        for part in inner.split(separator: ",") {
            let s = part.trimmingWhitespace()
            if s.isEmpty { continue }
            guard let d = Int(s), d >= 0 else { throw bad("bad shape \(shapeText)") }
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw bad("shape \(shapeText) overflows") }
            count = c
            shape.append(d)
        }
        let body = UnsafeRawBufferPointer(rebasing: data[(headerStart + headerLength)...])
        let itemSizes: [String: Int] = ["<f4": 4, "<f8": 8, "<f2": 2, "<i8": 8, "<i4": 4, "<i2": 2, "|i1": 1, "|u1": 1, "<u2": 2, "<u4": 4, "<u8": 8, "|b1": 1]
        guard let itemSize = itemSizes[descr] else { throw bad("dtype \(descr) is not supported") }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: itemSize)
        guard !overflow, byteCount == body.count else {
            throw bad("shape \(shape) of \(descr) needs \(overflow ? Int.max : byteCount) bytes but the member has \(body.count)")
        }
        let values: NpyArray.Values
        switch descr {
        case "<f4":
            values = .float((0..<count).map { Float(bitPattern: body.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) })
        case "<f2":
            values = .float((0..<count).map { HalfFloat.float(fromHalf: body.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) })
        case "<f8":
            values = .double((0..<count).map { Double(bitPattern: body.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) })
        case "<i8": values = .int((0..<count).map { Int(Int64(littleEndian: body.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) })
        case "<u8": values = .int((0..<count).map { Int(truncatingIfNeeded: body.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian) })
        case "<i4": values = .int((0..<count).map { Int(Int32(littleEndian: body.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) })
        case "<u4": values = .int((0..<count).map { Int(body.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian) })
        case "<i2": values = .int((0..<count).map { Int(Int16(littleEndian: body.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) })
        case "<u2": values = .int((0..<count).map { Int(body.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) })
        case "|i1": values = .int((0..<count).map { Int(Int8(bitPattern: body[$0])) })
        default: values = .int((0..<count).map { Int(body[$0]) })   // |u1, |b1
        }
        return NpyArray(shape: shape, descr: descr, values: values)
    }

    /// The raw text of `'key': value` in a Python dict literal header.
    private static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return rest[..<end].trimmingWhitespace()
    }
}

extension Array where Element == UInt8 {
    mutating func le16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    mutating func le32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    mutating func le64(_ v: UInt64) { for s in stride(from: 0, to: 64, by: 8) { append(UInt8((v >> UInt64(s)) & 0xFF)) } }
}

extension Transformer {
    /// One forward pass over `tokens` whose recorded arrays go straight into
    /// the `.npz` at `path` as they are produced (with `tokens`, int64, first):
    /// memory does not grow with the number of hook points recorded. Atomic:
    /// on any error no file is left behind. Returns the names written.
    @discardableResult
    public func trace(_ tokens: [Int], recording kinds: Set<HookKind>, to path: String) throws -> [String] {
        try validate(tokens: tokens)
        try checkFits(length: tokens.count, recording: kinds, streamed: true)
        let writer = try NpzWriter(path: path)
        var names: [String] = []
        do {
            try writer.add("tokens", ints: tokens)
            try forwardStreaming(tokens, recording: kinds) { point, values, shape in
                try writer.add(point.name, floats: values, shape: shape)
                names.append(point.name)
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        return names
    }
}

extension Run {
    /// Writes `tokens` (int64) and every recorded array (float32, named as the
    /// hook points) as one uncompressed `.npz` that `numpy.load` opens; atomic:
    /// on any error no file is left behind.
    public func writeNpz(to path: String) throws {
        let writer = try NpzWriter(path: path)
        do {
            try writer.add("tokens", ints: tokens)
            for point in points { try writer.add(point.name, self[point]!) }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }
}
