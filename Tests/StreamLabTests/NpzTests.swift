import Foundation
import Testing
@testable import StreamLab

@Suite("npz reading and writing")
struct NpzTests {
    @Test("an archive written by NpzWriter reads back exactly")
    func roundTrip() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("roundtrip-\(getpid()).npz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var rng = TestRandom(seed: 3)
        let a = Tensor(shape: [3, 5], scalars: rng.floats(15))
        let b = Tensor(shape: [2, 1, 4], scalars: rng.floats(8))
        let writer = try NpzWriter(path: path)
        try writer.add("blocks.0.hook_resid_pre", a)
        try writer.add("x", b)
        try writer.add("tokens", ints: [5, -1, 70000])
        try writer.finish()
        let read = try NpzReader.read(path: path)
        #expect(read["blocks.0.hook_resid_pre"]?.tensor == a)
        #expect(read["x"]?.tensor == b)
        #expect(read["tokens"]?.ints == [5, -1, 70000])
        #expect(read["x"]?.descr == "<f4")
    }

    @Test("numpy's own archives read (the reference fixtures)")
    func readsNumpyOutput() throws {
        let arrays = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent("gpt2.npz").path)
        let tokens = try #require(arrays["seq1.tokens"]?.ints)
        #expect(tokens.count == 6)
        #expect(arrays["seq1.logits"]?.tensor.shape == [6, 128])
    }

    @Test("the npy header is padded to 64 bytes and parses back")
    func header() throws {
        let header = NpzWriter.npyHeader(descr: "<f4", shape: [7])
        #expect(header.count % 64 == 0)
        #expect(header.last == 0x0A)
        let payload = header + [UInt8](repeating: 0, count: 28)
        let array = try payload.withUnsafeBytes { try NpzReader.parseNpy($0, file: "f", member: "m") }
        #expect(array.shape == [7])
    }

    @Test("truncated and corrupt archives are refused with a message")
    func corrupt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(getpid()).npz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try NpzWriter(path: path)
        try writer.add("a", Tensor(shape: [100], scalars: [Float](repeating: 1, count: 100)))
        try writer.finish()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // A shape that promises more data than the member holds.
        let headerStart = bytes.range(of: Data("(100,)".utf8))!
        bytes.replaceSubrange(headerStart, with: Data("(900,)".utf8))
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: NpzError.self) { try NpzReader.read(path: path) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect(throws: NpzError.self) { try NpzReader.read(path: path) }
    }
}
