/// A JSON document built for output, with object keys kept in the order they
/// were added (reports read top to bottom: model, tokens, results).
public indirect enum JSONOutput: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONOutput])
    case object([(String, JSONOutput)])

    public static func == (a: JSONOutput, b: JSONOutput) -> Bool { a.serialized() == b.serialized() }

    /// A float as a JSON number; NaN and infinities become null.
    public static func float(_ x: Float) -> JSONOutput { x.isFinite ? .number(Double(x)) : .null }
    public static func double(_ x: Double) -> JSONOutput { x.isFinite ? .number(x) : .null }
    public static func floats(_ xs: [Float]) -> JSONOutput { .array(xs.map(float)) }
    public static func ints(_ xs: [Int]) -> JSONOutput { .array(xs.map { .int($0) }) }
    public static func strings(_ xs: [String]) -> JSONOutput { .array(xs.map { .string($0) }) }

    /// Compact JSON text (one line).
    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .number(d): out += Self.format(d)
        case let .string(s): Self.quote(s, into: &out)
        case let .array(items):
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case let .object(fields):
            out += "{"
            for (k, (key, value)) in fields.enumerated() {
                if k > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// Shortest round-tripping decimal for a double holding a float32 value
    /// when it is one (keeps files small: 0.1 rather than 0.10000000149011612).
    static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        let f = Float(d)
        if Double(f) == d { return "\(f)" }
        return "\(d)"
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}
