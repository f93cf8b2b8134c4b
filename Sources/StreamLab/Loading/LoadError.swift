/// Errors reading model files. Each description is one line naming the file,
/// key or tensor at fault, written for the person who ran the command.
public enum LoadError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case notADirectory(path: String)
    case missingFile(path: String, what: String)
    case malformedHeader(file: String, reason: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    case tensorOutOfBounds(file: String, tensor: String, end: Int, available: Int)
    case badTensorSize(file: String, tensor: String, shape: [Int], dtype: String, bytes: Int)
    case missingTensor(name: String, directory: String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case malformedIndex(file: String, reason: String)
    case malformedConfig(file: String, reason: String)
    case missingConfigKey(file: String, key: String)
    case badConfigValue(file: String, key: String, value: String, expected: String)
    case unsupportedModelType(file: String, modelType: String, supported: [String])
    case unsupportedFeature(file: String, feature: String)
    case insufficientMemory(directory: String, needed: Int, available: Int)
    case nonFiniteTensor(tensor: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open '\(path)': \(reason)"
        case let .notADirectory(path):
            return "'\(path)' is not a model directory (expected a folder with config.json and *.safetensors)"
        case let .missingFile(path, what):
            return "missing \(what): '\(path)' does not exist"
        case let .malformedHeader(file, reason):
            return "malformed safetensors header in '\(file)': \(reason)"
        case let .unsupportedDType(file, tensor, dtype):
            return "tensor '\(tensor)' in '\(file)' has dtype \(dtype); supported: F32, F16, BF16"
        case let .tensorOutOfBounds(file, tensor, end, available):
            return "tensor '\(tensor)' ends at byte \(end) but '\(file)' has only \(available) (truncated file?)"
        case let .badTensorSize(file, tensor, shape, dtype, bytes):
            return "tensor '\(tensor)' in '\(file)' has shape \(shape) of \(dtype) but its byte range holds \(bytes) bytes"
        case let .missingTensor(name, directory):
            return "tensor '\(name)' is missing from the checkpoint in '\(directory)'"
        case let .shapeMismatch(tensor, expected, found):
            return "tensor '\(tensor)' has shape \(found) but the config implies \(expected)"
        case let .malformedIndex(file, reason):
            return "malformed shard index '\(file)': \(reason)"
        case let .malformedConfig(file, reason):
            return "malformed config '\(file)': \(reason)"
        case let .missingConfigKey(file, key):
            return "config '\(file)' lacks the key '\(key)'"
        case let .badConfigValue(file, key, value, expected):
            return "config '\(file)': '\(key)' is \(value), expected \(expected)"
        case let .unsupportedModelType(file, modelType, supported):
            return "config '\(file)': model_type '\(modelType)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .unsupportedFeature(file, feature):
            return "config '\(file)': \(feature) is not supported"
        case let .nonFiniteTensor(tensor):
            return "tensor '\(tensor)' holds NaN or infinite values"
        case let .insufficientMemory(directory, needed, available):
            return "the model in '\(directory)' needs \(Format.bytes(needed)) of memory to keep its weights mapped but the machine has \(Format.bytes(available))"
        }
    }
}

extension LoadError {
    /// Reads and parses a JSON file of a model directory (`config.json`, a shard
    /// index). An unreadable file is `cannotOpen`; bad JSON becomes `malformed(reason)`.
    static func readJSON(_ path: String, malformed: (String) -> LoadError) throws -> JSONValue {
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path, limit: ReadLimit.json) } catch {
            throw LoadError.cannotOpen(path: path, reason: "\(error)")
        }
        do { return try JSONReader.parseLocated(bytes) } catch {
            throw malformed("not valid JSON (\(error))")
        }
    }
}
