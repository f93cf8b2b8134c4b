/// What an intervention acts on (DESIGN.md section 4).
public enum InterventionTarget: Hashable, Sendable, CustomStringConvertible {
    /// Both sublayers of block `layer`.
    case block(layer: Int)
    /// The attention write of block `layer`.
    case attention(layer: Int)
    /// The MLP write of block `layer`.
    case mlp(layer: Int)
    /// One head's slice of `blocks.{layer}.attn.hook_result` (the output bias stays).
    case head(layer: Int, head: Int)

    public var layer: Int {
        switch self {
        case let .block(l), let .attention(l), let .mlp(l), let .head(l, _): return l
        }
    }

    public var description: String {
        switch self {
        case let .block(l): return "blocks.\(l)"
        case let .attention(l): return "blocks.\(l).attn"
        case let .mlp(l): return "blocks.\(l).mlp"
        case let .head(l, h): return "blocks.\(l).attn.head\(h)"
        }
    }
}

/// How a write is removed (DESIGN.md section 4).
public enum AblationMode: String, Sendable, CaseIterable {
    /// Remove the block or sublayer; the stream passes through unchanged and,
    /// for post-norm models, the sublayer's norm is skipped too.
    case skip
    /// Set the write to zero; post-norms still apply (same as skip for pre-norm).
    case zero
    /// Replace the write at every position by its mean over the sequence's positions.
    case mean
}

/// One change to a forward pass.
public struct Intervention: Hashable, Sendable, CustomStringConvertible {
    public var target: InterventionTarget
    public var mode: AblationMode

    public init(_ target: InterventionTarget, mode: AblationMode) {
        self.target = target
        self.mode = mode
    }

    public var description: String { "\(mode.rawValue) \(target)" }
}

/// The interventions of one block, resolved from a list.
struct BlockPlan {
    var skipBlock = false
    var attention: AblationMode?
    var mlp: AblationMode?
    /// Head index -> mode (`skip` acts as `zero` for a head).
    var heads: [Int: AblationMode] = [:]

    var isClean: Bool { !skipBlock && attention == nil && mlp == nil && heads.isEmpty }

    /// Groups interventions by layer.
    static func plans(_ interventions: [Intervention], layerCount: Int) -> [BlockPlan] {
        var plans = [BlockPlan](repeating: BlockPlan(), count: layerCount)
        for iv in interventions {
            let l = iv.target.layer
            switch iv.target {
            case .block:
                if iv.mode == .skip { plans[l].skipBlock = true } else {
                    plans[l].attention = iv.mode
                    plans[l].mlp = iv.mode
                }
            case .attention: plans[l].attention = iv.mode
            case .mlp: plans[l].mlp = iv.mode
            case let .head(_, h): plans[l].heads[h] = iv.mode
            }
        }
        return plans
    }
}
