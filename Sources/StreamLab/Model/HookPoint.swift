/// A kind of hook point, independent of the layer: what `run(_:recording:)`
/// takes to say which arrays to keep (for every layer).
public enum HookKind: String, Sendable, Hashable, CaseIterable {
    case embed, posEmbed, residPre, ln1Scale, attnPattern, attnZ, attnResult, ln1PostScale, attnOut, residMid,
         ln2Scale, mlpPost, ln2PostScale, mlpOut, residPost, lnFinalScale, lnFinalNormalized, logits
}

extension HookKind {
    /// The kind's name as it ends a hook name: `hook_resid_post`, `attn.hook_pattern`, `logits`.
    public var hookName: String {
        let example = HookPoint.example(of: self).name
        return example.hasPrefix("blocks.0.") ? String(example.dropFirst("blocks.0.".count)) : example
    }

    /// Kinds from a comma-separated list of hook names (`hook_resid_post,attn.hook_pattern`).
    public static func parse(list text: String) throws -> Set<HookKind> {
        let byName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.hookName, $0) })
        var kinds: Set<HookKind> = []
        for part in text.split(separator: ",") {
            let name = String(part.filter { $0 != " " && $0 != "\t" })
            guard let kind = byName[name] else {
                throw ModelError.unknownHook(name: name, known: byName.keys.sorted())
            }
            kinds.insert(kind)
        }
        if kinds.isEmpty { throw ModelError.unknownHook(name: text, known: byName.keys.sorted()) }
        return kinds
    }
}

extension Set where Element == HookKind {
    /// Every hook point.
    public static var all: Set<HookKind> { Set(HookKind.allCases) }
    /// The residual stream and the sublayer writes, the cheap and common set.
    public static var stream: Set<HookKind> { [.embed, .posEmbed, .residPre, .attnOut, .residMid, .mlpOut, .residPost] }
}

