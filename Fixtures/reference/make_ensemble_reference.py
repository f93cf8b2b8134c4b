#!/usr/bin/env python3
"""Independent PyTorch reference for StreamLab's "ensemble view" of the residual stream: block
influence, angular distances, lesions (every subset of blocks skipped), block orders, and the
path expansion of the loss gradient by path length.

Run from the repository root (after make_reference.py has built Fixtures/models/):

    /work/venv/bin/python Fixtures/reference/make_ensemble_reference.py                 # all five
    /work/venv/bin/python Fixtures/reference/make_ensemble_reference.py --only gpt2,olmo2

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded. For the fixtures gpt2 (pre-norm), openai-gpt (post-norm, no final norm),
neox-parallel (parallel blocks), gemma2-bf16 (sandwich norms, attention and final logit
soft-caps, alternating sliding / full attention; BF16 weights upcast) and olmo2 (output norms,
q/k norms) the script loads the checkpoint in Fixtures/models/<name>/ exactly as
make_probe_reference.py does (its Ctx: float32, eager attention, eval mode, one thread), runs the
length-13 token sequence of Fixtures/reference/<name>.json (sidecar sequence 2) and writes
Fixtures/reference/<name>.ensemble.json. ENSEMBLE.md in this folder describes the file format and
every definition; in short:

- block_influence / angular_distance: cosines of the clean run's block inputs and outputs, taken
  with forward (pre-)hooks on the blocks (not HF hidden_states, whose last entry is normalised);
- lesions: every subset of blocks skipped together, a skipped block's forward hook returning its
  input (make_probe_reference.block_skip_hook); metrics = make_probe_reference.ablation_metrics;
- orders: the blocks run in another order by replacing the model's nn.ModuleList of blocks with
  one holding the same modules in that order (restored afterwards); the config's
  num_hidden_layers (OLMo 2 and Gemma 2 slice the list with it) and, for Gemma 2, layer_types
  (Gemma2Model picks each slot's attention mask -- sliding or full -- from
  config.layer_types[slot]) are set to follow the modules, so block j keeps its own attention
  kind wherever it runs (checked: each call receives the very mask block j received in the clean
  run); use_cache=False;
- paths: the gradient of the clean loss with respect to the stream entering block 0, split into
  the sums g_k over the paths through exactly k sublayers, by the top-down recursion
  g_k(in) = S^T v_k + J_f^T S^T v_{k-1} through every unit (sublayer + residual connection); the
  VJPs are torch.autograd.grad of functions built from the Hugging Face submodules (norms,
  attention called with the args / kwargs the block passed to it in the clean run, captured by a
  forward pre-hook, MLP), evaluated at the unit inputs of the clean run, in float64
  (make_reference.float64_copy and float64_softmax); the full gradient comes from one autograd
  backward of the whole float64 model (retain_grad on block 0's input).

Nothing of the model is re-implemented. Family module paths come from make_reference.FAMILIES;
loading, hooks and metrics are imported from make_probe_reference (importing either module only
sets torch to one thread and quietens transformers' logging).

Self-checks (the script aborts if one fails): clean logits = the committed <name>.npz logits;
the empty lesion has delta_loss 0 and reproduces the clean logits exactly; skipping every block
= the final read of the embedding stream; single-block lesions and the {0, 1} lesion equal the
committed <name>.probes.json block-skip / joint entries; the identity order reproduces the clean
logits exactly and the ModuleList and config are restored afterwards; the omission order gives
exactly the metrics of the lesion of the omitted block; every attention call of a
reordered run gets the clean-run mask of the block being run (Gemma 2: the sliding and full
masks differ, and a swapped order changes the logits); each unit function rebuilt from the
submodules reproduces the clean float64 stream (<= 1e-12 relative); the float64 loss equals the
float32 clean loss (1e-5); sum_k g_k = the full autograd gradient within
1e-6 x max(1, max|gradient|) (observed <= 1e-15 x); the recursion's g_k = the sums of every
path carried down one by one (explicit enumeration of all 2^n, parallel 3^n, paths; 1e-12); the
full float64 gradient = the committed float32 grads.npz gradient of block 0's input (1e-5
relative); pre-norm / sandwich / output: g_0 = G exactly. Printed, not asserted: for
gemma2-bf16, how much the first swapped order's logits change if the masks followed the slot
instead of the block (max 5.0: the kinds matter).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_reference as mr  # noqa: E402  (sets 1 torch thread, quiet logging; main() not run)
import make_probe_reference as mp  # noqa: E402  (Ctx, hooks, metrics; main() not run)

FIXTURES = ("gpt2", "openai-gpt", "neox-parallel", "gemma2-bf16", "olmo2")
SEQUENCE = 2                # sidecar sequence index: length 13
RECON_REL = 1e-6            # sum_k g_k vs full gradient, x max(1, max|full|) (float64)
UNIT_REL = 1e-12            # rebuilt unit functions vs the clean float64 stream
PROBES_ABS = 1e-9           # lesions vs the committed probes.json block skips
LOSS64_REL = 1e-5           # float64 loss vs float32 loss
METRICS = ("kl_mean", "kl_last", "top1_agreement", "loss", "delta_loss")


# --------------------------------------------------------------------------------------------
# Clean run, block influence, angular distances
# --------------------------------------------------------------------------------------------


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of [T, D] float32 streams, in float64."""
    a, b = a.double(), b.double()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def block_influence(ctx, store) -> list:
    out = []
    for i in range(ctx.L):
        c = cosines(store[f"blocks.{i}.resid_pre"], store[f"blocks.{i}.resid_post"])
        out.append(float(1.0 - c.mean()))
    return out


