/// Text <-> token ids for the supported model families.
///
/// Implementations are immutable and `Sendable`; encoding allocates its own scratch
/// space per call, so one tokenizer can serve many threads. Get one from
/// `TokenizerLoader`.
///
/// Two families, both proven identical to their reference implementations on
/// `Fixtures/tokenizers/conformance.txt` (see `TokenizerConformanceTests`):
/// - byte-level BPE, from a `tokenizer.json` (`ByteLevel` pre-tokenizer: GPT-2, GPT-J,
///   Phi-2, OPT, GPT-NeoX with `NFC`; or a `Split` with the Llama 3 / OLMo 2 (cl100k),
///   Qwen2 / Qwen3 or Phi-4-mini (o200k) pattern), `vocab.json` + `merges.txt`, or a
///   tiktoken ranks file: ids equal tiktoken's and Hugging Face `tokenizers`', and
///   `decode(encode(s)) == s` for every string `s` (its NFC form when the tokenizer
///   normalizes to NFC) that contains no added token with `lstrip` / `rstrip`.
/// - SentencePiece-style BPE from a `tokenizer.json` as Llama 2 / Mistral / TinyLlama /
///   Phi-3 / Gemma 1-3 ship it (`▁` for spaces, `byte_fallback`, BOS from the
///   post-processor): ids and decoded text equal `tokenizers`'.
public protocol Tokenizer: Sendable {
    /// One more than the largest token id (added tokens included), the size of a
    /// model's embedding table for this vocabulary.
    var vocabularySize: Int { get }
    /// The beginning-of-sequence token, nil if the tokenizer has none.
    var bosTokenID: Int? { get }
    /// The end-of-sequence token, nil if the tokenizer has none.
    var eosTokenID: Int? { get }
    /// The token ids of `text`.
    ///
    /// `addSpecialTokens` applies the `tokenizer.json` post-processor (Llama's `<s>` in
    /// front); GPT-2-style tokenizers add nothing. Added and special tokens that appear
    /// literally in `text` (`<|endoftext|>`, `<s>`) map to their ids either way.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int]
    /// The text of `ids`, special tokens included, as the reference decoder writes it
    /// (byte-level: the exact bytes, invalid UTF-8 replaced by U+FFFD; SentencePiece
    /// style: `▁` becomes a space, `<0xNN>` byte tokens become their bytes, the leading
    /// space is dropped).
    ///
    /// Throws `TokenizerError.unknownTokenID(id, vocabularySize:)` for an id no token has.
    func decode(_ ids: [Int]) throws -> String
    /// Human-readable text of one token for tables: `" the"` (stored `Ġthe` / `▁the`),
    /// `"\n"` (stored `Ċ` or `<0x0A>`), `"<s>"`. Bytes that are not valid UTF-8 on their
    /// own (a piece of a multi-byte character) are written `\xE2`. Never throws:
    /// an unknown id gives `"<unk:123>"`.
    func displayText(of id: Int) -> String
    /// The id of the vocabulary entry spelled exactly `ofTokenText` (for `--target-text`),
    /// nil if there is none. Tried in order: an added or special token's text (`<s>`);
    /// the spelling in the vocabulary file (`Ġthe`, `▁the`, `<0x0A>`); the token's
    /// display text (`" the"`).
    func id(ofTokenText: String) -> Int?
}

extension Tokenizer {
    /// The one token `text` stands for (a target such as `--target-text`): an
    /// exact vocabulary entry (see `id(ofTokenText:)`), else the encoding of
    /// `text` if it is exactly one token.
    public func singleToken(_ text: String) throws -> Int {
        if let id = id(ofTokenText: text) { return id }
        let ids = encode(text, addSpecialTokens: false)
        guard ids.count == 1 else { throw TokenizerError.notOneToken(text: text, ids: ids) }
        return ids[0]
    }
}
