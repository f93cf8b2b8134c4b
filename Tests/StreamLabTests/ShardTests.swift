import Foundation
import Testing
@testable import StreamLab

/// Sharded sweeps: shard i of n takes windows w with w mod n = i; `merge`
/// of all shards gives the unsharded report.
@Suite("Shards and merge")
struct ShardTests {
    static let text: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("shard-text-\(ProcessInfo.processInfo.processIdentifier).txt")
        let bytes = try! Data(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt")).prefix(5000)
        try! bytes.write(to: url)
        return url
    }()

    /// max |a - b| / |b| over every number of two JSON values of the same shape.
    func worstRelative(_ a: Any, _ b: Any, _ path: String = "") -> Double {
        switch (a, b) {
        case let (x as [String: Any], y as [String: Any]):
            #expect(Set(x.keys) == Set(y.keys), "keys differ at \(path)")
            return x.keys.map { worstRelative(x[$0]!, y[$0] ?? NSNull(), path + "." + $0) }.max() ?? 0
        case let (x as [Any], y as [Any]):
            #expect(x.count == y.count, "lengths differ at \(path)")
            return zip(x, y).map { worstRelative($0, $1, path) }.max() ?? 0
        case let (x as NSNumber, y as NSNumber):
            // Relative, with a floor for values that are zero up to rounding (a k = 0 lesion's Δ loss).
            let p = x.doubleValue, q = y.doubleValue
            return p == q ? 0 : abs(p - q) / max(abs(q), 1e-6)
        default:
            #expect("\(a)" == "\(b)", "values differ at \(path)")
            return 0
        }
    }

    @Test("i/n is parsed and checked: 3/3, -1/2, 0/0 and 1 are refused; the text's SHA-256 streams")
    func parsing() throws {
        // FIPS 180-4's two-block example, fed in uneven pieces.
        var hasher = SHA256()
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        for piece in [0..<1, 1..<30, 30..<55, 55..<56] { hasher.update(message[piece]) }
        #expect(hasher.finish() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(try Shard(parsing: "2/3") == Shard(index: 2, count: 3))
        for bad in ["3/3", "-1/2", "0/0", "1", "a/b", "1/2/3"] {
            #expect(throws: TokenizerError.badShard(bad)) { try Shard(parsing: bad) }
        }
    }

