/// Reading rotary settings from a config.json, in every spelling real
/// checkpoints use: top-level `rope_theta` / `partial_rotary_factor`, the
/// legacy `rope_scaling` object, transformers 5's `rope_parameters` (flat, or
/// nested by layer type as Gemma 3 writes it), NeoX's `rotary_pct` /
/// `rotary_emb_base`, Gemma 3's `rope_local_base_freq` and Phi-3's top-level
/// `original_max_position_embeddings`.
extension ModelConfig {
    /// One rotary parameter and the key path that named it, for messages.
    struct RopeValue {
        let key: String
        let value: JSONValue
    }

    /// The rope parameters of layers of `layerType` ("full_attention",
    /// "sliding_attention"; nil: the model's only kind), later spellings
    /// overriding earlier ones.
    func ropeParameters(layerType: String?) throws -> [String: RopeValue] {
        var merged: [String: RopeValue] = [:]
        func take(_ members: [(key: String, value: JSONValue)], container: String) {
            for (k, v) in members where !v.isNull { merged[k] = RopeValue(key: qualified(container + k), value: v) }
        }
        let sliding = layerType == "sliding_attention"
        // Gemma 3's local layers take `rope_local_base_freq`, never the global `rope_theta`.
        for key in ["rope_theta", "rotary_emb_base", "partial_rotary_factor", "rotary_pct"] where !(sliding && key == "rope_theta") {
            if let v = value(key) { merged[key] = RopeValue(key: qualified(key), value: v) }
        }
        if sliding, let v = value("rope_local_base_freq") {
            merged["rope_theta"] = RopeValue(key: qualified("rope_local_base_freq"), value: v)
        }
        for container in ["rope_scaling", "rope_parameters"] {
            guard let v = value(container) else { continue }
            guard let members = v.members else {
                throw LoadError.badConfigValue(file: file, key: qualified(container), value: v.preview, expected: "an object")
            }
            let nestedKinds = ["full_attention", "sliding_attention"]
            if members.contains(where: { nestedKinds.contains($0.key) }) {
                guard let layerType else { continue }
                if let inner = v[layerType], !inner.isNull {
                    guard let innerMembers = inner.members else {
                        throw LoadError.badConfigValue(file: file, key: qualified("\(container).\(layerType)"), value: inner.preview,
                                                       expected: "an object")
                    }
                    take(innerMembers, container: "\(container).\(layerType).")
                }
            } else if container == "rope_scaling" && layerType == "sliding_attention" {
                continue      // Gemma 3's legacy rope_scaling scales the global layers only
            } else {
                take(members, container: container + ".")
            }
        }
        // Phi-3 keeps the pretraining length at the top level, and it wins there.
        if let v = value("original_max_position_embeddings") {
            merged["original_max_position_embeddings"] = RopeValue(key: qualified("original_max_position_embeddings"), value: v)
        }
        return merged
    }

