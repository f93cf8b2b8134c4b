import Foundation
import Testing
@testable import StreamLab

@Suite("Gradient parity with torch autograd")
struct GradientParityTests {
    /// The families whose gradients `make_reference.py` records (GRADIENT_MODELS there).
    static let fixtures = ["gpt2", "openai-gpt", "llama-gqa"]

    @Test("loss, every parameter gradient and every dL/d resid_pre match", arguments: fixtures)
    func matchesTorch(_ name: String) throws {
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent(name + ".grads.npz").path)
        let tokens = try #require(reference["tokens"]?.ints)
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent(name), threads: 2)
        let trainable = try TrainableModel(model)
        let pass = TrainingPass(model: trainable, batch: 1, length: tokens.count, threads: 2)
        pass.setSequence(tokens)
        trainable.zeroGradients()
        let loss = pass.forward()
        let paths = pass.backward(recordPaths: true)

        let refLoss = try #require(reference["loss"]?.tensor.scalars.first)
        #expect(abs(loss - refLoss) <= 1e-4 * max(1, abs(refLoss)), "\(name): loss \(loss) vs torch \(refLoss)")

        var worst: Float = 0, worstName = ""
        let got = HuggingFaceNames.tensors(of: trainable.flatGradients, model: trainable)
        let expectedNames = Set(reference.keys.filter { $0.hasPrefix("grad.") && !$0.contains("hook_") }.map { String($0.dropFirst(5)) })
        #expect(Set(got.map(\.name)) == expectedNames,
                "\(name): parameter names differ: extra \(Set(got.map(\.name)).subtracting(expectedNames).sorted()), missing \(expectedNames.subtracting(got.map(\.name)).sorted())")
        for tensor in got {
            guard let ref = reference["grad." + tensor.name]?.tensor else { continue }
            try #require(ref.shape == tensor.shape, "\(name) \(tensor.name): shape \(tensor.shape) vs torch \(ref.shape)")
            let error = relativeError(Tensor(shape: tensor.shape, scalars: tensor.values), ref)
            if error > worst { worst = error; worstName = tensor.name }
            #expect(error <= 1e-4, "\(name): gradient of \(tensor.name): relative error \(error)")
        }
        for (layer, p) in paths.enumerated() {
            let ref = try #require(reference["grad.blocks.\(layer).hook_resid_pre"]?.tensor)
            let error = relativeError(Tensor(shape: ref.shape, scalars: p.residPre), ref)
            if error > worst { worst = error; worstName = "blocks.\(layer).hook_resid_pre" }
            #expect(error <= 1e-4, "\(name): dL/d blocks.\(layer).hook_resid_pre: relative error \(error)")
        }
        print("gradient parity \(name): loss \(loss) (torch \(refLoss)), worst relative error \(worst) (\(worstName))")
    }

    @Test("refuses families the backward pass does not cover")
    func refusesParallel() throws {
        let model = try Transformer.load(from: FixturePaths.models.appendingPathComponent("neox-parallel"), threads: 1)
        #expect(throws: TrainingError.self) { try TrainableModel(model) }
    }
}
