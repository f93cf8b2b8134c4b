/// What an intervention acts on. Definitions: docs/definitions.md, "Interventions".
public enum InterventionTarget: Hashable, Sendable, CustomStringConvertible {
    /// Both sublayers of block `layer`.
    case block(layer: Int)
    /// The attention write of block `layer` (`blocks.{l}.hook_attn_out`).
    case attention(layer: Int)
    /// The MLP write of block `layer` (`blocks.{l}.hook_mlp_out`).
    case mlp(layer: Int)
    /// One head's slice of `blocks.{layer}.attn.hook_result` (the output bias stays).
    case head(layer: Int, head: Int)
    /// The array at any hook point that lies on the stream or is a write:
    /// `hook_embed`, `hook_pos_embed`, `resid_pre`, `resid_mid`, `resid_post`,
    /// `attn_out`, `mlp_out`, `mlp.hook_post`. Changing `resid_pre` or
    /// `resid_mid` changes the stream itself: the next sublayer's input and the
    /// residual added after it.
    case hook(HookPoint)
    /// The order of the whole stack of blocks (action `.order`).
    case blockOrder

    /// The block it belongs to (0 for the embedding and the stack order).
    public var layer: Int {
        switch self {
        case let .block(l), let .attention(l), let .mlp(l), let .head(l, _): return l
        case let .hook(point): return point.layer ?? 0
        case .blockOrder: return 0
        }
    }

    public var description: String {
        switch self {
        case let .block(l): return "blocks.\(l)"
        case let .attention(l): return "blocks.\(l).attn"
        case let .mlp(l): return "blocks.\(l).mlp"
        case let .head(l, h): return "blocks.\(l).attn.head\(h)"
        case let .hook(point): return point.name
        case .blockOrder: return "blocks"
        }
    }
}

/// How a write is removed by an ablation (the ablation subset of `InterventionAction`).
public enum AblationMode: String, Sendable, CaseIterable {
    /// Remove the block or sublayer; the stream passes through unchanged and,
    /// for post-norm models, the sublayer's norm is skipped too.
    case skip
    /// Set the write to zero; post-norms still apply (same as skip for pre-norm).
    case zero
    /// Replace the write at every position by its mean over the sequence's positions.
    case mean

    var action: InterventionAction {
        switch self {
        case .skip: return .skip
        case .zero: return .zero
        case .mean: return .mean
        }
    }
}

/// What an intervention does at its target.
public enum InterventionAction: Hashable, Sendable, CustomStringConvertible {
    /// Remove a block or sublayer (`resid_post = resid_pre`; post-norm: its norm too).
    case skip
    /// Set the array to zero (at the chosen positions).
    case zero
    /// Replace the array, at the chosen positions, by its mean over all positions of the sequence.
    case mean
    /// Replace the array by the given one, same shape as the hook's array
    /// (`[T, D]` for the stream and the writes), at the chosen positions.
    case replace(Tensor)
    /// Add a vector `[D]` (at every chosen position) or an array of the hook's shape.
    case add(Tensor)
    /// Run the blocks in this order (repeats and omissions allowed); target `.blockOrder`.
    case order([Int])

    public var description: String {
        switch self {
        case .skip: return "skip"
        case .zero: return "zero"
        case .mean: return "mean"
        case let .replace(t): return "replace \(t.shape)"
        case let .add(t): return "add \(t.shape)"
        case let .order(o): return "order \(o.map(String.init).joined(separator: ","))"
        }
    }
}

/// One change to a forward pass: an action at a target, optionally restricted
/// to some positions. Every intervention is applied by one mechanism, at the
/// hook point it names, inside `Transformer.forward`.
public struct Intervention: Hashable, Sendable, CustomStringConvertible {
    public var target: InterventionTarget
    public var action: InterventionAction
    /// Positions the action applies to (nil: every position). Skip and order
    /// act on whole sequences and take no positions.
    public var positions: [Int]?

    public init(_ target: InterventionTarget, _ action: InterventionAction, positions: [Int]? = nil) {
        self.target = target
        self.action = action
        self.positions = positions
    }

    /// An ablation: `Intervention(.block(layer: 3), mode: .skip)`.
    public init(_ target: InterventionTarget, mode: AblationMode) {
        self.init(target, mode.action)
    }

    /// Run the blocks in `order` (e.g. `[0, 2, 1, 3]`).
    public static func order(_ order: [Int]) -> Intervention { Intervention(.blockOrder, .order(order)) }

    /// The ablation mode, when the action is one.
    public var mode: AblationMode? {
        switch action {
        case .skip: return .skip
        case .zero: return .zero
        case .mean: return .mean
        default: return nil
        }
    }

