import Foundation
import Testing

/// One case of the bad-inputs catalogue in Fixtures/bad (built by make_bad.py).
struct BadInputCase: CustomStringConvertible, Sendable {
    let name: String
    let arguments: [String]
    let expected: String
    let status: Int32
    var description: String { name }

    static let all: [BadInputCase] = {
        let root = FixturePaths.root.appendingPathComponent("bad")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.sorted().compactMap { name in
            let file = root.appendingPathComponent(name).appendingPathComponent("case.json")
            guard let data = try? Data(contentsOf: file),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let arguments = object["args"] as? [String], let expected = object["expect"] as? String,
                  let status = object["status"] as? Int
            else { return nil }
            return BadInputCase(name: name, arguments: arguments, expected: expected, status: Int32(status))
        }
    }()
}

@Suite("Bad inputs: one clear line and a non-zero exit")
struct BadInputTests {
    @Test("the catalogue is complete")
    func catalogueSize() {
        #expect(BadInputCase.all.count >= 30)
    }

    @Test("each case fails with its message", arguments: BadInputCase.all)
    func failsClearly(_ badCase: BadInputCase) throws {
        let result = try CLI.run(badCase.arguments)
        #expect(result.status == badCase.status, "exit status \(result.status), stderr: \(result.stderr)")
        if badCase.status != 0 {
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "expected one line on stderr, got: \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: "), "stderr: \(result.stderr)")
            #expect(result.stderr.contains(badCase.expected), "stderr '\(result.stderr)' lacks '\(badCase.expected)'")
            #expect(!result.stderr.contains("Fatal error"), "crashed: \(result.stderr)")
        } else {
            #expect(result.stdout.contains(badCase.expected))
        }
    }

    @Test("a failed trace leaves no output file behind")
    func noPartialOutput() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-partial-\(getpid()).npz")
        try? FileManager.default.removeItem(at: out)
        let result = try CLI.run(["trace", "Fixtures/bad/valid-tiny-gpt2", "--tokens", "1,99", "--out", out.path])
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path)
            .filter { $0.contains("streamlab-partial-\(getpid())") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }
}
