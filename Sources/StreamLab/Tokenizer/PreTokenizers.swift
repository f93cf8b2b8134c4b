/// Pre-tokenizer stages of a `tokenizer.json` pipeline: they cut normalized text into
/// the pieces the BPE model encodes one at a time. A stage may rewrite the text
/// (Metaspace writes `▁`); pieces are handed to `body` with a flag telling whether the
/// piece starts the input text (for `prepend_scheme: first`).
protocol PreTokenizer: Sendable {
    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void)
}

/// `ByteLevel`: optionally a space in front, then the GPT-2 split (`use_regex`).
/// The byte-to-character mapping of `tokenizers` is implicit: StreamLab's byte-level
/// vocabularies are stored as raw bytes.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool

    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        if addPrefixSpace && (text.isEmpty || text[0] != 0x20) {
            let prefixed = [0x20] + Array(text)
            prefixed.withUnsafeBufferPointer { splitPrefixed($0, isFirst: isFirst, body) }
        } else {
            splitPrefixed(text, isFirst: isFirst, body)
        }
    }

    private func splitPrefixed(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
                               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        guard useRegex else {
            if !text.isEmpty { body(text, isFirst) }
            return
        }
        GPT2Splitter.split(text) { start, end in
            body(UnsafeBufferPointer(rebasing: text[start..<end]), isFirst && start == 0)
        }
    }
}

/// `Split` with GPT-2's pattern and `Isolated` behaviour (the only `Split` supported).
struct GPT2SplitPreTokenizer: PreTokenizer {
    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        GPT2Splitter.split(text) { start, end in
            body(UnsafeBufferPointer(rebasing: text[start..<end]), isFirst && start == 0)
        }
    }
}

/// `Split` with the Llama 3 / cl100k or Qwen2 pattern and `Isolated` behaviour.
struct CL100KSplitPreTokenizer: PreTokenizer {
    let splitter: CL100KSplitter

    init(maxDigits: Int) { splitter = CL100KSplitter(maxDigits: maxDigits) }

    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        splitter.split(text) { start, end in
            body(UnsafeBufferPointer(rebasing: text[start..<end]), isFirst && start == 0)
        }
    }
}

/// `Split` with the o200k pattern (`O200KSplitter`) and `Isolated` behaviour.
struct O200KSplitPreTokenizer: PreTokenizer {
    let splitter = O200KSplitter()

    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        splitter.split(text) { start, end in
            body(UnsafeBufferPointer(rebasing: text[start..<end]), isFirst && start == 0)
        }
    }
}

/// `Split` with a literal string pattern (`{"String": " "}`), with any of `tokenizers`'
/// behaviours: the text is cut into the occurrences of the pattern (non-overlapping, left to
/// right) and the stretches between them, then, for `"the-final--countdown"` and `-`:
/// - `Removed`: the occurrences are dropped (`the`, `final`, `countdown`);
/// - `Isolated`: each occurrence is a piece (`the`, `-`, `final`, `-`, `-`, `countdown`);
/// - `MergedWithPrevious`: an occurrence joins the stretch before it, unless that is another
///   occurrence (`the-`, `final-`, `-`, `countdown`); `MergedWithNext` mirrors it;
/// - `Contiguous`: runs of occurrences and runs of text are pieces (`the`, `-`, `final`, `--`, ...).
/// With `invert`, the stretches between the occurrences play the occurrences' part.
/// Gemma 3 ships `Split(" ", MergedWithPrevious)` after a normalizer that leaves no spaces.
struct LiteralSplitPreTokenizer: PreTokenizer {
    enum Behavior: String, Sendable {
        case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
    }

