/// Everything that can go wrong while loading a tokenizer, reading a text file or
/// decoding ids. Each description is one line naming the file, line, key, token or id
/// at fault, ready to print after "error: ".
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path does not exist.
    case fileNotFound(file: String)
    /// `--shard` that is not i/n with 0 <= i < n.
    case badShard(String)
    /// The file exists but could not be read.
    case unreadable(file: String, reason: String)
    /// A model directory holds neither `tokenizer.json` nor `vocab.json` + `merges.txt`.
    case noTokenizer(directory: String)
    /// One file of a `vocab.json` + `merges.txt` pair is present, the other is not.
    case missingCompanion(file: String, companion: String)
    /// The path is not a tokenizer file kind StreamLab reads.
    case unknownFileKind(file: String)
    /// A JSON syntax error, with the 1-based line and column where reading stopped.
    case malformedJSON(file: String, line: Int, column: Int, reason: String)
    /// A JSON entry is missing or has the wrong type; `key` is a path like `model.vocab`.
    case invalidEntry(file: String, key: String, reason: String)
    /// Valid input that StreamLab does not implement, e.g. a `WordPiece` model.
    case unsupported(file: String, feature: String)
    /// A line of a line-oriented vocabulary file (`merges.txt`, `.tiktoken`) is malformed.
    case malformedLine(file: String, line: Int, reason: String)
    /// A merge rule names a token that is not in the vocabulary. `location` is
    /// `line 7` (merges.txt) or `model.merges[6]` (tokenizer.json).
    case unknownMergeToken(file: String, location: String, merge: String, token: String)
    /// `decode` was given an id that no token has.
    case unknownTokenID(Int, vocabularySize: Int)
    /// A text file is not valid UTF-8; `byteOffset` is the first byte of the bad sequence.
    case invalidUTF8(file: String, byteOffset: Int)
    /// A text that had to be one token encodes to several (or none).
    case notOneToken(text: String, ids: [Int])

    public var description: String {
        switch self {
        case .badShard(let text):
            return "option '--shard': '\(text)' is not a shard: give i/n with 0 <= i < n (shard i of n, counted from 0)"
        case .fileNotFound(let file):
            return "\(file): no such file or directory"
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .noTokenizer(let directory):
            return "no tokenizer in \(directory): expected tokenizer.json, or vocab.json with merges.txt "
                + "(pass --tokenizer PATH, or give token ids with --tokens)"
        case .missingCompanion(let file, let companion):
            return "\(file) needs \(companion) beside it, which does not exist"
        case .unknownFileKind(let file):
            return "\(file): not a tokenizer file (expected a model directory, a tokenizer.json, "
                + "vocab.json with merges.txt, or a .tiktoken ranks file)"
        case .malformedJSON(let file, let line, let column, let reason):
            return "\(file) line \(line), column \(column): malformed JSON: \(reason)"
        case .invalidEntry(let file, let key, let reason):
            return "\(file): '\(key)' \(reason)"
        case .unsupported(let file, let feature):
            return "\(file): unsupported \(feature)"
        case .malformedLine(let file, let line, let reason):
            return "\(file) line \(line): \(reason)"
        case .unknownMergeToken(let file, let location, let merge, let token):
            return "\(file) \(location): merge '\(merge)' names '\(token)', which is not in the vocabulary"
        case .unknownTokenID(let id, let vocabularySize):
            return "unknown token id \(id): no token has this id (vocabulary size \(vocabularySize))"
        case .invalidUTF8(let file, let byteOffset):
            return "\(file): invalid UTF-8 at byte offset \(byteOffset)"
        case .notOneToken(let text, let ids):
            return "'\(text)' is not one token (it encodes to \(ids.count): \(ids.map(String.init).joined(separator: ",")))"
        }
    }
}

extension JSONReader {
    /// Parses `bytes` (valid UTF-8) as one JSON value; `file` names it in errors
    /// (`TokenizerError.malformedJSON`).
    static func parse(_ bytes: [UInt8], file: String) throws -> JSONValue {
        do {
            return try parseLocated(bytes)
        } catch let failure as Failure {
            throw TokenizerError.malformedJSON(file: file, line: failure.line, column: failure.column, reason: failure.reason)
        }
    }
}
