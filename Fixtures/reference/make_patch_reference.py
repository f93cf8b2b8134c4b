#!/usr/bin/env python3
"""Independent PyTorch reference for StreamLab's activation patching (`stream-probe patch`).

Run from the repository root (after make_reference.py has built Fixtures/models/):

    /work/venv/bin/python Fixtures/reference/make_patch_reference.py                # all four
    /work/venv/bin/python Fixtures/reference/make_patch_reference.py --only gpt2    # just these

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded. For the fixtures gpt2 (pre-norm), openai-gpt (post-norm), neox-parallel
(parallel blocks) and gemma2-bf16 (sandwich norms, final logit soft-cap; BF16 weights upcast to
float32) the script loads the checkpoint in Fixtures/models/<name>/ with Hugging Face
transformers (float32, eager attention, eval mode, one thread) and writes
Fixtures/reference/<name>.patch.json. PATCH.md in this folder describes the file format and every
definition; in short:

- inputs: a clean and a corrupted sequence of T = 8 tokens (seeded; the corrupted one differs at
  2 or 3 of the positions 1..T-2; redrawn until LD_clean - LD_corrupted >= 0.5 and the picks
  below are not near-ties), answer = the clean run's top-1 token at T-1, wrong = the
  corrupted run's top-1 at T-1 (the clean run's second best if equal); metric LD = logit[answer]
  - logit[wrong] at T-1 of the final logits (soft-cap included), float64 on float32 logits;
- exact patching: one full forward pass per entry in which ONE activation (resid_pre,
  resid_mid, attn_out, mlp_out at one (layer, position); a head's z at every position) is
  replaced by its value in the other run; denoising runs the corrupted input with the clean
  value, noising the clean input with the corrupted value;
- attribution patching (denoising): LD_corrupted + (a_clean - a_corrupted) . dLD/da, the
  gradient from one torch autograd backward of the corrupted run, kept with retain_grad on the
  very tensors the hooks see (cross-checked with zero "leaf" tensors added at the hook points).

Nothing of the model is re-implemented: the activations are read and replaced by forward hooks /
forward pre-hooks on the Hugging Face modules (module paths from make_reference.FAMILIES). Hook
points: resid_pre = the block's input; resid_mid = the MLP norm's input (pre-norm, sandwich;
replaced IN PLACE in a pre-hook, because that very tensor is also the residual the block adds
after the MLP) or the first norm's output (post-norm); attn_out / mlp_out = the output of
make_reference.write_module (the attention module / MLP output; Gemma 2: the post norms'
outputs); z = the input of the attention output projection (GPT-2 / GPT-1 attn.c_proj, NeoX
attention.dense, Gemma 2 self_attn.o_proj), head h = its columns h*Dh .. (h+1)*Dh.

Self-checks (the script aborts if one fails): clean logits = a plain forward; hooks that
replace with the run's own values reproduce its LD; resid_pre of ANY layer patched at all
positions (denoising) gives LD_clean within 1e-6 relative (layer 0 included); positions before
the first corrupted token give exactly LD_corrupted for every hook; patching resid_mid of the
last layer at T-1 gives LD_clean (denoising) / LD_corrupted (noising) (everything after it at T-1
is position-wise); every in-place resid_mid replacement is what the block then adds
(resid_post = new mid + mlp_out) and gives the LD of the same patch made by shifting the
attention write instead (within 1e-5: float32 rounding of resid_pre + write); the z layout:
columns of head h = pattern_h @ V_h computed from the family's value projection; the
retain_grad gradients = the zero-leaf gradients; summed over heads, the head attributions
equal the attn_out attributions summed over positions (all but sandwich placements: the
z -> write map is linear there). Printed, not asserted: exact vs
attribution for the last layer's mlp_out at T-1.
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

FIXTURES = ("gpt2", "openai-gpt", "neox-parallel", "gemma2-bf16")
T = 8
SEED_BASE = 7000            # token seed = SEED_BASE + the model's make_reference seed
MIN_GAP = 0.5               # redraw the pair until LD_clean - LD_corrupted >= this
MIN_MARGIN = 1e-3           # ... and the picked tokens lead the next ones by >= this (no near-ties)
CHECK_REL = 1e-6            # relative tolerance of the LD identities (x max(1, |ref|))
GRAD_REL = 1e-5             # retain_grad vs zero-leaf gradients (x max|grad|)
Z_REL = 1e-5                # z layout check (x max(1, max|z|))
HOOKS = ("resid_pre", "resid_mid", "attn_out", "mlp_out", "head")

# Where head h's value vectors come from (only for the z-layout self-check):
# (module path in the block, kind). "split3": [q | k | v] each D wide (GPT-2 / GPT-1 c_attn);
# "neox": per head interleaved [q_h | k_h | v_h] blocks of 3*Dh; "v_proj": [Hkv * Dh] (GQA).
VALUE_SOURCE = {"gpt2": ("attn.c_attn", "split3"), "openai-gpt": ("attn.c_attn", "split3"),
                "gpt_neox": ("attention.query_key_value", "neox"),
                "gemma2": ("self_attn.v_proj", "v_proj")}


# --------------------------------------------------------------------------------------------
# Loading and hook points
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
        self.placement, self.parallel = mr.architecture(model, self.fam)
        self.blocks = mr.get_module(model, self.fam.blocks)
        self.L = len(self.blocks)
        cfg = mr.text_config(model)
        self.H = cfg.num_attention_heads
        self.V = cfg.vocab_size
        self.cap = mr.final_softcap(model)
        self.hooks = [h for h in HOOKS if not (h == "resid_mid" and self.parallel)]

    def point(self, hook: str, i: int):
        """(module, side) of a hook point in block i; side "input" = the module's (first)
        input, seen by a forward pre-hook; "output" = its (first) output."""
        blk, fam = self.blocks[i], self.fam
        if hook == "resid_pre":
            return blk, "input"
        if hook == "resid_mid":
            assert not self.parallel
            path, side = mr.resid_mid_point(fam, self.placement)
            assert side == ("output" if self.placement == "post" else "input")
            return mr.get_module(blk, path), side
        if hook == "attn_out":
            return mr.write_module(blk, fam, "attn"), "output"
        if hook == "mlp_out":
            return mr.write_module(blk, fam, "mlp"), "output"
        if hook == "head":   # z: the output projection's input
            return mr.get_module(blk, fam.attn_o), "input"
        raise ValueError(hook)


def replace_first(out, new):
    """Module outputs are a tensor, a tuple or (GPT-1) a list whose first element is the value."""
    if isinstance(out, tuple):
        return (new,) + tuple(out[1:])
    if isinstance(out, list):
        return [new] + list(out[1:])
    return new


def with_hidden(args, kwargs, new):
    if args:
        return (new,) + tuple(args[1:]), kwargs
    kwargs = dict(kwargs)
    kwargs["hidden_states"] = new
    return args, kwargs


def rows(t: torch.Tensor) -> torch.Tensor:
    """[1, T, W] -> [T, W] (a view)."""
    return t.reshape(-1, t.shape[-1])


def register(ctx: Ctx, hook: str, i: int, fn) -> object:
    """Register fn(value) -> new value | None at the hook point (hook, i)."""
    mod, side = ctx.point(hook, i)
    if side == "input":
        def pre(m, args, kwargs):
            new = fn(mr.hidden_arg(args, kwargs))
            return None if new is None else with_hidden(args, kwargs, new)
        return mod.register_forward_pre_hook(pre, with_kwargs=True)

    def post(m, args, out):
        new = fn(mr.first(out))
        return None if new is None else replace_first(out, new)
    return mod.register_forward_hook(post)


def run(ctx: Ctx, tokens, installers=(), grad=False, attentions=False):
    """One full forward pass with hooks; returns (logits [T, V] of the graph, output)."""
    handles = []
    try:
        for inst in installers:
            handles += inst()
        ids = torch.tensor(tokens, dtype=torch.long)[None, :]
        mr.fresh_rope_state(ctx.model)
        with torch.set_grad_enabled(grad):
            out = ctx.model(input_ids=ids, use_cache=False, output_attentions=attentions)
    finally:
        for h in handles:
            h.remove()
    return out.logits[0], out


def logit_diff(logits: torch.Tensor, a: int, w: int) -> float:
    """float64 difference of the float32 logits at the last position."""
    return float(logits[-1, a].detach().double() - logits[-1, w].detach().double())


# --------------------------------------------------------------------------------------------
# Recording and patching
# --------------------------------------------------------------------------------------------


def capture(ctx: Ctx, tokens, installers=(), attentions=False):
    """Every hook point's value ([T, width] float32 clones, after any installed intervention)
    and the logits. Keys (hook, layer); "head" holds z [T, H*Dh]."""
    acts = {}

    def probes():
        hs = []
        for i in range(ctx.L):
            for hook in ctx.hooks:
                def put(x, key=(hook, i)):
                    acts[key] = rows(x).detach().clone()
                hs.append(register(ctx, hook, i, put))
            # the residual as the block adds it after the MLP: resid_post (for the checks)
            hs.append(ctx.blocks[i].register_forward_hook(
                lambda m, a, out, key=("resid_post", i): acts.__setitem__(
                    key, rows(mr.first(out)).detach().clone())))
        return hs

    logits, out = run(ctx, tokens, list(installers) + [probes], attentions=attentions)
    return acts, logits.detach().clone(), out


def patch_installer(ctx: Ctx, hook: str, i: int, src: torch.Tensor, pos=None, head=None):
    """Replace the activation at (hook, i) by src ([T, width]) at position pos (None: all
    positions) or, for "head", head h's z columns at every position."""
    mod, side = ctx.point(hook, i)
    in_place = hook == "resid_mid" and side == "input"

    def fn(x):
        r = rows(x)
        if hook == "head":
            d = r.shape[-1] // ctx.H
            sl = slice(head * d, (head + 1) * d)
            new = x.clone()
            rows(new)[:, sl] = src[:, sl]
            return new
        if in_place:
            # pre-norm / sandwich resid_mid: the MLP norm's input IS the residual the block adds
            # after the MLP (residual = hidden_states; hidden_states = ln_2(hidden_states));
            # change that tensor itself so both uses see the new stream (checked afterwards).
            r = x.view(-1, x.shape[-1])        # a view for certain (view() never copies)
            if pos is None:
                r[:] = src
            else:
                r[pos] = src[pos]
            return None
        new = x.clone()
        if pos is None:
            rows(new)[:] = src
        else:
            rows(new)[pos] = src[pos]
        return new

    return lambda: [register(ctx, hook, i, fn)]


