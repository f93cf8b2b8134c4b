#!/usr/bin/env python3
"""Independent PyTorch reference for StreamLab's probes: ablation, logit lens, decomposition.

Run from the repository root (after make_reference.py has built Fixtures/models/):

    /work/venv/bin/python Fixtures/reference/make_probe_reference.py                  # all
    /work/venv/bin/python Fixtures/reference/make_probe_reference.py --only gemma,phi   # these

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded. For every fixture model in Fixtures/models/<name>/ the script loads the
checkpoint with Hugging Face transformers (float32 -- F16/BF16 weights upcast --, eager
attention, eval mode, one thread) and writes Fixtures/reference/<name>.probes.json for the
length-13 and the length-6 token sequences of Fixtures/reference/<name>.json (sequences 2 and 1).
The definitions are those of docs/definitions.md (Interventions, Metrics, Logit lens,
Decomposition); PROBES.md in this folder describes the file format and every definition used.

Nothing of the model is re-implemented. Interventions are forward hooks / forward pre-hooks on
the Hugging Face modules that replace a module's output (or the output projection's input, for
a head); the lens calls the model's own final-read modules (and the final logit soft-cap of
Gemma 2); the decomposition takes its writes from hooks (make_reference.record) and freezes each
norm's scale at the value of the clean run. For sandwich (Gemma 2/3) and output (OLMo 2) norm
placements a sublayer's write is its post norm's output (make_reference.write_module), and the
per-head rows are hook_result carried through the post-attention norm with its scale frozen;
for the soft-capped Gemma 2 the attributions sum to the logit before the cap (logit_before_cap).
Family module paths come from make_reference.FAMILIES (imported, not copied); importing that
module only sets torch to one thread and quietens transformers' logging.

Self-checks (the script aborts if one fails): clean logits = the committed <name>.npz logits and
make_reference's residual-stream identities; a block skip = running the later blocks from the
clean resid_pre of that block; the skipped sublayer's stream passes through unchanged (post-norm:
its norm skipped too); a mean-replaced write is the per-sequence mean of the clean write;
pre-norm skip == zero; lens last layer = the logits (KL 0); decomposition: sum of the component
writes = the final stream and sum of attributions = the logit.
"""

from __future__ import annotations

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
from transformers import AutoModelForCausalLM  # noqa: E402

SEQUENCES = (2, 1)          # sidecar sequence indices used: length 13, then length 6
TOP_K = 5
FIXED_TARGET = 7            # the "other" decomposition target (8 if 7 is the top prediction)
DECOMP_POSITIONS = (-1, 2)
REL_TOL = 1e-4              # scalar parity tolerance (1e-4 x max(1, |ref|)), used for the identities
HOOK_TOL = 1e-6             # hook-behaviour checks (same computation, possibly other kernels)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class Ctx:
    """One loaded model with its family table and architecture facts."""

    def __init__(self, name: str):
        spec = next(s for s in mr.MODELS if s.name == name)
        self.name = name
        self.fam = mr.FAMILIES[spec.model_type]
        path = os.path.join(mr.MODELS_DIR, name)
        model = AutoModelForCausalLM.from_pretrained(
            path, attn_implementation="eager", dtype=torch.float32)
        model.eval()
        for p in model.parameters():
            assert p.dtype == torch.float32, (name, p.dtype)
        self.model = model
        self.placement, self.parallel = mr.architecture(model, self.fam)
        self.post = self.placement == "post"
        self.blocks = mr.get_module(model, self.fam.blocks)
        self.L = len(self.blocks)
        self.H = mr.text_config(model).num_attention_heads
        self.V = mr.text_config(model).vocab_size
        self.cap = mr.final_softcap(model)      # Gemma 2's final_logit_softcapping or None
        with open(os.path.join(mr.REF_DIR, name + ".json")) as f:
            self.sidecar = json.load(f)
        self.npz = np.load(os.path.join(mr.REF_DIR, name + ".npz"))

    def blk(self, i, path):
        return mr.get_module(self.blocks[i], path)


