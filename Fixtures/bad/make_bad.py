#!/usr/bin/env python3
"""Builds the bad-inputs catalogue: one small case per failure kind.

Each case is a folder `Fixtures/bad/<case>/` holding the broken files (if any)
and `case.json`: {"args": [...], "expect": "text the one-line error must contain",
"status": exit status}. Paths in "args" are relative to the repository root, where
the tests run `stream-probe`. The catalogue test (Tests/StreamLabTests/BadInputTests.swift)
runs every case. Standard library only (no numpy, no torch):

    python3 Fixtures/bad/make_bad.py        # from the repository root

The base model is a valid 1-layer GPT-2 of width 4 (vocabulary 8, 4 positions),
written by hand so every byte is known; each case breaks exactly one thing.
"""
import hashlib
import json
import os
import random
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REL = "Fixtures/bad"

D, V, P, F = 4, 8, 4, 16


def tensor_maker(seed):
    """t(*shape) -> (shape, uniform values in [-0.5, 0.5)), from one seeded stream."""
    rng = random.Random(seed)
    def t(*shape):
        n = 1
        for s in shape:
            n *= s
        return (list(shape), [rng.uniform(-0.5, 0.5) for _ in range(n)])
    return t


def tiny_tensors():
    t = tensor_maker(0)
    p = "transformer."
    return {
        p + "wte.weight": t(V, D), p + "wpe.weight": t(P, D),
        p + "h.0.ln_1.weight": t(D), p + "h.0.ln_1.bias": t(D),
        p + "h.0.attn.c_attn.weight": t(D, 3 * D), p + "h.0.attn.c_attn.bias": t(3 * D),
        p + "h.0.attn.c_proj.weight": t(D, D), p + "h.0.attn.c_proj.bias": t(D),
        p + "h.0.ln_2.weight": t(D), p + "h.0.ln_2.bias": t(D),
        p + "h.0.mlp.c_fc.weight": t(D, F), p + "h.0.mlp.c_fc.bias": t(F),
        p + "h.0.mlp.c_proj.weight": t(F, D), p + "h.0.mlp.c_proj.bias": t(D),
        p + "ln_f.weight": t(D), p + "ln_f.bias": t(D),
    }


def header_of(blob):
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n].decode())


def safetensors_bytes(tensors, dtype_override=None, header_override=None, metadata=None):
    header, data = ({"__metadata__": metadata} if metadata else {}), b""
    for name in sorted(tensors):
        shape, values = tensors[name]
        dtype = (dtype_override or {}).get(name, "F32")
        if dtype == "BF16":      # the high half of each float32
            blob = b"".join(struct.pack("<f", v)[2:] for v in values)
        elif dtype == "F16":
            blob = struct.pack("<%de" % len(values), *values)
        else:
            blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = header_override if header_override is not None else json.dumps(header, separators=(",", ":"))
    raw = text.encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


CONFIG = {"model_type": "gpt2", "vocab_size": V, "n_embd": D, "n_layer": 1, "n_head": 1,
          "n_positions": P, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}


def case(name, args, expect, status=1, config=CONFIG, weights=None, files=None, links=None):
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    if config is not None:
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config, indent=1))
    if weights is not None:
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(weights)
    for fname, content in (files or {}).items():
        os.makedirs(os.path.dirname(os.path.join(folder, fname)), exist_ok=True)
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
    for fname, target in (links or {}).items():         # symbolic links (git keeps them)
        os.symlink(target, os.path.join(folder, fname))
    args = [a.replace("$CASE", f"{REL}/{name}") for a in args]
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump({"args": args, "expect": expect, "status": status}, f, indent=1)
        f.write("\n")