def patched_ld(ctx, tokens, a, w, hook, i, src, pos=None, head=None, checks=None):
    """LD of one patched forward pass; verifies the replacement took effect."""
    inst = patch_installer(ctx, hook, i, src, pos, head)
    if checks is None:
        logits, _ = run(ctx, tokens, [inst])
        return logit_diff(logits, a, w)
    acts, logits, _ = capture(ctx, tokens, [inst])
    got = acts[(hook, i)]
    if hook == "head":
        d = got.shape[-1] // ctx.H
        sl = slice(head * d, (head + 1) * d)
        assert torch.equal(got[:, sl], src[:, sl]), (ctx.name, hook, i, head)
    else:
        idx = slice(None) if pos is None else pos
        assert torch.equal(got[idx], src[idx]), (ctx.name, hook, i, pos)
    if hook == "resid_mid" and ctx.placement != "post":
        # the block's output is the NEW stream plus this pass's MLP write (same float32 add)
        idx = slice(None) if pos is None else pos
        want = src[idx] + acts[("mlp_out", i)][idx]
        err = mr.max_rel_err(acts[("resid_post", i)][idx], want)
        checks["in-place resid_mid is the residual"] = max(
            checks.get("in-place resid_mid is the residual", 0.0), err)
        assert err <= CHECK_REL, (ctx.name, i, pos, err)
    return logit_diff(logits, a, w)


