/// How much one attention head behaves like each classic kind of head, as
/// TransformerLens's head detector scores it: `sum(P * D) / sum(P)` for the
/// head's pattern P `[T, T]` (row: query, column: key) and a detection
/// pattern D of the sequence (docs/definitions.md, Attention heads).
public struct HeadScore: Sendable, Equatable {
    public let layer: Int
    public let head: Int
    /// D[i, i-1] = 1: attends to the previous token.
    public let previousToken: Double
    /// D[i, j] = 1 for j < i with the same token: attends to earlier copies of the current token.
    public let duplicateToken: Double
    /// D[i, j] = 1 for j <= i when token j-1 equals token i: attends to the token after an
    /// earlier copy of the current token (an induction head on a repeated sequence).
    public let induction: Double
    /// D[i, 0] = 1: attends to the first position (an attention sink).
    public let firstToken: Double
}

/// Head scores of a model on one sequence, with the patterns of the heads asked for.
public struct HeadScores: Sendable {
    public let tokens: [Int]
    /// By layer, then head.
    public let scores: [HeadScore]
    /// `[H, T, T]` patterns of the layers asked for, by layer.
    public let patterns: [Int: Tensor]
}

extension Transformer {
    /// A repeated random sequence `R + R`, R of `length` tokens drawn
    /// uniformly from the vocabulary by a seeded xorshift generator: the
    /// input on which induction heads show themselves.
    public func repeatedRandomTokens(length: Int, seed: UInt64 = 0) -> [Int] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 ^ 0xD1B5_4A32_D192_ED03
        if state == 0 { state = 1 }
        let v = UInt64(architecture.vocabularySize)
        let r = (0..<length).map { _ -> Int in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Int(state % v)
        }
        return r + r
    }

    /// Every head's scores on `tokens`, and the patterns of `patternLayers`.
    public func headScores(_ tokens: [Int], patternLayers: [Int] = []) throws -> HeadScores {
        let run = try self.run(tokens, recording: [.attnPattern])
        let t = tokens.count, h = architecture.headCount
        var scores: [HeadScore] = []
        var patterns: [Int: Tensor] = [:]
        for layer in 0..<architecture.layerCount {
            let p = run[.attnPattern(layer)]!
            if patternLayers.contains(layer) { patterns[layer] = p }
            for head in 0..<h {
                var previous = 0.0, duplicate = 0.0, induction = 0.0, first = 0.0, total = 0.0
                for i in 0..<t {
                    for j in 0...i {
                        let x = Double(p.scalars[(head * t + i) * t + j])
                        total += x
                        if j == i - 1 { previous += x }
                        if j < i && tokens[j] == tokens[i] { duplicate += x }
                        if j >= 1 && tokens[j - 1] == tokens[i] && j - 1 < i { induction += x }
                        if j == 0 { first += x }
                    }
                }
                scores.append(HeadScore(layer: layer, head: head, previousToken: previous / total, duplicateToken: duplicate / total,
                                        induction: induction / total, firstToken: first / total))
            }
        }
        return HeadScores(tokens: tokens, scores: scores, patterns: patterns)
    }
}
