#!/usr/bin/env python3
"""Independent PyTorch reference for StreamLab's attention-head scores (head detector).

Run from the repository root (after make_reference.py has built Fixtures/models/):

    /work/venv/bin/python Fixtures/reference/make_head_reference.py                 # all six
    /work/venv/bin/python Fixtures/reference/make_head_reference.py --only gpt2     # just these

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded. For the fixtures gpt2, openai-gpt, neox-parallel, gemma2-bf16 (BF16
weights upcast; attention soft-cap 5, sliding layers 0 and 2), gemma3-text (local layers 0, 1, 3
with sliding window 4, global layer 2) and qwen3 the script loads the checkpoint in
Fixtures/models/<name>/ with Hugging Face transformers (float32, eager attention, eval mode, one
thread; the loading of make_probe_reference.py / make_patch_reference.py) and writes
Fixtures/reference/<name>.heads.json. HEADS.md in this folder describes the file; in short:

- input: a repeated random sequence tokens = R + R, R = 12 tokens drawn uniformly from
  [0, vocab_size) by numpy RandomState(9000 + the model's make_reference seed) (R shortened to
  floor(max_positions / 2) if a model had fewer than 24 positions; none of these does), T = 24;
- patterns P[l, h] ([T, T], row i = destination / query, column j = source / key) are the
  attention probabilities after masks, soft-caps and softmax: what output_attentions=True
  returns with eager attention, recorded by make_reference.record, which also reads them with a
  forward hook on the attention module and asserts both are bit-identical;
- scores ("mul", TransformerLens's head detector with exclude_bos = exclude_current_token =
  False): score = sum(P * D) / sum(P) in float64 from the float32 pattern, with the detection
  matrices
    previous_token   D[i, j] = 1 iff j == i - 1
    duplicate_token  D[i, j] = 1 iff j < i and tokens[j] == tokens[i]
    induction        D[i, j] = 1 iff 1 <= j <= i and tokens[j - 1] == tokens[i]
                     (j - 1 < i follows from j <= i)
    first_token      D[i, j] = 1 iff j == 0
  (sum(P) = T up to float32 rounding: every row sums to 1).

Nothing of the model is re-implemented: the patterns come from the Hugging Face forward
(make_reference.record; module paths from make_reference.FAMILIES, imported, not copied;
importing that module only sets torch to one thread and quietens transformers' logging).

Self-checks (the script aborts if one fails): the output_attentions patterns equal the
forward-hook patterns bit for bit (inside make_reference.record); recording does not change the
logits (= a plain forward); every pattern is finite and >= 0, every row sums to 1 within 1e-5,
and the pattern is exactly 0 above the diagonal and, on sliding-window layers, for keys
k <= q - W (and > 0 everywhere else); the four D matrices built vectorised (TransformerLens's
construction: equality mask, diagonal zeroed, tril; induction = the duplicate mask shifted one
column right) equal the D matrices of a direct double loop over (i, j); each score equals the
loop sum over (i, j) of P[i, j] D[i, j] divided by the loop sum of P (within 1e-12).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_reference as mr  # noqa: E402  (sets 1 torch thread, quiet logging; main() not run)
from transformers import AutoModelForCausalLM  # noqa: E402

FIXTURES = ("gpt2", "openai-gpt", "neox-parallel", "gemma2-bf16", "gemma3-text", "qwen3")
SEED_BASE = 9000            # token seed = SEED_BASE + the model's make_reference seed
REPEAT_LEN = 12             # |R|; tokens = R + R
SCORES = ("previous_token", "duplicate_token", "induction", "first_token")
ROW_SUM_TOL = 1e-5
SCORE_LOOP_TOL = 1e-12


# --------------------------------------------------------------------------------------------
# Loading (as make_probe_reference.py / make_patch_reference.py)
# --------------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, name: str):
        self.spec = next(s for s in mr.MODELS if s.name == name)
        self.name = name
        self.fam = mr.FAMILIES[self.spec.model_type]
        model = AutoModelForCausalLM.from_pretrained(
            os.path.join(mr.MODELS_DIR, name), attn_implementation="eager", dtype=torch.float32)
        model.eval()
        for p in model.parameters():
            assert p.dtype == torch.float32, (name, p.dtype)
        self.model = model
        self.blocks = mr.get_module(model, self.fam.blocks)
        self.L = len(self.blocks)
        cfg = mr.text_config(model)
        self.cfg = cfg
        self.H = cfg.num_attention_heads
        self.V = cfg.vocab_size
        self.max_pos = getattr(cfg, "max_position_embeddings", None) or cfg.n_positions
        self.windows = [mr.layer_window(b, self.fam, cfg) for b in self.blocks]


# --------------------------------------------------------------------------------------------
# Inputs and detection matrices
# --------------------------------------------------------------------------------------------


def make_tokens(ctx: Ctx) -> tuple[np.ndarray, int]:
    n = min(REPEAT_LEN, ctx.max_pos // 2)
    seed = SEED_BASE + ctx.spec.seed
    R = np.random.RandomState(seed).randint(0, ctx.V, size=n).astype(np.int64)
    return np.concatenate([R, R]), seed


def detection_vectorised(tokens: np.ndarray) -> dict[str, np.ndarray]:
    """TransformerLens's head_detector construction, in numpy (float64 0/1 matrices)."""
    T = len(tokens)
    prev = np.zeros((T, T))
    prev[np.arange(1, T), np.arange(0, T - 1)] = 1.0
    eq = (tokens[:, None] == tokens[None, :]).astype(np.float64)
    np.fill_diagonal(eq, 0.0)
    dup = np.tril(eq)
    shifted = np.zeros((T, T))
    shifted[:, 1:] = dup[:, :-1]          # column j holds dup[:, j - 1]; column 0 is zero
    ind = np.tril(shifted)
    first = np.zeros((T, T))
    first[:, 0] = 1.0
    return {"previous_token": prev, "duplicate_token": dup, "induction": ind,
            "first_token": first}


