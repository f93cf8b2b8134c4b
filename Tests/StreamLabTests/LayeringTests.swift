import Foundation
import Testing

/// The library's folders use each other one way only, in the order that
/// docs/architecture.md lists (its ```layers block): a file may refer to types
/// declared in its own folder or in folders listed above it.
@Suite("Folder layering")
struct LayeringTests {
    static let library = FixturePaths.packageRoot.appendingPathComponent("Sources/StreamLab")

    /// The layer order from docs/architecture.md.
    static func layers() throws -> [String] {
        let doc = try String(contentsOf: FixturePaths.packageRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        guard let start = doc.range(of: "```layers\n"), let end = doc.range(of: "```", range: start.upperBound..<doc.endIndex) else {
            return []
        }
        return doc[start.upperBound..<end.lowerBound].split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// Swift files of the library by top folder ("" for files at the root).
    static func files() throws -> [(folder: String, path: String, text: String)] {
        let enumerator = FileManager.default.enumerator(atPath: library.path)
        var out: [(String, String, String)] = []
        while let rel = enumerator?.nextObject() as? String {
            guard rel.hasSuffix(".swift") else { continue }
            let parts = rel.split(separator: "/")
            let text = try String(contentsOf: library.appendingPathComponent(rel), encoding: .utf8)
            out.append((parts.count > 1 ? String(parts[0]) : "", rel, text))
        }
        return out
    }

    /// Code without `//` comments (string literals stay: interpolations use types too).
    static func code(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let s = String(line)
            guard let r = s.range(of: "//") else { return s }
            return String(s[..<r.lowerBound])
        }.joined(separator: "\n")
    }

    @Test("every folder is listed and uses only folders above it")
    func layering() throws {
        let order = try Self.layers()
        let files = try Self.files()
        let folders = Set(files.map(\.folder)).subtracting([""])
        #expect(order.count == 9, "docs/architecture.md lists \(order.count) layers")
        #expect(Set(order) == folders, "folders \(folders.sorted()) vs docs/architecture.md \(order)")
        #expect(files.count > 60, "found only \(files.count) Swift files")

        // Type names declared at the top level of each folder.
        let declaration = try NSRegularExpression(
            pattern: #"^(?:(?:public|internal|private|fileprivate|final|indirect|@\w+)\s+)*(?:struct|enum|class|protocol|typealias)\s+([A-Z]\w*)"#,
            options: [.anchorsMatchLines])
        var owner: [String: Set<String>] = [:]
        for f in files {
            let ns = f.text as NSString
            for m in declaration.matches(in: f.text, range: NSRange(location: 0, length: ns.length)) {
                owner[ns.substring(with: m.range(at: 1)), default: []].insert(f.folder)
            }
        }
        #expect(owner.count > 100, "found only \(owner.count) declared types")
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        let identifier = try NSRegularExpression(pattern: #"\b[A-Z]\w*\b"#)
        var violations: [String] = []
        for f in files where !f.folder.isEmpty {
            let code = Self.code(f.text), ns = code as NSString
            var used = Set<String>()
            for m in identifier.matches(in: code, range: NSRange(location: 0, length: ns.length)) {
                used.insert(ns.substring(with: m.range))
            }
            for name in used.sorted() {
                guard let homes = owner[name], homes.count == 1, let home = homes.first, home != f.folder, !home.isEmpty else { continue }
                if let mine = rank[f.folder], let theirs = rank[home], theirs > mine {
                    violations.append("\(f.path) uses \(name) from \(home)/")
                }
            }
        }
        #expect(violations.isEmpty, "\(violations.count) uses of a lower folder:\n\(violations.joined(separator: "\n"))")
    }
}
