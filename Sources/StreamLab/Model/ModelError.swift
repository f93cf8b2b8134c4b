/// Errors in what a caller asked of a model. One line each, naming the
/// token, layer, head or position at fault.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case emptyTokens
    case tokenOutOfRange(index: Int, id: Int, vocabularySize: Int)
    case sequenceTooLong(length: Int, maximum: Int)
    case layerOutOfRange(layer: Int, layerCount: Int)
    case headOutOfRange(layer: Int, head: Int, headCount: Int)
    case positionOutOfRange(position: Int, length: Int)
    case targetOutOfRange(target: Int, vocabularySize: Int)
    case invalidArchitecture(String)
    case invalidIntervention(String)
    case tooShortForLoss(length: Int)
    case nonFinite(where: String, context: String?)
    case unknownHook(name: String, known: [String])
    case unsupported(String)
    case insufficientMemory(String)
    /// A probe request that cannot be answered, with the reason.
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .emptyTokens:
            return "the token list is empty: give at least one token"
        case let .tokenOutOfRange(index, id, v):
            return "token \(id) at position \(index) is out of range: the vocabulary has ids 0..<\(v)"
        case let .sequenceTooLong(length, maximum):
            return "the sequence has \(length) tokens but the model accepts at most \(maximum) positions"
        case let .layerOutOfRange(layer, count):
            return "layer \(layer) is out of range: the model has layers 0..<\(count)"
        case let .headOutOfRange(layer, head, count):
            return "head \(head) of layer \(layer) is out of range: the model has heads 0..<\(count)"
        case let .positionOutOfRange(position, length):
            return "position \(position) is out of range for \(length) tokens (use 0..<\(length), or -\(length)...-1 from the end)"
        case let .targetOutOfRange(target, v):
            return "target token \(target) is not in the vocabulary (ids 0..<\(v))"
        case let .invalidArchitecture(reason):
            return "invalid architecture: \(reason)"
        case let .unknownHook(name, known):
            return "unknown hook '\(name)' (known: \(known.joined(separator: ", ")))"
        case let .nonFinite(point, context):
            return "NaN or infinity first appeared at \(point)\(context.map { " (\($0))" } ?? ""): check the model's weights and config"
        case let .tooShortForLoss(length):
            return "the gradient of the next-token loss needs at least 2 tokens, got \(length)"
        case let .invalidIntervention(reason):
            return "invalid intervention \(reason)"
        case let .insufficientMemory(reason), let .invalidRequest(reason):
            return reason
        case let .unsupported(reason):
            return "not supported: \(reason)"
        }
    }
}