def angular_distance(ctx, store) -> list:
    out = []
    for n in range(1, ctx.L):
        d = []
        for l in range(0, ctx.L - n + 1):
            a = store[f"blocks.{l}.resid_pre"][-1:]
            b = store[f"blocks.{l + n - 1}.resid_post"][-1:]
            c = float(cosines(a, b)[0])
            d.append(math.acos(max(-1.0, min(1.0, c))) / math.pi)
        out.append({"blocks": n, "distances": d})
    return out


# --------------------------------------------------------------------------------------------
# Lesions
# --------------------------------------------------------------------------------------------


def lesion_logits(ctx, tokens, skipped) -> torch.Tensor:
    return mp.forward(ctx, tokens, lambda: [
        ctx.blocks[i].register_forward_hook(mp.block_skip_hook, with_kwargs=True)
        for i in skipped])


def lesions(ctx, tokens, clean, clean_loss, emb_stream, checks) -> list:
    out = []
    subsets = [list(c) for r in range(ctx.L + 1) for c in itertools.combinations(range(ctx.L), r)]
    assert len(subsets) == 2 ** ctx.L
    for s in subsets:
        logits = lesion_logits(ctx, tokens, s)
        m = mp.ablation_metrics(clean, logits, tokens, clean_loss)
        if not s:
            assert torch.equal(logits, clean), ctx.name
            assert m["delta_loss"] == 0.0 and m["kl_mean"] == 0.0, m
            checks["empty lesion |delta_loss|"] = abs(m["delta_loss"])
        if len(s) == ctx.L:
            ref = mr.final_read(ctx.model, ctx.fam, emb_stream).float()
            checks["all skipped = final read of the embeddings"] = mp.close(logits, ref)
        out.append({"skipped": s, **m})
    # cross-check with the committed probes (same sequence, same hooks)
    with open(os.path.join(mr.REF_DIR, ctx.name + ".probes.json")) as f:
        probes = json.load(f)
    seq = next(q for q in probes["sequences"] if q["sidecar_sequence"] == SEQUENCE)
    assert seq["tokens"] == tokens
    by = {tuple(e["skipped"]): e for e in out}
    worst, n = 0.0, 0
    for ab in seq["ablations"]:
        if ab["mode"] == "skip" and ab["target"] in ("block", "joint"):
            mine = by[tuple(sorted(ab["layers"]))]
            for k in METRICS:
                worst = max(worst, abs(mine[k] - ab[k]))
            n += 1
    assert n == ctx.L + 1 and worst <= PROBES_ABS, (ctx.name, n, worst)
    checks["lesions = probes.json block skips"] = worst
    return out


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


