/// Writes a `.safetensors` file: an 8-byte little-endian header length, a JSON
/// header `{name: {dtype, shape, data_offsets}, "__metadata__": {...}}` padded
/// with spaces to a multiple of 8 bytes, then the tensors' bytes in header
/// order (float32, little-endian). Written atomically (`AtomicFile`).
public enum SafetensorsWriter {
    /// Writes `tensors` (names must be unique) to `path` as F32.
    public static func write(_ tensors: [NamedTensor], to path: String, metadata: [String: String] = ["format": "pt"]) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var fields: [(String, JSONOutput)] = []
        if !metadata.isEmpty {
            fields.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        var offset = 0
        var seen = Set<String>()
        for t in sorted {
            precondition(seen.insert(t.name).inserted, "duplicate tensor name \(t.name)")
            precondition(t.values.count == t.shape.reduce(1, *), "tensor \(t.name): shape \(t.shape) for \(t.values.count) values")
            let bytes = t.values.count * 4
            fields.append((t.name, .object([
                ("dtype", .string("F32")), ("shape", .ints(t.shape)), ("data_offsets", .ints([offset, offset + bytes])),
            ])))
            offset += bytes
        }
        var header = Array(JSONOutput.object(fields).serialized().utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var prefix: [UInt8] = []
        prefix.le64(UInt64(header.count))
        let file = try AtomicFile(path: path)
        do {
            try file.write(prefix + header)
            for t in sorted {
                try t.values.withUnsafeBufferPointer { values in
                    #if _endian(big)
                    let swapped = values.map { $0.bitPattern.littleEndian }
                    try swapped.withUnsafeBytes { try file.write($0) }
                    #else
                    try file.write(UnsafeRawBufferPointer(values))
                    #endif
                }
            }
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }
}
