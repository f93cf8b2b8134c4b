/// How `generate` picks each token.
public struct GenerationSettings: Sendable {
    /// New tokens at most.
    public var maxTokens: Int
    /// 0: greedy (the most likely token, ties to the lower id); above 0: sample
    /// from softmax(logits / temperature), restricted to the `topK` most likely if set.
    public var temperature: Double
    public var topK: Int?
    public var seed: UInt64
    /// Generation stops after producing one of these (e.g. the EOS token).
    public var stopTokens: Set<Int>

    public init(maxTokens: Int, temperature: Double = 0, topK: Int? = nil, seed: UInt64 = 0, stopTokens: Set<Int> = []) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.seed = seed
        self.stopTokens = stopTokens
    }
}

extension Transformer {
    /// Continues `prompt` token by token with a KV cache (each new token's
    /// forward reads the cached keys and values instead of recomputing the
    /// prefix), applying `interventions` (e.g. a steering vector added at
    /// `resid_pre` of a layer) at every position. Calls `onToken` as each
    /// token is chosen; returns the new tokens.
    public func generate(_ prompt: [Int], _ settings: GenerationSettings, interventions: [Intervention] = [],
                         onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        try validate(tokens: prompt)
        try validate(interventions: interventions)
        let a = architecture, v = a.vocabularySize
        guard settings.maxTokens >= 0 else { throw ModelError.invalidRequest("maxTokens \(settings.maxTokens) must not be negative") }
        guard prompt.count + settings.maxTokens <= a.maxPositions else {
            throw ModelError.sequenceTooLong(length: prompt.count + settings.maxTokens, maximum: a.maxPositions)
        }
        if let k = settings.topK, k < 1 { throw ModelError.invalidRequest("top-k \(k) must be at least 1") }
        guard settings.temperature >= 0 && settings.temperature.isFinite else {
            throw ModelError.invalidRequest("temperature \(settings.temperature) must be 0 (greedy) or positive")
        }
        try checkFits(length: prompt.count + settings.maxTokens)
        let cache = KVCache(a, capacity: prompt.count + settings.maxTokens)
        let plan = InterventionPlan(interventions, layerCount: a.layerCount)
        var state = settings.seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func choose(_ logits: UnsafePointer<Float>) -> Int {
            if settings.temperature == 0 { return Distribution.argmax(logits, v) }
            var candidates = Array(0..<v)
            if let k = settings.topK, k < v {
                candidates = candidates.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
                candidates = Array(candidates.prefix(k))
            }
            let top = candidates.map { Double(logits[$0]) }.max()!
            let weights = candidates.map { CMath.expDouble((Double(logits[$0]) - top) / settings.temperature) }
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            var target = Double(state >> 11) / Double(1 << 53) * weights.reduce(0, +)
            for (c, w) in zip(candidates, weights) {
                target -= w
                if target < 0 { return c }
            }
            return candidates.last!
        }
        var generated: [Int] = []
        var silent = Recorder([])
        var pass = ForwardPass(a, length: prompt.count, cache: cache)
        var input = prompt
        // Long-rope switches to its long factors past the original length; like
        // transformers, the cache is then dropped once and everything recomputed with them.
        var longRopeSwitch: Int?
        if case let .rotary(r) = a.positions, case let .longrope(_, _, original, _) = r.scaling { longRopeSwitch = original }
        while generated.count < settings.maxTokens {
            if let original = longRopeSwitch, cache.count > 0, cache.count <= original, cache.count + input.count > original {
                input = prompt + generated
                cache.count = 0
                longRopeSwitch = nil
            }
            if pass.length != input.count { pass = ForwardPass(a, length: input.count, cache: cache) }
            pass.setPositions(offset: cache.count)
            pass.setTokens(input)
            forward(pass, plan: plan, recorder: &silent, finalRead: .lastRow)
            try checkFinite(pass, interventions.isEmpty ? nil : "with \(interventions.map(String.init(describing:)).joined(separator: ", "))")
            cache.count += input.count
            let next = choose(pass.logits.pointer)
            generated.append(next)
            onToken?(next)
            if settings.stopTokens.contains(next) { break }
            input = [next]
        }
        return generated
    }

    /// An ActAdd steering vector (Turner et al.): `coefficient` times the
    /// difference of `resid_pre` of `layer` between the prompts `add` and
    /// `subtract`, each averaged over its positions `[D]`.
    public func steeringVector(layer: Int, add: [Int], subtract: [Int], coefficient: Float) throws -> Tensor {
        guard layer >= 0 && layer < architecture.layerCount else {
            throw ModelError.layerOutOfRange(layer: layer, layerCount: architecture.layerCount)
        }
        let d = architecture.width
        func mean(_ tokens: [Int]) throws -> [Double] {
            let x = try run(tokens, recording: [.residPre])[.residPre(layer)]!
            var m = [Double](repeating: 0, count: d)
            for i in 0..<tokens.count { for c in 0..<d { m[c] += Double(x.scalars[i * d + c]) } }
            return m.map { $0 / Double(tokens.count) }
        }
        let a = try mean(add), b = try mean(subtract)
        return Tensor(shape: [d], scalars: (0..<d).map { Float(Double(coefficient) * (a[$0] - b[$0])) })
    }
}
