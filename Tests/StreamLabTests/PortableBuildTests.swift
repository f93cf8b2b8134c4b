import Foundation
import Testing
@testable import StreamLab

/// The start-up CPU check and the `STREAMLAB_PORTABLE=1` build. The fast build
/// uses AVX2, FMA and F16C and must refuse, in one line, a CPU that lacks one
/// (simulated with STREAMLAB_TEST_CPU_FEATURES); the portable build must run
/// there and still give transformers' numbers.
@Suite("CPU check and the portable build", .serialized)
struct PortableBuildTests {
    static func run(_ executable: URL, _ arguments: [String], cpu: String?) throws -> CLI.Result {
        try CLI.run(arguments, program: executable, environment: cpu.map { ["STREAMLAB_TEST_CPU_FEATURES": $0] } ?? [:])
    }

    #if arch(x86_64)
    @Test("the fast build refuses a CPU without AVX2, FMA or F16C in one line naming what is missing")
    func refusesOldCPU() throws {
        for (features, missing) in [("", "avx2, fma, f16c"), ("avx2,fma", "f16c"), ("avx2,f16c", "fma")] {
            let result = try Self.run(CLI.executable, ["info", "Fixtures/models/gpt2"], cpu: features)
            #expect(result.status == 1)
            #expect(result.stderr.split(separator: "\n").count == 1)
            #expect(result.stderr.contains("this CPU lacks \(missing);") && result.stderr.contains("STREAMLAB_PORTABLE=1"),
                    "\(result.stderr)")
        }
        let ok = try Self.run(CLI.executable, ["info", "Fixtures/models/gpt2"], cpu: "avx2,fma,f16c")
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test("STREAMLAB_PORTABLE=1 builds a binary that runs on such a CPU with the same numbers")
    func portableBuild() throws {
        let scratch = FixturePaths.packageRoot.appendingPathComponent(".build-portable")
        let build = Process()
        build.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        build.arguments = ["swift", "build", "--product", "stream-probe", "--scratch-path", scratch.path]
        build.currentDirectoryURL = FixturePaths.packageRoot
        build.environment = ProcessInfo.processInfo.environment.merging(["STREAMLAB_PORTABLE": "1"]) { $1 }
        let log = Pipe()
        build.standardOutput = log
        build.standardError = log
        try build.run()
        let output = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        build.waitUntilExit()
        try #require(build.terminationStatus == 0, "portable build failed:\n\(output.suffix(2000))")
        let executable = scratch.appendingPathComponent("debug/stream-probe")

        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent("llama-gqa.npz").path)
        let tokens = try #require(reference["seq2.tokens"]?.ints)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-portable-\(getpid()).npz")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try Self.run(executable, ["trace", "Fixtures/models/llama-gqa", "--tokens", tokens.map(String.init).joined(separator: ","),
                                               "--out", out.path, "--hooks", "logits"], cpu: "")
        #expect(result.status == 0, "the portable binary refused a CPU without AVX2: \(result.stderr)")
        let logits = try #require(try NpzReader.read(path: out.path)["logits"]?.tensor)
        let expected = try #require(reference["seq2.logits"]?.tensor)
        #expect(relativeError(logits, expected) <= 1e-4)

        // The portable binary holds no 256-bit vector instruction; the fast one does.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/objdump") {
            func ymmCount(_ binary: URL) throws -> Int {
                let result = try Self.run(URL(fileURLWithPath: "/usr/bin/objdump"), ["-d", binary.path], cpu: nil)
                return result.stdout.components(separatedBy: "%ymm").count - 1
            }
            #expect(try ymmCount(executable) == 0)
            #expect(try ymmCount(CLI.executable) > 100)
        }
    }
    #endif
}
