/// The model stage of the pipeline: byte-pair encoding of one pre-tokenized piece.
///
/// Semantics are those of Hugging Face `tokenizers`' `BPE` model (and of tiktoken, which
/// is the same algorithm with ranks taken from the merged token): start from one symbol
/// per unit, then repeatedly merge the adjacent pair with the lowest rank, the leftmost
/// one on ties, until no adjacent pair has a rule.
/// - Units are bytes for byte-level vocabularies (GPT-2; the vocabulary is stored as raw
///   bytes, see `ByteLevelAlphabet`) and Unicode scalars otherwise (SentencePiece style).
/// - A unit missing from the vocabulary becomes its `<0xNN>` byte tokens when
///   `byte_fallback` is on and they all exist, otherwise the unknown token (consecutive
///   ones fused when `fuse_unk`), otherwise it is dropped; in that order, as `tokenizers` does.
/// - With `ignore_merges` (always for tiktoken), a piece that is itself a token is that token.
struct BPEModel: Sendable {
    enum Units: Sendable { case bytes, scalars }

    let units: Units
    /// Model-space token bytes -> id (raw bytes for byte-level vocabularies).
    let tokens: ByteStringTable
    let merges: PairTable
    /// Bytes mode: the id of each single-byte token, -1 if the vocabulary lacks it. [256]
    let byteIDs: [Int32]
    /// The ids of the `<0x00>`...`<0xFF>` tokens (-1 where missing), nil without byte_fallback. [256]
    let byteFallbackIDs: [Int32]?
    let unknownID: Int32?
    let fuseUnknown: Bool
    let ignoreMerges: Bool
    /// Pieces with more initial symbols than this merge through a heap (O(n log n));
    /// shorter ones through a linear scan, which is faster for them. Same results.
    var heapThreshold = 48

    init(units: Units, tokens: ByteStringTable, merges: PairTable, byteFallback: Bool,
         unknownID: Int32?, fuseUnknown: Bool, ignoreMerges: Bool) {
        self.units = units
        self.tokens = tokens
        self.merges = merges
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
        self.ignoreMerges = ignoreMerges
        var byteIDs = [Int32](repeating: -1, count: 256)
        if units == .bytes {
            for b in 0..<256 { byteIDs[b] = tokens.get([UInt8(b)]) ?? -1 }
        }
        self.byteIDs = byteIDs
        if byteFallback {
            var fallback = [Int32](repeating: -1, count: 256)
            for b in 0..<256 {
                // Spelled as `tokenizers` formats it: "<0x" + two upper-case hex digits + ">".
                fallback[b] = tokens.get(Array(byteFallbackSpelling(UInt8(b)).utf8)) ?? -1
            }
            byteFallbackIDs = fallback
        } else {
            byteFallbackIDs = nil
        }
    }

