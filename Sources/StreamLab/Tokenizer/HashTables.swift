/// Open-addressing hash tables for the tokenizer's hot paths. They avoid `String`
/// and `Array` keys (no allocation, no canonical-equivalence hashing) and Swift's
/// seeded `Hasher`; the keys are token bytes, id pairs and short pieces of text.

@inline(__always)
private func mix64(_ x: UInt64) -> UInt64 {
    var h = x
    h ^= h >> 33
    h &*= 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h &*= 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
}

@inline(__always)
private func capacity(for count: Int) -> Int {
    var capacity = 16
    while capacity < count * 2 { capacity <<= 1 }
    return capacity
}

/// Byte strings -> `Int32` (a token's bytes -> its id). Keys live in one arena.
struct ByteStringTable: Sendable {
    private var arena: [UInt8] = []
    private var entryStart: [Int32] = []
    private var entryLength: [Int32] = []
    private var entryValue: [Int32] = []
    private var slots: [Int32]
    private var mask: Int

    init(minimumCapacity: Int = 16) {
        let c = capacity(for: minimumCapacity)
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
    }

    var count: Int { entryValue.count }

    @inline(__always)
    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return mix64(h ^ UInt64(key.count))
    }

    /// The value stored for `key`, nil if none.
    func get(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return arena.withUnsafeBufferPointer { arena in
            while true {
                let entry = Int(slots[slot])
                if entry < 0 { return nil }
                let length = Int(entryLength[entry])
                if length == key.count {
                    let start = Int(entryStart[entry])
                    if length == 0 || memcmpEqual(arena.baseAddress! + start, key.baseAddress!, length) {
                        return entryValue[entry]
                    }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func get(_ key: [UInt8]) -> Int32? { key.withUnsafeBufferPointer { get($0) } }

    /// Stores `value` for `key`; returns the value it replaces, if any.
    @discardableResult
    mutating func set(_ key: UnsafeBufferPointer<UInt8>, _ value: Int32) -> Int32? {
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        while true {
            let entry = Int(slots[slot])
            if entry < 0 { break }
            if Int(entryLength[entry]) == key.count {
                let start = Int(entryStart[entry])
                let same = arena.withUnsafeBufferPointer { a in
                    key.count == 0 || memcmpEqual(a.baseAddress! + start, key.baseAddress!, key.count)
                }
                if same {
                    let old = entryValue[entry]
                    entryValue[entry] = value
                    return old
                }
            }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(entryValue.count)
        entryStart.append(Int32(arena.count))
        entryLength.append(Int32(key.count))
        entryValue.append(value)
        arena.append(contentsOf: key)
        if entryValue.count * 2 > slots.count { rehash() }
        return nil
    }

    @discardableResult
    mutating func set(_ key: [UInt8], _ value: Int32) -> Int32? {
        key.withUnsafeBufferPointer { set($0, value) }
    }

    private mutating func rehash() {
        let c = slots.count * 2
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
        arena.withUnsafeBufferPointer { arena in
            for entry in 0..<entryValue.count {
                let key = UnsafeBufferPointer(
                    rebasing: arena[Int(entryStart[entry])..<Int(entryStart[entry] + entryLength[entry])])
                var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
                while slots[slot] >= 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(entry)
            }
        }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var k = 0
    while k + 8 <= count {
        if UnsafeRawPointer(a + k).loadUnaligned(as: UInt64.self)
            != UnsafeRawPointer(b + k).loadUnaligned(as: UInt64.self) { return false }
        k += 8
    }
    while k < count {
        if a[k] != b[k] { return false }
        k += 1
    }
    return true
}

/// BPE merge rules: (left id, right id) -> (rank, merged id), keyed by the packed pair.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0
    private static let empty = UInt64.max

    init(minimumCapacity: Int = 16) {
        let c = capacity(for: minimumCapacity)
        keys = [UInt64](repeating: Self.empty, count: c)
        values = [UInt64](repeating: 0, count: c)
        mask = c - 1
    }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Stores the rule, replacing an earlier rule for the same pair (the later one wins,
    /// as when `tokenizers` collects its merges into a map).
    mutating func set(_ left: Int32, _ right: Int32, rank: UInt32, merged: Int32) {
        let k = Self.key(left, right)
        var slot = Int(truncatingIfNeeded: mix64(k)) & mask
        while keys[slot] != Self.empty && keys[slot] != k { slot = (slot + 1) & mask }
        if keys[slot] == Self.empty { count += 1 }
        keys[slot] = k
        values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        if count * 2 > keys.count { rehash() }
    }

    private mutating func rehash() {
        let oldKeys = keys, oldValues = values
        let c = keys.count * 2
        keys = [UInt64](repeating: Self.empty, count: c)
        values = [UInt64](repeating: 0, count: c)
        mask = c - 1
        for i in 0..<oldKeys.count where oldKeys[i] != Self.empty {
            var slot = Int(truncatingIfNeeded: mix64(oldKeys[i])) & mask
            while keys[slot] != Self.empty { slot = (slot + 1) & mask }
            keys[slot] = oldKeys[i]
            values[slot] = oldValues[i]
        }
    }

    /// Raw views for the merge loop: `rank << 32 | merged`, or `UInt64.max` if no rule.
    func withLookup<R>(_ body: (PairLookup) -> R) -> R {
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                body(PairLookup(keys: k.baseAddress!, values: v.baseAddress!, mask: mask))
            }
        }
    }
}

/// A borrowed view of a `PairTable` for the merge loop.
struct PairLookup {
    let keys: UnsafePointer<UInt64>
    let values: UnsafePointer<UInt64>
    let mask: Int
    static let none = UInt64.max

    /// `rank << 32 | merged` for the pair, or `PairLookup.none`.
    @inline(__always)
    func rule(_ left: Int32, _ right: Int32) -> UInt64 {
        let k = PairTable.key(left, right)
        var slot = Int(truncatingIfNeeded: mix64(k)) & mask
        while true {
            let stored = keys[slot]
            if stored == k { return values[slot] }
            if stored == UInt64.max { return Self.none }
            slot = (slot + 1) & mask
        }
    }
}

/// Pieces of up to 16 bytes -> their ids, for one `encode` call (pieces repeat a lot
/// in real text: a 4.8 MB play corpus has about 30k distinct pieces among 1.2M).
struct WordCache {
    static let maxKeyLength = 16
    private var key0: [UInt64]
    private var key1: [UInt64]
    private var lengths: [UInt8]   // 0 = empty slot
    private var spans: [UInt64]    // start << 32 | count into `ids`
    private var ids: [Int32] = []
    private var mask: Int
    private var count = 0
    /// Stop growing past this many entries (bounded memory on adversarial input).
    private let limit = 1 << 20

    init() {
        key0 = [UInt64](repeating: 0, count: 256)
        key1 = key0
        lengths = [UInt8](repeating: 0, count: 256)
        spans = key0
        mask = 255
    }

    @inline(__always)
    static func pack(_ word: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
        var k0: UInt64 = 0, k1: UInt64 = 0
        let raw = UnsafeRawBufferPointer(word)
        let n = word.count
        withUnsafeMutableBytes(of: &k0) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<min(n, 8)])) }
        if n > 8 {
            withUnsafeMutableBytes(of: &k1) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[8..<n])) }
        }
        return (k0, k1)
    }

    @inline(__always)
    private func slotHash(_ k0: UInt64, _ k1: UInt64, _ length: Int) -> Int {
        Int(truncatingIfNeeded: mix64(k0 &* 0x9E37_79B9_7F4A_7C15 ^ k1 ^ UInt64(length) << 59)) & mask
    }

    /// Appends the cached ids of the piece to `out`; false if the piece is not cached.
    @inline(__always)
    func append(_ k0: UInt64, _ k1: UInt64, length: Int, to out: inout [Int]) -> Bool {
        var slot = slotHash(k0, k1, length)
        while true {
            let l = Int(lengths[slot])
            if l == 0 { return false }
            if l == length && key0[slot] == k0 && key1[slot] == k1 {
                let span = spans[slot]
                let start = Int(span >> 32), n = Int(span & 0xFFFF_FFFF)
                if n == 1 {
                    out.append(Int(ids[start]))
                } else {
                    for k in start..<(start + n) { out.append(Int(ids[k])) }
                }
                return true
            }
            slot = (slot + 1) & mask
        }
    }

    mutating func insert(_ k0: UInt64, _ k1: UInt64, length: Int, ids newIDs: ArraySlice<Int>) {
        guard count < limit else { return }
        var slot = slotHash(k0, k1, length)
        while lengths[slot] != 0 { slot = (slot + 1) & mask }
        lengths[slot] = UInt8(length)
        key0[slot] = k0
        key1[slot] = k1
        spans[slot] = UInt64(ids.count) << 32 | UInt64(newIDs.count)
        for id in newIDs { ids.append(Int32(id)) }
        count += 1
        if count * 2 > lengths.count { grow() }
    }

    private mutating func grow() {
        let old0 = key0, old1 = key1, oldLengths = lengths, oldSpans = spans
        let c = lengths.count * 2
        key0 = [UInt64](repeating: 0, count: c)
        key1 = key0
        spans = key0
        lengths = [UInt8](repeating: 0, count: c)
        mask = c - 1
        for i in 0..<oldLengths.count where oldLengths[i] != 0 {
            var slot = slotHash(old0[i], old1[i], Int(oldLengths[i]))
            while lengths[slot] != 0 { slot = (slot + 1) & mask }
            key0[slot] = old0[i]
            key1[slot] = old1[i]
            lengths[slot] = oldLengths[i]
            spans[slot] = oldSpans[i]
        }
    }
}
