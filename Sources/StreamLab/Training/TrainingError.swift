/// Errors of training and of gradient analysis. Each description is one line
/// naming the file, flag or model at fault.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case unreadableCorpus(path: String, reason: String)
    case emptyCorpus(path: String)
    case corpusTooShort(path: String, bytes: Int, needed: Int)
    case invalidShape(String)
    case outputExists(path: String)
    case badCheckpoint(path: String, reason: String)
    case checkpointMismatch(path: String, reason: String)
    case invalidSetting(String)
    case diverged(step: Int, loss: String)
    case outputLocked(path: String, lockPath: String)
    case unfinishedRun(path: String, partial: String)

    public var description: String {
        switch self {
        case let .unreadableCorpus(path, reason):
            return "cannot read corpus '\(path)': \(reason)"
        case let .emptyCorpus(path):
            return "corpus '\(path)' is empty"
        case let .corpusTooShort(path, bytes, needed):
            return "corpus '\(path)' has \(bytes) bytes, fewer than one context window plus its next byte (\(needed))"
        case let .invalidShape(reason):
            return "invalid model shape: \(reason)"
        case let .outputExists(path):
            return "output directory '\(path)' already exists; pass --overwrite to replace it or --resume to continue its training"
        case let .badCheckpoint(path, reason):
            return "cannot resume from '\(path)': \(reason)"
        case let .checkpointMismatch(path, reason):
            return "cannot resume from '\(path)': \(reason)"
        case let .invalidSetting(reason):
            return reason
        case let .diverged(step, loss):
            return "training diverged at step \(step): the loss is \(loss); the output directory is left as it was (try a lower --lr or a longer --warmup)"
        case let .outputLocked(path, lockPath):
            return "output directory '\(path)' is in use: another train run holds its lock '\(lockPath)'"
        case let .unfinishedRun(path, partial):
            return "output directory '\(path)' has an unfinished run in '\(partial)'; pass --resume to continue it or --overwrite to start afresh"
        }
    }
}