def order_list(L: int) -> list:
    orders = [("identity", list(range(L))), ("reversed", list(range(L))[::-1])]
    for i in range(L - 1):
        o = list(range(L))
        o[i], o[i + 1] = o[i + 1], o[i]
        orders.append(("swap", o))
    orders.append(("repeat", [0] + list(range(L))))
    orders.append(("omission", [j for j in range(L) if j != L // 2]))
    return orders


@contextlib.contextmanager
def block_order(ctx, order, follow_kinds=True):
    """Run the blocks in `order` (block indices, repeats allowed): the model's nn.ModuleList
    is replaced by one holding the same modules in that order; the text config's
    num_hidden_layers is set to len(order) and, if the config has layer_types, to the blocks'
    own types (follow_kinds=False keeps the slot types: only for the printed comparison).
    Everything is restored on exit."""
    parent_path, _, attr = ctx.fam.blocks.rpartition(".")
    parent = mr.get_module(ctx.model, parent_path)
    orig = getattr(parent, attr)
    assert orig is ctx.blocks
    cfg = mr.text_config(ctx.model)
    saved = {"num_hidden_layers": cfg.num_hidden_layers}
    types = getattr(cfg, "layer_types", None)
    if types is not None:
        saved["layer_types"] = list(types)
    try:
        setattr(parent, attr, nn.ModuleList([orig[j] for j in order]))
        cfg.num_hidden_layers = len(order)
        if types is not None:
            cfg.layer_types = ([saved["layer_types"][j] for j in order] if follow_kinds
                               else [saved["layer_types"][s % len(types)]
                                     for s in range(len(order))])
        yield
    finally:
        setattr(parent, attr, orig)
        for k, v in saved.items():
            setattr(cfg, k, v)
    assert getattr(parent, attr) is orig and cfg.num_hidden_layers == saved["num_hidden_layers"]
    if types is not None:
        assert list(cfg.layer_types) == saved["layer_types"]


def attn_mask_recorder(ctx, calls):
    """Pre-hooks on every block's attention module recording (block index, attention_mask)."""
    def inst():
        hs = []
        for j, blk in enumerate(ctx.blocks):
            att = mr.get_module(blk, ctx.fam.attn)

            def f(m, a, kw, j=j):
                calls.append((j, kw.get("attention_mask")))
            hs.append(att.register_forward_pre_hook(f, with_kwargs=True))
        return hs
    return inst


def same_mask(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return torch.equal(a, b)


def orders(ctx, tokens, clean, clean_loss, clean_masks, lesion_list, checks) -> list:
    out = []
    for kind, order in order_list(ctx.L):
        calls = []
        with block_order(ctx, order):
            logits = mp.forward(ctx, tokens, attn_mask_recorder(ctx, calls))
        assert [j for j, _ in calls] == order, (ctx.name, order, calls)
        for j, msk in calls:
            assert same_mask(msk, clean_masks[j]), (ctx.name, order, j)
        m = mp.ablation_metrics(clean, logits, tokens, clean_loss)
        if kind == "identity":
            assert torch.equal(logits, clean), ctx.name
            checks["identity order = clean logits (max abs)"] = float((logits - clean).abs().max())
        if kind == "omission":
            # omitting block m = the lesion {m} (Gemma 2: only because the kinds follow)
            les = next(e for e in lesion_list if e["skipped"] == [ctx.L // 2])
            assert all(les[k] == m[k] for k in METRICS), (ctx.name, les, m)
            checks["omission = lesion of the same block (exact)"] = 0.0
        out.append({"kind": kind, "order": order, **m})
    if ctx.name == "gemma2-bf16":
        types = mr.text_config(ctx.model).layer_types
        assert len(set(types)) == 2
        i_s, i_f = types.index("sliding_attention"), types.index("full_attention")
        assert not same_mask(clean_masks[i_s], clean_masks[i_f]), "sliding = full mask?"
        swapped = [e for e in out if e["kind"] == "swap"]
        assert all(e["kl_mean"] > 1e-6 for e in swapped), swapped
        checks["gemma2: swapped orders, min kl_mean"] = min(e["kl_mean"] for e in swapped)
        # printed, not stored: what a swap would give if the masks followed the slot
        o = order_list(ctx.L)[2][1]
        with block_order(ctx, o, follow_kinds=False):
            lg = mp.forward(ctx, tokens)
        with block_order(ctx, o):
            lg2 = mp.forward(ctx, tokens)
        print(f"  gemma2 order {o}: masks following the slot instead of the block change the "
              f"logits by max {float((lg - lg2).abs().max()):.3e}")
    return out


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


class Unit:
    """One sublayer (two for a parallel block) with its residual connection, at the clean
    run's input x [1, T, D] (float64): out = norm(x + sum_b branch_b(x)), norm = identity except
    for post-norm units."""

    def __init__(self, name, x, branches, norm=None):
        self.name, self.x, self.branches, self.norm = name, x, branches, norm

    def forward(self, x):
        z = x
        for f in self.branches:
            z = z + f(x)
        return self.norm(z) if self.norm is not None else z

    def prepare(self):
        """Build the graph once at the clean input: the branch outputs at x and the norm at
        z = x + f(x) (post-norm)."""
        self.xg = self.x.detach().clone().requires_grad_(True)
        self.fs = [f(self.xg) for f in self.branches]
        if self.norm is not None:
            self.z = (self.xg.detach() + sum(f.detach() for f in self.fs)).requires_grad_(True)
            self.nz = self.norm(self.z)

    def skip_t(self, v):
        """S^T v: the norm's VJP at x + f(x) (post-norm), else v."""
        if self.norm is None:
            return v
        return torch.autograd.grad(self.nz, self.z, v, retain_graph=True)[0]

    def branch_t(self, b, u):
        """J_b^T u for branch b, at the clean input."""
        return torch.autograd.grad(self.fs[b], self.xg, u, retain_graph=True)[0]

    def backward(self, vs: list) -> list:
        """g_k(in) = S^T v_k + sum_b J_b^T S^T v_{k-1}, k = 0..len(vs)-1."""
        us = [self.skip_t(v) for v in vs]
        out = []
        for k in range(len(vs)):
            g = us[k].clone()
            if k > 0:
                for b in range(len(self.fs)):
                    g = g + self.branch_t(b, us[k - 1])
            out.append(g)
        return out


def enumerate_paths(units, G) -> list:
    """Independent bookkeeping check: every path (per unit: the skip, or one of its branches)
    carried down one by one, summed by its number of sublayers k."""
    sums = [torch.zeros_like(G) for _ in range(len(units) + 1)]
    for choice in itertools.product(*[range(1 + len(u.branches)) for u in units]):
        v = G
        for u, c in zip(reversed(units), reversed(choice)):
            v = u.skip_t(v)
            if c > 0:
                v = u.branch_t(c - 1, v)
        sums[sum(c > 0 for c in choice)] += v
    return sums


def build_units(ctx, m64, tokens):
    """Clean float64 run of m64 with hooks; returns (units bottom-to-top, G, full gradient,
    loss, block outputs). G = dLoss/d(last block output), full = dLoss/d(block 0 input), both
    [1, T, D], from one backward of the whole model (retain_grad on the hooked tensors)."""
    fam, placement, parallel = ctx.fam, ctx.placement, ctx.parallel
    blocks = mr.get_module(m64, fam.blocks)
    cap: dict = {}
    handles = []

    def on_in(mod, key, keep_args=False):
        def f(m, a, kw):
            x = mr.hidden_arg(a, kw)
            cap[key] = x.detach().clone()
            if keep_args:
                cap[key + ".call"] = (a, dict(kw))
            if key == "blocks.0.in":
                x.retain_grad()
                cap["in_tensor"] = x
        handles.append(mod.register_forward_pre_hook(f, with_kwargs=True))

    def on_out(mod, key):
        def f(m, a, out):
            y = mr.first(out)
            cap[key] = y.detach().clone()
            if key == f"blocks.{ctx.L - 1}.out":
                y.retain_grad()
                cap["out_tensor"] = y
        handles.append(mod.register_forward_hook(f))

    for i, blk in enumerate(blocks):
        on_in(blk, f"blocks.{i}.in")
        on_out(blk, f"blocks.{i}.out")
        on_in(mr.get_module(blk, fam.attn), f"blocks.{i}.attn", keep_args=True)
        if not parallel:
            path, side = mr.resid_mid_point(fam, placement)
            (on_in if side == "input" else on_out)(mr.get_module(blk, path), f"blocks.{i}.mid")
    ids = torch.tensor(tokens, dtype=torch.long)[None, :]
    try:
        mr.fresh_rope_state(m64)
        m64.zero_grad(set_to_none=True)
        logits = m64(input_ids=ids, use_cache=False).logits[0]
        assert logits.dtype == torch.float64
        loss = nn.functional.cross_entropy(logits[:-1], ids[0, 1:])
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    G = cap["out_tensor"].grad.detach().clone()
    full = cap["in_tensor"].grad.detach().clone()
    m64.zero_grad(set_to_none=True)

    def sub(i, path):
        return mr.get_module(blocks[i], path)

    def attention(i, pre=None, post=None):
        """x -> post(attn(pre(x), <the clean call's other args / kwargs>)[0])."""
        a, kw = cap[f"blocks.{i}.attn.call"]
        att = sub(i, fam.attn)

        def f(x):
            h = pre(x) if pre is not None else x
            a2, kw2 = mp.with_hidden(a, kw, h)
            y = mr.first(att(*a2, **kw2))
            return post(y) if post is not None else y
        return f

    def chain(*mods):
        mods = [m for m in mods if m is not None]

        def f(x):
            for m in mods:
                x = m(x)
            return x
        return f

    units = []
    for i in range(ctx.L):
        ln1, ln2 = sub(i, fam.ln1), sub(i, fam.ln2)
        ln1p, ln2p = sub(i, fam.ln1_post), sub(i, fam.ln2_post)
        mlp = sub(i, fam.mlp_out)
        x = cap[f"blocks.{i}.in"]
        if parallel:
            # NeoX: mlp_output + attn_output + hidden_states (dropouts: identity in eval, kept)
            blk = blocks[i]
            units.append(Unit(f"blocks.{i}", x, [
                chain(attention(i, pre=ln1), blk.post_attention_dropout),
                chain(ln2, mlp, blk.post_mlp_dropout)]))
        elif placement == "post":
            # GPT-1: n = ln_1(x + attn(x)); h = ln_2(n + mlp(n))
            units.append(Unit(f"blocks.{i}.attn", x, [attention(i)], norm=ln1))
            units.append(Unit(f"blocks.{i}.mlp", cap[f"blocks.{i}.mid"], [mlp], norm=ln2))
        else:
            # pre: x + f(ln(x)); sandwich: x + post(f(pre(x))); output: x + post(f(x))
            units.append(Unit(f"blocks.{i}.attn", x, [attention(i, pre=ln1, post=ln1p)]))
            units.append(Unit(f"blocks.{i}.mlp", cap[f"blocks.{i}.mid"], [chain(ln2, mlp, ln2p)]))
    outs = [cap[f"blocks.{i}.out"] for i in range(ctx.L)]
    return units, G, full, float(loss.detach()), outs


def paths(ctx, tokens, clean_loss, checks) -> dict:
    m64 = mr.float64_copy(ctx.model)
    m64.eval()
    with mr.float64_softmax():
        units, G, full, loss64, outs = build_units(ctx, m64, tokens)
        # every unit rebuilt from the submodules reproduces the clean stream
        worst = 0.0
        with torch.no_grad():
            for u, nxt in zip(units, units[1:] + [None]):
                y = u.forward(u.x)
                ref = nxt.x if nxt is not None else outs[-1]
                worst = max(worst, mr.max_rel_err(y, ref))
            per = 1 if ctx.parallel else 2
            for i in range(ctx.L):   # each block's last unit gives the block's output
                u = units[per * i + per - 1]
                worst = max(worst, mr.max_rel_err(u.forward(u.x), outs[i]))
        assert worst <= UNIT_REL, (ctx.name, worst)
        checks["units rebuilt = clean stream (float64, rel)"] = worst
        n = len(units)
        for u in units:
            u.prepare()
        vs = [G] + [torch.zeros_like(G) for _ in range(n)]
        for u in reversed(units):
            vs = u.backward(vs)
        enum = enumerate_paths(units, G)
    scale = max(1.0, max(float(v.abs().max()) for v in vs))
    err = max(float((a - b).abs().max()) for a, b in zip(vs, enum)) / scale
    assert err <= UNIT_REL, (ctx.name, err)
    checks["paths: recursion = explicit enumeration (rel)"] = err
    if not ctx.parallel and ctx.placement != "post":
        assert torch.equal(vs[0], G)   # no norm on the highway: the all-skip path is G
    # the full gradient vs make_reference's committed float32 autograd gradient
    gz = np.load(os.path.join(mr.REF_DIR, ctx.name + ".grads.npz"))
    assert gz["tokens"].tolist() == tokens, ctx.name
    ref = torch.from_numpy(gz["grad.blocks.0.hook_resid_pre"])
    gerr = mr.max_rel_err(full.reshape(ref.shape), ref)
    assert gerr <= LOSS64_REL, (ctx.name, gerr)
    checks["full gradient vs grads.npz (float32, rel)"] = gerr
    assert abs(loss64 - clean_loss) <= LOSS64_REL * max(1.0, abs(clean_loss)), (loss64, clean_loss)
    checks["float64 loss - float32 loss"] = abs(loss64 - clean_loss)
    total = sum(vs)
    gmax = float(full.abs().max())
    recon = float((total - full).abs().max())
    assert recon <= RECON_REL * max(1.0, gmax), (ctx.name, recon, gmax)
    checks["paths: reconstruction error / max(1, max|grad|)"] = recon / max(1.0, gmax)
    lengths = []
    for k in range(n + 1):
        count = math.comb(n, k) * (2 ** k if ctx.parallel else 1)
        lengths.append({"k": k, "paths": count, "norm": float(vs[k].norm())})
    assert sum(e["paths"] for e in lengths) == (3 ** n if ctx.parallel else 2 ** n)
    return {"units": n, "total_norm": float(full.norm()), "reconstruction_error": recon,
            "lengths": lengths,
            "dtype": "float64", "loss": loss64, "max_abs_gradient": gmax,
            "unit_names": [u.name for u in units]}


# --------------------------------------------------------------------------------------------


def ensemble_fixture(name: str):
    ctx = mp.Ctx(name)
    checks = {}
    tokens = [int(t) for t in ctx.sidecar["tokens"][SEQUENCE]]
    assert len(tokens) == 13
    assert ctx.npz[f"seq{SEQUENCE}.tokens"].tolist() == tokens

    store, calls = {}, []
    clean = mp.forward(ctx, tokens, attn_mask_recorder(ctx, calls), store=store)
    mp.close(clean, torch.from_numpy(ctx.npz[f"seq{SEQUENCE}.logits"]))
    assert [j for j, _ in calls] == list(range(ctx.L))
    clean_masks = [m for _, m in calls]
    clean_loss = mp.seq_loss(mp.log_probs(clean), tokens)

    lesion_list = lesions(ctx, tokens, clean, clean_loss, store["blocks.0.resid_pre"], checks)
    doc = {"model": name, "tokens": tokens, "layers": ctx.L, "clean_loss": clean_loss,
           "block_influence": block_influence(ctx, store),
           "angular_distance": angular_distance(ctx, store),
           "lesions": lesion_list,
           "orders": orders(ctx, tokens, clean, clean_loss, clean_masks, lesion_list, checks),
           "paths": paths(ctx, tokens, clean_loss, checks),
           "sidecar_sequence": SEQUENCE,
           "norm_placement": ctx.placement, "parallel_residual": ctx.parallel,
           **({"final_logit_softcapping": ctx.cap} if ctx.cap is not None else {}),
           "versions": {"torch": torch.__version__,
                        "transformers": mr.transformers.__version__}}
    return doc, checks


def main() -> int:
    t0 = time.time()
    print(f"torch {torch.__version__}, transformers {mr.transformers.__version__}")
    names = list(FIXTURES)
    args = sys.argv[1:]
    if args:
        assert len(args) == 2 and args[0] == "--only", \
            "usage: make_ensemble_reference.py [--only a,b]"
        only = args[1].split(",")
        assert set(only) <= set(names), f"unknown fixtures: {sorted(set(only) - set(names))}"
        names = [n for n in names if n in only]
    for name in names:
        doc, checks = ensemble_fixture(name)
        text = json.dumps(doc, indent=1) + "\n"
        path = os.path.join(mr.REF_DIR, name + ".ensemble.json")
        with open(path, "w") as f:
            f.write(text)
        p = doc["paths"]
        print(f"{name:14s} {len(text) / 1024:6.1f} KiB  L={doc['layers']} units={p['units']}  "
              f"clean loss {doc['clean_loss']:.6f}  |grad| {p['total_norm']:.6g}  "
              f"recon {p['reconstruction_error']:.2e}")
        print(f"{'':14s} BI {[round(v, 5) for v in doc['block_influence']]}")
        print(f"{'':14s} path norms by k: "
              + "  ".join(f"{e['k']}:{e['norm']:.4g}" for e in p["lengths"]))
        for k, v in sorted(checks.items()):
            print(f"{'':14s}   check {k}: {v:.2e}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
