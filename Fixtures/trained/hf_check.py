#!/usr/bin/env python3
"""Check models written by `stream-probe train` with Hugging Face transformers and tokenizers.

For each model directory given:
  - transformers loads it (AutoModelForCausalLM, float32, eager attention) with no missing,
    unexpected or mismatched tensors;
  - tokenizers loads its tokenizer.json (and transformers' AutoTokenizer the directory), and
    both map the validation text to its bytes and back;
  - the held-out loss (docs/definitions.md, "Training loss"): mean next-byte cross-entropy over positions
    0..T-2 of non-overlapping windows of n_positions bytes of the first --valid-bytes bytes of
    --valid (a last partial window is dropped);
  - logits of one window (the first --logit-tokens bytes of --valid), for the Swift test that
    compares StreamLab's logits with these.

Writes <out-dir>/<model-name>.hf.npz (tokens int64 [T], logits float32 [T, V], loss float32 [])
and <model-name>.hf.json (versions, held-out loss, positions, checks). Usage, from the
repository root (venv recipe in Fixtures/reference/README.md):

    /work/venv/bin/python Fixtures/trained/hf_check.py Fixtures/trained/tiny-pre Fixtures/trained/tiny-post \
        --valid Fixtures/corpora/shakespeare-valid.txt --valid-bytes 16384 --out-dir Fixtures/trained
"""

import argparse
import json
import os
import sys
import zipfile

import numpy as np
import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()


def savez_deterministic(path, arrays):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


@torch.no_grad()
def check(model_dir, valid_bytes, logit_tokens, out_dir, quick_windows=4):
    name = os.path.basename(os.path.normpath(model_dir))
    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    model.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info[k], f"{name}: {k} {info[k]}"
    cfg = model.config
    T = getattr(cfg, "n_positions", None) or cfg.max_position_embeddings

    text = valid_bytes.decode("latin-1")  # the corpus is ASCII; latin-1 keeps bytes 1:1 if not
    tok = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    ids = tok.encode(valid_bytes.decode("utf-8", errors="strict")).ids
    assert ids == list(valid_bytes), f"{name}: tokenizer.json does not map the text to its bytes"
    assert tok.decode(ids).encode() == valid_bytes, f"{name}: tokenizer.json does not decode back"
    auto = AutoTokenizer.from_pretrained(model_dir)
    assert auto(text)["input_ids"] == list(valid_bytes), f"{name}: AutoTokenizer differs"

    data = torch.tensor(list(valid_bytes), dtype=torch.long)
    windows = data[: (len(data) // T) * T].view(-1, T)
    total, count = 0.0, 0
    first_total, first_count = 0.0, 0  # the first few windows, for a quick check in debug builds
    for w in windows.split(16):
        logits = model(input_ids=w, use_cache=False).logits
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1), reduction="none")
        total += float(losses.sum())
        count += w.shape[0] * (T - 1)
        if first_count == 0:
            n = min(quick_windows, w.shape[0]) * (T - 1)
            first_total, first_count = float(losses[:n].sum()), n
    held_out = total / count

    toks = data[: min(logit_tokens, T)]
    logits = model(input_ids=toks[None], use_cache=False).logits[0]
    seq_loss = torch.nn.functional.cross_entropy(logits[:-1], toks[1:])
    savez_deterministic(os.path.join(out_dir, name + ".hf.npz"), {
        "tokens": toks.numpy().astype(np.int64), "logits": logits.numpy().astype(np.float32),
        "loss": np.array(float(seq_loss), dtype=np.float32)})
    report = {
        "model": name, "class": type(model).__name__, "model_type": cfg.model_type,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__},
        "held_out_loss": round(held_out, 6), "held_out_windows": int(windows.shape[0]),
        "held_out_positions": count,
        "held_out_first_windows": {"windows": min(quick_windows, int(windows.shape[0])),
                                   "loss": round(first_total / first_count, 6), "positions": first_count},
        "valid_bytes_used": len(valid_bytes), "n_positions": T,
        "logit_tokens": int(toks.shape[0]), "sequence_loss": round(float(seq_loss), 6),
        "checks": ["loads with no missing/unexpected/mismatched tensors",
                   "tokenizer.json and AutoTokenizer map the text to its bytes and back"],
    }
    with open(os.path.join(out_dir, name + ".hf.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"{name}: {type(model).__name__}, held-out loss {held_out:.4f} nats/byte over {count} "
          f"positions ({windows.shape[0]} windows of {T})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--valid", required=True)
    p.add_argument("--valid-bytes", type=int, default=65536)
    p.add_argument("--logit-tokens", type=int, default=64)
    p.add_argument("--out-dir", required=True)
    args = p.parse_args()
    with open(args.valid, "rb") as f:
        valid = f.read(args.valid_bytes)
    for m in args.models:
        check(m, valid, args.logit_tokens, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