    public var description: String { "\(action) \(target)" }
}

/// An action at a hook point with its position restriction.
struct PointAction {
    var action: InterventionAction
    var positions: [Int]?
    /// For head actions: the head whose `[T, Dh]` slice of z is changed.
    var head: Int?
}

/// The interventions of one forward pass, resolved from a list: structural
/// skips per block and, per hook point, the actions applied to its array.
struct InterventionPlan {
    var skipBlock: [Bool]
    var skipAttention: [Bool]
    var skipMLP: [Bool]
    /// Actions on each block's per-head outputs z (before the output projection).
    var heads: [[PointAction]]
    var points: [HookPoint: [PointAction]] = [:]
    /// The blocks to run, in order.
    var order: [Int]

    init(layerCount: Int) {
        skipBlock = [Bool](repeating: false, count: layerCount)
        skipAttention = skipBlock
        skipMLP = skipBlock
        heads = [[PointAction]](repeating: [], count: layerCount)
        order = Array(0..<layerCount)
    }

    /// Groups `interventions` (already validated) by where they act.
    init(_ interventions: [Intervention], layerCount: Int) {
        self.init(layerCount: layerCount)
        for iv in interventions {
            let at = PointAction(action: iv.action, positions: iv.positions)
            switch (iv.target, iv.action) {
            case let (.block(l), .skip): skipBlock[l] = true
            case let (.block(l), _):
                points[.attnOut(l), default: []].append(at)
                points[.mlpOut(l), default: []].append(at)
            case let (.attention(l), .skip): skipAttention[l] = true
            case let (.attention(l), _): points[.attnOut(l), default: []].append(at)
            case let (.mlp(l), .skip): skipMLP[l] = true
            case let (.mlp(l), _): points[.mlpOut(l), default: []].append(at)
            case let (.head(l, h), action):
                // A skipped head is a zeroed head: its slice of hook_result is z_h W_O[h], linear in z_h.
                heads[l].append(PointAction(action: action == .skip ? .zero : action, positions: iv.positions, head: h))
            case let (.hook(point), _): points[point, default: []].append(at)
            case let (.blockOrder, .order(o)): order = o
            case (.blockOrder, _): break
            }
        }
    }

    /// Whether anything changes the pass.
    var isClean: Bool {
        !skipBlock.contains(true) && !skipAttention.contains(true) && !skipMLP.contains(true)
            && heads.allSatisfy(\.isEmpty) && points.isEmpty && order == Array(0..<skipBlock.count)
    }

    /// The first slot of `order` whose computation differs from a clean pass:
    /// everything before it equals the clean run.
    var firstChangedSlot: Int {
        if points.keys.contains(where: { $0.layer == nil }) { return 0 }    // the embedding changes
        for (slot, layer) in order.enumerated() {
            if layer != slot || skipBlock[layer] || skipAttention[layer] || skipMLP[layer] || !heads[layer].isEmpty
                || points.keys.contains(where: { $0.layer == layer }) {
                return slot
            }
        }
        return order.count
    }
}

extension PointAction {
    /// Applies the action to an array `[T, width]` of one sequence (row stride
    /// `stride`, `columns` the first column of the slice acted on, `count`
    /// its width). Replace and add payloads are `[T, count]` (or `[count]` for add).
    func apply(_ p: UnsafeMutablePointer<Float>, rows t: Int, stride: Int, column c0: Int, count w: Int,
               payloadColumn: Int = 0, payloadWidth: Int? = nil) {
        let rows = positions ?? Array(0..<t)
        let pw = payloadWidth ?? w
        switch action {
        case .skip, .order:
            return
        case .zero:
            for i in rows { (p + i * stride + c0).update(repeating: 0, count: w) }
        case .mean:
            var mean = [Double](repeating: 0, count: w)
            for i in 0..<t { for j in 0..<w { mean[j] += Double(p[i * stride + c0 + j]) } }
            let m = mean.map { Float($0 / Double(t)) }
            for i in rows { for j in 0..<w { p[i * stride + c0 + j] = m[j] } }
        case let .replace(tensor):
            tensor.scalars.withUnsafeBufferPointer { src in
                for i in rows { (p + i * stride + c0).update(from: src.baseAddress! + i * pw + payloadColumn, count: w) }
            }
        case let .add(tensor):
            tensor.scalars.withUnsafeBufferPointer { src in
                let broadcast = tensor.rank == 1
                for i in rows {
                    Elementwise.add(src.baseAddress! + (broadcast ? 0 : i * pw) + payloadColumn, into: p + i * stride + c0, w)
                }
            }
        }
    }
}
