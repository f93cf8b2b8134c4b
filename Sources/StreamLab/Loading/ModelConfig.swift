#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Typed access to a Hugging Face `config.json`. Every accessor names the key
/// in its error, so a wrong config says exactly what to fix.
public struct ModelConfig: Sendable {
    /// Path of the file, for messages.
    public let file: String
    let values: [String: JSONValue]
    /// Prefix of every key in messages: "text_config." for a nested config.
    let keyPrefix: String

    /// Reads and parses `config.json` at `url`.
    public init(url: URL) throws {
        file = url.path
        guard FileBytes.entryExists(url.path) else {
            throw LoadError.missingFile(path: url.path, what: "config")
        }
        let json = try LoadError.readJSON(url.path) { .malformedConfig(file: url.path, reason: $0) }
        guard let members = json.members else {
            throw LoadError.malformedConfig(file: url.path, reason: "the top level is not a JSON object")
        }
        values = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        keyPrefix = ""
    }

    init(file: String, members: [(key: String, value: JSONValue)], keyPrefix: String) {
        self.file = file
        values = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        self.keyPrefix = keyPrefix
    }

    /// The object under `key` as a config of its own (`text_config` of a
    /// multimodal checkpoint), nil when absent or null.
    public func nested(_ key: String) throws -> ModelConfig? {
        guard let v = value(key) else { return nil }
        guard let members = v.members else {
            throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "an object")
        }
        return ModelConfig(file: file, members: members, keyPrefix: qualified(key) + ".")
    }

    /// `key` as messages name it.
    func qualified(_ key: String) -> String { keyPrefix + key }


    /// The value of `key`, looked up at the top level and then inside the
    /// nested objects `rope_parameters` / `rope_scaling` when `nested` is set
    /// (transformers 5 moved rotary keys there). A JSON null counts as absent.
    func value(_ key: String, nested: Bool = false) -> JSONValue? {
        if let v = values[key], !v.isNull { return v }
        if nested {
            for container in ["rope_parameters", "rope_scaling"] {
                if let v = values[container]?[key], !v.isNull { return v }
            }
        }
        return nil
    }

    /// The first present key of `keys` and its value.
    func first(_ keys: [String], nested: Bool = false) -> (key: String, value: JSONValue)? {
        for k in keys { if let v = value(k, nested: nested) { return (k, v) } }
        return nil
    }

    public func int(_ key: String) throws -> Int {
        guard let v = value(key) else { throw LoadError.missingConfigKey(file: file, key: qualified(key)) }
        guard let i = v.int else {
            if let d = v.double, d.isFinite, d.rounded() == d {      // a whole number beyond 2^53: too large, not "not an integer"
                throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "an integer below 2^53")
            }
            throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "an integer")
        }
        return i
    }

    public func int(_ key: String, default d: Int) throws -> Int {
        value(key) == nil ? d : try int(key)
    }

    /// A positive integer (sizes, counts).
    public func size(_ key: String, default d: Int? = nil) throws -> Int {
        let i: Int
        if let d, value(key) == nil { i = d } else { i = try int(key) }
        guard i > 0 else { throw LoadError.badConfigValue(file: file, key: qualified(key), value: String(i), expected: "a positive integer") }
        // Sizes multiply together; keeping each below 2^31 keeps every
        // product of the architecture within Int (and absurd configs out).
        guard i < 1 << 31 else {
            throw LoadError.badConfigValue(file: file, key: qualified(key), value: String(i), expected: "a size below 2^31")
        }
        return i
    }

    /// Head width: `head_dim` when the config has it (Mistral style, may
    /// differ from D / H), else D / H.
    public func headDimension(width: Int, heads: Int) throws -> Int {
        value("head_dim") != nil ? try size("head_dim") : try headDimension(width: width, heads: heads, headsKey: "num_attention_heads")
    }

    /// Head width D / H for families that derive it, checking that H divides D.
    public func headDimension(width: Int, heads: Int, headsKey: String) throws -> Int {
        guard width % heads == 0 else {
            throw LoadError.badConfigValue(file: file, key: qualified(headsKey), value: String(heads),
                                           expected: "a divisor of the width (width \(width) is not a multiple of the \(heads) attention heads)")
        }
        return width / heads
    }

    public func double(_ key: String, default d: Double, nested: Bool = false) throws -> Double {
        guard let v = value(key, nested: nested) else { return d }
        guard let x = v.double else { throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "a number") }
        guard x.isFinite else { throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "a finite number") }
        return x
    }

    public func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = value(key) else { return d }
        guard let b = v.bool else { throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "true or false") }
        return b
    }

    public func string(_ key: String, default d: String? = nil) throws -> String {
        guard let v = value(key) else {
            if let d { return d }
            throw LoadError.missingConfigKey(file: file, key: qualified(key))
        }
        guard let s = v.string else { throw LoadError.badConfigValue(file: file, key: qualified(key), value: v.preview, expected: "a string") }
        return s
    }

    /// Maps an activation name used by Hugging Face configs.
    public func activation(_ key: String, default d: String) throws -> Activation {
        let name = try string(key, default: d)
        switch name {
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_tanh": return .geluTanh
        case "gelu": return .geluExact
        case "relu": return .relu
        case "silu", "swish": return .silu
        default:
            throw LoadError.badConfigValue(file: file, key: qualified(key), value: "\"\(name)\"",
                                           expected: "one of gelu, gelu_new, gelu_pytorch_tanh, relu, silu")
        }
    }

    /// Whether `key` is present with the value null (a disabled feature, as
    /// opposed to an absent key that takes the family's default).
    public func isNull(_ key: String) -> Bool { values[key]?.isNull == true }

    /// Per-layer attention kinds from `layer_types` ("full_attention",
    /// "sliding_attention") when present, else `fallback(layer)`.
    public func layerKinds(count: Int, fallback: (Int) -> Architecture.AttentionKind) throws -> [Architecture.AttentionKind] {
        guard let v = value("layer_types") else { return (0..<count).map(fallback) }
        guard let list = v.array else {
            throw LoadError.badConfigValue(file: file, key: qualified("layer_types"), value: v.preview, expected: "a list of layer types")
        }
        guard list.count == count else {
            throw LoadError.badConfigValue(file: file, key: qualified("layer_types"), value: "\(list.count) entries",
                                           expected: "one entry per layer (num_hidden_layers is \(count))")
        }
        return try list.map { entry in
            switch entry.string {
            case "full_attention": return .global
            case "sliding_attention": return .local
            default:
                throw LoadError.badConfigValue(file: file, key: qualified("layer_types"), value: entry.preview,
                                               expected: "\"full_attention\" or \"sliding_attention\"")
            }
        }
    }
}