    /// The rotary of layers of `layerType` on heads of `headDimension`:
    /// rotated dims `int(Dh * partial_rotary_factor)` (`defaultFraction` when
    /// absent), base (`defaultBase` when absent), pairing, and the scaling of
    /// `rope_type` (`default`, `linear`, `dynamic`, `llama3`, `yarn`,
    /// `longrope`; anything else is refused naming the key).
    public func rotary(headDimension: Int, defaultFraction: Double = 1, defaultBase: Double = 10000,
                       layerType: String? = nil, defaultMaxPositions: Int? = nil,
                       typeAliases: [String: String] = [:]) throws -> Rotary {
        let p = try ropeParameters(layerType: layerType)
        func number(_ key: String) throws -> Double? {
            guard let r = p[key] else { return nil }
            guard let x = r.value.double, x.isFinite else {
                throw LoadError.badConfigValue(file: file, key: r.key, value: r.value.preview, expected: "a finite number")
            }
            return x
        }
        func positive(_ key: String) throws -> Double? {
            guard let x = try number(key) else { return nil }
            guard x > 0 else {
                throw LoadError.badConfigValue(file: file, key: p[key]!.key, value: p[key]!.value.preview, expected: "a positive number")
            }
            return x
        }
        func required(_ key: String, for type: String) throws -> Double {
            guard let x = try positive(key) else {
                throw LoadError.missingConfigKey(file: file, key: qualified("rope_scaling.\(key)") + " (needed by rope type \"\(type)\")")
            }
            return x
        }
        func positions(_ key: String, for type: String, default d: Int? = nil) throws -> Int {
            guard let x = try positive(key) else {
                if let d { return d }
                throw LoadError.missingConfigKey(file: file, key: qualified("rope_scaling.\(key)") + " (needed by rope type \"\(type)\")")
            }
            guard x.rounded() == x, x < Double(1 << 31) else {
                throw LoadError.badConfigValue(file: file, key: p[key]!.key, value: p[key]!.value.preview, expected: "a whole number of positions")
            }
            return Int(x)
        }

        var fraction = defaultFraction
        for key in ["partial_rotary_factor", "rotary_pct"] {
            guard let x = try number(key) else { continue }
            guard x > 0, x <= 1 else {
                throw LoadError.badConfigValue(file: file, key: p[key]!.key, value: p[key]!.value.preview, expected: "a fraction in (0, 1]")
            }
            fraction = x
            break
        }
        let dims = Int(Double(headDimension) * fraction)
        let base = try positive("rope_theta") ?? positive("rotary_emb_base") ?? defaultBase
        let maxPositions = try size("max_position_embeddings", default: defaultMaxPositions)

        var type = "default", typeKey = qualified("rope_parameters.rope_type")
        for key in ["rope_type", "type"] {
            guard let r = p[key] else { continue }
            guard let s = r.value.string else {
                throw LoadError.badConfigValue(file: file, key: r.key, value: r.value.preview, expected: "a string")
            }
            type = typeAliases[s] ?? s
            typeKey = r.key
            break
        }
        let scaling: Rotary.Scaling
        switch type {
        case "default":
            scaling = .none
        case "linear":
            scaling = .linear(factor: Float(try required("factor", for: type)))
        case "dynamic":
            let factor = try required("factor", for: type)
            guard factor >= 1 else {
                throw LoadError.badConfigValue(file: file, key: p["factor"]!.key, value: p["factor"]!.value.preview, expected: "a factor of at least 1")
            }
            scaling = .dynamic(factor: Float(factor), maxPositions: maxPositions)
        case "llama3":
            let low = try required("low_freq_factor", for: type), high = try required("high_freq_factor", for: type)
            guard high > low else {
                throw LoadError.badConfigValue(file: file, key: p["high_freq_factor"]!.key, value: p["high_freq_factor"]!.value.preview,
                                               expected: "a value above low_freq_factor (\(low))")
            }
            scaling = .llama3(factor: Float(try required("factor", for: type)), lowFrequencyFactor: Float(low),
                              highFrequencyFactor: Float(high),
                              originalMaxPositions: try positions("original_max_position_embeddings", for: type, default: maxPositions))
        case "yarn":
            let original = try positions("original_max_position_embeddings", for: type, default: maxPositions)
            let factor = try positive("factor") ?? Double(maxPositions) / Double(original)
            func mscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * CMath.log(scale) + 1 }
            var attention = try positive("attention_factor")
            if attention == nil {
                if let m = try number("mscale"), let all = try number("mscale_all_dim"), m != 0, all != 0 {
                    attention = mscale(factor, m) / mscale(factor, all)
                } else {
                    attention = mscale(factor)
                }
            }
            var truncate = true
            if let r = p["truncate"] {
                guard let b = r.value.bool else {
                    throw LoadError.badConfigValue(file: file, key: r.key, value: r.value.preview, expected: "true or false")
                }
                truncate = b
            }
            scaling = .yarn(factor: Float(factor), originalMaxPositions: original,
                            betaFast: Float(try positive("beta_fast") ?? 32), betaSlow: Float(try positive("beta_slow") ?? 1),
                            truncate: truncate, attentionFactor: Float(attention!))
        case "longrope":
            let original = try positions("original_max_position_embeddings", for: type, default: maxPositions)
            func factors(_ key: String) throws -> [Float] {
                guard let r = p[key] else {
                    throw LoadError.missingConfigKey(file: file, key: qualified("rope_scaling.\(key)") + " (needed by rope type \"longrope\")")
                }
                guard let list = r.value.array, list.count == dims / 2 else {
                    throw LoadError.badConfigValue(file: file, key: r.key, value: r.value.preview,
                                                   expected: "a list of \(dims / 2) numbers (half the \(dims) rotary dimensions)")
                }
                return try list.map { v in
                    guard let x = v.double, x > 0, x.isFinite else {
                        throw LoadError.badConfigValue(file: file, key: r.key, value: v.preview, expected: "positive finite factors")
                    }
                    return Float(x)
                }
            }
            let factor = try positive("factor") ?? Double(maxPositions) / Double(original)
            let attention = try positive("attention_factor")
                ?? (factor <= 1 ? 1 : CMath.sqrt(1 + CMath.log(factor) / CMath.log(Double(original))))
            scaling = .longrope(short: try factors("short_factor"), long: try factors("long_factor"),
                                originalMaxPositions: original, attentionFactor: Float(attention))
        default:
            throw LoadError.badConfigValue(file: file, key: typeKey, value: "\"\(type)\"",
                                           expected: "a supported rope type (default, linear, dynamic, llama3, yarn, longrope)")
        }
        return Rotary(dimensions: dims, base: Float(base), scaling: scaling)
    }

    /// The longest sequence a model with `rotary` accepts:
    /// `max_position_embeddings`, or 4 x `factor` times it with dynamic
    /// scaling, which exists to run beyond it (transformers sets no limit).
    public func maxPositions(for rotary: Rotary, default d: Int? = nil) throws -> Int {
        let limit = try size("max_position_embeddings", default: d)
        if case let .dynamic(factor, _) = rotary.scaling { return Int(min(4 * Double(limit) * Double(factor), Double(1 << 30))) }
        return limit
    }
}
