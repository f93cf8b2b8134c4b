import Foundation
import StreamLab

/// A mistake on the command line. Exit status 2, one line, naming the flag.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// One option a command accepts.
struct OptionSpec {
    let name: String          // "--layers"
    let valueName: String?    // "LIST"; nil for a flag without a value
    let help: String
    /// May be given several times (`--order 1,0,2 --order 0,2,1`).
    var repeatable = false
}

/// A command's interface: positionals and options, for parsing and help text.
struct CommandSpec {
    let name: String
    let summary: String
    let usage: String
    let options: [OptionSpec]

    static let common: [OptionSpec] = [
        OptionSpec(name: "--threads", valueName: "N", help: "threads for the matrix multiplies (default: all cores)"),
        OptionSpec(name: "--help", valueName: nil, help: "show this help"),
    ]

    var allOptions: [OptionSpec] { options + Self.common }

    var helpText: String {
        var text = "\(summary)\n\nusage: \(usage)\n\noptions:\n"
        let width = allOptions.map { $0.name.count + ($0.valueName.map { $0.count + 1 } ?? 0) }.max() ?? 0
        for o in allOptions {
            let left = o.name + (o.valueName.map { " " + $0 } ?? "")
            text += "  " + left + String(repeating: " ", count: width - left.count + 2) + o.help + "\n"
        }
        return text
    }
}

/// Parsed command line of one command.
struct ParsedArguments {
    var values: [String: String] = [:]
    /// Every value of a repeatable option, in order.
    var repeated: [String: [String]] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []
    /// The command these arguments belong to.
    var command = ""

    /// Parses `arguments` against `spec`. An option that takes a value always
    /// consumes the next argument, even one starting with `-` (`--position -1`);
    /// `--name=value` works too.
    init(_ arguments: [String], spec: CommandSpec) throws {
        command = spec.name
        let known = Dictionary(spec.allOptions.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            if arg.hasPrefix("--") {
                var name = arg, inline: String?
                if let eq = arg.firstIndex(of: "=") {
                    name = String(arg[..<eq])
                    inline = String(arg[arg.index(after: eq)...])
                }
                guard let option = known[name] else {
                    let suggestion = Self.closest(to: name, among: Array(known.keys))
                    throw UsageError("unknown option '\(name)' for '\(spec.name)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "") + " (see stream-probe \(spec.name) --help)")
                }
                if option.valueName != nil {
                    let value: String
                    if let inline { value = inline } else {
                        guard i + 1 < arguments.count else {
                            throw UsageError("option '\(name)' needs a value (\(option.valueName!))")
                        }
                        value = arguments[i + 1]
                        i += 1
                    }
                    if values[name] != nil && !option.repeatable { throw UsageError("option '\(name)' is given twice") }
                    values[name] = value
                    repeated[name, default: []].append(value)
                } else {
                    if inline != nil { throw UsageError("option '\(name)' takes no value") }
                    flags.insert(name)
                }
            } else if arg.hasPrefix("-") && arg.count > 1 && Int(arg) == nil {
                throw UsageError("unknown option '\(arg)' for '\(spec.name)' (options start with --; see stream-probe \(spec.name) --help)")
            } else {
                positionals.append(arg)
            }
            i += 1
        }
    }

    func value(_ name: String) -> String? { values[name] }
    func has(_ name: String) -> Bool { flags.contains(name) || values[name] != nil }

    /// An integer option within `range`, or `defaultValue` when absent.
    /// A finite number option within `range`.
    func double(_ name: String, default defaultValue: Double, range: ClosedRange<Double>) throws -> Double {
        guard let text = values[name] else { return defaultValue }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let v = Double(trimmed), v.isFinite else { throw UsageError("option '\(name)' expects a number, got '\(text)'") }
        guard range.contains(v) else { throw UsageError("option '\(name)' must be within \(range.lowerBound)...\(range.upperBound), got \(trimmed)") }
        return v
    }

    func int(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = values[name] else { return defaultValue }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let v = Int(trimmed) else {
            let digits = trimmed.drop { $0 == "-" || $0 == "+" }
            if !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber) {
                throw UsageError("option '\(name)' must be within \(range.lowerBound)...\(range.upperBound), got \(trimmed) (beyond a 64-bit integer)")
            }
            throw UsageError("option '\(name)' expects an integer, got '\(text)'")
        }
        guard range.contains(v) else {
            throw UsageError("option '\(name)' must be within \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return v
    }

    /// One of `choices`, or `defaultValue` when absent.
    func choice(_ name: String, _ choices: [String], default defaultValue: String) throws -> String {
        guard let v = values[name] else { return defaultValue }
        guard choices.contains(v) else {
            throw UsageError("option '\(name)' must be one of \(choices.joined(separator: ", ")); got '\(v)'")
        }
        return v
    }

    /// The known name closest in edit distance, if close enough to be a typo.
    static func closest(to name: String, among candidates: [String]) -> String? {
        var best: (name: String, distance: Int)?
        for candidate in candidates.sorted() {
            let distance = editDistance(name, candidate)
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        guard let best, best.distance <= max(2, name.count / 3) else { return nil }
        return best.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
