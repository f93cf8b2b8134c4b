#!/usr/bin/env python3
"""Write a random-weight BF16 checkpoint with the shapes of a 7-8B model, for the big-model benchmark.

    /work/venv/bin/python Benchmarks/make_big_model.py /tmp/streamlab-mistral-7b               # Mistral-7B shapes
    /work/venv/bin/python Benchmarks/make_big_model.py /tmp/streamlab-llama-8b --shape llama-3.1-8b

The venv (outside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers numpy safetensors

Nothing is downloaded and nothing is committed: the directory (about 14.5 GB for Mistral-7B, 16 GB
for Llama-3.1-8B) goes where the first argument says. Tensors are streamed to disk one at a time
(peak memory about one tensor), in shards of at most 5 GB with a model.safetensors.index.json, named
as transformers names Llama/Mistral checkpoints. Weights are N(0, 0.02^2) (norms 1 + N(0, 0.02^2)),
seeded, rounded to bfloat16 (round to nearest even); transformers loads the result as it is.
"""

import argparse
import json
import os
import struct

import numpy as np

SHAPES = {
    "mistral-7b": dict(model_type="mistral", architectures=["MistralForCausalLM"], vocab_size=32000, hidden_size=4096,
                       intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                       head_dim=128, max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=1000000.0,
                       sliding_window=None, tie_word_embeddings=False, hidden_act="silu"),
    "llama-3.1-8b": dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=4096,
                         intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=128, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                         tie_word_embeddings=False, hidden_act="silu", attention_bias=False, mlp_bias=False),
}
SHARD_BYTES = 5 * 1024 ** 3


def tensors(c):
    """(name, shape, kind) in checkpoint order; kind 'norm' gets 1 + noise."""
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    out = [("model.embed_tokens.weight", (v, d), "w")]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (d,), "norm"),
                (p + "self_attn.q_proj.weight", (q, d), "w"), (p + "self_attn.k_proj.weight", (kv, d), "w"),
                (p + "self_attn.v_proj.weight", (kv, d), "w"), (p + "self_attn.o_proj.weight", (d, q), "w"),
                (p + "post_attention_layernorm.weight", (d,), "norm"),
                (p + "mlp.gate_proj.weight", (f, d), "w"), (p + "mlp.up_proj.weight", (f, d), "w"),
                (p + "mlp.down_proj.weight", (d, f), "w")]
    out += [("model.norm.weight", (d,), "norm"), ("lm_head.weight", (v, d), "w")]
    return out


def bf16_bytes(x):
    """float32 array -> bfloat16 bytes, round to nearest even."""
    bits = x.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16).tobytes()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = dict(SHAPES[args.shape], dtype="bfloat16", transformers_version="5.23.0")
    os.makedirs(args.directory, exist_ok=True)
    with open(os.path.join(args.directory, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)

    # Plan the shards: consecutive tensors up to SHARD_BYTES each.
    shards, current, size = [], [], 0
    for name, shape, kind in tensors(config):
        nbytes = 2 * int(np.prod(shape))
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape, kind))
        size += nbytes
    shards.append(current)

    rng = np.random.default_rng(args.seed)
    weight_map, total = {}, 0
    for index, shard in enumerate(shards):
        file = f"model-{index + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {}, 0
        for name, shape, _ in shard:
            nbytes = 2 * int(np.prod(shape))
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = file
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * ((8 - len(raw) % 8) % 8)
        with open(os.path.join(args.directory, file), "wb") as fh:
            fh.write(struct.pack("<Q", len(raw)) + raw)
            for name, shape, kind in shard:
                rows = shape[0]
                step = max(1, (1 << 24) // (int(np.prod(shape[1:])) or 1))      # about 16M values at a time
                for r in range(0, rows, step):
                    block = (rows if len(shape) == 1 else min(step, rows - r),) + tuple(shape[1:])
                    x = rng.standard_normal(block, dtype=np.float32) * 0.02
                    if kind == "norm":
                        x += 1
                    fh.write(bf16_bytes(x))
                    if len(shape) == 1:
                        break
        total += offset
        print(f"wrote {file} ({offset / 1e9:.2f} GB)", flush=True)
    with open(os.path.join(args.directory, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=1)
    print(f"{args.directory}: {args.shape}, {total / 1e9:.2f} GB of BF16 weights in {len(shards)} shards")


if __name__ == "__main__":
    main()
