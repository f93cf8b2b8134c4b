#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The tensors of a Hugging Face model directory: `model.safetensors`, or the
/// shards listed in `model.safetensors.index.json`. Tracks which tensors the
/// loader used so unexpected leftovers can be reported.
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    let files: [SafetensorsFile]
    /// Tensor name -> (file index, entry).
    let entries: [String: (Int, TensorInfo)]
    private(set) var used: Set<String> = []

    /// Opens the weights of the model directory `directory`.
    public init(directory: URL) throws {
        self.directory = directory
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        var files: [SafetensorsFile] = []
        var entries: [String: (Int, TensorInfo)] = [:]
        if FileManager.default.fileExists(atPath: single.path) {
            let file = try SafetensorsFile(path: single.path)
            files = [file]
            for (name, info) in file.tensors { entries[name] = (0, info) }
        } else if FileManager.default.fileExists(atPath: index.path) {
            let json = try LoadError.readJSON(index.path) { .malformedIndex(file: index.path, reason: $0) }
            guard let members = json["weight_map"]?.members else {
                throw LoadError.malformedIndex(file: index.path, reason: "no \"weight_map\" object")
            }
            let weightMap = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            var fileIndex: [String: Int] = [:]
            for name in weightMap.keys.sorted() {
                guard let shard = weightMap[name]?.string,
                      !shard.contains("/"), !shard.contains("\\"), shard != "..", !shard.isEmpty
                else {
                    throw LoadError.malformedIndex(file: index.path, reason: "entry for '\(name)' is not a file name in the model directory")
                }
                if fileIndex[shard] == nil {
                    let shardPath = directory.appendingPathComponent(shard).path
                    guard FileManager.default.fileExists(atPath: shardPath) else {
                        throw LoadError.malformedIndex(file: index.path, reason: "shard '\(shard)' listed for '\(name)' does not exist")
                    }
                    fileIndex[shard] = files.count
                    files.append(try SafetensorsFile(path: shardPath))
                }
                let i = fileIndex[shard]!
                guard let info = files[i].tensors[name] else {
                    throw LoadError.malformedIndex(file: index.path, reason: "tensor '\(name)' is not in its shard '\(shard)'")
                }
                entries[name] = (i, info)
            }
        } else {
            var hint = ""
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("pytorch_model.bin").path) {
                hint = " (pytorch_model.bin found: only safetensors checkpoints are supported; convert with transformers' save_pretrained(safe_serialization=True))"
            }
            throw LoadError.missingFile(path: single.path, what: "weights\(hint)")
        }
        self.files = files
        self.entries = entries
    }

    /// All tensor names in the checkpoint.
    public var names: [String] { entries.keys.sorted() }

    /// Whether the checkpoint holds `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The header entry of `name`, if present.
    public func info(_ name: String) -> TensorInfo? { entries[name]?.1 }

    /// Storage dtypes present (for `info`).
    public var dtypes: Set<StorageDType> { Set(entries.values.map { $0.1.dtype }) }

    /// Loads `name` as float32, checking its shape, and marks it used.
    public func floats(_ name: String, shape expected: [Int]) throws -> [Float] {
        guard let (file, info) = entries[name] else {
            throw LoadError.missingTensor(name: name, directory: directory.path)
        }
        guard info.shape == expected else {
            throw LoadError.shapeMismatch(tensor: name, expected: expected, found: info.shape)
        }
        used.insert(name)
        let values = files[file].floats(info)
        try Self.checkFinite(values.withUnsafeBufferPointer { $0.isEmpty || Elementwise.allFinite($0.baseAddress!, $0.count) }, name)
        return values
    }

    /// Refuses a tensor holding NaN or infinity, by name.
    static func checkFinite(_ finite: Bool, _ name: String) throws {
        if !finite { throw LoadError.nonFiniteTensor(tensor: name) }
    }

    /// `name` `[rows, width]` where it lies in the memory map, in its stored
    /// dtype, checked to hold only finite values; marks it used. With the
    /// file that owns the mapping.
    func stored(_ name: String, rows: Int, width: Int) throws -> (base: UnsafeRawPointer, element: StoredColumns.Element,
                                                                   owner: AnyObject) {
        guard let (file, info) = entries[name] else {
            throw LoadError.missingTensor(name: name, directory: directory.path)
        }
        guard info.shape == [rows, width] || (info.shape == [rows] && width == 1) else {
            throw LoadError.shapeMismatch(tensor: name, expected: width == 1 ? [rows] : [rows, width], found: info.shape)
        }
        used.insert(name)
        let raw = files[file].rawBytes(info)
        let element: StoredColumns.Element
        switch info.dtype {
        case .f32: element = .f32
        case .f16: element = .f16
        case .bf16: element = .bf16
        }
        guard let base = raw.baseAddress, rows * width > 0 else {
            throw LoadError.shapeMismatch(tensor: name, expected: [rows, width], found: info.shape)
        }
        try Self.checkFinite(Self.allFinite(raw, element), name)
        return (base, element, files[file])
    }

    /// Whether stored values are all finite, read in place (F16 and BF16 by
    /// their exponent bits: all ones is infinity or NaN).
    static func allFinite(_ raw: UnsafeRawBufferPointer, _ element: StoredColumns.Element) -> Bool {
        switch element {
        case .f32:
            if Int(bitPattern: raw.baseAddress) % 4 == 0 {
                return Elementwise.allFinite(raw.baseAddress!.assumingMemoryBound(to: Float.self), raw.count / 4)
            }
            return (0..<(raw.count / 4)).allSatisfy { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self).isFinite }
        case .f16, .bf16:
            // Exponent bits masked; the lane-wise maximum reaches the mask only
            // for an infinity or a NaN (a branch-free pass, vectorised).
            let mask: UInt16 = element == .f16 ? 0x7C00 : 0x7F80
            let vmask = SIMD16<UInt16>(repeating: mask)
            var acc = SIMD16<UInt16>()
            let n = raw.count / 2
            var i = 0
            while i + 16 <= n {
                acc = pointwiseMax(acc, raw.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self) & vmask)
                i += 16
            }
            var worst = acc.max()
            while i < n { worst = max(worst, raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & mask); i += 1 }
            return worst < mask
        }
    }

    /// `name` as a table `[rows, width]`, read in place from the memory map in
    /// its stored dtype (rows are converted to float32 as they are read).
    /// Marks it used.
    public func table(_ name: String, rows: Int, width: Int) throws -> FloatTable {
        let (base, element, owner) = try stored(name, rows: rows, width: width)
        return FloatTable(stored: base, element: element, rows: rows, width: width, owner: owner)
    }

    /// Marks a tensor as used without loading it (known non-weights).
    func markUsed(_ name: String) { used.insert(name) }

    /// Tensors the loader never used.
    public var unusedNames: [String] { entries.keys.filter { !used.contains($0) }.sorted() }

    /// Bytes of all stored tensors (what mapping the weights in place takes).
    public var byteCount: Int { entries.values.reduce(0) { $0 + $1.1.byteRange.count } }

    /// Total number of stored elements (parameter count, shared tensors once).
    public var elementCount: Int { entries.values.reduce(0) { $0 + $1.1.elementCount } }
}