def mid_via_write_ld(ctx, tokens, a, w, i, src, pos, cur):
    """Pre-norm / sandwich resid_mid patch done another way: the attention write at pos is
    shifted by (new mid - this run's mid), so that resid_pre + write = the new mid up to float32
    rounding (cur: the unpatched run's activations, identical up to block i)."""
    shift = src[pos] - cur[("resid_mid", i)][pos]

    def fn(x):
        new = x.clone()
        rows(new)[pos] = rows(new)[pos] + shift
        return new
    logits, _ = run(ctx, tokens, [lambda: [register(ctx, "attn_out", i, fn)]])
    return logit_diff(logits, a, w)


# --------------------------------------------------------------------------------------------
# Gradients (attribution patching)
# --------------------------------------------------------------------------------------------


def gradients_retain(ctx: Ctx, tokens, a: int, w: int):
    """dLD/da at every hook point of one forward + backward: retain_grad on the tensors the
    hooks see. Returns (LD float64, logits, {(hook, i): grad [T, width] float64})."""
    kept = {}

    def inst():
        hs = []
        for i in range(ctx.L):
            for hook in ctx.hooks:
                def keep(x, key=(hook, i)):
                    assert key not in kept
                    x.retain_grad()
                    kept[key] = x
                hs.append(register(ctx, hook, i, keep))
        return hs

    ctx.model.zero_grad(set_to_none=True)
    logits, _ = run(ctx, tokens, [inst], grad=True)
    ld = logits[-1, a] - logits[-1, w]
    ld.backward()
    grads = {k: rows(v.grad).detach().double().clone() for k, v in kept.items()}
    ctx.model.zero_grad(set_to_none=True)
    return logit_diff(logits, a, w), logits.detach(), grads