    @Test("the shards' windows partition the text, and merged sums give the unsharded sweep")
    func library() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("shakespeare-pre"), threads: 2)
        let tokenizer = try TokenizerLoader.find(inModelDirectory: FixturePaths.models.appendingPathComponent("shakespeare-pre"))!
        let plan = try model.ablationPlan(layers: [0, 3])
        func windows(_ shard: Shard?) throws -> TokenWindows {
            let w = try TokenWindows(url: Self.text, tokenizer: tokenizer, length: 256, stride: 200)
            w.shard = shard
            return w
        }
        let all = Array(AnySequence { try! windows(nil) })
        var seen: [[Int]] = []
        var shards: [ShardReport] = []
        for i in 0..<3 {
            let w = try windows(Shard(index: i, count: 3))
            let sweep = try model.ablationSweep(plan, on: AnySequence { w })
            let part = Array(AnySequence { try! windows(Shard(index: i, count: 3)) })
            #expect(part == all.enumerated().filter { $0.offset % 3 == i }.map(\.element))
            seen += part
            let run = SweepIdentity(command: "ablate", model: "m", architectureSHA256: "h", settings: [:], text: "t",
                                    textSHA256: w.textSHA256!, textBytes: w.totalBytes, textTokens: w.tokenCount, window: 256,
                                    stride: 200, shard: try Shard(index: i, count: 3))
            let json = AblationReport(model: "m", source: "s", sweep: sweep, run: run).json().serialized()
            shards.append(try ShardReport(file: "shard\(i).json", bytes: Array(json.utf8)))
        }
        #expect(seen.count == all.count)
        let whole = try model.ablationSweep(plan, on: all)
        let merged = try ShardReport.merge(shards.reversed())
        guard case let .ablation(sweep) = merged.sweep else { Issue.record("not an ablation sweep"); return }
        #expect(merged.missing.isEmpty && sweep.positions == whole.positions && sweep.sequences == whole.sequences)
        let a = try JSONSerialization.jsonObject(with: Data(AblationReport(model: "m", source: "s", sweep: sweep).json().serialized().utf8))
        let b = try JSONSerialization.jsonObject(with: Data(AblationReport(model: "m", source: "s", sweep: whole).json().serialized().utf8))
        #expect(worstRelative(a, b) < 1e-6)

        #expect(throws: MergeError.missing(shards: [1], count: 3)) { try ShardReport.merge([shards[0], shards[2]]) }
        #expect(try ShardReport.merge([shards[0], shards[2]], allowMissing: true).missing == [1])
        #expect(throws: MergeError.duplicate(file: "shard0.json", other: "shard0.json", shard: "0/3")) {
            try ShardReport.merge([shards[0], shards[0]])
        }
    }

    @Test("the cluster recipe's shard script, three array tasks at once, then merge: the unsharded report; a rerun skips done shards")
    func clusterRecipe() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        func task(_ environment: [String: String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["docs/cluster/run-shard.sh"]
            process.currentDirectoryURL = FixturePaths.packageRoot
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
                .merging(["STREAM_PROBE": CLI.executable.path, "MODEL": "Fixtures/models/shakespeare-post", "TEXT": Self.text.path,
                          "OUT": dir.path, "ARGS": "--layers 0,5"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        // As Slurm (SLURM_ARRAY_TASK_ID / _COUNT) and Kubernetes (JOB_COMPLETION_INDEX) would start them.
        let tasks = [try task(["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3"]),
                     try task(["JOB_COMPLETION_INDEX": "1", "SHARD_COUNT": "3"]),
                     try task(["SHARD_INDEX": "2", "SHARD_COUNT": "3"])]
        for t in tasks { t.waitUntilExit(); #expect(t.terminationStatus == 0) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files == ["shard-0-of-3.json", "shard-1-of-3.json", "shard-2-of-3.json"])
        let before = try Data(contentsOf: dir.appendingPathComponent("shard-1-of-3.json"))
        let again = try task(["SHARD_INDEX": "1", "SHARD_COUNT": "3"])
        again.waitUntilExit()
        let after = try Data(contentsOf: dir.appendingPathComponent("shard-1-of-3.json"))
        #expect(again.terminationStatus == 0 && after == before)
        let merged = try CLI.run(["merge", dir.path, "--format", "json"])
        try #require(merged.status == 0, "merge failed: \(merged.stderr)")
        let whole = try CLI.run(["ablate", "Fixtures/models/shakespeare-post", "--text-file", Self.text.path, "--layers", "0,5",
                                 "--format", "json"])
        #expect(worstRelative(try JSONSerialization.jsonObject(with: Data(merged.stdout.utf8)),
                              try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8))) < 1e-6)
    }

    @Test("lesion, reorder, prune, gradients and paths in three shards each merge into their unsharded reports", arguments: [
        ["lesion", "--samples", "3", "--seed", "5"], ["reorder", "--swaps", "--order", "2,1,0,3,4,5"], ["prune", "--blocks", "2", "--bootstrap", "200"],
        ["gradients"], ["paths", "Fixtures/models/shakespeare-post"]])
    func ensembleCommands(_ command: [String]) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ensemble-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = command + ["--text-file", Self.text.path, "--stride", "128", "--format", "json"]
        for i in 0..<3 {
            let shard = try CLI.run(common + ["--shard", "\(i)/3"])
            try #require(shard.status == 0, "\(shard.stderr)")
            try Data(shard.stdout.utf8).write(to: dir.appendingPathComponent("s\(i).json"))
        }
        let merged = try CLI.run(["merge", dir.path, "--format", "json"])
        try #require(merged.status == 0, "\(merged.stderr)")
        let whole = try CLI.run(common)
        #expect(worstRelative(try JSONSerialization.jsonObject(with: Data(merged.stdout.utf8)),
                              try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8))) < 1e-6)
    }

    @Test("--out DIR: one file per shard, a rerun of a finished shard skips it, another run's replaces it")
    func outDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["reorder", "--swaps", "--text-file", Self.text.path, "--out", dir.path]
        for i in 0..<2 { #expect(try CLI.run(common + ["--shard", "\(i)/2"]).stdout.hasPrefix("wrote ")) }
        let file = dir.appendingPathComponent("reorder-shard-1-of-2.json")
        let before = try Data(contentsOf: file)
        let again = try CLI.run(common + ["--shard", "1/2"])
        #expect(again.status == 0 && again.stdout.hasPrefix("shard 1/2 already done"))
        #expect(try Data(contentsOf: file) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["reorder-shard-0-of-2.json", "reorder-shard-1-of-2.json"])
        let merged = try CLI.run(["merge", dir.path])
        #expect(merged.status == 0)
        let other = try CLI.run(common + ["--shard", "1/2", "--order", "1,0,2,3,4,5"])
        #expect(other.stdout.hasPrefix("wrote "))
        #expect(try CLI.run(["merge", dir.path]).status == 1)
    }

    @Test("lens --tuned --compare in two shards merges into the unsharded comparison, standard errors included")
    func lens() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lens-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["lens", "Fixtures/models/shakespeare-post", "--text-file", Self.text.path, "--stride", "100",
                      "--tuned", "Fixtures/models/shakespeare-post.tuned-lens.safetensors", "--compare", "--format", "json"]
        for i in 0..<2 {
            let shard = try CLI.run(common + ["--shard", "\(i)/2"])
            try #require(shard.status == 0, "\(shard.stderr)")
            try Data(shard.stdout.utf8).write(to: dir.appendingPathComponent("s\(i).json"))
        }
        let merged = try CLI.run(["merge", dir.path, "--format", "json"])
        try #require(merged.status == 0, "\(merged.stderr)")
        let whole = try CLI.run(common)
        let a = try JSONSerialization.jsonObject(with: Data(merged.stdout.utf8)) as! [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8)) as! [String: Any]
        #expect(worstRelative(a, b) < 1e-6)
        #expect(((b["layers"] as! [[String: Any]])[0]["tuned_kl_to_final_se"] as? Double ?? 0) > 0)
    }

    @Test("three shard processes run at once and merged equal the unsharded run (CLI); another run's shard is refused")
    func processes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let common = ["ablate", "--text-file", Self.text.path, "--layers", "1,4", "--stride", "128", "--threads", "1", "--format", "json"]
        let results = try (0..<3).map { i -> (Process, Pipe, URL) in
            let process = Process(), out = Pipe()
            process.executableURL = CLI.executable
            process.arguments = common + ["--shard", "\(i)/3"]
            process.currentDirectoryURL = FixturePaths.packageRoot
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, out, dir.appendingPathComponent("shard\(i).json"))
        }
        for (process, out, file) in results {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            try data.write(to: file)
        }
        let merged = try CLI.run(["merge", dir.path, "--format", "json"])
        try #require(merged.status == 0, "merge failed: \(merged.stderr)")
        let whole = try CLI.run(common)
        let a = try JSONSerialization.jsonObject(with: Data(merged.stdout.utf8))
        let b = try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8))
        let worst = worstRelative(a, b)
        print("merge of 3 shard processes vs the unsharded run: worst relative difference \(worst)")
        #expect(worst < 1e-6)
        // A shard of another run (other layers) is refused, naming the setting.
        let other = try CLI.run(["ablate", "--text-file", Self.text.path, "--layers", "1", "--stride", "128", "--format", "json", "--shard", "1/3"])
        try Data(other.stdout.utf8).write(to: dir.appendingPathComponent("shard1.json"))
        let refused = try CLI.run(["merge", dir.path])
        #expect(refused.status == 1 && refused.stderr.contains("belongs to another run: its settings is"))
    }
}
