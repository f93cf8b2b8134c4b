import Foundation
import Testing

/// FIFOs where regular files belong: each is refused at once with one line
/// (opening a FIFO for reading would block until a writer came). FIFOs cannot be
/// committed, so this test makes them; devices and symlink loops are cases in
/// Fixtures/bad.
@Suite("Special files and failing streams")
struct SpecialFileTests {
    /// Runs stream-probe, failing the test (and killing the child) after `seconds`.
    static func runBounded(_ arguments: [String], seconds: Double = 20) throws -> CLI.Result? {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        process.currentDirectoryURL = FixturePaths.packageRoot
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return nil
        }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return CLI.Result(status: process.terminationStatus, stdout: "", stderr: stderr)
    }

    @Test("a FIFO as weights, config, shard index, tokenizer or text file is refused without blocking",
          arguments: ["model.safetensors", "config.json", "model.safetensors.index.json", "tokenizer.json", "text.txt"])
    func fifo(_ name: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-fifo-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = FixturePaths.root.appendingPathComponent("bad/valid-tiny-gpt2")
        for file in ["config.json", "model.safetensors"] where file != name && !(name.hasPrefix("model.safetensors") && file == "model.safetensors") {
            try FileManager.default.copyItem(at: model.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        #expect(mkfifo(dir.appendingPathComponent(name).path, 0o644) == 0)
        var arguments = ["info", dir.path]
        if name == "tokenizer.json" { arguments = ["ablate", dir.path, "--prompt", "hi"] }
        if name == "text.txt" {
            arguments = ["ablate", dir.path, "--tokenizer", "Fixtures/tokenizers/bytelevel/tokenizer.json",
                         "--text-file", dir.appendingPathComponent(name).path]
        }
        let result = try #require(try Self.runBounded(arguments), "stream-probe \(arguments.joined(separator: " ")) blocked on the FIFO")
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("FIFO (named pipe), not a regular file"), "\(result.stderr)")
    }

    /// Runs stream-probe with standard output and error sent to the given files.
    static func run(_ arguments: [String], stdout: String?, stderr: String?) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        process.currentDirectoryURL = FixturePaths.packageRoot
        let errPipe = Pipe()
        process.standardOutput = stdout.flatMap { FileHandle(forWritingAtPath: $0) } ?? FileHandle.nullDevice
        process.standardError = stderr.flatMap { FileHandle(forWritingAtPath: $0) } ?? errPipe
        try process.run()
        let text = stderr == nil ? String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) : ""
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test("a failed standard output is exit 1 with a message; a failed standard error never traps",
          arguments: [["info", "Fixtures/models/gpt2"], ["ablate", "Fixtures/models/gpt2", "--tokens", "1,2,3", "--format", "json"],
                      ["--version"], ["tokenize", "Fixtures/tokenizers/bytelevel/tokenizer.json", "--prompt", "hi"]])
    func writeErrors(_ arguments: [String]) throws {
        let full = try Self.run(arguments, stdout: "/dev/full", stderr: nil)
        #expect(full.status == 1)
        #expect(full.stderr == "error: cannot write to standard output: No space left on device\n", "\(full.stderr)")
        // An error whose message cannot be written: still its exit status, no crash.
        let failing = try Self.run(arguments + ["--no-such-flag"], stdout: "/dev/full", stderr: "/dev/full")
        #expect(failing.status == (arguments == ["--version"] ? 1 : 2))
        let both = try Self.run(arguments, stdout: "/dev/full", stderr: "/dev/full")
        #expect(both.status == 1)
    }

    @Test("an argument that is not valid UTF-8 is refused, not silently replaced")
    func invalidUTF8Argument() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" tokenize Fixtures/tokenizers/bytelevel/tokenizer.json --prompt \"$(printf 'caf\\351')\"",
                             CLI.executable.path]
        process.currentDirectoryURL = FixturePaths.packageRoot
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 2)
        #expect(stderr == "error: the value of '--prompt' is not valid UTF-8 (byte 3 of it)\n", "\(stderr)")
    }

    @Test("outputs respect what is there: a device is written in place, a symbolic link is kept and its file replaced")
    func outputsInPlace() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-outputs-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let ablate = ["ablate", "Fixtures/models/gpt2", "--tokens", "1,2,3", "--svg"]

        // /dev/null stays a character device.
        let null = try CLI.run(ablate + ["/dev/null"])
        #expect(null.status == 0, "\(null.stderr)")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR)

        // A link to a file: the link stays, the file gets the picture.
        let target = dir.appendingPathComponent("chart.svg"), link = dir.appendingPathComponent("link.svg")
        try "old".write(to: target, atomically: true, encoding: .utf8)
        #expect(symlink("chart.svg", link.path) == 0)
        let linked = try CLI.run(ablate + [link.path])
        #expect(linked.status == 0, "\(linked.stderr)")
        #expect(lstat(link.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "the link was replaced")
        #expect(try String(contentsOf: target, encoding: .utf8).hasPrefix("<?xml"))

        // A dangling link: the file it names is created, the link kept.
        let dangling = dir.appendingPathComponent("dangling.npz"), named = dir.appendingPathComponent("named.npz")
        #expect(symlink("named.npz", dangling.path) == 0)
        let trace = try CLI.run(["trace", "Fixtures/models/gpt2", "--tokens", "1,2", "--out", dangling.path])
        #expect(trace.status == 0, "\(trace.stderr)")
        #expect(lstat(dangling.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK)
        #expect(FileManager.default.fileExists(atPath: named.path))

        // A FIFO nobody reads: refused at once, not blocked on.
        let fifo = dir.appendingPathComponent("pipe.svg")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let blocked = try #require(try Self.runBounded(ablate + [fifo.path]), "blocked on a FIFO with no reader")
        #expect(blocked.status == 1)
        #expect(blocked.stderr.contains("it is a FIFO with no reader"), "\(blocked.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["chart.svg", "dangling.npz", "link.svg", "named.npz", "pipe.svg"])
    }

    @Test("a .tiktoken file with a 1 MB token, or with tokens of every length up to 3000, loads in linear time",
          arguments: [false, true])
    func longTiktokenToken(_ everyLength: Bool) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-long-token-\(getpid())-\(everyLength).tiktoken")
        defer { try? FileManager.default.removeItem(at: url) }
        if everyLength {
            // 4.5 MB: each token's every split is a merge (the merges themselves are quadratic in number, 4.5 M).
            let lines = (1...3000).map { Data(repeating: UInt8(ascii: "x"), count: $0).base64EncodedString() + " \($0 - 1)" }
            try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        } else {
            let long = Data(repeating: UInt8(ascii: "a"), count: 1 << 20).base64EncodedString()
            try (long + " 0\n" + Data("b".utf8).base64EncodedString() + " 1\n").write(to: url, atomically: true, encoding: .utf8)
        }
        let result = try #require(try Self.runBounded(["tokenize", url.path, "--prompt", everyLength ? "xxxxx" : "b"], seconds: 30),
                                  "loading the ranks file did not finish in 30 s")
        #expect(result.status == 0, "\(result.stderr)")
    }
}

