#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Finds and reads tokenizer files.
public enum TokenizerLoader {
    /// The tokenizer at `path`: a model directory (its `tokenizer.json`, else
    /// `vocab.json` + `merges.txt`), a `tokenizer.json` (any `.json` file other than
    /// `vocab.json`), `vocab.json` or `merges.txt` (with the other beside it), or a
    /// tiktoken ranks file (`.tiktoken`).
    ///
    /// Throws `TokenizerError`: `.noTokenizer` for a directory without tokenizer files,
    /// `.fileNotFound`, `.unknownFileKind`, and the reading errors of each format.
    public static func load(from path: URL) throws -> any Tokenizer {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw TokenizerError.fileNotFound(file: path.path)
        }
        if isDirectory {
            guard let tokenizer = try find(inModelDirectory: path) else {
                throw TokenizerError.noTokenizer(directory: path.path)
            }
            return tokenizer
        }
        let name = path.lastPathComponent
        let directory = path.deletingLastPathComponent()
        switch (name, path.pathExtension.lowercased()) {
        case ("vocab.json", _):
            return try readPair(vocabulary: path, merges: directory.appendingPathComponent("merges.txt"), named: path)
        case ("merges.txt", _):
            return try readPair(vocabulary: directory.appendingPathComponent("vocab.json"), merges: path, named: path)
        case (_, "json"):
            return try TokenizerJSONReader.read(path)
        case (_, "tiktoken"):
            return try TiktokenReader.read(path)
        default:
            throw TokenizerError.unknownFileKind(file: path.path)
        }
    }

    /// The tokenizer of a Hugging Face model directory: `tokenizer.json`, else
    /// `vocab.json` + `merges.txt`; nil when the directory has neither (a model can still
    /// be run on token ids). Throws if the files exist but cannot be read, or if only
    /// one of `vocab.json` and `merges.txt` is there.
    public static func find(inModelDirectory directory: URL) throws -> (any Tokenizer)? {
        let manager = FileManager.default
        let tokenizerJSON = directory.appendingPathComponent("tokenizer.json")
        if manager.fileExists(atPath: tokenizerJSON.path) {
            return try TokenizerJSONReader.read(tokenizerJSON)
        }
        let vocab = directory.appendingPathComponent("vocab.json")
        let merges = directory.appendingPathComponent("merges.txt")
        switch (manager.fileExists(atPath: vocab.path), manager.fileExists(atPath: merges.path)) {
        case (true, true):
            return try VocabMergesReader.read(vocabulary: vocab, merges: merges)
        case (true, false):
            throw TokenizerError.missingCompanion(file: vocab.path, companion: "merges.txt")
        case (false, true):
            throw TokenizerError.missingCompanion(file: merges.path, companion: "vocab.json")
        case (false, false):
            return nil
        }
    }

    private static func readPair(vocabulary: URL, merges: URL, named path: URL) throws -> any Tokenizer {
        let manager = FileManager.default
        if !manager.fileExists(atPath: vocabulary.path) {
            throw TokenizerError.missingCompanion(file: path.path, companion: "vocab.json")
        }
        if !manager.fileExists(atPath: merges.path) {
            throw TokenizerError.missingCompanion(file: path.path, companion: "merges.txt")
        }
        return try VocabMergesReader.read(vocabulary: vocabulary, merges: merges)
    }
}
