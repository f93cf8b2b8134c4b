#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a tuned-lens file cannot be used.
public enum TunedLensError: Error, CustomStringConvertible, Equatable {
    case badFile(path: String, reason: String)
    case otherModel(path: String, lensModel: String, model: String)
    case otherConfig(path: String, model: String, lensHash: String, modelHash: String)
    case shapeMismatch(lens: String, model: String)
    case unfinishedRun(output: String, state: String)
    case textTooShort(path: String, tokens: Int, needed: Int)
    case diverged(step: Int, state: String)

    public var description: String {
        switch self {
        case let .badFile(path, reason): "tuned lens '\(path)': \(reason)"
        case let .otherModel(path, lensModel, model):
            "tuned lens '\(path)' was trained for model '\(lensModel)', not for '\(model)' (the model directory's name and config.json must match); train one for this model with 'stream-probe tuned-lens train'"
        case let .otherConfig(path, model, lensHash, modelHash):
            "tuned lens '\(path)' was trained for a model '\(model)' whose config.json had SHA-256 \(lensHash.prefix(12))..., but this one's is \(modelHash.prefix(12))...; the config changed since: train a lens for it with 'stream-probe tuned-lens train'"
        case let .shapeMismatch(lens, model):
            "the tuned lens (\(lens)) does not fit the model (\(model))"
        case let .unfinishedRun(output, state):
            "'\(state)' holds an unfinished tuned-lens run for '\(output)'; pass --resume to continue it or --overwrite to start afresh"
        case let .diverged(step, state):
            "tuned-lens training diverged at step \(step) (a non-finite KL, gradient or translator); no lens was written; '\(state)' keeps the last saved state: start afresh with --overwrite and a lower --lr"
        case let .textTooShort(path, tokens, needed):
            "text '\(path)' has \(tokens) tokens; the tuned lens needs at least \(needed) (its last 10% is held out for the evaluation)"
        }
    }
}

/// Which model a lens belongs to: the model directory's name and the SHA-256
/// of its config.json.
public struct ModelIdentity: Sendable, Equatable {
    public let name: String
    public let architectureSHA256: String

    public init(name: String, architectureSHA256: String) {
        self.name = name
        self.architectureSHA256 = architectureSHA256
    }

    /// The identity of the model in `directory` (its config.json's hash).
    public init(modelDirectory directory: URL) throws {
        let config = directory.appendingPathComponent("config.json")
        let bytes: [UInt8]
        do { bytes = Array(try Data(contentsOf: config)) } catch {
            throw LoadError.cannotOpen(path: config.path, reason: "\(error.localizedDescription)")
        }
        self.init(name: directory.standardizedFileURL.lastPathComponent, architectureSHA256: SHA256.hex(bytes))
    }
}

/// A tuned lens (Belrose et al. 2023; docs/definitions.md, Tuned lens): one
/// affine translator per read stream, `h' = h + A h + b`, for the embedding
/// stream (layer -1) and the streams after blocks 0..L-2 (the last block's
/// stream is the model's own read). `h'` goes through the model's final read
/// like the logit lens; with A = 0 and b = 0 the two are the same.
public struct TunedLens: Sendable {
    /// D.
    public let width: Int
    /// Per translator (index 0 = layer -1), W = A^T `[D_in, D_out]` row-major:
    /// `h'_i = h_i + sum_j W[j, i] h_j + b_i`, followed by b `[D]` (D*D + D floats).
    /// The file stores A itself (`weight[i][j]` multiplies `h[j]`, torch's nn.Linear).
    var parameters: [[Float]]
    public let model: ModelIdentity
    /// The training settings and results, as saved in the file's metadata.
    public var metadata: [String: String]

    /// The number of translators (= the model's L).
    public var translatorCount: Int { parameters.count }

    /// Throws unless this lens has one translator per layer of `architecture`, of its width.
    public func check(fits architecture: Architecture) throws {
        guard translatorCount == architecture.layerCount, width == architecture.width,
              parameters.allSatisfy({ $0.count == width * width + width }) else {
            throw TunedLensError.shapeMismatch(lens: "\(translatorCount) translators of width \(width)",
                                               model: "\(architecture.layerCount) layers of width \(architecture.width)")
        }
    }

    /// The layer a translator reads (-1 = the embedding stream).
    public static func layer(ofTranslator index: Int) -> Int { index - 1 }

    /// A lens whose translators are all zero (the logit lens) for `architecture`.
    public init(zeroFor architecture: Architecture, model: ModelIdentity, metadata: [String: String] = [:]) {
        let d = architecture.width
        width = d
        parameters = Array(repeating: [Float](repeating: 0, count: d * d + d), count: architecture.layerCount)
        self.model = model
        self.metadata = metadata
    }