    let pattern: [UInt8]
    let behavior: Behavior
    let invert: Bool

    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        let n = text.count, m = pattern.count
        guard n > 0, m > 0 else {
            if n > 0 { body(text, isFirst) }
            return
        }
        func emit(_ start: Int, _ end: Int) {
            body(UnsafeBufferPointer(rebasing: text[start..<end]), isFirst && start == 0)
        }
        // The parts tile the text: occurrences of the pattern (non-overlapping, left to
        // right) and the stretches between them, flagged as matches per `invert`. The piece
        // not yet handed on, and whether the part before was a match:
        var pending: (start: Int, end: Int, isMatch: Bool)? = nil
        var previousMatch = false
        func part(_ start: Int, _ end: Int, _ isMatch: Bool) {
            switch behavior {
            case .removed:
                if !isMatch { emit(start, end) }
            case .isolated:
                emit(start, end)
            case .contiguous, .mergedWithPrevious:
                // A match after a match (Contiguous), a match after a non-match
                // (MergedWithPrevious), or a non-match after a non-match (Contiguous)
                // joins the piece before it.
                let joins = behavior == .contiguous ? isMatch == previousMatch : isMatch && !previousMatch
                if joins, let p = pending {
                    pending = (p.start, end, p.isMatch)
                } else {
                    if let p = pending { emit(p.start, p.end) }
                    pending = (start, end, isMatch)
                }
            case .mergedWithNext:
                // A match joins the non-match after it; one followed by a match stays alone.
                if isMatch {
                    if let p = pending { emit(p.start, p.end) }
                    pending = (start, end, true)
                } else if let p = pending {
                    emit(p.start, end)
                    pending = nil
                } else {
                    emit(start, end)
                }
            }
            previousMatch = isMatch
        }
        let first = pattern[0]
        var stretchStart = 0
        var i = 0
        while i + m <= n {
            var found = text[i] == first
            if found {
                for k in 1..<m where text[i + k] != pattern[k] { found = false; break }
            }
            if found {
                if stretchStart < i { part(stretchStart, i, invert) }
                part(i, i + m, !invert)
                i += m
                stretchStart = i
            } else {
                i += 1
            }
        }
        if stretchStart < n { part(stretchStart, n, invert) }
        if let p = pending { emit(p.start, p.end) }
    }
}

/// `Metaspace`: spaces become `replacement` (`▁`), which is prepended per
/// `prepend_scheme` (`always`; `first`: only to text that starts the input; `never`)
/// unless the text already starts with it; with `split`, the text is cut before each
/// `replacement` (`▁Hey▁▁friend` -> `▁Hey`, `▁`, `▁friend`).
struct MetaspacePreTokenizer: PreTokenizer {
    enum PrependScheme: Sendable { case always, first, never }

    let replacement: [UInt8]
    let prependScheme: PrependScheme
    let splitOnReplacement: Bool

    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        var rewritten = replaceAll(Array(text), [0x20], replacement)
        let prepend: Bool
        switch prependScheme {
        case .always: prepend = true
        case .first: prepend = isFirst
        case .never: prepend = false
        }
        if prepend && !rewritten.starts(with: replacement) {
            rewritten.insert(contentsOf: replacement, at: 0)
        }
        guard !rewritten.isEmpty else { return }
        rewritten.withUnsafeBufferPointer { buffer in
            guard splitOnReplacement else {
                body(buffer, isFirst)
                return
            }
            var start = 0
            var i = 0
            let n = buffer.count, m = replacement.count
            while i < n {
                if i > start, i + m <= n, buffer[i] == replacement[0],
                   replacement.indices.allSatisfy({ buffer[i + $0] == replacement[$0] }) {
                    body(UnsafeBufferPointer(rebasing: buffer[start..<i]), isFirst && start == 0)
                    start = i
                    i += m
                } else {
                    i += 1
                }
            }
            body(UnsafeBufferPointer(rebasing: buffer[start..<n]), isFirst && start == 0)
        }
    }
}

/// `Sequence`: each stage splits the pieces of the previous one.
struct SequencePreTokenizer: PreTokenizer {
    let stages: [any PreTokenizer]

    func split(_ text: UnsafeBufferPointer<UInt8>, isFirst: Bool,
               _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        run(stage: 0, text, isFirst, body)
    }

    private func run(stage: Int, _ text: UnsafeBufferPointer<UInt8>, _ isFirst: Bool,
                     _ body: (UnsafeBufferPointer<UInt8>, Bool) -> Void) {
        if stage == stages.count {
            body(text, isFirst)
            return
        }
        stages[stage].split(text, isFirst: isFirst) { piece, first in
            run(stage: stage + 1, piece, first, body)
        }
    }
}