def gradients_leaf(ctx: Ctx, tokens, a: int, w: int):
    """The same gradients with zero leaf tensors e added at the hook points (x + e, e = 0,
    requires_grad): dLD/de = dLD/dx. resid_mid's leaf is added to the attention write (pre-norm
    / sandwich: resid_mid = resid_pre + attn_out, so both the MLP and the residual see it) or
    to ln_1's output (post-norm) -- a different placement from the retain_grad one."""
    leaves = {}

    def leaf(key, x):
        e = torch.zeros_like(x, requires_grad=True)
        leaves[key] = e
        return x + e

    def inst():
        hs = []
        for i in range(ctx.L):
            for hook in ctx.hooks:
                if hook == "resid_mid" and ctx.placement != "post":
                    continue
                hs.append(register(ctx, hook, i, lambda x, k=(hook, i): leaf(k, x)))
                if hook == "attn_out" and "resid_mid" in ctx.hooks and ctx.placement != "post":
                    hs.append(register(ctx, hook, i,
                                       lambda x, k=("resid_mid", i): leaf(k, x)))
        return hs

    ctx.model.zero_grad(set_to_none=True)
    logits, _ = run(ctx, tokens, [inst], grad=True)
    (logits[-1, a] - logits[-1, w]).backward()
    grads = {k: rows(v.grad).detach().double().clone() for k, v in leaves.items()}
    ctx.model.zero_grad(set_to_none=True)
    return logit_diff(logits, a, w), grads


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def ranked(row: torch.Tensor) -> list:
    """Token ids by decreasing logit, ties -> lower id."""
    v = row.double().tolist()
    return sorted(range(len(v)), key=lambda t: (-v[t], t))


