import Foundation
import Testing
@testable import StreamLab

@Suite("Gradient parity with torch autograd")
struct GradientParityTests {
    /// Every fixture; `make_reference.py` records gradients for all of them.
    static let fixtures = ParityTests.expectedFixtures

    /// Names torch's `named_parameters` gives differently from the checkpoint on disk.
    static let torchNames = ["embed_out.weight": "lm_head.weight"]

    @Test("the references cover every fixture family")
    func referenceCount() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.reference.path)
            .filter { $0.hasSuffix(".grads.npz") }
        #expect(files.count == 25)
        #expect(Set(files.map { String($0.dropLast(".grads.npz".count)) }) == Set(Self.fixtures))
    }

    @Test("loss, every parameter gradient and every dL/d resid_pre match", arguments: fixtures)
    func matchesTorch(_ name: String) throws {
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent(name + ".grads.npz").path)
        let tokens = try #require(reference["tokens"]?.ints)
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let a = model.architecture
        let tolerance: Float = name.hasSuffix("f16") ? 2e-4 : 1e-4
        let pass = GradientPass(a, batch: 1, length: tokens.count, threads: 2)
        pass.setSequence(tokens)
        let gradients = FloatBuffer(ParameterLayout(a).count)
        let loss = pass.forward(model)
        let paths = pass.backward(model, into: gradients.pointer, paths: true)

        let refLoss = try #require(reference["loss"]?.tensor.scalars.first)
        #expect(abs(loss - refLoss) <= tolerance * max(1, abs(refLoss)), "\(name): loss \(loss) vs torch \(refLoss)")

        var worst: Float = 0, worstName = ""
        let got = try Families.checkpointTensors(a, parameters: gradients.array)
        let gotNames = Set(got.map { Self.torchNames[$0.name] ?? $0.name })
        let expectedNames = Set(reference.keys.filter { $0.hasPrefix("grad.") && !$0.contains("hook_") }.map { String($0.dropFirst(5)) })
        #expect(gotNames == expectedNames,
                "\(name): parameter names differ: extra \(gotNames.subtracting(expectedNames).sorted()), missing \(expectedNames.subtracting(gotNames).sorted())")
        var compared = 0
        for tensor in got {
            let ref = try #require(reference["grad." + (Self.torchNames[tensor.name] ?? tensor.name)]?.tensor)
            try #require(ref.shape == tensor.shape, "\(name) \(tensor.name): shape \(tensor.shape) vs torch \(ref.shape)")
            let error = relativeError(Tensor(shape: tensor.shape, scalars: tensor.values), ref)
            if error > worst { worst = error; worstName = tensor.name }
            #expect(error <= tolerance, "\(name): gradient of \(tensor.name): relative error \(error)")
            compared += 1
        }
        #expect(compared == expectedNames.count)
        #expect(paths.count == a.layerCount)
        for (layer, p) in paths.enumerated() {
            let ref = try #require(reference["grad.blocks.\(layer).hook_resid_pre"]?.tensor)
            let error = relativeError(Tensor(shape: ref.shape, scalars: p.residPre), ref)
            if error > worst { worst = error; worstName = "blocks.\(layer).hook_resid_pre" }
            #expect(error <= tolerance, "\(name): dL/d blocks.\(layer).hook_resid_pre: relative error \(error)")
            // The path split adds up to the whole.
            let split = zip(zip(p.skip, p.mlp), zip(p.attention, p.residPre)).map { abs($0.0 + $0.1 + $1.0 - $1.1) }.max() ?? 0
            #expect(split <= 1e-5 * max(1, p.residPre.map(abs).max() ?? 0), "\(name): paths of block \(layer) do not add up: \(split)")
        }
        // Stream gradients alone (no parameter gradients, as attribution methods need) are the same.
        let streamOnly = pass.backward(model, into: nil, paths: true)
        #expect(zip(streamOnly, paths).allSatisfy { $0.residPre == $1.residPre }, "\(name): stream-only backward differs")
        print("gradient parity \(name): loss \(loss) (torch \(refLoss)), \(compared) parameters, worst relative error \(worst) (\(worstName))")
    }
}