# --------------------------------------------------------------------------------------------
# Interventions as hooks
# --------------------------------------------------------------------------------------------


def replace_first(out, new):
    """Module outputs are a tensor, a tuple or (GPT-1) a list whose first element is the write."""
    if isinstance(out, tuple):
        return (new,) + tuple(out[1:])
    if isinstance(out, list):
        return [new] + list(out[1:])
    return new


def with_hidden(args, kwargs, new):
    """(args, kwargs) with the hidden-state argument replaced (pre-hook return value)."""
    if args:
        return (new,) + tuple(args[1:]), kwargs
    kwargs = dict(kwargs)
    kwargs["hidden_states"] = new
    return args, kwargs


def position_mean(w: torch.Tensor) -> torch.Tensor:
    """Each coordinate replaced by its mean over the positions (dim -2: [1, T, D] or OPT's
    flattened [T, D]); accumulated in float64, stored in the write's dtype."""
    m = w.double().mean(dim=-2, keepdim=True)
    return m.to(w.dtype).expand_as(w).contiguous()


def write_hook(mode):
    def hook(mod, args, out):
        w = mr.first(out)
        new = torch.zeros_like(w) if mode in ("zero", "skip") else position_mean(w)
        return replace_first(out, new)
    return hook


def identity_hook(mod, args, kwargs, out):
    """Make a module (a post-norm) the identity: its output := its input."""
    return replace_first(out, mr.hidden_arg(args, kwargs))


def block_skip_hook(mod, args, kwargs, out):
    """Block output := block input."""
    return replace_first(out, mr.hidden_arg(args, kwargs))


def head_hook(h, H, mode):
    """Zero or mean-replace head h's slice of the output projection's input z [.., T, H*dh]."""
    def hook(mod, args, kwargs):
        z = mr.hidden_arg(args, kwargs)
        d = z.shape[-1] // H
        z = z.clone()
        sl = z[..., h * d:(h + 1) * d]
        z[..., h * d:(h + 1) * d] = 0.0 if mode == "zero" else position_mean(sl)
        return with_hidden(args, kwargs, z)
    return hook


def install(ctx: Ctx, ab: dict) -> list:
    """Register the hooks of one ablation entry; returns the handles."""
    fam, handles = ctx.fam, []
    mode, target = ab["mode"], ab["target"]

    def sublayer(i, which, mode):
        # the write: the module output, or (sandwich / output) the post norm's output
        mod = mr.write_module(ctx.blocks[i], fam, which)
        handles.append(mod.register_forward_hook(write_hook(mode)))
        if mode == "skip" and ctx.post:  # the sublayer's post-norm is skipped too
            norm = ctx.blk(i, fam.ln1 if which == "attn" else fam.ln2)
            handles.append(norm.register_forward_hook(identity_hook, with_kwargs=True))

    for i in ab["layers"]:
        if target in ("block", "joint"):
            if mode == "skip":
                handles.append(ctx.blocks[i].register_forward_hook(block_skip_hook,
                                                                   with_kwargs=True))
            else:  # zero / mean act on both sublayer writes; post-norms still apply
                sublayer(i, "attn", mode)
                sublayer(i, "mlp", mode)
        elif target in ("attn", "mlp"):
            sublayer(i, target, mode)
        elif target == "head":
            o = ctx.blk(i, fam.attn_o)
            handles.append(o.register_forward_pre_hook(head_hook(ab["head"], ctx.H, mode),
                                                       with_kwargs=True))
        else:
            raise ValueError(target)
    return handles