def choose_inputs(ctx: Ctx):
    seed = SEED_BASE + ctx.spec.seed
    rng = np.random.RandomState(seed)
    for attempt in range(1, 101):
        clean = rng.randint(0, ctx.V, size=T).astype(np.int64)
        k = int(rng.randint(2, 4))                        # 2 or 3 corrupted positions
        where = sorted(int(p) for p in rng.choice(np.arange(1, T - 1), size=k, replace=False))
        corrupted = clean.copy()
        for p in where:
            corrupted[p] = (clean[p] + rng.randint(1, ctx.V)) % ctx.V   # always different
        lc, _ = run(ctx, clean.tolist())
        lx, _ = run(ctx, corrupted.tolist())
        rc, rx = ranked(lc[-1]), ranked(lx[-1])
        answer = rc[0]
        wrong = rx[0] if rx[0] != answer else rc[1]
        gap = logit_diff(lc, answer, wrong) - logit_diff(lx, answer, wrong)
        margins = [logit_diff(lc, rc[0], rc[1]), logit_diff(lx, rx[0], rx[1])]
        if wrong == rc[1]:
            margins.append(logit_diff(lc, rc[1], rc[2]))
        if gap >= MIN_GAP and min(margins) >= MIN_MARGIN:
            return dict(seed=seed, attempt=attempt, clean=clean.tolist(),
                        corrupted=corrupted.tolist(), positions=where, answer=answer,
                        wrong=wrong, wrong_rule="corrupted top-1" if rx[0] != answer
                        else "clean second best")
    raise RuntimeError(f"{ctx.name}: no token pair with LD gap >= {MIN_GAP}")


# --------------------------------------------------------------------------------------------
# Self-checks on the z layout
# --------------------------------------------------------------------------------------------