    /// A of translator `index`, `[D, D]` row-major (torch layout: row i, column j multiplies h[j]).
    public func weight(_ index: Int) -> [Float] {
        let d = width
        return (0..<(d * d)).map { k in parameters[index][(k % d) * d + k / d] }
    }

    /// b of translator `index` `[D]`.
    public func bias(_ index: Int) -> [Float] { Array(parameters[index][(width * width)...]) }

    /// Sets translator `index` from A `[D, D]` (torch layout) and b `[D]`.
    public mutating func set(_ index: Int, weight a: [Float], bias b: [Float]) {
        let d = width
        precondition(a.count == d * d && b.count == d)
        for i in 0..<d { for j in 0..<d { parameters[index][j * d + i] = a[i * d + j] } }
        for i in 0..<d { parameters[index][d * d + i] = b[i] }
    }

    /// `out = x + x W + b` for `rows` rows of `x` `[rows, D]` (out may not alias x).
    func translate(_ index: Int, _ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, threads: Int) {
        let d = width
        parameters[index].withUnsafeBufferPointer { p in
            let w = PackedMatrix(rowMajor: UnsafeBufferPointer(start: p.baseAddress!, count: d * d), rows: d, columns: d)
            LinearOp.forward(x, rows: rows, weight: w, bias: p.baseAddress! + d * d, into: out, threads: threads)
        }
        Elementwise.add(x, into: out, rows * d)
    }

    // MARK: - File

    /// Saves as safetensors: `layers.{l}.weight` [D, D] and `layers.{l}.bias` [D]
    /// (l = -1..L-2), float32; metadata `model`, `architecture_sha256` and `metadata`.
    public func save(to path: String) throws {
        var tensors: [NamedTensor] = []
        for index in parameters.indices {
            let l = Self.layer(ofTranslator: index)
            tensors.append(NamedTensor(name: "layers.\(l).weight", shape: [width, width], values: weight(index)))
            tensors.append(NamedTensor(name: "layers.\(l).bias", shape: [width], values: bias(index)))
        }
        var meta = metadata
        meta["format"] = "pt"
        meta["model"] = model.name
        meta["architecture_sha256"] = model.architectureSHA256
        try SafetensorsWriter.write(tensors, to: path, metadata: meta)
    }

    /// Loads a lens for `architecture`, refusing a file made for another model
    /// (`expected`), of the wrong shapes, or holding NaN or infinity.
    public static func load(from path: String, for architecture: Architecture, model expected: ModelIdentity) throws -> TunedLens {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch let error as LoadError {
            throw TunedLensError.badFile(path: path, reason: "\(error)")
        }
        guard let name = file.metadata["model"], let hash = file.metadata["architecture_sha256"] else {
            throw TunedLensError.badFile(path: path, reason: "its metadata has no 'model' and 'architecture_sha256' (not a tuned lens written by stream-probe)")
        }
        if name != expected.name { throw TunedLensError.otherModel(path: path, lensModel: name, model: expected.name) }
        if hash != expected.architectureSHA256 {
            throw TunedLensError.otherConfig(path: path, model: name, lensHash: hash, modelHash: expected.architectureSHA256)
        }
        let d = architecture.width, count = architecture.layerCount
        var lens = TunedLens(zeroFor: architecture, model: ModelIdentity(name: name, architectureSHA256: hash),
                             metadata: file.metadata.filter { !["format", "model", "architecture_sha256"].contains($0.key) })
        let expectedNames = Set((0..<count).flatMap { ["layers.\($0 - 1).weight", "layers.\($0 - 1).bias"] })
        if let extra = file.tensors.keys.sorted().first(where: { !expectedNames.contains($0) }) {
            throw TunedLensError.badFile(path: path, reason: "unexpected tensor '\(extra)' (a lens for this model has layers.-1 to layers.\(count - 2))")
        }
        for index in 0..<count {
            let l = layer(ofTranslator: index)
            func read(_ name: String, _ shape: [Int]) throws -> [Float] {
                guard let info = file.tensors[name] else {
                    throw TunedLensError.badFile(path: path, reason: "tensor '\(name)' is missing (the model has \(count) layers: translators layers.-1 to layers.\(count - 2))")
                }
                guard info.shape == shape else {
                    throw TunedLensError.badFile(path: path, reason: "tensor '\(name)' has shape \(info.shape), expected \(shape) (the model's width is \(d))")
                }
                let values = file.floats(info)
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw TunedLensError.badFile(path: path, reason: "tensor '\(name)' holds \(values[bad]) at element \(bad)")
                }
                return values
            }
            lens.set(index, weight: try read("layers.\(l).weight", [d, d]), bias: try read("layers.\(l).bias", [d]))
        }
        return lens
    }
}
