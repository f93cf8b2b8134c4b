#!/usr/bin/env python3
"""Independent PyTorch reference for StreamLab's tuned lens: translator reads, their KL to the
model's own distribution, next-token losses, and the gradients of the training loss with
respect to every translator.

Run from the repository root (after make_reference.py has built Fixtures/models/):

    /work/venv/bin/python Fixtures/reference/make_tuned_lens_reference.py                # both parts
    /work/venv/bin/python Fixtures/reference/make_tuned_lens_reference.py --part grads   # fixtures only
    /work/venv/bin/python Fixtures/reference/make_tuned_lens_reference.py --part bundled # shakespeare
    /work/venv/bin/python Fixtures/reference/make_tuned_lens_reference.py --only gpt2,gemma2-bf16
    /work/venv/bin/python Fixtures/reference/make_tuned_lens_reference.py --part bundled \\
        --lens-dir /tmp/lenses      # read <name>.tuned-lens.safetensors there, write the json there

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded. TUNED_LENS.md in this folder describes the outputs and every definition;
in short, for a model with L blocks there are L translators, l = -1..L-2, translator l reading
Hugging Face's hidden_states[l + 1] (the embedding stream, then the streams after blocks
0..L-2): h' = h + h @ A.T + b (A [D, D] in nn.Linear layout, b [D]), its logits = the model's
final read of h' (make_reference.final_read: final norm, project_out, unembedding, Gemma 2's
final logit soft-cap). A = 0, b = 0 is the logit lens.

Part 1 (--part grads): for the fixtures gpt2 (pre-norm), openai-gpt (post-norm, no final norm),
opt-post-proj (post-norm, project_out) and gemma2-bf16 (sandwich norms, final soft-cap, BF16
weights) on the 13 tokens of <name>.npz seq2: a seeded random lens (float32 values) is written to
Fixtures/reference/<name>.tuned-lens.safetensors and the float64 autograd reference to
Fixtures/reference/<name>.tuned-lens.npz (per-translator and per-position KL of the tuned and
the logit lens, next-token losses, gradients of sum_l KL_l with respect to every A_l and b_l).
The lens: torch.Generator seed 0, for l = -1..L-2 in turn A_l ~ N(0, (0.5 / sqrt(D))^2) and
b_l ~ N(0, (0.1 rms_l)^2), rms_l = the root-mean-square of the stream the translator reads (so
the bias matters as much on Gemma 2's large embedding stream as elsewhere), rounded to float32;
the float64 computation uses those float32 values. The file is written in the safetensors
layout by hand (sorted keys) so that reruns are byte-identical, and read back with safetensors.

Part 2 (--part bundled): for the trained byte-level models shakespeare-pre and shakespeare-post,
the lens Fixtures/models/<name>.tuned-lens.safetensors (written by stream-probe; skipped with a
message if absent) is evaluated on the first 16384 bytes of Fixtures/corpora/shakespeare-valid.txt
(64 windows of 256 bytes), written to Fixtures/reference/<name>.tuned-lens.json. With
--lens-dir DIR the lens is read from DIR and the json written to DIR (or --out-dir): for trying
part 2 on a temporary lens without touching the repository.

Models are loaded as make_probe_reference.py loads them (float32, BF16 weights upcast exactly,
attn_implementation="eager", eval mode, one thread, use_cache=False) and computed in float64
with make_reference.float64_copy (model.double(), with the RMSNorms' float32 upcast removed) and
make_reference.float64_softmax (the attention softmax's dtype=float32 ignored for float64
inputs). Nothing of the model is re-implemented: streams are HF's output_hidden_states (checked
against forward pre-hooks on the blocks), the reads call the model's own modules through
make_reference.final_read (its undecorated function, so autograd flows), and the gradients are
torch.autograd.

Self-checks (the script aborts if one fails): hidden_states[i] is exactly the input of block i
(i = 0..L-1); the model's logits = final_read of the last block's raw output (forward hook),
<= 1e-10 relative; the float64 logits = the committed float32 <name>.npz seq2.logits (1e-5);
with A = 0, b = 0 each translator's read equals final_read(hidden_states[i]) exactly; the
logit-lens KL per position = the committed <name>.probes.json lens kl_to_final (float32
logits there; 1e-4 relative); the lens file read back = the lens used, with the expected
metadata; central finite differences of the total loss on entries of every A_l and b_l agree
with autograd (float64, relative error < 1e-6); part 2: the lens file's metadata names the
model directory and the SHA-256 of its config.json, the model's own next-byte loss on the first
4 windows = <name>.hf.json held_out_first_windows (rounded there to 6 decimals).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_reference as mr  # noqa: E402  (sets 1 torch thread, quiet logging; main() not run)
import make_probe_reference as mp  # noqa: E402  (Ctx, kl_rows; main() not run)
from transformers import AutoModelForCausalLM  # noqa: E402

FIXTURES = ("gpt2", "openai-gpt", "opt-post-proj", "gemma2-bf16")
BUNDLED = ("shakespeare-pre", "shakespeare-post")
SEQUENCE = 2                # <name>.npz seq2: 13 tokens
SEED = 0                    # torch.Generator seed of every fixture's random lens
A_STD = 0.5                 # A_l ~ N(0, (A_STD / sqrt(D))^2)
B_STD = 0.1                 # b_l ~ N(0, (B_STD * rms_l)^2), rms_l = RMS of the stream read
LENS_SUFFIX = ".tuned-lens.safetensors"

READ_REL = 1e-10            # model logits vs final_read(last block output), float64
NPZ_REL = 1e-5              # float64 logits vs the committed float32 logits
PROBES_REL = 1e-4           # logit-lens KL vs the committed probes.json (float32 logits)
FD_STEP = 1e-6              # central-difference step
FD_REL = 1e-6               # finite differences vs autograd, relative
FD_ENTRIES = 3              # per A_l (the largest |gradient| + 2 seeded picks); b_l: 2

TEXT = os.path.join(mr.ROOT, "Fixtures", "corpora", "shakespeare-valid.txt")
TEXT_BYTES = 16384
WINDOW = 256
CHUNK = 16                  # windows per forward pass (memory only; sums are per window)
FIRST_WINDOWS_ABS = 2e-6    # own loss on 4 windows vs hf.json (rounded to 6 decimals there)

# make_reference.final_read is decorated with torch.no_grad; its undecorated function lets the
# gradient flow back into the translators (same code, nothing rewritten).
FINAL_READ = mr.final_read.__wrapped__


# --------------------------------------------------------------------------------------------
# Lens files
# --------------------------------------------------------------------------------------------


def config_sha256(model_dir: str) -> str:
    with open(os.path.join(model_dir, "config.json"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def lens_metadata(model_dir: str) -> dict:
    return {"format": "pt", "model": os.path.basename(os.path.normpath(model_dir)),
            "architecture_sha256": config_sha256(model_dir)}


def save_lens(path: str, lens: list, model_dir: str) -> None:
    """lens: [(A [D, D], b [D])] float32 for l = -1..L-2 (list index i = l + 1). Written in the
    safetensors layout (u64 little-endian header length, JSON header padded with spaces to a
    multiple of 8, little-endian data) by hand rather than with safetensors.torch.save_file,
    whose __metadata__ key order varies between runs: here keys are sorted, tensors stored in
    the header's order (layers.-1.bias, layers.-1.weight, layers.0.bias, ...), so reruns are
    byte-identical. Read back with safetensors' own safe_open (load_lens)."""
    tensors = {}
    for i, (A, b) in enumerate(lens):
        assert A.dtype == torch.float32 and b.dtype == torch.float32
        tensors[f"layers.{i - 1}.weight"] = A
        tensors[f"layers.{i - 1}.bias"] = b
    header, blobs, offset = {"__metadata__": lens_metadata(model_dir)}, [], 0
    for key in sorted(tensors):
        blob = tensors[key].detach().contiguous().numpy().astype("<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(tensors[key].shape),
                       "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_lens(path: str, model_dir: str, L: int, D: int) -> tuple[list, dict]:
    """Read a lens file, check its metadata against the model directory and its tensor names and
    shapes against the model; returns ([(A, b)] float32, metadata)."""
    with safe_open(path, framework="pt") as f:
        meta = dict(f.metadata() or {})
        names = set(f.keys())
        want = lens_metadata(model_dir)
        for k in ("model", "architecture_sha256"):
            if meta.get(k) != want[k]:
                raise SystemExit(f"{path}: metadata {k} = {meta.get(k)!r}, the model directory "
                                 f"{model_dir} has {want[k]!r}")
        expected = {f"layers.{l}.{p}" for l in range(-1, L - 1) for p in ("weight", "bias")}
        if names != expected:
            raise SystemExit(f"{path}: tensors {sorted(names ^ expected)} unexpected or missing "
                             f"(a lens for {L} blocks has layers.-1 .. layers.{L - 2})")
        lens = []
        for l in range(-1, L - 1):
            A, b = f.get_tensor(f"layers.{l}.weight"), f.get_tensor(f"layers.{l}.bias")
            if A.dtype != torch.float32 or tuple(A.shape) != (D, D) or \
                    b.dtype != torch.float32 or tuple(b.shape) != (D,):
                raise SystemExit(f"{path}: layer {l}: {A.dtype} {tuple(A.shape)} / {b.dtype} "
                                 f"{tuple(b.shape)}, want float32 [{D}, {D}] / [{D}]")
            lens.append((A, b))
    return lens, meta


def random_lens(L: int, D: int, rms: list, seed: int = SEED) -> list:
    """Seeded random lens, float32 values: for l = -1..L-2 in order, A_l = N(0,1) [D, D] x
    A_STD / sqrt(D) (float32 arithmetic), then b_l = N(0,1) [D] x B_STD x rms_l (float64
    arithmetic, rounded to float32)."""
    g = torch.Generator().manual_seed(seed)
    lens = []
    for i in range(L):
        A = torch.randn(D, D, generator=g, dtype=torch.float32) * (A_STD / math.sqrt(D))
        b = (torch.randn(D, generator=g, dtype=torch.float32).double() * (B_STD * rms[i])).float()
        lens.append((A, b))
    return lens


# --------------------------------------------------------------------------------------------
# Streams, reads, metrics
# --------------------------------------------------------------------------------------------


def translate(h: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h' = h + h @ A.T + b."""
    return h + h @ A.T + b


@torch.no_grad()
def streams(m64, fam, ids: torch.Tensor):
    """One float64 forward pass: (hidden_states[0..L-1] [B, T, D], the last block's raw output
    [B, T, D], logits [B, T, V]). hidden_states[i] is checked to be block i's input."""
    blocks = mr.get_module(m64, fam.blocks)
    L = len(blocks)
    seen, handles = {}, []

    def pre(i):
        def f(mod, args, kwargs):
            seen[f"in.{i}"] = mr.hidden_arg(args, kwargs)
        return f

    def post(mod, args, out):
        seen["out"] = mr.first(out)

    for i, blk in enumerate(blocks):
        handles.append(blk.register_forward_pre_hook(pre(i), with_kwargs=True))
    handles.append(blocks[L - 1].register_forward_hook(post))
    try:
        mr.fresh_rope_state(m64)
        with mr.float64_softmax():
            out = m64(input_ids=ids, use_cache=False, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    hs = out.hidden_states
    assert len(hs) == L + 1, (len(hs), L)
    for i in range(L):
        assert torch.equal(hs[i], seen[f"in.{i}"]), f"hidden_states[{i}] != input of block {i}"
        assert hs[i].dtype == torch.float64
    logits = out.logits
    assert logits.dtype == torch.float64
    return [h.detach() for h in hs[:L]], seen["out"].detach(), logits.detach()


def read(m64, fam, x: torch.Tensor) -> torch.Tensor:
    """The model's final read (autograd-enabled)."""
    return FINAL_READ(m64, fam, x)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, dim=-1)


def next_token_nll(lq: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log q_t(token[t+1]) for t = 0..T-2: lq [..., T, V], ids [..., T] -> [..., T-1]."""
    return -lq[..., :-1, :].gather(-1, ids[..., 1:, None])[..., 0]


def load_float64(model_dir: str):
    """float32 load (BF16 / F16 weights upcast exactly), eager attention, eval; float64 copy."""
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    m64 = mr.float64_copy(model)
    m64.eval()
    m64.requires_grad_(False)
    for p in m64.parameters():
        assert p.dtype == torch.float64
    return model, m64


# --------------------------------------------------------------------------------------------
# Part 1: gradients on the fixtures
# --------------------------------------------------------------------------------------------


def tuned_terms(m64, fam, hs, lens64, lp_final, ids):
    """Per translator: (KL per position [T], next-token nll [T-1]) of the read of the translated
    stream; autograd graph kept."""
    out = []
    for h, (A, b) in zip(hs, lens64):
        lq = log_softmax(read(m64, fam, translate(h[0], A, b)))
        out.append((mp.kl_rows(lp_final, lq), next_token_nll(lq, ids[0])))
    return out


def total_loss(m64, fam, hs, lens64, lp_final, ids) -> torch.Tensor:
    return sum(kl.mean() for kl, _ in tuned_terms(m64, fam, hs, lens64, lp_final, ids))


def finite_differences(m64, fam, hs, lens64, grads, lp_final, ids, seed) -> tuple[float, int]:
    """Central differences of the total loss on FD_ENTRIES entries of each A_l (the largest
    |gradient| and seeded picks among entries with |gradient| >= 0.1 max) and 2 of each b_l;
    returns (max relative error, entries checked)."""
    g = torch.Generator().manual_seed(seed)
    base = [(A.detach().clone(), b.detach().clone()) for A, b in lens64]
    worst, n = 0.0, 0
    with torch.no_grad():
        for i in range(len(base)):
            for which, count in ((0, FD_ENTRIES), (1, 2)):
                G = grads[i][which].reshape(-1)
                big = (G.abs() >= 0.1 * G.abs().max()).nonzero()[:, 0]
                picks = [int(G.abs().argmax())]
                perm = big[torch.randperm(len(big), generator=g)].tolist()
                picks += [k for k in perm if k not in picks][:count - 1]
                for k in picks:
                    vals = []
                    for s in (1.0, -1.0):
                        params = [(A.clone(), b.clone()) for A, b in base]
                        params[i][which].view(-1)[k] += s * FD_STEP
                        vals.append(float(total_loss(m64, fam, hs, params, lp_final, ids)))
                    fd = (vals[0] - vals[1]) / (2 * FD_STEP)
                    err = abs(fd - float(G[k])) / abs(float(G[k]))
                    assert err < FD_REL, (i - 1, which, k, fd, float(G[k]), err)
                    worst, n = max(worst, err), n + 1
    return worst, n


def grads_fixture(name: str, checks: dict) -> dict:
    ctx = mp.Ctx(name)
    model_dir = os.path.join(mr.MODELS_DIR, name)
    fam, L = ctx.fam, ctx.L
    tokens = ctx.npz[f"seq{SEQUENCE}.tokens"].astype(np.int64)
    assert tokens.tolist() == [int(t) for t in ctx.sidecar["tokens"][SEQUENCE]]
    assert len(tokens) == 13
    ids = torch.from_numpy(tokens)[None, :]
    m64 = mr.float64_copy(ctx.model)
    m64.eval()
    m64.requires_grad_(False)

    hs, last, logits = streams(m64, fam, ids)
    logits = logits[0]
    D = hs[0].shape[-1]
    checks["float64 logits vs committed float32 npz (rel)"] = err = mr.max_rel_err(
        logits, torch.from_numpy(ctx.npz[f"seq{SEQUENCE}.logits"]))
    assert err <= NPZ_REL, (name, err)
    with torch.no_grad():
        err = mr.max_rel_err(read(m64, fam, last[0]), logits)
    assert err <= READ_REL, (name, err)
    checks["logits = final_read(last block output) (rel)"] = err
    lp_final = log_softmax(logits)

    # the seeded lens, written as float32 and read back
    rms = [float(h.pow(2).mean().sqrt()) for h in hs]
    lens32 = random_lens(L, D, rms)
    path = os.path.join(mr.REF_DIR, name + LENS_SUFFIX)
    save_lens(path, lens32, model_dir)
    back, meta = load_lens(path, model_dir, L, D)
    whole = load_file(path)     # safetensors' own full-file reader accepts it too
    assert all(torch.equal(whole[f"layers.{i - 1}.weight"], lens32[i][0]) for i in range(L))
    assert meta == lens_metadata(model_dir), meta
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(back, lens32))
    lens64 = [(A.double().requires_grad_(True), b.double().requires_grad_(True))
              for A, b in back]

    # tuned lens: values and gradients of sum_l KL_l
    terms = tuned_terms(m64, fam, hs, lens64, lp_final, ids)
    total = sum(kl.mean() for kl, _ in terms)
    flat = [p for pair in lens64 for p in pair]
    gr = torch.autograd.grad(total, flat)
    grads = [(gr[2 * i], gr[2 * i + 1]) for i in range(L)]
    for gA, gb in grads:
        assert float(gA.abs().max()) > 0 and float(gb.abs().max()) > 0

    # logit lens: A = 0, b = 0; its read is exactly final_read(hidden_states[i])
    zero = [(torch.zeros(D, D, dtype=torch.float64), torch.zeros(D, dtype=torch.float64))
            for _ in range(L)]
    with torch.no_grad():
        for h, (A, b) in zip(hs, zero):
            assert torch.equal(read(m64, fam, translate(h[0], A, b)),
                               mr.final_read(m64, fam, h[0])), name
        checks["zero lens read = final_read(hidden_states[i]) (exact)"] = 0.0
        logit_terms = tuned_terms(m64, fam, hs, zero, lp_final, ids)

    # the logit lens vs the committed probes.json (float32 logits there)
    with open(os.path.join(mr.REF_DIR, name + ".probes.json")) as f:
        probes = json.load(f)
    seq = next(q for q in probes["sequences"] if q["sidecar_sequence"] == SEQUENCE)
    assert seq["tokens"] == tokens.tolist()
    worst = 0.0
    for i, (kl, _) in enumerate(logit_terms):
        ref = next(e for e in seq["lens"] if e["layer"] == i - 1)["kl_to_final"]
        ref = torch.tensor(ref, dtype=torch.float64)
        worst = max(worst, mr.max_rel_err(kl, ref))
    assert worst <= PROBES_REL, (name, worst)
    checks["logit-lens KL vs probes.json (rel)"] = worst

    fd_err, fd_n = finite_differences(m64, fam, hs, lens64, grads, lp_final, ids, SEED)
    checks[f"finite differences, {fd_n} entries (max rel)"] = fd_err

    own = next_token_nll(lp_final, ids[0])

    def stack(ts, k):
        return np.stack([t[k].detach().numpy() for t in ts]).astype(np.float64)

    arrays = {
        "tokens": tokens,
        "kl_tuned": stack(terms, 0).mean(axis=1),
        "kl_logit": stack(logit_terms, 0).mean(axis=1),
        "kl_tuned_positions": stack(terms, 0),
        "kl_logit_positions": stack(logit_terms, 0),
        "loss_tuned": stack(terms, 1).mean(axis=1),
        "loss_logit": stack(logit_terms, 1).mean(axis=1),
        "loss_final": np.array([float(own.mean())], dtype=np.float64),
        "stream_rms": np.array(rms, dtype=np.float64),
    }
    # kl_tuned from the same per-position arrays as the autograd loss
    t = float(total.detach())
    assert abs(float(arrays["kl_tuned"].sum()) - t) <= 1e-12 * max(1.0, t), (name, t)
    for i in range(L):
        arrays[f"weight_grad.{i - 1}"] = grads[i][0].numpy().astype(np.float64)
        arrays[f"bias_grad.{i - 1}"] = grads[i][1].numpy().astype(np.float64)
    npz = os.path.join(mr.REF_DIR, name + ".tuned-lens.npz")
    mr.savez_deterministic(npz, arrays)
    return {"L": L, "D": D, "arrays": arrays, "files": [path, npz]}


# --------------------------------------------------------------------------------------------
# Part 2: the bundled models' lenses on held-out text
# --------------------------------------------------------------------------------------------


def bundled_model(name: str, lens_dir: str, out_dir: str, checks: dict):
    model_dir = os.path.join(mr.MODELS_DIR, name)
    lens_path = os.path.join(lens_dir, name + LENS_SUFFIX)
    if not os.path.exists(lens_path):
        print(f"{name}: skipped, no lens at {os.path.relpath(lens_path, mr.ROOT)} "
              f"(write it with stream-probe first)")
        return None
    model, m64 = load_float64(model_dir)
    fam = mr.FAMILIES[model.config.model_type]
    blocks = mr.get_module(m64, fam.blocks)
    L = len(blocks)
    D = mr.get_module(m64, fam.tok_embed).weight.shape[-1]
    lens32, meta = load_lens(lens_path, model_dir, L, D)
    lens64 = [(A.double(), b.double()) for A, b in lens32]

    with open(TEXT, "rb") as f:
        data = f.read()[:TEXT_BYTES]
    assert len(data) == TEXT_BYTES
    windows = TEXT_BYTES // WINDOW
    ids = torch.tensor(list(data), dtype=torch.long).view(windows, WINDOW)
    assert int(ids.max()) < model.config.vocab_size == 256

    # sums over positions, per row l = -1..L-1 (index l + 1)
    kl_logit = [0.0] * (L + 1)
    kl_tuned = [0.0] * (L + 1)
    nll_logit = [0.0] * (L + 1)
    nll_tuned = [0.0] * (L + 1)
    first4, worst_read = None, 0.0
    with torch.no_grad():
        for c in range(0, windows, CHUNK):
            w = ids[c:c + CHUNK]
            hs, last, logits = streams(m64, fam, w)
            worst_read = max(worst_read, mr.max_rel_err(read(m64, fam, last), logits))
            lp = log_softmax(logits)
            own = next_token_nll(lp, w)                      # [B, T-1]
            if c == 0:
                first4 = float(own[:4].sum()) / (4 * (WINDOW - 1))
            nll_logit[L] += float(own.sum())
            nll_tuned[L] += float(own.sum())
            for i in range(L):
                for lensed, kls, nlls in ((False, kl_logit, nll_logit),
                                          (True, kl_tuned, nll_tuned)):
                    x = translate(hs[i], *lens64[i]) if lensed else hs[i]
                    lq = log_softmax(read(m64, fam, x))
                    kls[i] += float(mp.kl_rows(lp, lq).sum())
                    nlls[i] += float(next_token_nll(lq, w).sum())
    assert worst_read <= READ_REL, (name, worst_read)
    checks["logits = final_read(last block output) (rel)"] = worst_read
    with open(os.path.join(mr.MODELS_DIR, name + ".hf.json")) as f:
        hf = json.load(f)
    q = hf["held_out_first_windows"]
    assert q["windows"] == 4 and q["positions"] == 4 * (WINDOW - 1)
    assert abs(first4 - q["loss"]) <= FIRST_WINDOWS_ABS, (name, first4, q["loss"])
    checks["own loss, 4 windows, vs hf.json (abs)"] = abs(first4 - q["loss"])

    positions = windows * WINDOW
    nt_positions = windows * (WINDOW - 1)
    rows = []
    for i in range(L + 1):
        rows.append({"layer": i - 1,
                     "logit_kl_to_final": kl_logit[i] / positions,
                     "tuned_kl_to_final": kl_tuned[i] / positions,
                     "logit_next_token_loss": nll_logit[i] / nt_positions,
                     "tuned_next_token_loss": nll_tuned[i] / nt_positions})
    doc = {"model": name,
           "text": os.path.relpath(TEXT, mr.ROOT),
           "bytes": TEXT_BYTES, "window": WINDOW, "windows": windows,
           "positions": positions, "next_token_positions": nt_positions,
           "torch": torch.__version__, "transformers": mr.transformers.__version__,
           "architecture_sha256": meta["architecture_sha256"],
           "lens_sha256": file_sha256(lens_path),
           "layers": rows}
    out = os.path.join(out_dir, name + ".tuned-lens.json")
    text = json.dumps(doc, indent=1) + "\n"
    with open(out, "w") as f:
        f.write(text)
    return doc, out


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("all", "grads", "bundled"), default="all",
                    help="grads: the fixtures' random lenses; bundled: the shakespeare lenses "
                         "(skipped if absent); all (default): both")
    ap.add_argument("--only", default=None, help="comma-separated model names")
    ap.add_argument("--lens-dir", default=None,
                    help="part 2: directory holding <name>.tuned-lens.safetensors "
                         "(default Fixtures/models)")
    ap.add_argument("--out-dir", default=None,
                    help="part 2: where <name>.tuned-lens.json goes (default Fixtures/reference, "
                         "or the --lens-dir if one is given)")
    args = ap.parse_args()
    t0 = time.time()
    print(f"torch {torch.__version__}, transformers {mr.transformers.__version__}")

    grads_names, bundled_names = list(FIXTURES), list(BUNDLED)
    if args.only:
        only = args.only.split(",")
        unknown = set(only) - set(FIXTURES) - set(BUNDLED)
        assert not unknown, f"unknown models: {sorted(unknown)}"
        grads_names = [n for n in grads_names if n in only]
        bundled_names = [n for n in bundled_names if n in only]

    if args.part in ("all", "grads"):
        for name in grads_names:
            checks = {}
            r = grads_fixture(name, checks)
            a = r["arrays"]
            sizes = "  ".join(f"{os.path.basename(p)} {os.path.getsize(p) / 1024:.1f} KiB"
                              for p in r["files"])
            print(f"{name:14s} L={r['L']} D={r['D']}  {sizes}")
            print(f"{'':14s} kl_tuned {np.array2string(a['kl_tuned'], precision=5)}  "
                  f"kl_logit {np.array2string(a['kl_logit'], precision=5)}")
            print(f"{'':14s} loss_tuned {np.array2string(a['loss_tuned'], precision=5)}  "
                  f"loss_logit {np.array2string(a['loss_logit'], precision=5)}  "
                  f"own {float(a['loss_final'][0]):.5f}")
            for k, v in sorted(checks.items()):
                print(f"{'':14s}   check {k}: {v:.2e}")

    if args.part in ("all", "bundled"):
        lens_dir = os.path.abspath(args.lens_dir) if args.lens_dir else mr.MODELS_DIR
        out_dir = os.path.abspath(args.out_dir) if args.out_dir else (
            lens_dir if args.lens_dir else mr.REF_DIR)
        for name in bundled_names:
            checks = {}
            r = bundled_model(name, lens_dir, out_dir, checks)
            if r is None:
                continue
            doc, out = r
            print(f"{name:16s} -> {out} ({os.path.getsize(out) / 1024:.1f} KiB)")
            print(f"{'':16s} {'layer':>5s} {'logit KL':>10s} {'tuned KL':>10s} "
                  f"{'logit loss':>10s} {'tuned loss':>10s}")
            for e in doc["layers"]:
                print(f"{'':16s} {e['layer']:5d} {e['logit_kl_to_final']:10.5f} "
                      f"{e['tuned_kl_to_final']:10.5f} {e['logit_next_token_loss']:10.5f} "
                      f"{e['tuned_next_token_loss']:10.5f}")
            for k, v in sorted(checks.items()):
                print(f"{'':16s}   check {k}: {v:.2e}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