def add_probe(ctx: Ctx, store: dict) -> list:
    """Record (after any intervention hooks) block inputs/outputs, sublayer writes and
    resid_mid, float32 [T, D] with the batch dimension dropped."""
    fam, handles = ctx.fam, []

    def put(name):
        def f(t):
            store[name] = t.detach().reshape(-1, t.shape[-1]).clone()
        return f

    for i, blk in enumerate(ctx.blocks):
        p = f"blocks.{i}."
        handles.append(blk.register_forward_pre_hook(
            lambda m, a, kw, f=put(p + "resid_pre"): f(mr.hidden_arg(a, kw)), with_kwargs=True))
        handles.append(blk.register_forward_hook(
            lambda m, a, out, f=put(p + "resid_post"): f(mr.first(out))))
        handles.append(mr.write_module(blk, fam, "attn").register_forward_hook(
            lambda m, a, out, f=put(p + "attn_out"): f(mr.first(out))))
        handles.append(mr.write_module(blk, fam, "mlp").register_forward_hook(
            lambda m, a, out, f=put(p + "mlp_out"): f(mr.first(out))))
        if not ctx.parallel:
            path, side = mr.resid_mid_point(fam, ctx.placement)
            if side == "output":
                handles.append(ctx.blk(i, path).register_forward_hook(
                    lambda m, a, out, f=put(p + "resid_mid"): f(mr.first(out))))
            else:
                handles.append(ctx.blk(i, path).register_forward_pre_hook(
                    lambda m, a, kw, f=put(p + "resid_mid"): f(mr.hidden_arg(a, kw)),
                    with_kwargs=True))
    return handles


@torch.no_grad()
def forward(ctx: Ctx, tokens, handles_fn=None, store=None) -> torch.Tensor:
    """One full forward pass with the hooks that handles_fn registers; logits [T, V] float32."""
    handles = []
    try:
        if handles_fn is not None:
            handles += handles_fn()
        if store is not None:
            handles += add_probe(ctx, store)
        ids = torch.tensor(tokens, dtype=torch.long)[None, :]
        mr.fresh_rope_state(ctx.model)   # dynamic RoPE: every pass as a fresh model's
        out = ctx.model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return out.logits[0].float()


@torch.no_grad()
def run_from(ctx: Ctx, tokens, k: int, x: torch.Tensor) -> torch.Tensor:
    """Logits when blocks k+1.. run on the stream x [T, D] (the clean resid_pre of block k)."""
    if k == ctx.L - 1:
        return mr.final_read(ctx.model, ctx.fam, x)

    def hook(mod, args, kwargs):
        z = mr.hidden_arg(args, kwargs)
        return with_hidden(args, kwargs, x.reshape(z.shape).to(z.dtype))

    return forward(ctx, tokens, lambda: [ctx.blocks[k + 1].register_forward_pre_hook(
        hook, with_kwargs=True)])


# --------------------------------------------------------------------------------------------
# Metrics (float64 arithmetic on float32 logits, natural logs)
# --------------------------------------------------------------------------------------------


def log_probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.double(), dim=-1)