def check_z_layout(ctx: Ctx, tokens, checks):
    """z columns h*Dh..(h+1)*Dh = pattern_h @ V_h, V_h from the family's value projection."""
    path, kind = VALUE_SOURCE[ctx.spec.model_type]
    vals = {}

    def inst():
        return [mr.get_module(ctx.blocks[i], path).register_forward_hook(
            lambda m, a, out, i=i: vals.__setitem__(i, rows(mr.first(out)).detach().double()))
            for i in range(ctx.L)]

    acts, _, out = capture(ctx, tokens, [inst], attentions=True)
    worst = 0.0
    for i in range(ctx.L):
        z = acts[("head", i)].double()                       # [T, H*Dh]
        Dh = z.shape[-1] // ctx.H
        pat = out.attentions[i][0].detach().double()         # [H, T, T]
        P = vals[i]
        for h in range(ctx.H):
            if kind == "split3":
                D = P.shape[-1] // 3
                v = P[:, 2 * D:][:, h * Dh:(h + 1) * Dh]
            elif kind == "neox":
                v = P.reshape(T, ctx.H, 3 * Dh)[:, h, 2 * Dh:]
            else:
                Hkv = P.shape[-1] // Dh
                v = P.reshape(T, Hkv, Dh)[:, h // (ctx.H // Hkv)]
            want = pat[h] @ v
            err = float((z[:, h * Dh:(h + 1) * Dh] - want).abs().max()
                        / max(1.0, float(z.abs().max())))
            worst = max(worst, err)
    assert worst <= Z_REL, (ctx.name, worst)
    checks["z layout: head h columns = pattern_h @ V_h"] = worst


# --------------------------------------------------------------------------------------------


def close_ld(got: float, ref: float, label: str, checks: dict, tol=CHECK_REL):
    err = abs(got - ref) / max(1.0, abs(ref))
    checks[label] = max(checks.get(label, 0.0), err)
    assert err <= tol, f"self-check failed: {label}: {got!r} vs {ref!r} (rel {err:.3g})"


def patch_fixture(name: str):
    ctx = Ctx(name)
    checks = {}
    sel = choose_inputs(ctx)
    clean, corrupted, a, w = sel["clean"], sel["corrupted"], sel["answer"], sel["wrong"]

    acts_c, logits_c, _ = capture(ctx, clean)
    acts_x, logits_x, _ = capture(ctx, corrupted)
    # the hooked (recording) runs reproduce plain forwards
    for toks, lg in ((clean, logits_c), (corrupted, logits_x)):
        plain, _ = run(ctx, toks)
        assert torch.equal(plain, lg), name
    ld_clean, ld_corr = logit_diff(logits_c, a, w), logit_diff(logits_x, a, w)
    denom = ld_clean - ld_corr
    assert denom >= MIN_GAP

    def norm(v):
        return (v - ld_corr) / denom

    check_z_layout(ctx, clean, checks)

    # replacing with the run's own values changes nothing (every hook, every layer, all
    # positions; every head)
    for toks, acts, ref in ((clean, acts_c, ld_clean), (corrupted, acts_x, ld_corr)):
        for hook in ctx.hooks:
            for i in range(ctx.L):
                if hook == "head":
                    for h in range(ctx.H):
                        close_ld(patched_ld(ctx, toks, a, w, hook, i, acts[(hook, i)], None, h,
                                            checks), ref, "self-replacement", checks, 0.0)
                else:
                    close_ld(patched_ld(ctx, toks, a, w, hook, i, acts[(hook, i)], None, None,
                                        checks), ref, "self-replacement", checks, 0.0)

    # resid_pre of any layer patched at all positions (denoising) = the clean run
    for i in range(ctx.L):
        got = patched_ld(ctx, corrupted, a, w, "resid_pre", i, acts_c[("resid_pre", i)], None,
                         None, checks)
        close_ld(got, ld_clean, "resid_pre all positions (denoising) = LD_clean", checks)
        if i == 0:
            checks["resid_pre layer 0 all positions: |LD - LD_clean|"] = abs(got - ld_clean)

    # exact patching
    patches = []
    srcs = {"denoising": (corrupted, acts_c), "noising": (clean, acts_x)}
    exact = {}
    first_diff = sel["positions"][0]
    for hook in ctx.hooks:
        for direction in ("denoising", "noising"):
            toks, src_acts = srcs[direction]
            base = ld_corr if direction == "denoising" else ld_clean
            results = []
            for i in range(ctx.L):
                for j in range(ctx.H if hook == "head" else T):
                    if hook == "head":
                        ld = patched_ld(ctx, toks, a, w, hook, i, src_acts[(hook, i)], None, j,
                                        checks)
                        results.append({"layer": i, "head": j, "logit_diff": ld,
                                        "normalized": norm(ld)})
                    else:
                        ld = patched_ld(ctx, toks, a, w, hook, i, src_acts[(hook, i)], j, None,
                                        checks)
                        results.append({"layer": i, "position": j, "logit_diff": ld,
                                        "normalized": norm(ld)})
                        if hook == "resid_mid" and ctx.placement != "post":
                            run_acts = acts_x if direction == "denoising" else acts_c
                            close_ld(mid_via_write_ld(ctx, toks, a, w, i, src_acts[(hook, i)], j,
                                                      run_acts), ld,
                                     "resid_mid in place = via the attention write", checks,
                                     1e-5)
                        if j < first_diff:   # identical activations before the first change
                            close_ld(ld, base, "positions before the first change: no effect",
                                     checks, 0.0)
                    exact[(hook, direction, i, j)] = ld
            patches.append({"hook": hook, "method": "exact", "direction": direction,
                            "results": results})
        if hook == "resid_mid":
            close_ld(exact[(hook, "denoising", ctx.L - 1, T - 1)], ld_clean,
                     "last layer resid_mid at T-1: denoising = LD_clean", checks)
            close_ld(exact[(hook, "noising", ctx.L - 1, T - 1)], ld_corr,
                     "last layer resid_mid at T-1: noising = LD_corrupted", checks)

    # attribution patching (denoising)
    ld_g, logits_g, grads = gradients_retain(ctx, corrupted, a, w)
    assert torch.equal(logits_g, logits_x), name
    assert ld_g == ld_corr
    ld_l, grads_l = gradients_leaf(ctx, corrupted, a, w)
    assert ld_l == ld_corr
    assert set(grads) == set(grads_l), set(grads) ^ set(grads_l)
    gerr = 0.0
    for k in grads:
        g, gl = grads[k], grads_l[k]
        gerr = max(gerr, float((g - gl).abs().max()) / max(1e-30, float(g.abs().max())))
    assert gerr <= GRAD_REL, (name, gerr)
    checks["retain_grad = zero-leaf gradients"] = gerr

    attrib = {}
    for hook in ctx.hooks:
        results = []
        for i in range(ctx.L):
            delta = (acts_c[(hook, i)].double() - acts_x[(hook, i)].double())
            g = grads[(hook, i)]
            if hook == "head":
                Dh = delta.shape[-1] // ctx.H
                for h in range(ctx.H):
                    sl = slice(h * Dh, (h + 1) * Dh)
                    ld = ld_corr + float((delta[:, sl] * g[:, sl]).sum())
                    attrib[(hook, i, h)] = ld
                    results.append({"layer": i, "head": h, "logit_diff": ld,
                                    "normalized": norm(ld)})
            else:
                for p in range(T):
                    ld = ld_corr + float(delta[p] @ g[p])
                    attrib[(hook, i, p)] = ld
                    results.append({"layer": i, "position": p, "logit_diff": ld,
                                    "normalized": norm(ld)})
                    if p < first_diff:
                        assert ld == ld_corr, (name, hook, i, p)
        patches.append({"hook": hook, "method": "attribution", "direction": "denoising",
                        "results": results})
    # linear z -> attention write (all but sandwich): sum over heads = sum over positions
    if ctx.placement != "sandwich":
        for i in range(ctx.L):
            s_heads = sum(attrib[("head", i, h)] - ld_corr for h in range(ctx.H))
            s_pos = sum(attrib[("attn_out", i, p)] - ld_corr for p in range(T))
            close_ld(s_heads, s_pos, "attribution: sum over heads = sum of attn_out over "
                     "positions", checks, 1e-5)

    # order: per hook exact denoising, exact noising, attribution
    order = {("exact", "denoising"): 0, ("exact", "noising"): 1, ("attribution", "denoising"): 2}
    patches.sort(key=lambda e: (HOOKS.index(e["hook"]), order[(e["method"], e["direction"])]))

    k = ("mlp_out", ctx.L - 1, T - 1)
    info = {"exact": exact[("mlp_out", "denoising", ctx.L - 1, T - 1)], "attribution": attrib[k]}
    doc = {"model": name, "clean_tokens": clean, "corrupted_tokens": corrupted,
           "answer": a, "wrong": w, "clean_logit_diff": ld_clean,
           "corrupted_logit_diff": ld_corr,
           "corrupted_positions": sel["positions"], "wrong_rule": sel["wrong_rule"],
           "token_seed": sel["seed"], "token_draw": sel["attempt"],
           "norm_placement": ctx.placement, "parallel_residual": ctx.parallel,
           "layers": ctx.L, "heads": ctx.H, "vocab_size": ctx.V,
           **({"final_logit_softcapping": ctx.cap} if ctx.cap is not None else {}),
           "versions": {"torch": torch.__version__,
                        "transformers": mr.transformers.__version__},
           "patches": patches}
    return doc, checks, info


def main() -> int:
    t0 = time.time()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {mr.transformers.__version__}")
    names = list(FIXTURES)
    args = sys.argv[1:]
    if args:
        assert len(args) == 2 and args[0] == "--only", "usage: make_patch_reference.py [--only a,b]"
        only = args[1].split(",")
        assert set(only) <= set(names), f"unknown fixtures: {sorted(set(only) - set(names))}"
        names = [n for n in names if n in only]
    for name in names:
        doc, checks, info = patch_fixture(name)
        text = json.dumps(doc, indent=1) + "\n"
        path = os.path.join(mr.REF_DIR, name + ".patch.json")
        with open(path, "w") as f:
            f.write(text)
        n = sum(len(p["results"]) for p in doc["patches"])
        print(f"{name:14s} {len(text) / 1024:6.1f} KiB  {n:4d} entries  "
              f"answer {doc['answer']} wrong {doc['wrong']} ({doc['wrong_rule']})  "
              f"LD clean {doc['clean_logit_diff']:+.6f} corrupted "
              f"{doc['corrupted_logit_diff']:+.6f}")
        print(f"{'':14s} clean {doc['clean_tokens']} corrupted {doc['corrupted_tokens']} "
              f"(positions {doc['corrupted_positions']}, draw {doc['token_draw']})")
        print(f"{'':14s} last-layer mlp_out @T-1: exact {info['exact']:+.6f}  attribution "
              f"{info['attribution']:+.6f}  diff {info['attribution'] - info['exact']:+.3e}")
        for k, v in sorted(checks.items()):
            print(f"{'':14s}   check {k}: {v:.2e}")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
