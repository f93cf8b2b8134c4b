#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The byte-level tokenizer of the trained models: GPT-2's byte-to-symbol
/// table (`bytes_to_unicode`), token id = byte value, no merges. Saved as a
/// Hugging Face `tokenizer.json` (BPE model, ByteLevel pre-tokenizer and
/// decoder) so that `tokenizers` and our own reader map text to its bytes and back.
public enum ByteLevelVocabulary {
    /// The printable symbol GPT-2 uses for each byte (index = byte).
    public static let symbols: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var codes = printable
        var extra = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, codes) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }()

    /// `tokenizer.json` text.
    public static func tokenizerJSON() -> String {
        let vocab: [(String, JSONOutput)] = (0..<256).map { (String(symbols[$0]), .int($0)) }
        let byteLevel: [(String, JSONOutput)] = [
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
            ("use_regex", .bool(true)),
        ]
        let doc = JSONOutput.object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array([])),
            ("normalizer", .null), ("pre_tokenizer", .object(byteLevel)), ("post_processor", .object(byteLevel)),
            ("decoder", .object(byteLevel)),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                ("ignore_merges", .bool(false)), ("vocab", .object(vocab)), ("merges", .array([])),
            ])),
        ])
        return doc.serialized() + "\n"
    }

    /// Whether the model directory holds a tokenizer of this kind (256
    /// single-byte symbols, no merges), so raw bytes are its token ids.
    public static func isByteLevel(directory: URL) -> Bool {
        let url = directory.appendingPathComponent("tokenizer.json")
        guard let data = try? FileBytes.read(url.path, limit: ReadLimit.json), let json = try? JSONReader.parseLocated(data),
              let model = json["model"], model["type"]?.string == "BPE",
              let vocab = model["vocab"], vocab.members?.count == 256,
              (model["merges"]?.array ?? []).isEmpty
        else { return false }
        for (b, symbol) in symbols.enumerated() where vocab[String(symbol)]?.int != b { return false }
        return true
    }
}

/// Writes a trained model as a Hugging Face directory that transformers and
/// `Transformer.load` read, in its family's layout (names, config keys: the
/// family's mapping in `Loading/Families`; `train` makes GPT-2 and GPT-1
/// models), float32 safetensors, and the byte-level tokenizer for a byte
/// vocabulary.
public enum ModelExport {
    /// Files written into `directory` (created if needed), each atomically
    /// (the tokenizer files only for the byte vocabulary of 256).
    public static let files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]

    public static func write(_ model: TrainableModel, to directory: String) throws {
        let a = model.architecture
        let config = try Families.mapping(of: a).config(a)
        let tensors = try Families.checkpointTensors(a, parameters: model.flatParameters)
        try createDirectory(directory)
        try SafetensorsWriter.write(tensors, to: directory + "/model.safetensors")
        try AtomicFile.write(config.serialized() + "\n", to: directory + "/config.json")
        guard a.vocabularySize == 256 else { return }
        try AtomicFile.write(ByteLevelVocabulary.tokenizerJSON(), to: directory + "/tokenizer.json")
        let tokenizerConfig = JSONOutput.object([
            ("tokenizer_class", .string("PreTrainedTokenizerFast")), ("model_max_length", .int(a.maxPositions)),
        ])
        try AtomicFile.write(tokenizerConfig.serialized() + "\n", to: directory + "/tokenizer_config.json")
    }

    static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw OutputError.cannotWrite(path: path, reason: "cannot create the directory")
        }
    }
}