def detection_loop(tokens: list[int]) -> dict[str, np.ndarray]:
    """The definitions, literally, one (i, j) at a time."""
    T = len(tokens)
    out = {k: np.zeros((T, T)) for k in SCORES}
    for i in range(T):
        for j in range(T):
            if j == i - 1:
                out["previous_token"][i, j] = 1.0
            if j < i and tokens[j] == tokens[i]:
                out["duplicate_token"][i, j] = 1.0
            if 1 <= j <= i and j - 1 < i and tokens[j - 1] == tokens[i]:
                out["induction"][i, j] = 1.0
            if j == 0:
                out["first_token"][i, j] = 1.0
    return out


# --------------------------------------------------------------------------------------------
# One fixture
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def head_fixture(name: str):
    ctx = Ctx(name)
    tokens, seed = make_tokens(ctx)
    T = len(tokens)
    assert T <= ctx.max_pos, (name, T, ctx.max_pos)

    # patterns: output_attentions=True, asserted bit-identical to the attention module's
    # output[1] seen by a forward hook (make_reference.record)
    acts, logits, _ = mr.record(ctx.model, ctx.fam, tokens)
    mr.fresh_rope_state(ctx.model)
    plain = ctx.model(input_ids=torch.tensor(tokens)[None], use_cache=False).logits[0]
    assert torch.equal(plain, logits), f"{name}: recording changed the logits"
    pats = np.stack([acts[f"blocks.{i}.attn.hook_pattern"].numpy() for i in range(ctx.L)])
    assert pats.dtype == np.float32 and pats.shape == (ctx.L, ctx.H, T, T), pats.shape
    assert np.isfinite(pats).all() and (pats >= 0).all(), name

    checks = {}
    P64 = pats.astype(np.float64)
    row_err = float(np.abs(P64.sum(axis=-1) - 1.0).max())
    assert row_err <= ROW_SUM_TOL, f"{name}: row sum off by {row_err:.3g}"
    checks["max |row sum - 1|"] = row_err
    q = np.arange(T)[:, None]
    k = np.arange(T)[None, :]
    for i, W in enumerate(ctx.windows):
        visible = (k <= q) & ((k > q - W) if W is not None else True)
        assert (pats[i][:, ~visible] == 0.0).all(), f"{name}: layer {i} attends to masked keys"
        assert (pats[i][:, visible] > 0.0).all(), f"{name}: layer {i} zero on a visible key"

    D = detection_vectorised(tokens)
    D_loop = detection_loop(tokens.tolist())
    for s in SCORES:
        assert np.array_equal(D[s], D_loop[s]), f"{name}: {s} detection matrices differ"
    counts = {s: int(D[s].sum()) for s in SCORES}

    scores, worst_loop = [], 0.0
    for l in range(ctx.L):
        for h in range(ctx.H):
            P = P64[l, h]
            denom = float(P.sum())
            row = {"layer": l, "head": h}
            for s in SCORES:
                row[s] = float((P * D[s]).sum() / denom)
                # loop cross-check (sequential sums)
                num_l = den_l = 0.0
                for a in range(T):
                    for b in range(T):
                        num_l += float(P[a, b]) * float(D_loop[s][a, b])
                        den_l += float(P[a, b])
                err = abs(num_l / den_l - row[s])
                worst_loop = max(worst_loop, err)
                assert err <= SCORE_LOOP_TOL, f"{name}: L{l}H{h} {s} loop differs by {err:.3g}"
            scores.append(row)
    checks["max |score - loop score|"] = worst_loop

    doc = {
        "model": name,
        "tokens": tokens.tolist(),
        "layers": ctx.L,
        "heads": ctx.H,
        "scores": scores,
        "patterns_checksum": float(P64.sum()),
        # extras (provenance and facts a test can use)
        "sequence_length": T,
        "repeat_length": T // 2,
        "token_seed": seed,
        "vocab_size": ctx.V,
        "detection_counts": counts,
        "layer_sliding_windows": ctx.windows,
        "score_rule": "mul: sum(P * D) / sum(P), float64 from the float32 pattern; "
                      "no BOS or current-token exclusion",
        "versions": {"torch": torch.__version__, "transformers": mr.transformers.__version__,
                     "numpy": np.__version__},
    }
    return doc, checks


