import Foundation
import Testing
@testable import StreamLab

/// The training state and the output directory against hostile input:
/// damaged checkpoints, other corpora, interrupted and diverged runs, two
/// runs on one directory (docs/training.md, `stream-probe train`).
@Suite("Training state")
struct TrainingStateTests {
    static let trainPath = FixturePaths.root.appendingPathComponent("corpora/shakespeare-train.txt").path
    static let validPath = FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt").path

    func corpora() throws -> (ByteCorpus, ByteCorpus) {
        let train = try ByteCorpus(path: Self.trainPath), valid = try ByteCorpus(path: Self.validPath)
        return (ByteCorpus(path: train.path, bytes: Array(train.bytes.prefix(50_000))),
                ByteCorpus(path: valid.path, bytes: Array(valid.bytes.prefix(2048))))
    }

    func settings(steps: Int = 4) -> TrainingSettings {
        var s = TrainingSettings()
        s.layers = 1; s.width = 16; s.heads = 2; s.context = 16; s.batch = 2; s.steps = steps
        s.warmup = 1; s.evalEvery = 0; s.checkpointEvery = 0; s.logEvery = 1; s.seed = 7; s.evalBytes = 512
        return s
    }

    /// A directory holding the run stopped after 2 steps (model and checkpoint).
    func stoppedRun(_ name: String) throws -> String {
        let (train, valid) = try corpora()
        let dir = temporaryPath(name)
        try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1).run(stopAfter: 2)
        return dir
    }

    func remove(_ dir: String) {
        for path in [dir, dir + Trainer.partialSuffix, dir + Trainer.lockSuffix] { try? FileManager.default.removeItem(atPath: path) }
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return String(describing: error) }
    }

    /// The command line of a tiny run.
    static func trainArguments(_ out: String, steps: Int = 3, _ extra: [String] = []) -> [String] {
        ["train", "--corpus", trainPath, "--valid", validPath, "--layers", "1", "--width", "16", "--heads", "2",
         "--context", "16", "--steps", String(steps), "--batch", "2", "--eval-bytes", "512", "--out", out] + extra
    }

    static func oneLineError(_ r: CLI.Result, containing parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "exit \(r.status), stderr: \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("training ") && !$0.hasPrefix("step ") }
        #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        for part in parts { #expect(r.stderr.contains(part), "stderr '\(r.stderr)' lacks '\(part)'", sourceLocation: sourceLocation) }
    }

    // MARK: 1. checksum

    @Test("a checkpoint damaged anywhere (header, tensors, checksum, truncated, extended) is refused, naming the file")
    func damagedCheckpoint() throws {
        let (train, valid) = try corpora()
        let dir = try stoppedRun("damaged")
        defer { remove(dir) }
        let path = dir + "/" + Trainer.checkpointName
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        // It resumes when intact.
        _ = try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1, resume: true)
        var damaged: [(String, Data)] = []
        for (name, offset) in [("header", 40), ("parameters", good.count / 3), ("moments", good.count - 100), ("checksum", good.count - 1)] {
            var d = good
            d[offset] ^= 0x01
            damaged.append((name, d))
        }
        damaged.append(("truncated", good.prefix(good.count - 8)))
        damaged.append(("extended", good + Data([0, 0, 0, 0])))
        for (name, bytes) in damaged {
            try bytes.write(to: URL(fileURLWithPath: path))
            let text = message { _ = try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1, resume: true) }
            #expect(text.contains("cannot resume from '\(path)'") && text.contains("checksum mismatch"), "\(name): '\(text)'")
            #expect(!text.contains("\n"))
        }
        // Through the command line: one line naming the file, and the directory stays as it was.
        let r = try CLI.run(Self.trainArguments(dir, steps: 4, ["--resume"]))
        Self.oneLineError(r, containing: ["cannot resume from '\(path)'", "checksum mismatch"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged.last!.1)
        #expect(!FileManager.default.fileExists(atPath: dir + Trainer.partialSuffix))
    }

    // MARK: 2. settings and corpora

    @Test("resuming with another training or validation corpus (one byte changed) or other settings is refused, naming what differs")
    func otherCorpus() throws {
        let (train, valid) = try corpora()
        let dir = try stoppedRun("corpus")
        defer { remove(dir) }
        let path = dir + "/" + Trainer.checkpointName
        var trainBytes = train.bytes
        trainBytes[1000] ^= 0x20
        let otherTrain = ByteCorpus(path: "other-train.txt", bytes: trainBytes)
        var text = message { _ = try Trainer(settings: settings(), corpus: otherTrain, validation: valid, directory: dir, threads: 1, resume: true) }
        #expect(text.contains("cannot resume from '\(path)': the training corpus differs") && text.contains("--corpus 'other-train.txt'"), "'\(text)'")
        let shorterValid = ByteCorpus(path: "other-valid.txt", bytes: Array(valid.bytes.dropLast()))
        text = message { _ = try Trainer(settings: settings(), corpus: train, validation: shorterValid, directory: dir, threads: 1, resume: true) }
        #expect(text.contains("the validation corpus differs") && text.contains("--valid 'other-valid.txt' has 2047 bytes"), "'\(text)'")
        var other = settings()
        other.batch = 3
        text = message { _ = try Trainer(settings: other, corpus: train, validation: valid, directory: dir, threads: 1, resume: true) }
        #expect(text.contains("it was trained with batch = 2, this run has 3"), "'\(text)'")
        // The same data under another path resumes.
        _ = try Trainer(settings: settings(), corpus: ByteCorpus(path: "copy.txt", bytes: train.bytes), validation: valid,
                        directory: dir, threads: 1, resume: true)
        // Command line: --valid given the training text.
        let full = temporaryPath("corpus-cli")
        defer { remove(full) }
        #expect(try CLI.run(Self.trainArguments(full, steps: 4, ["--stop-after", "2"])).status == 0)
        var args = Self.trainArguments(full, steps: 4, ["--resume"])
        args[4] = Self.trainPath
        Self.oneLineError(try CLI.run(args), containing: ["cannot resume from '\(full)/train-state.bin': the validation corpus differs", "use the same --valid"])
    }

    // MARK: 3. one consistent run per directory

    @Test("a diverged run reports the step, exits non-zero and leaves nothing: no new directory, an old one untouched")
    func divergedLeavesNothing() throws {
        let fresh = temporaryPath("diverged")
        defer { remove(fresh) }
        let diverge = ["--lr", "1e9", "--warmup", "0"]
        var r = try CLI.run(Self.trainArguments(fresh, steps: 50, diverge + ["--checkpoint-every", "1"]))
        Self.oneLineError(r, containing: ["training diverged at step "])
        for path in [fresh, fresh + Trainer.partialSuffix, fresh + Trainer.lockSuffix] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) left behind")
        }
        // The corrected rerun is not blocked.
        r = try CLI.run(Self.trainArguments(fresh))
        #expect(r.status == 0, "\(r.stderr)")
        let before = try snapshot(fresh)
        r = try CLI.run(Self.trainArguments(fresh, steps: 50, diverge + ["--overwrite"]))
        Self.oneLineError(r, containing: ["training diverged at step "])
        #expect(try snapshot(fresh) == before, "the old directory changed")
        #expect(!FileManager.default.fileExists(atPath: fresh + Trainer.partialSuffix))
    }

    /// Every file of a directory and its bytes.
    func snapshot(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    /// Starts `train`, waits until `ready` holds, sends SIGINT, returns the exit status.
    func interrupt(_ arguments: [String], pause: Double, until ready: () -> Bool) throws -> (Int32, Bool) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        process.currentDirectoryURL = FixturePaths.packageRoot
        process.environment = ProcessInfo.processInfo.environment.merging(["STREAMLAB_TEST_PAUSE_BEFORE_COMMIT": String(pause)]) { $1 }
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var saw = false
        for _ in 0..<800 {
            if ready() { saw = true; break }
            usleep(25_000)
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        return (process.terminationStatus, saw)
    }

    @Test("an --overwrite interrupted before its first checkpoint leaves the old directory untouched and nothing else")
    func interruptedOverwrite() throws {
        let dir = temporaryPath("overwrite")
        defer { remove(dir) }
        #expect(try CLI.run(Self.trainArguments(dir)).status == 0)
        let before = try snapshot(dir)
        let parent = (dir as NSString).deletingLastPathComponent, name = (dir as NSString).lastPathComponent
        // Interrupt while the new run's first checkpoint is complete but not yet renamed.
        let (status, saw) = try interrupt(Self.trainArguments(dir, steps: 4, ["--overwrite", "--seed", "99"]), pause: 20) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir + Trainer.partialSuffix)) ?? []
            return names.contains { $0.hasPrefix(".train-state.bin.tmp-") }
        }
        #expect(saw, "the new run's checkpoint never appeared beside the old directory")
        #expect(status == 128 + SIGINT)
        #expect(try snapshot(dir) == before, "the old directory changed")
        let left = try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(name) && $0 != name }
        #expect(left.isEmpty, "left beside it: \(left)")
    }

    @Test("an interrupted run with a checkpoint is kept beside DIR, blocks a fresh run, and --resume finishes it as if uninterrupted")
    func interruptedRunResumes() throws {
        let dir = temporaryPath("interrupted"), whole = temporaryPath("uninterrupted")
        defer { remove(dir); remove(whole) }
        let args = Self.trainArguments(dir, steps: 4, ["--checkpoint-every", "1"])
        let partialState = dir + Trainer.partialSuffix + "/" + Trainer.checkpointName
        // Each commit pauses: once the step-1 checkpoint is in place, the run is in its next pause.
        let (status, saw) = try interrupt(args, pause: 3) { FileManager.default.fileExists(atPath: partialState) }
        #expect(saw && status == 128 + SIGINT)
        #expect(!FileManager.default.fileExists(atPath: dir), "the unfinished run is in DIR")
        #expect(FileManager.default.fileExists(atPath: partialState))
        #expect(!FileManager.default.fileExists(atPath: dir + Trainer.lockSuffix))
        Self.oneLineError(try CLI.run(args), containing: ["output directory '\(dir)' has an unfinished run in '\(dir).partial'", "--resume"])
        let r = try CLI.run(args + ["--resume"])
        #expect(r.status == 0 && r.stderr.contains("resuming at step"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + Trainer.partialSuffix))
        #expect(try CLI.run(Self.trainArguments(whole, steps: 4)).status == 0)
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: whole + "/model.safetensors"))
        #expect(a == b, "the resumed model differs from the uninterrupted one")
    }

    @Test("a leftover DIR.partial without a checkpoint does not block a run; --overwrite discards one with a checkpoint")
    func leftoverPartial() throws {
        let (train, valid) = try corpora()
        let dir = temporaryPath("leftover")
        defer { remove(dir) }
        let partial = dir + Trainer.partialSuffix
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
        try Data("junk".utf8).write(to: URL(fileURLWithPath: partial + "/model.safetensors"))
        try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1).run(stopAfter: 2)
        #expect(!FileManager.default.fileExists(atPath: partial))
        #expect(try Transformer.load(from: URL(fileURLWithPath: dir), threads: 1).architecture.layerCount == 1)
        // An unfinished run (a checkpoint in DIR.partial) needs --resume or --overwrite.
        try FileManager.default.copyItem(atPath: dir, toPath: partial)
        try FileManager.default.removeItem(atPath: dir)
        #expect(throws: TrainingError.unfinishedRun(path: dir, partial: partial)) {
            try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1)
        }
        let t = try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1, overwrite: true)
        try t.run()
        #expect(t.resumedFrom == nil && !FileManager.default.fileExists(atPath: partial))
        #expect(t.log.count == 4)
    }

    // MARK: 4. lock

    @Test("a second run on a directory in use fails at once, naming the directory and the lock")
    func concurrentRunRefused() throws {
        let (train, valid) = try corpora()
        let dir = temporaryPath("locked")
        defer { remove(dir) }
        let first = try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1)
        #expect(throws: TrainingError.outputLocked(path: dir, lockPath: dir + ".lock")) {
            try Trainer(settings: settings(), corpus: train, validation: valid, directory: dir, threads: 1, overwrite: true)
        }
        // Another process.
        let start = Date()
        let r = try CLI.run(Self.trainArguments(dir, steps: 3, ["--overwrite"]))
        Self.oneLineError(r, containing: ["output directory '\(dir)' is in use: another train run holds its lock '\(dir).lock'"])
        #expect(Date().timeIntervalSince(start) < 30)
        try first.run()
        // Released at the end, and the lock file is gone.
        #expect(!FileManager.default.fileExists(atPath: dir + ".lock"))
        #expect(try CLI.run(Self.trainArguments(dir, steps: 3, ["--overwrite"])).status == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + ".lock"))
    }
}
