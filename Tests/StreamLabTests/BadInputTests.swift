import Foundation
import Testing

/// One case of the bad-inputs catalogue in Fixtures/bad (built by make_bad.py).
struct BadInputCase: CustomStringConvertible, Sendable {
    let name: String
    let arguments: [String]
    let expected: String
    let status: Int32
    var description: String { name }

    /// Every case directory of the catalogue.
    static let directories: [String] = {
        let root = FixturePaths.root.appendingPathComponent("bad")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }()

    /// The cases that parse (the catalogue test fails when any does not).
    static let all: [BadInputCase] = directories.compactMap { name in
        let file = FixturePaths.root.appendingPathComponent("bad").appendingPathComponent(name).appendingPathComponent("case.json")
        guard let data = try? Data(contentsOf: file),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let arguments = object["args"] as? [String], let expected = object["expect"] as? String,
              let status = object["status"] as? Int
        else { return nil }
        return BadInputCase(name: name, arguments: arguments, expected: expected, status: Int32(status))
    }
}

@Suite("Bad inputs: one clear line and a non-zero exit")
struct BadInputTests {
    @Test("the catalogue is complete and every case parses")
    func catalogueSize() {
        #expect(BadInputCase.directories.count == 161, "Fixtures/bad holds \(BadInputCase.directories.count) case directories")
        let parsed = Set(BadInputCase.all.map(\.name))
        #expect(parsed.count == BadInputCase.directories.count,
                "unparseable cases: \(BadInputCase.directories.filter { !parsed.contains($0) })")
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
}

@Suite("Interrupted runs")
struct InterruptTests {
    @Test("a terminating signal while an output is being written leaves neither the file nor its temporary, and no backtrace",
          arguments: [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU])
    func interruptLeavesNothing(_ signal: Int32) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-signal-\(getpid())-\(signal)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("run.npz")
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["trace", FixturePaths.models.appendingPathComponent("gpt2").path, "--tokens", "1,2,3", "--out", out.path]
        process.environment = ProcessInfo.processInfo.environment.merging(["STREAMLAB_TEST_PAUSE_BEFORE_COMMIT": "20"]) { $1 }
        let err = Pipe()
        process.standardError = err
        try process.run()
        // Wait for the temporary file: the output is complete but not renamed yet.
        var sawTemporary = false
        for _ in 0..<400 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            if names.contains(where: { $0.hasPrefix(".run.npz.tmp-") }) { sawTemporary = true; break }
            usleep(25_000)
        }
        #expect(sawTemporary, "the temporary output never appeared")
        kill(process.processIdentifier, signal)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + signal)
        #expect(!stderr.contains("Backtrace") && !stderr.contains("Crash"), "\(stderr.prefix(300))")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left.isEmpty, "files left behind: \(left)")
    }
}