def main() -> int:
    t0 = time.time()
    print(f"torch {torch.__version__}, transformers {mr.transformers.__version__}, "
          f"numpy {np.__version__}")
    names = list(FIXTURES)
    args = sys.argv[1:]
    if args:
        assert len(args) == 2 and args[0] == "--only", "usage: make_head_reference.py [--only a,b]"
        only = args[1].split(",")
        assert set(only) <= set(names), f"unknown fixtures: {sorted(set(only) - set(names))}"
        names = [n for n in names if n in only]
    for name in names:
        doc, checks = head_fixture(name)
        text = json.dumps(doc, indent=1) + "\n"
        path = os.path.join(mr.REF_DIR, name + ".heads.json")
        with open(path, "w") as f:
            f.write(text)
        print(f"{name:14s} {len(text) / 1024:5.1f} KiB  L={doc['layers']} H={doc['heads']} "
              f"T={doc['sequence_length']}  checksum {doc['patterns_checksum']:.12f}  "
              f"D counts {doc['detection_counts']}")
        print(f"{'':14s} tokens {doc['tokens']}")
        for s in SCORES:
            best = max(doc["scores"], key=lambda r: r[s])
            print(f"{'':14s} {s:16s} best L{best['layer']}H{best['head']} {best[s]:.6f}")
        for k, v in checks.items():
            print(f"{'':14s}   check {k}: {v:.2e}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