def kl_rows(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) per row from log-probabilities [T, V] -> [T]."""
    return (lp.exp() * (lp - lq)).sum(dim=-1)


def seq_loss(lq: torch.Tensor, tokens) -> float:
    T = len(tokens)
    nll = [-float(lq[t, int(tokens[t + 1])]) for t in range(T - 1)]
    return sum(nll) / len(nll)


def ablation_metrics(clean: torch.Tensor, abl: torch.Tensor, tokens, clean_loss: float) -> dict:
    lp, lq = log_probs(clean), log_probs(abl)
    kl = kl_rows(lp, lq)
    agree = (abl.argmax(dim=-1) == clean.argmax(dim=-1)).double().mean()
    loss = seq_loss(lq, tokens)
    return {"kl_mean": float(kl.mean()), "kl_last": float(kl[-1]),
            "top1_agreement": float(agree), "loss": loss, "delta_loss": loss - clean_loss}


def top_k(probs_row: torch.Tensor, k: int):
    """Top-k (token, prob) by probability, ties broken by the lower token id."""
    p = probs_row.tolist()
    order = sorted(range(len(p)), key=lambda v: (-p[v], v))[:k]
    return order, [p[v] for v in order]


# --------------------------------------------------------------------------------------------
# Ablation
# --------------------------------------------------------------------------------------------


def ablation_list(ctx: Ctx) -> list:
    abl = []
    for k in range(ctx.L):
        for target in ("block", "attn", "mlp"):
            for mode in ("skip", "zero", "mean"):
                abl.append({"target": target, "layers": [k], "head": None, "mode": mode})
    for k in sorted({0, ctx.L - 1}):
        for h in sorted({0, ctx.H - 1}):
            for mode in ("zero", "mean"):
                abl.append({"target": "head", "layers": [k], "head": h, "mode": mode})
    if ctx.L >= 2:
        abl.append({"target": "joint", "layers": [0, 1], "head": None, "mode": "skip"})
    return abl


def close(a: torch.Tensor, b: torch.Tensor, tol=HOOK_TOL) -> float:
    err = mr.max_rel_err(a, b)
    assert err <= tol, f"rel err {err:.3g} > {tol:g}"
    return err


def check_ablation(ctx, tokens, ab, logits, store, clean_store, checks):
    """Hook-behaviour self-checks of one ablated run."""
    k, mode, target = ab["layers"][0], ab["mode"], ab["target"]
    p = f"blocks.{k}."
    pre = clean_store[p + "resid_pre"]
    # layers below the first ablated one are untouched
    for i in range(min(ab["layers"])):
        checks["below untouched"] = max(checks.get("below untouched", 0.0), close(
            store[f"blocks.{i}.resid_post"], clean_store[f"blocks.{i}.resid_post"]))
    if target == "block" and mode == "skip":
        checks["skip: resid_post = resid_pre"] = max(
            checks.get("skip: resid_post = resid_pre", 0.0), close(store[p + "resid_post"], pre))
        ref = run_from(ctx, tokens, k, pre)
        checks["skip = run from clean resid_pre"] = max(
            checks.get("skip = run from clean resid_pre", 0.0), close(logits, ref))
    if target == "attn" and mode == "skip":
        if ctx.parallel:
            close(store[p + "resid_post"], pre + store[p + "mlp_out"])
        else:
            close(store[p + "resid_mid"], pre)       # post-norm: ln1 skipped too
    if target == "mlp" and mode == "skip" and not ctx.parallel:
        close(store[p + "resid_post"], store[p + "resid_mid"])
    if target in ("attn", "block") and mode == "mean":
        # the attention reads the clean resid_pre, so its mean write is the clean write's mean
        w = clean_store[p + "attn_out"]
        close(store[p + "attn_out"], w.double().mean(0, keepdim=True).expand_as(w).float())
    if target in ("attn", "mlp", "block") and mode == "zero":
        for which in (("attn", "mlp") if target == "block" else (target,)):
            assert float(store[p + which + "_out"].abs().max()) == 0.0
        if ctx.post and target == "attn":
            ln1 = ctx.blk(k, ctx.fam.ln1)
            close(store[p + "resid_mid"], ln1(pre))  # zero: the post-norm still applies


# --------------------------------------------------------------------------------------------
# Logit lens
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def logit_lens(ctx: Ctx, acts: dict, clean: torch.Tensor) -> list:
    lp_final = log_probs(clean)
    final_top = clean.argmax(dim=-1)            # ties -> lower id (first maximum)
    T = clean.shape[0]
    streams = [acts["blocks.0.hook_resid_pre"]] + [
        acts[f"blocks.{i}.hook_resid_post"] for i in range(ctx.L)]
    out = []
    for layer, x in zip(range(-1, ctx.L), streams):
        lg = mr.final_read(ctx.model, ctx.fam, x).float()       # [T, V]
        lq = log_probs(lg)
        kl = kl_rows(lp_final, lq)
        ref = lg.gather(1, final_top[:, None])                   # [T, 1]
        rank = (lg > ref).sum(dim=-1)
        q = lq.exp()
        ent = -(q * lq).sum(dim=-1)
        tops = [top_k(q[t], TOP_K) for t in range(T)]
        if layer == ctx.L - 1:   # the last layer reproduces the logits
            close(lg, clean, 1e-5)
            assert float(kl.abs().max()) < 1e-9, float(kl.abs().max())
            assert int(rank.max()) == 0
        out.append({"layer": layer,
                    "kl_to_final": [float(v) for v in kl],
                    "rank": [int(v) for v in rank],
                    "entropy": [float(v) for v in ent],
                    "top_tokens": [t[0] for t in tops],
                    "top_probs": [t[1] for t in tops]})
    return out


# --------------------------------------------------------------------------------------------
# Decomposition
# --------------------------------------------------------------------------------------------


def frozen_norm(mod: nn.Module, x_in: torch.Tensor):
    """The norm as a linear map with its scale frozen at input x_in [D] (float64):
    LayerNorm c -> (c - mean c) / sigma * w, RMSNorm c -> c / rms * w (Gemma: * (1 + w)); and its
    bias (or None)."""
    x = x_in.double()
    eps = mr.norm_eps(mod)
    is_ln = isinstance(mod, nn.LayerNorm)
    var = x.var(unbiased=False) if is_ln else x.pow(2).mean()
    sigma = math.sqrt(float(var) + eps)
    w = mr.norm_gain(mod)
    w = w.double() if w is not None else torch.ones_like(x)
    b = getattr(mod, "bias", None)
    b = b.detach().double() if b is not None else None

    def f(c):
        return ((c - c.mean()) if is_ln else c) / sigma * w
    return f, b


@torch.no_grad()
def decompose(ctx, acts, norm_in, clean, pos, target, heads) -> dict:
    fam, model = ctx.fam, ctx.model
    comps = []   # [name, detail, write [D] float64, in the current stream space]

    def vec(name):
        return acts[name][pos].double()

    def carry(norm_mod, x_in, name):
        f, b = frozen_norm(norm_mod, x_in)
        for c in comps:
            c[2] = f(c[2])
        if b is not None:
            comps.append([name, False, b.clone()])

    comps.append(["embed", False, vec("hook_embed")])
    if "hook_pos_embed" in acts:
        comps.append(["pos_embed", False, vec("hook_pos_embed")])
    for i in range(ctx.L):
        p = f"blocks.{i}."
        comps.append([p + "attn", False, vec(p + "hook_attn_out")])
        if heads:
            r = acts[p + "attn.hook_result"][pos].double()       # [H, D]
            o = ctx.blk(i, fam.attn_o)
            ob = o.bias.detach().double() if getattr(o, "bias", None) is not None else 0.0
            if fam.ln1_post is not None:
                # sandwich / output: each head (and the bias) carried through the post norm
                # with its scale frozen at the clean run's value at p
                f_post, b_post = frozen_norm(ctx.blk(i, fam.ln1_post), norm_in[p + "ln1_post"][pos])
                assert b_post is None
                r = torch.stack([f_post(r[h]) for h in range(ctx.H)])
                if torch.is_tensor(ob):
                    ob = f_post(ob)
            close(r.sum(dim=0) + ob, comps[-1][2], 1e-5)          # heads + bias = attn write
            for h in range(ctx.H):
                comps.append([f"{p}attn.head{h}", True, r[h].clone()])
        if ctx.post:
            carry(ctx.blk(i, fam.ln1), norm_in[p + "ln1"][pos], p + "ln1.bias")
        comps.append([p + "mlp", False, vec(p + "hook_mlp_out")])
        if ctx.post:
            carry(ctx.blk(i, fam.ln2), norm_in[p + "ln2"][pos], p + "ln2.bias")

    final = acts[f"blocks.{ctx.L - 1}.hook_resid_post"][pos].double()   # before the final norm
    total = sum(c[2] for c in comps if not c[1])
    recon = float((final - total).abs().max())
    assert recon <= REL_TOL * max(1.0, float(final.abs().max())), (ctx.name, recon)
    # the frozen final read: final norm (scale frozen), project_out, unembedding row of target
    fn = mr.get_module(model, fam.final_norm)
    po = mr.get_module(model, fam.project_out)
    U = mr.get_module(model, fam.unembed)
    if fn is not None:
        close(norm_in["ln_final"][pos], acts[f"blocks.{ctx.L - 1}.hook_resid_post"][pos], 0.0)
        f_final, b_final = frozen_norm(fn, norm_in["ln_final"][pos])
    else:
        f_final, b_final = (lambda c: c), None
    if po is not None:
        assert getattr(po, "bias", None) is None
        W_po = po.weight.detach().double()                       # [D_out, D]
    u = U.weight.detach().double()[target]                       # [D_out]

    def after_norm(c):   # c in the space after the final norm -> logit of target
        if po is not None:
            c = W_po @ c
        return float(u @ c)

    logit = float(clean[pos, target])
    summed = logit      # what the attributions sum to
    if ctx.cap is not None:
        # soft-capped (Gemma 2): the attributions sum to the logit before the final cap
        summed = float(mr.final_read(model, fam, acts[f"blocks.{ctx.L - 1}.hook_resid_post"]
                                     [pos:pos + 1], cap=False)[0, target])
        assert abs(ctx.cap * math.tanh(summed / ctx.cap) - logit) <= 1e-5 * max(1.0, abs(logit))
    fnorm = float(final.norm())
    rows = []
    for name, detail, c in comps:
        n = float(c.norm())
        rows.append({"name": name, "detail": detail, "attribution": after_norm(f_final(c)),
                     "norm": n, "cosine": float(c @ final) / (n * fnorm) if n > 0 else None})
    if b_final is not None:
        rows.append({"name": "ln_final.bias", "detail": False,
                     "attribution": after_norm(b_final), "norm": None, "cosine": None})
    ub = getattr(U, "bias", None)
    if ub is not None:
        rows.append({"name": "lm_head.bias", "detail": False,
                     "attribution": float(ub.detach().double()[target]), "norm": None,
                     "cosine": None})
    s = sum(r["attribution"] for r in rows if not r["detail"])
    assert abs(s - summed) <= REL_TOL * max(1.0, abs(summed)), (ctx.name, pos, target, s, summed)
    out = {"position": pos, "target": target, "heads": heads, "logit": logit}
    if ctx.cap is not None:
        out["logit_before_cap"] = summed
    out.update({"reconstruction_error": recon, "components": rows,
                "_sum_error": abs(s - summed)})
    return out


@torch.no_grad()
def norm_inputs(ctx: Ctx, tokens) -> tuple[dict, torch.Tensor]:
    """Clean-run inputs [T, D] of every norm (ln1, ln2 per block, the final norm)."""
    store, handles = {}, []

    def pre(mod, name):
        def f(m, a, kw):
            t = mr.hidden_arg(a, kw)
            store[name] = t.detach().reshape(-1, t.shape[-1]).clone()
        handles.append(mod.register_forward_pre_hook(f, with_kwargs=True))

    for i in range(ctx.L):
        for key in ("ln1", "ln2", "ln1_post", "ln2_post"):
            mod = ctx.blk(i, getattr(ctx.fam, key))
            if mod is not None:
                pre(mod, f"blocks.{i}.{key}")
    fn = mr.get_module(ctx.model, ctx.fam.final_norm)
    if fn is not None:
        pre(fn, "ln_final")
    logits = forward(ctx, tokens, lambda: handles)
    return store, logits


# --------------------------------------------------------------------------------------------


def probe_sequence(ctx: Ctx, s: int, checks: dict, summary: dict) -> dict:
    tokens = [int(t) for t in ctx.sidecar["tokens"][s]]
    T = len(tokens)

    # clean run: make_reference's recorder (and its identities), our plain forward, the npz
    acts, logits_rec, arch = mr.record(ctx.model, ctx.fam, np.array(tokens, dtype=np.int64))
    mr.self_check(ctx.model, ctx.fam, acts, logits_rec, arch, checks)
    clean_store = {}
    clean = forward(ctx, tokens, store=clean_store)
    close(clean, logits_rec)
    close(clean, torch.from_numpy(ctx.npz[f"seq{s}.logits"]))
    assert ctx.npz[f"seq{s}.tokens"].tolist() == tokens
    clean_loss = seq_loss(log_probs(clean), tokens)

    # ablations: every entry is a separate full forward pass
    ablations, by_key = [], {}
    for ab in ablation_list(ctx):
        store = {}
        logits = forward(ctx, tokens, lambda ab=ab: install(ctx, ab), store)
        check_ablation(ctx, tokens, ab, logits, store, clean_store, checks)
        entry = dict(ab, **ablation_metrics(clean, logits, tokens, clean_loss))
        ablations.append(entry)
        by_key[(ab["target"], tuple(ab["layers"]), ab["head"], ab["mode"])] = (entry, logits)
    if not ctx.post:  # pre-norm: zero == skip, for blocks and sublayers
        for k in range(ctx.L):
            for target in ("block", "attn", "mlp"):
                a = by_key[(target, (k,), None, "skip")]
                b = by_key[(target, (k,), None, "zero")]
                close(a[1], b[1])
                for m in ("kl_mean", "kl_last", "top1_agreement", "loss"):
                    assert abs(a[0][m] - b[0][m]) <= 1e-9, (target, k, m)

    lens = logit_lens(ctx, acts, clean)

    norm_in, logits_n = norm_inputs(ctx, tokens)
    close(logits_n, clean, 0.0)
    decomps = []
    top = clean.argmax(dim=-1)
    for pos in DECOMP_POSITIONS:
        p = pos % T
        decomps.append(decompose(ctx, acts, norm_in, clean, p, int(top[p]), False))
    p = T - 1
    other = FIXED_TARGET if int(top[p]) != FIXED_TARGET else FIXED_TARGET + 1
    decomps.append(decompose(ctx, acts, norm_in, clean, p, other, False))
    decomps.append(decompose(ctx, acts, norm_in, clean, p, int(top[p]), True))
    for d in decomps:
        checks["decomposition reconstruction"] = max(
            checks.get("decomposition reconstruction", 0.0), d["reconstruction_error"])
        checks["decomposition sum - logit"] = max(
            checks.get("decomposition sum - logit", 0.0), d.pop("_sum_error"))

    skips = [e["delta_loss"] for e in ablations if e["target"] == "block" and e["mode"] == "skip"]
    summary.setdefault(ctx.name, []).append((T, clean_loss, min(skips), max(skips),
                                             int(np.argmin(skips)), int(np.argmax(skips))))
    return {"sidecar_sequence": s, "tokens": tokens, "clean_loss": clean_loss,
            "ablations": ablations, "lens": lens, "decompositions": decomps}


def main() -> int:
    t0 = time.time()
    print(f"torch {torch.__version__}, transformers {mr.transformers.__version__}")
    names = [spec.name for spec in mr.MODELS]
    args = sys.argv[1:]
    if args:
        assert len(args) == 2 and args[0] == "--only", "usage: make_probe_reference.py [--only a,b]"
        only = args[1].split(",")
        assert set(only) <= set(names), f"unknown models: {sorted(set(only) - set(names))}"
        names = [n for n in names if n in only]
    summary, total = {}, 0
    for name in names:
        ctx = Ctx(name)
        checks = {}
        seqs = [probe_sequence(ctx, s, checks, summary) for s in SEQUENCES]
        doc = {"model": name,
               "norm_placement": ctx.placement, "parallel_residual": ctx.parallel,
               "layers": ctx.L, "heads": ctx.H, "vocab_size": ctx.V,
               **({"final_logit_softcapping": ctx.cap} if ctx.cap is not None else {}),
               "versions": {"torch": torch.__version__,
                            "transformers": mr.transformers.__version__},
               "sequences": seqs}
        text = json.dumps(doc, indent=1) + "\n"
        path = os.path.join(mr.REF_DIR, name + ".probes.json")
        with open(path, "w") as f:
            f.write(text)
        total += len(text)
        worst = ", ".join(f"{k} {v:.1e}" for k, v in sorted(checks.items())
                          if k.startswith(("skip", "decomposition")))
        print(f"{name:18s} {len(text) / 1024:6.1f} KiB  {worst}")
    print("\nclean loss and block-skip delta_loss (min @layer / max @layer):")
    for name, rows in summary.items():
        for T, cl, lo, hi, ilo, ihi in rows:
            print(f"  {name:18s} T={T:2d} clean {cl:.4f}  skip delta min {lo:+.4f} @{ilo}  "
                  f"max {hi:+.4f} @{ihi}")
    print(f"total {total / 1024:.1f} KiB, done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