    /// Appends the ids of `word` to `out`.
    func encode(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int], scratch: inout BPEScratch) {
        let n = word.count
        guard n > 0 else { return }
        if n == 1, units == .bytes, byteIDs[Int(word[0])] >= 0 {
            out.append(Int(byteIDs[Int(word[0])]))
            return
        }
        let cacheable = n <= WordCache.maxKeyLength
        var k0: UInt64 = 0, k1: UInt64 = 0
        if cacheable {
            (k0, k1) = WordCache.pack(word)
            if scratch.cache.append(k0, k1, length: n, to: &out) { return }
        }
        let begin = out.count
        if ignoreMerges, let id = tokens.get(word) {
            out.append(Int(id))
        } else {
            initialSymbols(word, into: &scratch.symbols)
            merge(&scratch)
            for s in scratch.symbols { out.append(Int(s)) }
        }
        if cacheable {
            scratch.cache.insert(k0, k1, length: n, ids: out[begin...])
        }
    }

    /// One symbol per unit, with byte fallback / unknown handling.
    func initialSymbols(_ word: UnsafeBufferPointer<UInt8>, into symbols: inout [Int32]) {
        symbols.removeAll(keepingCapacity: true)
        var pendingUnknown = false
        func known(_ id: Int32) {
            if pendingUnknown, let unk = unknownID {
                symbols.append(unk)
                pendingUnknown = false
            }
            symbols.append(id)
        }
        func unknown(_ unitBytes: UnsafeBufferPointer<UInt8>) {
            if let fallback = byteFallbackIDs, unitBytes.allSatisfy({ fallback[Int($0)] >= 0 }) {
                // As in `tokenizers`, a pending unknown token is not flushed first.
                for b in unitBytes { symbols.append(fallback[Int(b)]) }
                return
            }
            guard let unk = unknownID else { return }
            if pendingUnknown && !fuseUnknown { symbols.append(unk) }
            pendingUnknown = true
        }
        switch units {
        case .bytes:
            for b in word {
                let id = byteIDs[Int(b)]
                if id >= 0 {
                    known(id)
                } else {
                    // The unit `tokenizers` sees is the byte's alphabet character.
                    var spelling = String(ByteLevelAlphabet.characterForByte[Int(b)])
                    spelling.withUTF8 { unknown($0) }
                }
            }
        case .scalars:
            var i = 0
            let n = word.count
            while i < n {
                let lead = word[i]
                let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
                let unit = UnsafeBufferPointer(rebasing: word[i..<min(i + length, n)])
                if let id = tokens.get(unit) { known(id) } else { unknown(unit) }
                i += length
            }
        }
        if pendingUnknown, let unk = unknownID { symbols.append(unk) }
    }

    /// Applies the merge rules to `scratch.symbols` in place.
    func merge(_ scratch: inout BPEScratch) {
        let n = scratch.symbols.count
        guard n > 1 else { return }
        merges.withLookup { lookup in
            if n > heapThreshold {
                mergeWithHeap(&scratch, lookup)
            } else {
                mergeByScanning(&scratch, lookup)
            }
        }
    }

    /// Quadratic but tight: find the lowest-ranked pair, merge, update its neighbours.
    private func mergeByScanning(_ scratch: inout BPEScratch, _ lookup: PairLookup) {
        var n = scratch.symbols.count
        if scratch.rules.count < n { scratch.rules = [UInt64](repeating: 0, count: max(n, 64)) }
        scratch.symbols.withUnsafeMutableBufferPointer { s in
            scratch.rules.withUnsafeMutableBufferPointer { rules in
                for i in 0..<(n - 1) { rules[i] = lookup.rule(s[i], s[i + 1]) }
                while n > 1 {
                    var best = -1
                    var bestRank = UInt64(UInt32.max)
                    for i in 0..<(n - 1) {
                        let rank = rules[i] >> 32
                        if rank < bestRank { bestRank = rank; best = i }
                    }
                    if best < 0 { break }
                    s[best] = Int32(truncatingIfNeeded: rules[best] & 0xFFFF_FFFF)
                    var j = best + 1
                    while j < n - 1 {
                        s[j] = s[j + 1]
                        rules[j] = rules[j + 1]
                        j += 1
                    }
                    n -= 1
                    if best > 0 { rules[best - 1] = lookup.rule(s[best - 1], s[best]) }
                    if best < n - 1 { rules[best] = lookup.rule(s[best], s[best + 1]) }
                }
            }
        }
        scratch.symbols.removeLast(scratch.symbols.count - n)
    }

    /// `tokenizers`' algorithm: a min-heap of (rank, position) over a linked list of
    /// symbols; entries made stale by an earlier merge are skipped when popped.
    private func mergeWithHeap(_ scratch: inout BPEScratch, _ lookup: PairLookup) {
        let n = scratch.symbols.count
        scratch.next.removeAll(keepingCapacity: true)
        scratch.prev.removeAll(keepingCapacity: true)
        scratch.heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            scratch.prev.append(Int32(i - 1))
            scratch.next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        var heap = MinHeap(storage: scratch.heap)
        scratch.symbols.withUnsafeMutableBufferPointer { s in
            for i in 0..<(n - 1) {
                let rule = lookup.rule(s[i], s[i + 1])
                if rule != PairLookup.none { heap.push(rule & 0xFFFF_FFFF_0000_0000 | UInt64(i)) }
            }
            scratch.prev.withUnsafeMutableBufferPointer { prev in
                scratch.next.withUnsafeMutableBufferPointer { next in
                    while let top = heap.pop() {
                        let rank = top >> 32
                        let pos = Int(top & 0xFFFF_FFFF)
                        if s[pos] < 0 { continue }
                        let right = Int(next[pos])
                        if right < 0 { continue }
                        let rule = lookup.rule(s[pos], s[right])
                        if rule == PairLookup.none || rule >> 32 != rank { continue }  // stale
                        let merged = Int32(truncatingIfNeeded: rule & 0xFFFF_FFFF)
                        s[pos] = merged
                        s[right] = -1
                        let after = next[right]
                        next[pos] = after
                        if after >= 0 { prev[Int(after)] = Int32(pos) }
                        let before = prev[pos]
                        if before >= 0 {
                            let r = lookup.rule(s[Int(before)], merged)
                            if r != PairLookup.none { heap.push(r & 0xFFFF_FFFF_0000_0000 | UInt64(before)) }
                        }
                        if after >= 0 {
                            let r = lookup.rule(merged, s[Int(after)])
                            if r != PairLookup.none { heap.push(r & 0xFFFF_FFFF_0000_0000 | UInt64(pos)) }
                        }
                    }
                }
            }
        }
        scratch.heap = heap.storage
        scratch.symbols.removeAll { $0 < 0 }
    }
}

/// "<0x0A>": the spelling of a byte-fallback token.
func byteFallbackSpelling(_ byte: UInt8) -> String {
    let hex = String(byte, radix: 16, uppercase: true)
    return "<0x" + (byte < 16 ? "0" : "") + hex + ">"
}

/// Reusable buffers for one `encode` call.
struct BPEScratch {
    var cache = WordCache()
    var symbols: [Int32] = []
    var rules: [UInt64] = []
    var prev: [Int32] = []
    var next: [Int32] = []
    var heap: [UInt64] = []
}

/// A binary min-heap of `UInt64` keys (rank << 32 | position).
struct MinHeap {
    var storage: [UInt64]

    mutating func push(_ key: UInt64) {
        storage.append(key)
        var i = storage.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if storage[parent] <= key { break }
            storage[i] = storage[parent]
            i = parent
        }
        storage[i] = key
    }

    mutating func pop() -> UInt64? {
        guard let last = storage.popLast() else { return nil }
        guard !storage.isEmpty else { return last }
        let top = storage[0]
        let n = storage.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && storage[l + 1] < storage[l] { c = l + 1 }
            if storage[c] >= last { break }
            storage[i] = storage[c]
            i = c
        }
        storage[i] = last
        return top
    }
}
