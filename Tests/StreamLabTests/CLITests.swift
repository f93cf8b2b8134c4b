import Foundation
import Testing
@testable import StreamLab

/// Every command's success path, run as a user runs it (the built
/// `stream-probe`), its JSON or CSV parsed and compared with values that
/// PyTorch / transformers / tokenizers computed (Fixtures/reference,
/// Fixtures/tokenizers).
@Suite("Commands end to end against the references")
struct CLITests {
    typealias Object = [String: Any]

    static func json(_ arguments: [String]) throws -> Object {
        let result = try CLI.run(arguments)
        try #require(result.status == 0, "stream-probe \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? Object
        return try #require(object, "stdout is not one JSON object: \(result.stdout.prefix(200))")
    }

    /// CSV rows as dictionaries keyed by the header (no quoted fields expected).
    static func csv(_ arguments: [String]) throws -> [[String: String]] {
        let result = try CLI.run(arguments)
        try #require(result.status == 0, "stream-probe \(arguments.joined(separator: " ")) failed: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first else { return [] }
        return lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    /// The length-13 sequence of a fixture and its probe references.
    static func probeReference(_ name: String) throws -> Object {
        let url = FixturePaths.reference.appendingPathComponent(name + ".probes.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
        return (object["sequences"] as! [Object]).first { ($0["tokens"] as! [Int]).count == 13 }!
    }

    static func ids(_ tokens: [Int]) -> String { tokens.map(String.init).joined(separator: ",") }

    @Test("ablate: JSON and CSV equal torch's ablation metrics", arguments: ["gpt2", "opt-post-proj", "neox-parallel"])
    func ablate(_ name: String) throws {
        let reference = try Self.probeReference(name)
        let tokens = reference["tokens"] as! [Int]
        let model = "Fixtures/models/" + name
        for (sublayer, mode) in [("block", "skip"), ("attn", "mean"), ("mlp", "zero")] {
            let expected = (reference["ablations"] as! [Object]).filter { $0["target"] as! String == sublayer && $0["mode"] as! String == mode }
            let got = try Self.json(["ablate", model, "--tokens", Self.ids(tokens), "--sublayer", sublayer, "--mode", mode, "--format", "json"])
            let entries = got["ablations"] as! [Object]
            #expect(entries.count == expected.count && entries.count >= 2, "\(name) \(sublayer) \(mode): \(entries.count) entries")
            #expect(scalarClose(((got["clean"] as! Object)["loss"] as! Double), reference["clean_loss"] as! Double, 1e-4))
            for (e, r) in zip(entries, expected) {
                #expect(e["layer"] as? Int == (r["layers"] as! [Int])[0])
                for key in ["kl_mean", "kl_last", "top1_agreement", "loss", "delta_loss"] {
                    #expect(scalarClose(e[key] as! Double, r[key] as! Double, 1e-4), "\(name) \(sublayer) \(mode) \(key): \(e[key]!) vs \(r[key]!)")
                }
            }
            let rows = try Self.csv(["ablate", model, "--tokens", Self.ids(tokens), "--sublayer", sublayer, "--mode", mode, "--format", "csv"])
            #expect(rows.count == expected.count)
            for (row, r) in zip(rows, expected) {
                let kl = try #require(row["kl_mean"].flatMap(Double.init), "CSV row without kl_mean: \(row)")
                #expect(scalarClose(kl, r["kl_mean"] as! Double, 1e-4))
            }
        }
        // Joint removal of blocks 0 and 1.
        let joint = try #require((reference["ablations"] as! [Object]).first { $0["target"] as! String == "joint" })
        let got = try Self.json(["ablate", model, "--tokens", Self.ids(tokens), "--layers", "0,1", "--joint", "--format", "json"])
        let entries = got["ablations"] as! [Object]
        #expect(entries.count == 1)
        #expect(scalarClose(entries[0]["kl_mean"] as! Double, joint["kl_mean"] as! Double, 1e-4))
    }

    @Test("lens: JSON equals torch's logit lens")
    func lens() throws {
        let reference = try Self.probeReference("llama-gqa")
        let tokens = reference["tokens"] as! [Int]
        let got = try Self.json(["lens", "Fixtures/models/llama-gqa", "--tokens", Self.ids(tokens), "--format", "json"])
        let layers = got["layers"] as! [Object], expected = reference["lens"] as! [Object]
        #expect(layers.count == expected.count && layers.count == 4)
        for (l, r) in zip(layers, expected) {
            #expect(l["layer"] as? Int == r["layer"] as? Int)
            let kl = l["kl_to_final"] as! [Double], klRef = r["kl_to_final"] as! [Double]
            #expect(kl.count == tokens.count)
            for (a, b) in zip(kl, klRef) { #expect(scalarClose(a, b, 1e-4), "layer \(l["layer"]!): kl \(a) vs \(b)") }
            #expect(l["rank"] as? [Int] == r["rank"] as? [Int])
        }
    }

    @Test("decompose: JSON equals torch's direct logit attribution")
    func decompose() throws {
        let reference = try Self.probeReference("mistral")
        let tokens = reference["tokens"] as! [Int]
        let expected = try #require((reference["decompositions"] as! [Object]).first { $0["heads"] as? Bool == false })
        let got = try Self.json(["decompose", "Fixtures/models/mistral", "--tokens", Self.ids(tokens),
                                 "--position", String(expected["position"] as! Int), "--target", String(expected["target"] as! Int),
                                 "--format", "json"])
        #expect(scalarClose(Double(got["logit"] as! Double), expected["logit"] as! Double, 1e-4))
        let components = got["components"] as! [Object], referenceComponents = expected["components"] as! [Object]
        #expect(components.count == referenceComponents.count && components.count > 4)
        for (c, r) in zip(components, referenceComponents) {
            #expect(c["name"] as? String == r["name"] as? String)
            #expect(scalarClose(c["attribution"] as! Double, r["attribution"] as! Double, 1e-4), "\(r["name"]!)")
        }
    }

    @Test("gradients: JSON equals the norms of torch autograd's dL/d resid_pre", arguments: ["neox-parallel", "opt-post-proj"])
    func gradients(_ name: String) throws {
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent(name + ".grads.npz").path)
        let tokens = try #require(reference["tokens"]?.ints)
        let got = try Self.json(["gradients", "Fixtures/models/" + name, "--tokens", Self.ids(tokens), "--format", "json"])
        let loss = try #require(reference["loss"]?.tensor.scalars.first)
        #expect(scalarClose(got["loss"] as! Double, Double(loss), 1e-4))
        let layers = got["layers"] as! [Object]
        var compared = 0
        for layer in layers {
            let l = layer["layer"] as! Int
            let grad = try #require(reference["grad.blocks.\(l).hook_resid_pre"]?.tensor)
            let norm = grad.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(scalarClose(layer["resid_pre_grad_norm"] as! Double, norm, 1e-4), "\(name) layer \(l)")
            compared += 1
        }
        #expect(compared == 2 || compared == 3)
    }

    @Test("trace: the .npz holds transformers' arrays")
    func trace() throws {
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent("qwen2.npz").path)
        let tokens = try #require(reference["seq2.tokens"]?.ints)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-cli-trace-\(getpid()).npz")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try CLI.run(["trace", "Fixtures/models/qwen2", "--tokens", Self.ids(tokens), "--out", out.path,
                                  "--hooks", "hook_resid_post,attn.hook_pattern,logits"])
        #expect(result.status == 0, "\(result.stderr)")
        let got = try NpzReader.read(path: out.path)
        #expect(got.keys.count == 1 + 2 * 2 + 1, "arrays: \(got.keys.sorted())")
        for key in ["logits", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.attn.hook_pattern"] {
            let a = try #require(got[key]?.tensor, "missing \(key)"), b = try #require(reference["seq2." + key]?.tensor)
            #expect(relativeError(a, b) <= 1e-4, "\(key): \(relativeError(a, b))")
        }
    }

    @Test("info: JSON and CSV describe the checkpoint transformers wrote")
    func info() throws {
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: FixturePaths.reference.appendingPathComponent("llama-gqa.json"))) as! Object
        let architecture = sidecar["architecture"] as! Object
        let tensors = sidecar["tensors"] as! [String: Object]
        let stored = tensors.filter { !$0.key.hasSuffix("inv_freq") }.values.reduce(0) { $0 + ($1["shape"] as! [Int]).reduce(1, *) }
        let got = try Self.json(["info", "Fixtures/models/llama-gqa", "--format", "json"])
        #expect(got["layers"] as? Int == architecture["num_hidden_layers"] as? Int)
        #expect(got["width"] as? Int == architecture["hidden_size"] as? Int)
        #expect(got["heads"] as? Int == architecture["num_attention_heads"] as? Int)
        #expect(got["vocab_size"] as? Int == architecture["vocab_size"] as? Int)
        #expect(got["parameters"] as? Int == stored)
        #expect(got["loaded"] as? Bool == true)
        let rows = try Self.csv(["info", "Fixtures/models/llama-gqa", "--format", "csv"])
        #expect(rows.first { $0["field"] == "layers" }?["value"] == String(architecture["num_hidden_layers"] as! Int))
    }

    @Test("info: norm placement, soft-caps, layer pattern and size as transformers configured them", arguments: ParityTests.expectedFixtures)
    func infoFeatures(_ name: String) throws {
        let sidecar = try JSONSerialization.jsonObject(with: Data(contentsOf: FixturePaths.reference.appendingPathComponent(name + ".json"))) as! Object
        let architecture = sidecar["architecture"] as! Object
        let got = try Self.json(["info", "Fixtures/models/" + name, "--format", "json"])
        #expect(got["norm_placement"] as? String == sidecar["norm_placement"] as? String, "\(name)")
        #expect(got["parallel_residual"] as? Bool == sidecar["parallel_residual"] as? Bool, "\(name)")
        #expect(got["attention_soft_cap"] as? Double == architecture["attn_logit_softcapping"] as? Double, "\(name)")
        #expect(got["final_soft_cap"] as? Double == architecture["final_logit_softcapping"] as? Double, "\(name)")
        let window = architecture["sliding_window"] as? Int
        let kinds = (architecture["layer_types"] as? [String])?.map { $0 == "sliding_attention" && window != nil ? "local" : "global" }
            ?? Array(repeating: window != nil && ["mistral", "phi3"].contains(architecture["model_type"] as? String) ? "local" : "global",
                     count: architecture["num_hidden_layers"] as! Int)
        #expect(got["layer_kinds"] as? [String] == kinds, "\(name)")
        // Every stored tensor counted once, minus a multimodal checkpoint's vision tower and rotary caches.
        let tensors = sidecar["tensors"] as! [String: Object]
        let stored = tensors.filter { !$0.key.hasSuffix("inv_freq") && !$0.key.contains("vision_tower.") && !$0.key.contains("multi_modal_projector.")
            && !$0.key.hasSuffix(".attn.bias") && !$0.key.hasSuffix(".attn.masked_bias") && !$0.key.hasSuffix("attention.bias")
            && !$0.key.hasSuffix("attention.masked_bias") }
        let tiedHead = (got["tied_embeddings"] as? Bool == true) && stored["lm_head.weight"] != nil
        let count = stored.filter { !(tiedHead && $0.key == "lm_head.weight") }.values.reduce(0) { $0 + ($1["shape"] as! [Int]).reduce(1, *) }
        #expect(got["parameters"] as? Int == count, "\(name)")
    }

    @Test("patch: JSON equals torch's activation patching")
    func patch() throws {
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: FixturePaths.reference.appendingPathComponent("openai-gpt.patch.json"))) as! Object
        let ids = { (key: String) in (reference[key] as! [Int]).map(String.init).joined(separator: ",") }
        for (hook, method, direction) in [("head", "attribution", "denoising"), ("resid_mid", "exact", "noising")] {
            let got = try Self.json(["patch", "Fixtures/models/openai-gpt", "--clean-tokens", ids("clean_tokens"),
                                     "--corrupted-tokens", ids("corrupted_tokens"), "--answer", String(reference["answer"] as! Int),
                                     "--wrong", String(reference["wrong"] as! Int), "--hook", hook, "--method", method,
                                     "--direction", direction, "--format", "json"])
            let expected = (reference["patches"] as! [Object]).first {
                $0["hook"] as! String == hook && $0["method"] as! String == method && $0["direction"] as! String == direction
            }!["results"] as! [Object]
            let results = got["results"] as! [Object]
            #expect(got["hook"] as? String == hook && got["method"] as? String == method && results.count == expected.count)
            for (g, e) in zip(results, expected) {
                #expect(g["layer"] as? Int == e["layer"] as? Int && g["head"] as? Int == e["head"] as? Int
                        && g["position"] as? Int == e["position"] as? Int)
                #expect(scalarClose(g["normalized"] as! Double, e["normalized"] as! Double, 1e-4))
            }
        }
    }

    @Test("attention and generate: JSON equals torch's head scores and transformers' generate")
    func attentionAndGenerate() throws {
        let heads = try JSONSerialization.jsonObject(with: Data(contentsOf: FixturePaths.reference.appendingPathComponent("qwen3.heads.json"))) as! Object
        let tokens = (heads["tokens"] as! [Int]).map(String.init).joined(separator: ",")
        let got = try Self.json(["attention", "Fixtures/models/qwen3", "--tokens", tokens, "--format", "json"])
        let scores = got["scores"] as! [Object], expected = heads["scores"] as! [Object]
        #expect(scores.count == expected.count && !scores.isEmpty)
        for (g, e) in zip(scores, expected) {
            for key in ["previous_token", "duplicate_token", "induction", "first_token"] {
                #expect(abs((g[key] as! Double) - (e[key] as! Double)) <= 1e-4, "head \(g["layer"]!).\(g["head"]!) \(key)")
            }
        }
        let pictures = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-patterns-\(UUID().uuidString).svg")
        defer { try? FileManager.default.removeItem(at: pictures) }
        _ = try Self.json(["attention", "Fixtures/models/qwen3", "--tokens", tokens, "--layers", "1", "--heads", "0,2",
                           "--patterns", pictures.path, "--format", "json"])
        let svg = try String(contentsOf: pictures, encoding: .utf8)
        #expect(svg.contains("layer 1, head 0") && svg.contains("layer 1, head 2"))
        #expect(!svg.contains("layer 1, head 1<") && !svg.contains("layer 0, head"))
        let generate = try JSONSerialization.jsonObject(with: Data(contentsOf: FixturePaths.reference.appendingPathComponent("generate.json"))) as! Object
        let entry = (generate["models"] as! [Object]).first { $0["name"] as! String == "gemma3-text" }!
        let prompt = (entry["prompt"] as! [Int]).map(String.init).joined(separator: ",")
        let out = try Self.json(["generate", "Fixtures/models/gemma3-text", "--tokens", prompt, "--max-tokens", "12", "--format", "json"])
        #expect(out["generated"] as? [Int] == entry["generated"] as? [Int])
    }

    @Test("paths, lesion, reorder and prune: JSON contracts, numbers equal torch's")
    func ensembleCommands() throws {
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: FixturePaths.reference.appendingPathComponent("openai-gpt.ensemble.json"))) as! Object
        let tokens = (reference["tokens"] as! [Int]).map(String.init).joined(separator: ",")
        let model = "Fixtures/models/openai-gpt"
        let paths = try Self.json(["paths", model, "--tokens", tokens, "--format", "json"])
        let expected = (reference["paths"] as! Object)["lengths"] as! [Object]
        let lengths = paths["lengths"] as! [Object]
        #expect(paths["units"] as? Int == 6 && lengths.count == expected.count && paths["reconstruction_error"] is Double)
        for (g, e) in zip(lengths, expected) { #expect(scalarClose(g["norm"] as! Double, e["norm"] as! Double, 1e-4)) }

        let lesion = try Self.json(["lesion", model, "--tokens", tokens, "--samples", "8", "--format", "json"])
        let results = lesion["results"] as! [Object]
        #expect(results.count == 4 && (results[1]["subsets"] as! [[Int]]) == [[0], [1], [2]])
        for key in ["delta_loss", "kl_mean", "kl_last", "top1_agreement", "loss"] { #expect((results[2][key] as? [Double])?.count == 3) }
        for key in ["delta_loss_mean", "delta_loss_std", "kl_mean_mean"] { #expect(results[2][key] is Double) }

        let reorder = try Self.json(["reorder", model, "--tokens", tokens, "--swaps", "--order", "2,1,0", "--format", "json"])
        let orders = reorder["orders"] as! [Object]
        #expect(orders.map { $0["order"] as! [Int] } == [[2, 1, 0], [1, 0, 2], [0, 2, 1]])
        let reversed = (reference["orders"] as! [Object]).first { $0["order"] as! [Int] == [2, 1, 0] }!
        #expect(scalarClose(orders[0]["delta_loss"] as! Double, reversed["delta_loss"] as! Double, 1e-4))

        let prune = try Self.json(["prune", model, "--tokens", tokens, "--blocks", "2", "--format", "json"])
        #expect(prune["blocks"] as? Int == 2 && (prune["spans"] as! [Object]).count == 2)
        for key in ["by_angular_distance", "by_block_influence", "best_measured"] {
            let span = prune[key] as! Object
            #expect(span["start"] is Int && span["distance"] is Double && span["bi"] is Double && span["delta_loss"] is Double)
        }
        #expect(prune["spearman_bi_vs_delta_loss"] != nil)
        let ablate = try Self.json(["ablate", model, "--tokens", tokens, "--format", "json"])
        let bi = (ablate["ablations"] as! [Object]).map { $0["block_influence"] as! Double }
        #expect(zip(bi, reference["block_influence"] as! [Double]).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    @Test("tuned-lens train writes a lens that lens --tuned reads; its JSON carries both lenses' fields and equals the torch reference")
    func tunedLens() throws {
        // Reading a committed lens (random translators from the torch script) through the CLI.
        let reference = try NpzReader.read(path: FixturePaths.reference.appendingPathComponent("gpt2.tuned-lens.npz").path)
        let tokens = reference["tokens"]!.ints!
        let lensPath = "Fixtures/reference/gpt2.tuned-lens.safetensors"
        let lens = try Self.json(["lens", "Fixtures/models/gpt2", "--tokens", tokens.map(String.init).joined(separator: ","),
                                  "--tuned", lensPath, "--format", "json"])
        let layers = lens["layers"] as! [Object]
        #expect(layers.count == 4)
        guard case let .double(expected)? = reference["kl_tuned_positions"]?.values else { Issue.record("no kl_tuned_positions"); return }
        for (index, layer) in layers.dropLast().enumerated() {
            for key in ["tuned_kl_to_final", "tuned_rank", "tuned_entropy", "tuned_top", "kl_to_final", "next_token_loss"] {
                #expect(layer[key] != nil, "layer \(index) lacks \(key)")
            }
            let kl = layer["tuned_kl_to_final"] as! [Double]
            for (i, value) in kl.enumerated() { #expect(scalarClose(value, expected[index * tokens.count + i], 1e-4)) }
        }
        let compare = try Self.json(["lens", "Fixtures/models/gpt2", "--tokens", "1,2,3,4", "--tuned", lensPath, "--compare", "--format", "json"])
        let rows = compare["layers"] as! [Object]
        #expect(rows.count == 4 && rows.allSatisfy { $0["logit_kl_to_final"] is Double && $0["tuned_kl_to_final"] is Double
                                                      && $0["logit_next_token_loss"] is Double && $0["tuned_next_token_loss"] is Double })

        // Training through the CLI, stopped and resumed.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tuned-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("lens.safetensors").path
        let text = dir.appendingPathComponent("text.txt")
        try Data(contentsOf: FixturePaths.root.appendingPathComponent("corpora/shakespeare-valid.txt")).prefix(20_000).write(to: text)
        let common = ["tuned-lens", "train", "Fixtures/models/shakespeare-post", "--text-file", text.path,
                      "--out", out, "--steps", "6", "--tokens-per-step", "512", "--context", "64", "--lr", "0.3"]
        let stopped = try CLI.run(common + ["--stop-after", "3"])
        #expect(stopped.status == 0 && stopped.stderr.contains("continue with --resume"))
        #expect(!FileManager.default.fileExists(atPath: out) && FileManager.default.fileExists(atPath: out + ".state"))
        let trained = try Self.json(common + ["--resume", "--format", "json"])
        #expect(trained["resumed_at"] as? Int == 3 && trained["steps"] as? Int == 6 && trained["optimizer"] as? String == "sgd")
        #expect(((trained["held_out"] as! Object)["layers"] as! [Object]).count == 7)
        #expect(FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".state"))
        let table = try CLI.run(["lens", "Fixtures/models/shakespeare-post", "--prompt", "To be, or not", "--tuned", out, "--compare"])
        #expect(table.status == 0 && table.stdout.contains("KL tuned lens"))
    }

    @Test("info describes a model too large to load instead of refusing it")
    func infoTooLarge() throws {
        let got = try Self.json(["info", "Fixtures/bad/model-larger-than-memory", "--format", "json"])
        #expect(got["loaded"] as? Bool == false)
        #expect(got["layers"] as? Int == 4096)
        #expect(got["width"] as? Int == 65536)
        let needed = try #require(got["mapped_bytes"] as? Int), available = try #require(got["available_bytes"] as? Int)
        #expect(needed > available)
        let table = try CLI.run(["info", "Fixtures/bad/model-larger-than-memory"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("too large to load here"))
    }

    @Test("tokenize: JSON ids equal Hugging Face tokenizers'")
    func tokenize() throws {
        let url = FixturePaths.tokenizers.appendingPathComponent("reference-bytelevel.json")
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! Object
        let lines = reference["lines"] as! [[Int]]
        let texts = TokenizerFixtures.conformanceLines
        #expect(lines.count == texts.count && lines.count > 100)
        for i in [1, 2, 17] {
            let got = try Self.json(["tokenize", "Fixtures/tokenizers/bytelevel/tokenizer.json", "--prompt", texts[i], "--special", "--format", "json"])
            #expect(got["ids"] as? [Int] == lines[i], "line \(i)")
        }
    }

    @Test("train: a few steps from scratch start at the uniform loss ln 256 and write a loadable model")
    func train() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-cli-train-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try CLI.run(["train", "--corpus", "Fixtures/corpora/shakespeare-valid.txt", "--valid", "Fixtures/corpora/shakespeare-valid.txt",
                                  "--layers", "1", "--width", "16", "--heads", "2", "--context", "16", "--steps", "3", "--batch", "2",
                                  "--log-every", "1", "--eval-bytes", "512", "--out", out.path, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? Object)
        #expect(report["steps"] as? Int == 3)
        #expect((report["files"] as? [String])?.contains("model.safetensors") == true)
        #expect((report["validation_loss"] as? Double).map { $0 > 0 && $0 < log(256) + 0.05 } == true)
        // The first logged loss of a model initialised with N(0, 0.02) weights is ln(256) = 5.545 within 0.05.
        let first = try #require(result.stderr.split(separator: "\n").first { $0.hasPrefix("step 1/") })
        let words = first.split(separator: " ").map(String.init)
        let index = try #require(words.firstIndex(of: "loss"))
        let loss = try #require(Double(words[index + 1]))
        #expect(abs(loss - log(256)) < 0.05, "first loss \(loss)")
        let model = try Transformer.load(from: out, threads: 1)
        #expect(model.architecture.layerCount == 1 && model.architecture.width == 16)
    }

    @Test("a write that fails after the output was opened leaves no file and no temporary behind")
    func failedWriteLeavesNothing() throws {
        // The file-size limit (1 block of 512 bytes, SIGXFSZ ignored) makes a write of
        // the .npz fail with EFBIG once the temporary file is open and partly written.
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("streamlab-write-fail-\(getpid())")
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: parent) }
        let out = parent.appendingPathComponent("run.npz")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -f 1; trap '' XFSZ; exec \"$0\" trace Fixtures/models/gpt2 --tokens 1,2,3 --out \"$1\"",
                             CLI.executable.path, out.path]
        process.currentDirectoryURL = FixturePaths.packageRoot
        let err = Pipe()
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(stderr == "error: cannot write '\(out.path)': File too large\n", "\(stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path).isEmpty)
    }
}