def main():
    for entry in os.listdir(HERE):
        if os.path.isdir(os.path.join(HERE, entry)):
            shutil.rmtree(os.path.join(HERE, entry))
    good = safetensors_bytes(tiny_tensors())
    info = ["info", "$CASE"]
    trace = lambda tokens, out="/tmp/streamlab-bad-case.npz": ["trace", "$CASE", "--tokens", tokens, "--out", out]

    # The valid base model, for the input-validation cases below.
    case("valid-tiny-gpt2", info, "gpt2", status=0, weights=good)

    # Model directory and config.
    case("missing-model-directory", ["info", f"{REL}/no-such-model"], "Fixtures/bad/no-such-model' does not exist", config=None)
    case("model-path-is-a-file", ["info", "$CASE/config.json"], "is not a model directory")
    case("missing-config", info, "missing config", config=None, weights=good)
    case("config-not-json", info, "config.json': not valid JSON", config="{model_type: gpt2", weights=good)
    case("config-empty", info, "config.json': not valid JSON", config="", weights=good)  # the config fuzzer's leak input
    case("config-not-an-object", info, "the top level is not a JSON object", config="[1, 2]", weights=good)
    case("unknown-model-type", info, "model_type 'bert' is not supported (supported: gpt2", config={"model_type": "bert"})
    case("missing-model-type", info, "lacks the key 'model_type'", config={"vocab_size": 8})
    case("config-missing-key", info, "lacks the key 'n_embd'", config={k: v for k, v in CONFIG.items() if k != "n_embd"}, weights=good)
    case("config-wrong-type", info, "'n_head' is \"four\", expected an integer", config=dict(CONFIG, n_head="four"), weights=good)
    case("config-negative-size", info, "'n_layer' is -2, expected a positive integer", config=dict(CONFIG, n_layer=-2), weights=good)
    case("heads-do-not-divide-width", info, "width 4 is not a multiple of the 3 attention heads", config=dict(CONFIG, n_head=3), weights=good)
    case("unknown-activation", info, "'activation_function' is \"gelu_quick\"", config=dict(CONFIG, activation_function="gelu_quick"), weights=good)
    llama = {"model_type": "llama", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1,
             "num_attention_heads": 1, "max_position_embeddings": 4}
    case("unsupported-rope-scaling", info, "'rope_scaling.rope_type' is \"mrope\", expected a supported rope type (default, linear",
         config=dict(llama, rope_scaling={"rope_type": "mrope", "factor": 2.0}))
    case("rope-scaling-without-factor", info, "lacks the key 'rope_scaling.factor (needed by rope type \"llama3\")'",
         config=dict(llama, rope_scaling={"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 8192}))
    case("longrope-factors-wrong-length", info, "'rope_scaling.short_factor' is an array, expected a list of 2 numbers",
         config={"model_type": "phi3", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1,
                 "num_attention_heads": 1, "max_position_embeddings": 16, "original_max_position_embeddings": 4,
                 "rope_scaling": {"type": "longrope", "short_factor": [1.0, 1.0, 1.0], "long_factor": [2.0, 2.0]}})
    gemma2 = {"model_type": "gemma2", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2,
              "num_attention_heads": 1, "num_key_value_heads": 1, "head_dim": 4, "max_position_embeddings": 8,
              "sliding_window": 2, "query_pre_attn_scalar": 4}
    case("soft-cap-zero", info, "'final_logit_softcapping' is 0, expected a positive soft-cap (or null for none)",
         config=dict(gemma2, final_logit_softcapping=0))
    case("soft-cap-negative", info, "'attn_logit_softcapping' is -50, expected a positive soft-cap (or null for none)",
         config=dict(gemma2, attn_logit_softcapping=-50.0))
    case("layer-pattern-wrong-length", info, "'layer_types' is 3 entries, expected one entry per layer (num_hidden_layers is 2)",
         config=dict(gemma2, layer_types=["sliding_attention", "full_attention", "sliding_attention"]))
    case("layer-pattern-unknown-kind", info, "'layer_types' is \"chunked_attention\", expected \"full_attention\" or \"sliding_attention\"",
         config=dict(gemma2, layer_types=["sliding_attention", "chunked_attention"]))
    gemma3_text = dict(gemma2, model_type="gemma3_text")
    case("multimodal-without-text-config", info, "lacks the key 'text_config (the text tower of a multimodal gemma3 checkpoint)'",
         config={"model_type": "gemma3", "vision_config": {"hidden_size": 4}})
    vision_only = safetensors_bytes({"vision_tower.vision_model.post_layernorm.weight": ([4], [1.0, 1.0, 1.0, 1.0])})
    case("multimodal-without-text-tower", ["trace", "$CASE", "--tokens", "1,2", "--out", "/tmp/streamlab-bad-case.npz"],
         "tensor 'language_model.model.embed_tokens.weight (the text tower of a multimodal gemma3 checkpoint)' is missing",
         config={"model_type": "gemma3", "text_config": gemma3_text}, weights=vision_only)

    # A run whose memory plan cannot fit: 20,000 tokens through 256 heads need 410 GB of attention
    # probabilities alone; refused before anything is allocated, with the figures and what would fit.
    t = tensor_maker(1)
    def llama_tensors(d, f, v, q, kv):
        p = "model.layers.0."
        return {"model.embed_tokens.weight": t(v, d), p + "input_layernorm.weight": t(d),
                p + "self_attn.q_proj.weight": t(q, d), p + "self_attn.k_proj.weight": t(kv, d),
                p + "self_attn.v_proj.weight": t(kv, d), p + "self_attn.o_proj.weight": t(d, q),
                p + "post_attention_layernorm.weight": t(d), p + "mlp.gate_proj.weight": t(f, d),
                p + "mlp.up_proj.weight": t(f, d), p + "mlp.down_proj.weight": t(d, f), "model.norm.weight": t(d),
                "lm_head.weight": t(v, d)}
    long_config = {"model_type": "llama", "vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                   "num_attention_heads": 256, "num_key_value_heads": 1, "head_dim": 2, "max_position_embeddings": 65536}
    case("plan-does-not-fit", ["ablate", "$CASE", "--tokens", ",".join(["1"] * 20000)],
         "20000 tokens of this model needs", config=long_config, weights=safetensors_bytes(llama_tensors(8, 8, 8, 512, 2)))
    # A shard shorter than its header says: refused when the checkpoint is opened (never a SIGBUS later).
    shard_a = {k: v for k, v in tiny_tensors().items() if ".h.0." not in k}
    shard_b = {k: v for k, v in tiny_tensors().items() if ".h.0." in k}
    index = {"metadata": {}, "weight_map": dict([(k, "model-00001-of-00002.safetensors") for k in shard_a]
                                                + [(k, "model-00002-of-00002.safetensors") for k in shard_b])}
    case("truncated-shard", info, "model-00002-of-00002.safetensors' has only", config=CONFIG,
         files={"model.safetensors.index.json": json.dumps(index), "model-00001-of-00002.safetensors": safetensors_bytes(shard_a),
                "model-00002-of-00002.safetensors": safetensors_bytes(shard_b)[:-100]})

    # Activation patching: inputs of different lengths, a hook the model does not have, nothing to normalise.
    patch = ["patch", "Fixtures/models/neox-parallel", "--answer", "1", "--wrong", "2"]
    case("patch-unequal-lengths", patch + ["--clean-tokens", "1,2,3", "--corrupted-tokens", "1,2"],
         "patching needs clean and corrupted inputs of equal length (3 vs 2 tokens)", config=None)
    case("patch-resid-mid-parallel", patch + ["--clean-tokens", "1,2,3", "--corrupted-tokens", "1,5,3", "--hook", "resid_mid"],
         "resid_mid does not exist in parallel blocks", config=None)
    case("patch-nothing-to-normalise", patch + ["--clean-tokens", "1,2,3", "--corrupted-tokens", "1,2,3"],
         "nothing to normalise", config=None)
    case("patch-answer-is-wrong", ["patch", "Fixtures/models/neox-parallel", "--clean-tokens", "1,2", "--corrupted-tokens", "1,3",
                                   "--answer", "4", "--wrong", "4"], "the answer and the wrong token are the same (4)", config=None)
    case("patch-missing-answer", ["patch", "Fixtures/models/neox-parallel", "--clean-tokens", "1,2", "--corrupted-tokens", "1,3",
                                  "--wrong", "2"], "give --answer ID or --answer-text TEXT", config=None, status=2)

    # Generation: steering options without their partners, more tokens than the context holds.
    gen = ["generate", "Fixtures/models/gpt2", "--tokens", "1,2,3"]
    case("generate-add-without-steer", gen + ["--add", "love"], "--add and --subtract need --steer LAYER", config=None, status=2)
    case("generate-steer-without-prompts", gen + ["--steer", "1"], "--steer needs --add TEXT and --subtract TEXT", config=None, status=2)
    case("generate-too-many-tokens", gen + ["--max-tokens", "100"], "option '--max-tokens' must be within 0...29, got 100",
         config=None, status=2)
    case("generate-steer-layer-beyond-model", ["generate", "Fixtures/models/gpt2", "--tokens", "1,2", "--steer", "3", "--add", "a",
         "--subtract", "b"], "option '--steer' must be within 0...2, got 3", config=None, status=2)
    case("generate-empty-steering-prompt", ["generate", "--steer", "1", "--add", "", "--subtract", "hate"],
         "option '--add': the text encodes to no tokens", config=None, status=2)

    # The ensemble-view commands: a block the model does not have, more blocks than it has, no samples.
    few = ["Fixtures/models/gpt2", "--tokens", "1,2,3"]
    case("reorder-block-out-of-range", ["reorder"] + few + ["--order", "0,5,1"], "option '--order': block 5 is outside 0..<3",
         config=None, status=2)
    case("reorder-without-order", ["reorder"] + few, "reorder needs --order LIST or --swaps", config=None, status=2)
    case("lesion-max-k-beyond-blocks", ["lesion"] + few + ["--max-k", "4"], "option '--max-k' must be within 0...3, got 4",
         config=None, status=2)
    case("lesion-zero-samples", ["lesion"] + few + ["--samples", "0"], "option '--samples' must be within 1...100000, got 0",
         config=None, status=2)
    case("prune-blocks-not-below-layers", ["prune"] + few + ["--blocks", "3"], "option '--blocks' must be within 1...2, got 3",
         config=None, status=2)
    case("paths-zero-samples", ["paths"] + few + ["--samples", "0"], "option '--samples' must be within 1...100000, got 0",
         config=None, status=2)
    case("paths-one-token", ["paths", "Fixtures/models/gpt2", "--tokens", "1"], "paths needs at least 2 tokens (one prediction)",
         config=None)

    # Tuned lenses: another model's, a wrong shape, a NaN, not a lens at all; training on an empty text.
    lens_meta = {"format": "pt", "model": "tuned-lens-wrong-shape",
                 "architecture_sha256": hashlib.sha256(json.dumps(CONFIG, indent=1).encode()).hexdigest()}
    t = tensor_maker(7)
    case("tuned-lens-for-another-model", ["lens", "Fixtures/models/openai-gpt", "--tokens", "1,2", "--tuned",
         "Fixtures/reference/gpt2.tuned-lens.safetensors"], "was trained for model 'gpt2', not for 'openai-gpt'", config=None)
    case("tuned-lens-wrong-shape", ["lens", "$CASE", "--tokens", "1,2", "--tuned", "$CASE/lens.safetensors"],
         "tensor 'layers.-1.weight' has shape [4, 5], expected [4, 4]", weights=good,
         files={"lens.safetensors": safetensors_bytes({"layers.-1.weight": t(D, D + 1), "layers.-1.bias": t(D)}, metadata=lens_meta)})
    bias = t(D)
    bias[1][2] = float("nan")
    case("tuned-lens-nan", ["lens", "$CASE", "--tokens", "1,2", "--tuned", "$CASE/lens.safetensors"],
         "tensor 'layers.-1.bias' holds nan at element 2", weights=good,
         files={"lens.safetensors": safetensors_bytes({"layers.-1.weight": t(D, D), "layers.-1.bias": bias},
                                                      metadata=dict(lens_meta, model="tuned-lens-nan"))})
    case("tuned-lens-not-a-lens", ["lens", "Fixtures/models/gpt2", "--tokens", "1,2", "--tuned", "Fixtures/models/gpt2/model.safetensors"],
         "its metadata has no 'model' and 'architecture_sha256'", config=None)
    case("tuned-lens-empty-text", ["tuned-lens", "train", "Fixtures/models/shakespeare-pre", "--text-file", "$CASE/empty.txt",
         "--out", "/tmp/streamlab-bad-case.tuned-lens.safetensors"], "is empty; the tuned lens needs text to train on",
         config=None, files={"empty.txt": ""}, status=2)
    case("tuned-lens-extra-translator", ["lens", "$CASE", "--tokens", "1,2", "--tuned", "$CASE/lens.safetensors"],
         "unexpected tensor 'layers.0.bias' (a lens for this model has layers.-1 to layers.-1)", weights=good,
         files={"lens.safetensors": safetensors_bytes({"layers.-1.weight": t(D, D), "layers.-1.bias": t(D), "layers.0.weight": t(D, D),
                                                       "layers.0.bias": t(D)}, metadata=dict(lens_meta, model="tuned-lens-extra-translator"))})
    case("tuned-lens-other-config", ["lens", "$CASE", "--tokens", "1,2", "--tuned", "$CASE/lens.safetensors"],
         "whose config.json had SHA-256 000000000000..., but this one's is", weights=good,
         files={"lens.safetensors": safetensors_bytes({"layers.-1.weight": t(D, D), "layers.-1.bias": t(D)},
                                                      metadata=dict(lens_meta, model="tuned-lens-other-config", architecture_sha256="0" * 64))})
    train_lens = ["tuned-lens", "train", "Fixtures/models/shakespeare-pre", "--text-file", "$CASE/text.txt", "--out", "$CASE/lens.safetensors"]
    case("tuned-lens-text-too-short", train_lens, "has 5 tokens; the tuned lens needs at least 20", config=None, files={"text.txt": "To be"})
    case("tuned-lens-leftover-state", train_lens, "holds an unfinished tuned-lens run for 'Fixtures/bad/tuned-lens-leftover-state/lens.safetensors'; pass --resume",
         config=None, files={"text.txt": "To be, or not to be, that is the question.\n" * 4, "lens.safetensors.state": b""})
    case("tuned-lens-warmup-beyond-steps", train_lens + ["--steps", "10", "--warmup", "20"], "option '--warmup' must be within 0...10, got 20",
         config=None, files={"text.txt": "To be, or not to be"}, status=2)
    case("tuned-lens-without-verb", ["tuned-lens", "Fixtures/models/gpt2"], "'tuned-lens' needs its verb", config=None, status=2)
    case("lens-compare-without-tuned", ["lens", "Fixtures/models/gpt2", "--tokens", "1,2", "--compare"],
         "option '--compare' needs --tuned LENS.safetensors", config=None, status=2)

    # Sharded sweeps: a shard that is not i/n, --shard without a text file, and merges of shards
    # that do not belong together, are cut short, come from another report version or are no shards.
    text = {"text.txt": "To be, or not to be, that is the question.\n" * 20}
    shard_args = ["ablate", "--text-file", "$CASE/text.txt", "--shard"]
    case("shard-index-equals-count", shard_args + ["3/3"], "option '--shard': '3/3' is not a shard: give i/n with 0 <= i < n",
         config=None, files=text, status=2)
    case("shard-negative-index", shard_args + ["-1/2"], "option '--shard': '-1/2' is not a shard", config=None, files=text, status=2)
    case("shard-zero-count", shard_args + ["0/0"], "option '--shard': '0/0' is not a shard", config=None, files=text, status=2)
    case("shard-of-sampled-paths", ["paths", "--text-file", "$CASE/text.txt", "--samples", "2", "--shard", "0/2"],
         "option '--samples' cannot be sharded", config=None, files=text, status=2)
    case("shard-out-without-shard", ["ablate", "--text-file", "$CASE/text.txt", "--out", "$CASE/shards"],
         "option '--out' needs --shard i/n", config=None, files=text, status=2)
    case("bootstrap-zero", ["ablate", "--text-file", "$CASE/text.txt", "--bootstrap", "0"],
         "option '--bootstrap' must be within 1...100000, got 0", config=None, files=text, status=2)
    case("shard-without-text-file", ["ablate", "--tokens", "1,2", "--shard", "0/2"], "option '--shard' needs --text-file FILE",
         config=None, status=2)

    def shard_report(index, count, text_sha="ab" * 32, version=1):
        sums = {"kl_sum": 1.5, "kl_positions": 8, "kl_last_sum": 0.5, "sequences": 2, "agreements": 6, "agreement_positions": 8,
                "loss_sum": 9.0, "loss_positions": 6, "windows": [[2, 0.2, 0.01]] * 5}
        run = {"version": version, "command": "ablate", "model": "m", "architecture_sha256": "cd" * 32, "settings": {},
               "text": "text.txt", "text_sha256": text_sha, "text_bytes": 100, "text_tokens": 8, "window": 4, "stride": 4,
               "shard": index, "shards": count}
        partial = {"plan": [["block 0 skip"]], "clean": sums, "entries": [sums],
                   "geometry": {"cos_sums": [0.5], "positions": 8, "angle_sums": [[0, 0.1], [0.1, 0]], "sequences": 2,
                                "bi_windows": [[2, 0.5, 0.01]], "angle_windows": [[[0, 0, 0], [2, 0.1, 0.01]], [[0, 0, 0], [0, 0, 0]]]},
                   "positions": 8, "sequences": 2}
        return json.dumps({"model": "m", "run": run, "partial": partial})
    case("merge-shards-of-two-texts", ["merge", "$CASE/a.json", "$CASE/b.json"],
         "b.json' belongs to another run: its text_sha256 is " + "ef" * 32, config=None,
         files={"a.json": shard_report(0, 2), "b.json": shard_report(1, 2, text_sha="ef" * 32)})
    case("merge-duplicate-shard", ["merge", "$CASE/a.json", "$CASE/b.json"], "b.json' and 'Fixtures/bad/merge-duplicate-shard/a.json' are both shard 0/2", config=None,
         files={"a.json": shard_report(0, 2), "b.json": shard_report(0, 2)})
    case("merge-missing-shard", ["merge", "$CASE/a.json"], "shard 1 of 2 is missing; pass --partial to merge what is there",
         config=None, files={"a.json": shard_report(0, 2)})
    case("merge-truncated-shard", ["merge", "$CASE/a.json"], "a.json' is not a shard report of stream-probe: not JSON",
         config=None, files={"a.json": shard_report(0, 2)[:150]})
    case("merge-older-report-version", ["merge", "$CASE/a.json"], "written by another version of stream-probe (report version 0",
         config=None, files={"a.json": shard_report(0, 1, version=0)})
    case("merge-not-a-shard", ["merge", "$CASE/a.json"], "it has no 'run' (was it made with --shard i/n and --format json?)",
         config=None, files={"a.json": json.dumps({"model": "m", "ablations": []})})

    # Attention pictures of a layer or head the model does not have.
    case("attention-layer-out-of-range", ["attention", "Fixtures/models/gpt2", "--tokens", "1,2", "--layers", "3"],
         "option '--layers': layer 3 is outside 0..<3", config=None, status=2)
    case("attention-head-out-of-range", ["attention", "Fixtures/models/gpt2", "--tokens", "1,2", "--heads", "7"],
         "option '--heads': head 7 is outside 0..<4", config=None, status=2)

    # info describes such a model instead (tested in CLITests); every other command refuses it.
    case("model-larger-than-memory", ["ablate", "$CASE", "--tokens", "1,2"], "of memory to keep its weights mapped but the machine has",
         config=dict(CONFIG, n_embd=65536, n_head=64, n_layer=4096, vocab_size=256000), weights=good)

    # Weights.
    case("missing-weights-file", info, "missing weights: '", weights=None)
    tensors = tiny_tensors()
    del tensors["transformer.h.0.mlp.c_fc.bias"]
    case("missing-tensor", info, "tensor 'transformer.h.0.mlp.c_fc.bias' is missing", weights=safetensors_bytes(tensors))
    tensors = tiny_tensors()
    tensors["transformer.wte.weight"] = ([V, D + 1], [0.0] * (V * (D + 1)))
    case("tensor-shape-mismatch", info, "tensor 'transformer.wte.weight' has shape [8, 5] but the config implies [8, 4]",
         weights=safetensors_bytes(tensors))
    case("truncated-safetensors", info, "(truncated file?)", weights=good[:-40])
    # Non-finite numbers: in the config, in a stored tensor, or arising in the forward pass.
    abl = ["ablate", "$CASE", "--tokens", "1,2,3"]
    case("config-negative-epsilon", abl, "norm epsilon -1.0 must be positive and finite",
         config=dict(CONFIG, layer_norm_epsilon=-1), weights=good)
    case("config-infinite-epsilon", abl, "'layer_norm_epsilon' is a number beyond the range of a double, expected a finite number",
         config=json.dumps(CONFIG).replace('"layer_norm_epsilon": 1e-05', '"layer_norm_epsilon": 1e400'), weights=good)
    tensors = tiny_tensors()
    tensors["transformer.h.0.mlp.c_fc.bias"][1][3] = float("nan")
    case("nan-weight", abl, "tensor 'transformer.h.0.mlp.c_fc.bias' holds NaN or infinite values",
         weights=safetensors_bytes(tensors))
    tensors = tiny_tensors()
    tensors["transformer.wte.weight"][1][5] = float("inf")   # the embedding table is used from the memory map
    case("infinite-embedding", info, "tensor 'transformer.wte.weight' holds NaN or infinite values",
         weights=safetensors_bytes(tensors))
    tensors = tiny_tensors()
    tensors["transformer.h.0.attn.c_attn.weight"][1][7] = float("nan")   # read in place as BF16, checked at load
    case("nan-weight-bf16", abl, "tensor 'transformer.h.0.attn.c_attn.weight' holds NaN or infinite values",
         weights=safetensors_bytes(tensors, dtype_override={"transformer.h.0.attn.c_attn.weight": "BF16"}))
    tensors = tiny_tensors()
    tensors["transformer.wte.weight"][1][2] = float("-inf")
    case("infinite-embedding-f16", info, "tensor 'transformer.wte.weight' holds NaN or infinite values",
         weights=safetensors_bytes(tensors, dtype_override={"transformer.wte.weight": "F16"}))
    tensors = tiny_tensors()
    tensors["transformer.h.0.mlp.c_proj.weight"] = ([F, D], [3e38] * (F * D))   # finite, but its products overflow
    case("overflow-in-forward", abl, "NaN or infinity first appeared at blocks.0.hook_mlp_out",
         weights=safetensors_bytes(tensors))
    case("overflow-in-gradients", ["gradients", "$CASE", "--tokens", "1,2,3"], "NaN or infinity first appeared at blocks.0.hook_mlp_out",
         weights=safetensors_bytes(tensors))

    case("safetensors-header-not-json", info, "header is not valid JSON",
         weights=safetensors_bytes(tiny_tensors(), header_override='{"transformer.wte.weight": {"dtype": "F32", '))
    case("safetensors-header-length-too-large", info, "exceeds the file size", weights=struct.pack("<Q", 10**9) + b"{}")
    case("safetensors-too-short", info, "fewer than the 8-byte header length", weights=b"\x01\x02")
    case("unsupported-dtype", info, "has dtype I32; supported: F32, F16, BF16",
         weights=safetensors_bytes(tiny_tensors(), dtype_override={"transformer.wpe.weight": "I32"}))
    hdr = header_of(good)
    name = "transformer.ln_f.bias"
    hdr[name]["data_offsets"][1] += 4
    case("tensor-size-disagrees-with-shape", info, "byte range holds 20 bytes",
         weights=safetensors_bytes(tiny_tensors(), header_override=json.dumps(hdr)))
    hdr = header_of(good)
    a, b = "transformer.h.0.ln_1.bias", "transformer.h.0.ln_1.weight"
    hdr[b]["data_offsets"] = list(hdr[a]["data_offsets"])
    case("overlapping-tensors", info, "overlap", weights=safetensors_bytes(tiny_tensors(), header_override=json.dumps(hdr)))
    case("trailing-bytes-after-tensors", info, "bytes after the last tensor belong to no tensor", weights=good + b"\0" * 16)
    hdr = header_of(good)
    for entry in hdr.values():
        entry["data_offsets"] = [entry["data_offsets"][0] + 8, entry["data_offsets"][1] + 8]
    case("gap-before-tensors", info, "8 bytes before tensor", weights=safetensors_bytes(tiny_tensors(), header_override=json.dumps(hdr)) + b"\0" * 8)
    index = {"metadata": {}, "weight_map": {n: "model-00001-of-00002.safetensors" for n in tiny_tensors()}}
    case("shard-missing", info, "shard 'model-00001-of-00002.safetensors' listed for", weights=None,
         files={"model.safetensors.index.json": json.dumps(index)})
    case("shard-index-not-json", info, "malformed shard index", weights=None, files={"model.safetensors.index.json": "{"})

    # Inputs to a good model.
    base = ["trace", f"{REL}/valid-tiny-gpt2"]
    case("token-out-of-range", base + ["--tokens", "1,99", "--out", "/tmp/streamlab-bad.npz"],
         "token 99 at position 1 is out of range: the vocabulary has ids 0..<8", config=None)
    case("negative-token", base + ["--tokens", "-3", "--out", "/tmp/streamlab-bad.npz"],
         "token -3 at position 0 is out of range", config=None)
    case("empty-token-list", base + ["--tokens", "", "--out", "/tmp/streamlab-bad.npz"], "option '--tokens' is empty", status=2, config=None)
    case("token-not-a-number", base + ["--tokens", "1,x", "--out", "/tmp/streamlab-bad.npz"], "'x' is not a token id", status=2, config=None)
    case("sequence-too-long", base + ["--tokens", "1,2,3,4,5", "--out", "/tmp/streamlab-bad.npz"],
         "the sequence has 5 tokens but the model accepts at most 4 positions", config=None)
    case("output-not-writable", base + ["--tokens", "1,2", "--out", "/nonexistent-dir/run.npz"],
         "cannot write '/nonexistent-dir/run.npz'", config=None)
    case("unknown-option", base + ["--tokns", "1"], "unknown option '--tokns' for 'trace'; did you mean '--tokens'?", status=2, config=None)
    case("option-without-value", base + ["--tokens"], "option '--tokens' needs a value", status=2, config=None)
    case("unknown-command", ["trcae"], "unknown command 'trcae'; did you mean 'trace'?", status=2, config=None)
    case("unknown-hook", base + ["--tokens", "1", "--out", "/tmp/streamlab-bad.npz", "--hooks", "hook_resid"],
         "unknown hook 'hook_resid'", status=2, config=None)
    case("bad-threads", ["info", f"{REL}/valid-tiny-gpt2", "--threads", "0"], "'--threads' must be within 1...1024", status=2, config=None)

    # Probes (ablate, lens, decompose) on the good model.
    good_model = f"{REL}/valid-tiny-gpt2"
    ablate = ["ablate", good_model, "--tokens", "1,2,3"]
    case("layer-out-of-range", ablate + ["--layers", "5"], "layer 5 is out of range: the model has layers 0..<1", config=None)
    case("layer-not-a-number", ablate + ["--layers", "0,x"], "option '--layers': 'x' is not a layer index", status=2, config=None)
    case("unknown-sublayer", ablate + ["--sublayer", "neurons"], "option '--sublayer' must be one of block, attn, mlp, head; got 'neurons'", status=2, config=None)
    case("unknown-mode", ablate + ["--mode", "resample"], "option '--mode' must be one of skip, zero, mean; got 'resample'", status=2, config=None)
    case("unknown-format", ablate + ["--format", "xml"], "option '--format' must be one of table, json, csv; got 'xml'", status=2, config=None)
    case("svg-not-writable", ablate + ["--svg", "/nonexistent-dir/chart.svg"], "cannot write '/nonexistent-dir/chart.svg'", config=None)
    decompose = ["decompose", good_model, "--tokens", "1,2"]
    case("position-out-of-range", decompose + ["--position", "5"], "position 5 is out of range for 2 tokens", config=None)
    case("negative-position-out-of-range", decompose + ["--position", "-3"], "position -3 is out of range for 2 tokens", config=None)
    case("target-not-in-vocabulary", decompose + ["--target", "99"], "target token 99 is not in the vocabulary (ids 0..<8)", config=None)
    case("target-text-without-tokenizer", decompose + ["--target-text", " the"], "--target-text needs a tokenizer", status=2, config=None)
    case("prompt-without-tokenizer", ["lens", good_model, "--prompt", "hello"], "--prompt needs a tokenizer, but 'Fixtures/bad/valid-tiny-gpt2' has none", status=2, config=None)
    case("absurd-top", ["lens", good_model, "--tokens", "1,2", "--top", "1000000"], "option '--top' must be within 1...8", status=2, config=None)
    case("two-inputs", ["lens", good_model, "--tokens", "1,2", "--prompt", "hi"], "give only one of --tokens, --prompt", status=2, config=None)
    case("empty-text-file", ["ablate", good_model, "--tokenizer", "Fixtures/tokenizers/bytelevel/tokenizer.json",
                             "--text-file", "$CASE/empty.txt"], "has 0 token(s); at least 2 are needed", status=2, config=None,
         files={"empty.txt": b""})
    case("text-file-missing", ["ablate", good_model, "--tokenizer", "Fixtures/tokenizers/bytelevel/tokenizer.json",
                               "--text-file", "$CASE/nope.txt"], "nope.txt", config=None)
    case("text-file-invalid-utf8", ["tokenize", "Fixtures/tokenizers/bytelevel/tokenizer.json", "--text-file", "$CASE/latin1.txt"],
         "invalid UTF-8", config=None, files={"latin1.txt": "caf\xe9 au lait\n".encode("latin-1")})
    case("tokenizer-missing", ["tokenize", "$CASE/none.json", "--prompt", "hi"], "none.json", config=None)
    # Terminal injection: strings from files are escaped before they reach the terminal.
    tensors = tiny_tensors()
    tensors["evil\x1b[2J\x07\nforged: line"] = ([1], [0.0])
    case("escape-sequence-in-tensor-name", info, "evil\\x1B[2J\\x07\\x0Aforged: line", status=0,
         weights=safetensors_bytes(tensors))
    case("escape-sequence-in-model-type", info, "'gpt2\\x1B[31m\\x0Ared'",
         config=dict(CONFIG, model_type="gpt2\x1b[31m\nred"), weights=good)
    # Small lies (issue 13): each refused or reported as what it is.
    case("trace-empty-hooks", ["trace", good_model, "--tokens", "1,2", "--hooks", "", "--out", "/tmp/streamlab-bad-empty.npz"],
         "option '--hooks': unknown hook ''", status=2, config=None)
    case("svg-is-a-directory", ["ablate", good_model, "--tokens", "1,2", "--svg", REL], "option '--svg': 'Fixtures/bad' is a directory",
         status=2, config=None)
    case("threads-beyond-64-bit", ["info", good_model, "--threads", "9223372036854775808"], "(beyond a 64-bit integer)",
         status=2, config=None)
    tensors = tiny_tensors()
    tensors["lm_head.weight"] = ([V, D], [9.0] * (V * D))        # a tied model's stray head: transformers ignores it
    case("tied-model-with-lm-head", info, "unused tensors  lm_head.weight", status=0, weights=safetensors_bytes(tensors))
    # Outputs that are not regular files: a device is written in place (never replaced by a file),
    # a link to a directory is refused before any work.
    case("svg-to-a-device", ["ablate", good_model, "--tokens", "1,2", "--svg", "$CASE/chart.svg"], "delta_loss", status=0,
         config=None, links={"chart.svg": "/dev/null"})
    case("svg-link-to-a-directory", ["ablate", good_model, "--tokens", "1,2", "--svg", "$CASE/chart.svg"], "' is a directory",
         status=2, config=None, links={"chart.svg": "/tmp"})
    case("config-size-beyond-2-53", info, "'n_embd' is 4.611686018427388e+18, expected an integer below 2^53",
         config=dict(CONFIG, n_embd=2**62), weights=good)
    # Special files where regular files belong: refused before any read (a FIFO would block, a
    # device would be read forever). FIFOs cannot be committed; Tests/.../SpecialFileTests.swift makes them.
    case("config-is-a-device", info, "config.json': it is a device, not a regular file", config=None, weights=good,
         links={"config.json": "/dev/zero"})
    case("tokenizer-is-a-device", ["ablate", "$CASE", "--prompt", "hi"], "tokenizer.json: cannot read: it is a device, not a regular file",
         weights=good, links={"tokenizer.json": "/dev/zero"})
    case("text-file-is-a-device", ["ablate", good_model, "--tokenizer", "Fixtures/tokenizers/bytelevel/tokenizer.json",
                                   "--text-file", "/dev/zero"], "/dev/zero: cannot read: it is a device, not a regular file", config=None)
    case("weights-are-a-device", info, "model.safetensors': it is a device, not a regular file",
         links={"model.safetensors": "/dev/zero"})
    case("symlink-loop", info, "a symbolic link loop", config=None, weights=good, links={"config.json": "config.json"})
    # train (issue 7): data, shapes, output directory. Every case fails before anything is written.
    text = "To be, or not to be, that is the question:\n" * 6          # 270 bytes
    def train(case_dir_files, extra, corpus="$CASE/corpus.txt", valid="$CASE/corpus.txt", out="/tmp/streamlab-bad-train-out"):
        shape = {"--layers": "1", "--width": "8", "--heads": "2", "--context": "16", "--steps": "1", "--batch": "2"}
        for flag, value in zip(extra[::2], extra[1::2]):
            if flag in shape:
                shape[flag] = value
        rest = [a for i, a in enumerate(extra) if not (a in shape or (i > 0 and extra[i - 1] in shape))]
        return (["train", "--corpus", corpus, "--valid", valid, "--out", out]
                + [x for kv in shape.items() for x in kv] + rest)

    case("train-corpus-missing", train(None, [], corpus=f"{REL}/no-such-corpus.txt"),
         "cannot read corpus 'Fixtures/bad/no-such-corpus.txt': no such file", config=None, files={"corpus.txt": text})
    case("train-corpus-is-a-directory", train(None, [], corpus="$CASE"), "it is a directory", config=None,
         files={"corpus.txt": text})
    case("train-lr-below-float-range", train(None, ["--lr", "1e-300"]), "outside the range of a 32-bit float", status=2,
         config=None, files={"corpus.txt": text})
    case("train-corpus-is-a-device", train(None, [], corpus="/dev/zero"), "cannot read corpus '/dev/zero': it is a device",
         config=None, files={"corpus.txt": text})
    case("train-corpus-empty", train(None, [], corpus="$CASE/empty.txt"), "empty.txt' is empty", config=None,
         files={"corpus.txt": text, "empty.txt": ""})
    case("train-corpus-shorter-than-context", train(None, [], corpus="$CASE/short.txt"),
         "short.txt' has 10 bytes, fewer than one context window plus its next byte (17)", config=None,
         files={"corpus.txt": text, "short.txt": "0123456789"})
    case("train-valid-shorter-than-context", train(None, [], valid="$CASE/short.txt"),
         "short.txt' has 10 bytes, fewer than one context window plus its next byte (16)", config=None,
         files={"corpus.txt": text, "short.txt": "0123456789"})
    case("train-width-not-divisible-by-heads", train(None, ["--width", "10", "--heads", "3"]),
         "width 10 is not divisible by 3 heads", config=None, files={"corpus.txt": text})
    case("train-output-exists", train(None, [], out="$CASE"),
         "output directory 'Fixtures/bad/train-output-exists' already exists; pass --overwrite", config=None,
         files={"corpus.txt": text})
    case("train-resume-without-checkpoint", train(None, ["--resume"], out="$CASE"),
         "train-resume-without-checkpoint/train-state.bin': no such file (nothing to resume)", config=None,
         files={"corpus.txt": text})
    case("train-missing-corpus-flag", ["train", "--valid", "x.txt", "--out", "/tmp/streamlab-bad-train-out"],
         "train needs --corpus FILE", status=2, config=None)
    case("train-bad-norm", train(None, ["--norm", "middle"]), "option '--norm' must be one of pre, post, sandwich, output; got 'middle'",
         status=2, config=None, files={"corpus.txt": text})
    case("train-negative-lr", train(None, ["--lr", "-0.1"]), "option '--lr' must be positive, got -0.1", status=2,
         config=None, files={"corpus.txt": text})
    case("train-zero-heads", train(None, ["--heads", "0"]), "option '--heads' must be within 1...4096, got 0", status=2,
         config=None, files={"corpus.txt": text})

    # train: the output directory and the training state (train-state.bin: magic, header length,
    # JSON header, tensors, CRC-32 of all before it). Cases that need a real run's state (a damaged
    # checkpoint, another corpus, a held lock, an interruption) or that fail after training started
    # (a diverged run, whose progress lines precede the error) are Swift tests: TrainingStateTests.
    case("train-out-not-a-directory-name", train(None, [], out="."),
         "--out must end in a directory name, got '.'", config=None, files={"corpus.txt": text})
    case("train-unfinished-run", train(None, [], out="$CASE/out"),
         "output directory 'Fixtures/bad/train-unfinished-run/out' has an unfinished run in 'Fixtures/bad/train-unfinished-run/out.partial'; pass --resume",
         config=None, files={"corpus.txt": text, "out.partial/train-state.bin": "x"})
    case("train-partial-is-a-file", train(None, [], out="$CASE/out"),
         "cannot write 'Fixtures/bad/train-partial-is-a-file/out.partial': it exists and is not a directory",
         config=None, files={"corpus.txt": text, "out.partial": "x"})
    def state(header, crc=None):
        body = b"STREAMLAB-TRAIN2" + struct.pack("<Q", len(header)) + header
        return body + struct.pack("<I", zlib.crc32(body) if crc is None else crc)
    case("train-resume-not-a-checkpoint", train(None, ["--resume"], out="$CASE/out"),
         "cannot resume from 'Fixtures/bad/train-resume-not-a-checkpoint/out/train-state.bin': not a StreamLab training checkpoint",
         config=None, files={"corpus.txt": text, "out/train-state.bin": "To be, or not to be, that is the question"})
    case("train-resume-format-1", train(None, ["--resume"], out="$CASE/out"),
         "train-state.bin': it is a format-1 checkpoint without a checksum", config=None,
         files={"corpus.txt": text, "out/train-state.bin": b"STREAMLAB-TRAIN1" + struct.pack("<Q", 2) + b"{}"})
    case("train-resume-checksum-mismatch", train(None, ["--resume"], out="$CASE/out"),
         "train-resume-checksum-mismatch/out/train-state.bin': checksum mismatch (stored CRC-32 00000000, computed", config=None,
         files={"corpus.txt": text, "out/train-state.bin": state(b"{}", crc=0)})
    case("train-resume-malformed-header", train(None, ["--resume"], out="$CASE/out"),
         "train-resume-malformed-header/out/train-state.bin': malformed header", config=None,
         files={"corpus.txt": text, "out/train-state.bin": state(b'{"format": 2, "step": 1}')})

    # gradients (issue 7).
    grad = ["gradients", f"{REL}/valid-tiny-gpt2"]
    case("gradients-one-token", grad + ["--tokens", "3"], "needs at least 2 tokens, got 1", config=None)
    case("gradients-text-needs-tokenizer", grad + ["--prompt", "hello"],
         "--prompt needs a tokenizer, but 'Fixtures/bad/valid-tiny-gpt2' has none", status=2, config=None)
    case("gradients-two-inputs", grad + ["--tokens", "1,2", "--prompt", "hi"], "give only one of --tokens, --prompt",
         status=2, config=None)
    case("gradients-default-prompt-needs-tokenizer", grad, "the default prompt needs a tokenizer", status=2,
         config=None)
    case("gradients-bad-format", grad + ["--tokens", "1,2", "--format", "xml"],
         "option '--format' must be one of table, json, csv; got 'xml'", status=2, config=None)
    case("gradients-svg-not-writable", grad + ["--tokens", "1,2", "--svg", "/nonexistent-dir/g.svg"],
         "cannot write '/nonexistent-dir/g.svg'", config=None)


if __name__ == "__main__":
    main()
