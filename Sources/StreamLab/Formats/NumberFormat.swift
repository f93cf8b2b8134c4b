/// Formatting of numbers and token text for tables.
public enum Format {
    /// A float with `digits` decimals, e.g. `fixed(0.12345, 3)` = "0.123".
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (abs(x) * scale).rounded() / scale
        var whole = String(Int(r))
        var frac = ""
        if digits > 0 {
            let f = Int(((r - Double(Int(r))) * scale).rounded())
            let s = String(f)
            frac = "." + String(repeating: "0", count: max(0, digits - s.count)) + s
        }
        if x < 0 && r != 0 { whole = "-" + whole }
        return whole + frac
    }

    public static func fixed(_ x: Float, _ digits: Int) -> String { fixed(Double(x), digits) }

    /// `text ± se` with the error in `digits` decimals, or `text` alone without one (a standard error over windows).
    public static func plusMinus(_ text: String, _ se: Double?, _ digits: Int) -> String {
        se.map { text + " ± " + fixed($0, digits) } ?? text
    }

    /// `x ± se`, both in `digits` decimals.
    public static func plusMinus(_ x: Double, _ se: Double?, _ digits: Int) -> String { plusMinus(fixed(x, digits), se, digits) }

    /// The shortest decimal that reads back as the float32 value, without a
    /// trailing ".0": 500000, 0.25, 1e-06.
    public static func general(_ x: Double) -> String {
        let s = "\(Float(x))"
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }

    /// Token text made visible for a table cell: quotes around it, control
    /// characters and newlines escaped, so " the" and "\n" read clearly.
    public static func token(_ text: String) -> String {
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\"": out += "\\\""
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += "\\x" + (hex.count < 2 ? "0" : "") + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return "\"" + out + "\""
    }

    /// `text` safe for a terminal: control characters (C0, DEL, C1), which a
    /// file could use to move the cursor, ring the bell or forge lines, are
    /// written as `\x1B` / `\u{9B}`; everything else is kept.
    public static func visible(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            if isControl(u) {
                out += u.value < 0x80 ? "\\x" + (u.value < 0x10 ? "0" : "") + String(u.value, radix: 16, uppercase: true)
                                      : "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    static func isControl(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) }

    /// Bytes in binary units, e.g. "12.3 MiB".
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : fixed(v, 1) + " " + units[u]
    }

    /// A count with thousands separators, e.g. "124,439,808".
    public static func count(_ n: Int) -> String {
        let s = String(abs(n))
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// A whole count held in a double: thousands separators below 1e15,
    /// else scientific ("1.23e+18").
    public static func count(_ x: Double) -> String {
        x.isFinite && abs(x) < 1e15 ? count(Int(x.rounded())) : scientific(x)
    }

    /// `1.2e-07` style for tiny numbers.
    public static func scientific(_ x: Double) -> String {
        guard x != 0, x.isFinite else { return fixed(x, 0) }
        var e = 0
        var m = abs(x)
        while m < 1 { m *= 10; e -= 1 }
        while m >= 10 { m /= 10; e += 1 }
        return (x < 0 ? "-" : "") + fixed(m, 1) + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
    }
}