/// One recorded array, named as in TransformerLens (docs/definitions.md, Hook points).
///
/// | point | name | shape |
/// |---|---|---|
/// | `.embed` | `hook_embed` | [T, D] |
/// | `.posEmbed` | `hook_pos_embed` | [T, D] |
/// | `.residPre(i)` | `blocks.{i}.hook_resid_pre` | [T, D] |
/// | `.attnOut(i)` | `blocks.{i}.hook_attn_out` | [T, D] |
/// | `.residMid(i)` | `blocks.{i}.hook_resid_mid` | [T, D] |
/// | `.mlpOut(i)` | `blocks.{i}.hook_mlp_out` | [T, D] |
/// | `.residPost(i)` | `blocks.{i}.hook_resid_post` | [T, D] |
/// | `.attnZ(i)` | `blocks.{i}.attn.hook_z` | [T, H, Dh] |
/// | `.attnResult(i)` | `blocks.{i}.attn.hook_result` | [T, H, D] |
/// | `.attnPattern(i)` | `blocks.{i}.attn.hook_pattern` | [H, T, T] |
/// | `.mlpPost(i)` | `blocks.{i}.mlp.hook_post` | [T, F] |
/// | `.ln1Scale(i)`, `.ln2Scale(i)` | `blocks.{i}.ln1.hook_scale`, `ln2` | [T, 1] |
/// | `.ln1PostScale(i)`, `.ln2PostScale(i)` | `blocks.{i}.ln1_post.hook_scale`, `ln2_post` (sandwich, output) | [T, 1] |
/// | `.lnFinalScale` | `ln_final.hook_scale` | [T, 1] |
/// | `.lnFinalNormalized` | `ln_final.hook_normalized` | [T, D] |
/// | `.logits` | `logits` | [T, V] |
public enum HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    case embed, posEmbed
    case residPre(Int), ln1Scale(Int), attnPattern(Int), attnZ(Int), attnResult(Int), ln1PostScale(Int), attnOut(Int), residMid(Int)
    case ln2Scale(Int), mlpPost(Int), ln2PostScale(Int), mlpOut(Int), residPost(Int)
    case lnFinalScale, lnFinalNormalized, logits

    /// The layer-independent kind.
    public var kind: HookKind {
        switch self {
        case .embed: return .embed
        case .posEmbed: return .posEmbed
        case .residPre: return .residPre
        case .ln1Scale: return .ln1Scale
        case .attnPattern: return .attnPattern
        case .attnZ: return .attnZ
        case .attnResult: return .attnResult
        case .ln1PostScale: return .ln1PostScale
        case .attnOut: return .attnOut
        case .residMid: return .residMid
        case .ln2Scale: return .ln2Scale
        case .mlpPost: return .mlpPost
        case .ln2PostScale: return .ln2PostScale
        case .mlpOut: return .mlpOut
        case .residPost: return .residPost
        case .lnFinalScale: return .lnFinalScale
        case .lnFinalNormalized: return .lnFinalNormalized
        case .logits: return .logits
        }
    }

    /// The block index, for per-block points.
    public var layer: Int? {
        switch self {
        case let .residPre(i), let .ln1Scale(i), let .attnPattern(i), let .attnZ(i), let .attnResult(i), let .ln1PostScale(i),
             let .attnOut(i), let .residMid(i), let .ln2Scale(i), let .mlpPost(i), let .ln2PostScale(i), let .mlpOut(i),
             let .residPost(i):
            return i
        default:
            return nil
        }
    }

    /// The TransformerLens-style name, e.g. `blocks.3.hook_attn_out`.
    public var name: String {
        switch self {
        case .embed: return "hook_embed"
        case .posEmbed: return "hook_pos_embed"
        case let .residPre(i): return "blocks.\(i).hook_resid_pre"
        case let .ln1Scale(i): return "blocks.\(i).ln1.hook_scale"
        case let .attnPattern(i): return "blocks.\(i).attn.hook_pattern"
        case let .attnZ(i): return "blocks.\(i).attn.hook_z"
        case let .attnResult(i): return "blocks.\(i).attn.hook_result"
        case let .ln1PostScale(i): return "blocks.\(i).ln1_post.hook_scale"
        case let .attnOut(i): return "blocks.\(i).hook_attn_out"
        case let .residMid(i): return "blocks.\(i).hook_resid_mid"
        case let .ln2Scale(i): return "blocks.\(i).ln2.hook_scale"
        case let .mlpPost(i): return "blocks.\(i).mlp.hook_post"
        case let .ln2PostScale(i): return "blocks.\(i).ln2_post.hook_scale"
        case let .mlpOut(i): return "blocks.\(i).hook_mlp_out"
        case let .residPost(i): return "blocks.\(i).hook_resid_post"
        case .lnFinalScale: return "ln_final.hook_scale"
        case .lnFinalNormalized: return "ln_final.hook_normalized"
        case .logits: return "logits"
        }
    }

    public var description: String { name }

    /// Parses a TransformerLens-style name; nil if it is not one of ours.
    public init?(name: String) {
        switch name {
        case "hook_embed": self = .embed; return
        case "hook_pos_embed": self = .posEmbed; return
        case "ln_final.hook_scale": self = .lnFinalScale; return
        case "ln_final.hook_normalized": self = .lnFinalNormalized; return
        case "logits": self = .logits; return
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blocks", let i = Int(parts[1]), i >= 0 else { return nil }
        let makers: [String: (Int) -> HookPoint] = [
            "hook_resid_pre": HookPoint.residPre, "ln1.hook_scale": HookPoint.ln1Scale,
            "attn.hook_pattern": HookPoint.attnPattern, "attn.hook_result": HookPoint.attnResult, "attn.hook_z": HookPoint.attnZ,
            "hook_attn_out": HookPoint.attnOut, "hook_resid_mid": HookPoint.residMid,
            "ln2.hook_scale": HookPoint.ln2Scale, "mlp.hook_post": HookPoint.mlpPost,
            "ln1_post.hook_scale": HookPoint.ln1PostScale, "ln2_post.hook_scale": HookPoint.ln2PostScale,
            "hook_mlp_out": HookPoint.mlpOut, "hook_resid_post": HookPoint.residPost,
        ]
        guard let make = makers[parts[2]] else { return nil }
        self = make(i)
    }

    /// Order of computation: embeddings, then each block's points in the order
    /// the forward pass produces them, then the final read.
    private var sortKey: (Int, Int, Int) {
        let kindOrder = HookKind.allCases.firstIndex(of: kind)!
        switch self {
        case .embed, .posEmbed: return (0, 0, kindOrder)
        case .lnFinalScale, .lnFinalNormalized, .logits: return (2, 0, kindOrder)
        default: return (1, layer!, kindOrder)
        }
    }

    public static func < (a: HookPoint, b: HookPoint) -> Bool { a.sortKey < b.sortKey }
}

extension HookPoint {
    /// A representative point of `kind` (layer 0 for per-block kinds).
    public static func example(of kind: HookKind) -> HookPoint {
        switch kind {
        case .embed: return .embed
        case .posEmbed: return .posEmbed
        case .residPre: return .residPre(0)
        case .ln1Scale: return .ln1Scale(0)
        case .attnPattern: return .attnPattern(0)
        case .attnZ: return .attnZ(0)
        case .attnResult: return .attnResult(0)
        case .ln1PostScale: return .ln1PostScale(0)
        case .attnOut: return .attnOut(0)
        case .residMid: return .residMid(0)
        case .ln2Scale: return .ln2Scale(0)
        case .mlpPost: return .mlpPost(0)
        case .ln2PostScale: return .ln2PostScale(0)
        case .mlpOut: return .mlpOut(0)
        case .residPost: return .residPost(0)
        case .lnFinalScale: return .lnFinalScale
        case .lnFinalNormalized: return .lnFinalNormalized
        case .logits: return .logits
        }
    }
}
