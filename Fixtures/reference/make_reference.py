#!/usr/bin/env python3
"""Build StreamLab's tiny Hugging Face fixture models and their residual-stream references.

Run from the repository root:

    /work/venv/bin/python Fixtures/reference/make_reference.py

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded: every model is random-initialised from a config written in this file,
with fixed seeds, and the script only writes below Fixtures/models/ and Fixtures/reference/.
The torch and transformers versions used are printed and recorded in every <name>.json sidecar
and in Fixtures/reference/versions.json.

Outputs
  Fixtures/models/<name>/       config.json + safetensors weights (save_pretrained, or
                                safetensors.torch.save_file for the prefix-less GPT-2)
  Fixtures/reference/<name>.npz uncompressed npz: seq{s}.tokens (int64 [T]), seq{s}.logits
                                (float32 [T, V]) and seq{s}.<hook> (float32, batch dim dropped)
                                for s = 0, 1, 2 (lengths 1, 6, 13)
  Fixtures/reference/<name>.json sidecar: what the model is, versions, hooks, tensor names
  Fixtures/reference/<name>.grads.npz   for every model (GRADIENT_MODELS = all of MODELS):
                                torch autograd gradients of the mean next-token cross-entropy
                                over positions 0..T-2 of sequence 2, with respect to every
                                parameter and every block input (see record_gradients),
                                self-checked with float64 finite differences
                                (check_gradients)

The hook values are recorded with forward hooks / forward pre-hooks on the modules of the
*unprocessed* Hugging Face model (no LayerNorm folding, no centering); nothing is re-implemented.
The family-specific module paths are in FAMILIES below; the models are in MODELS.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import sys
import time
import types
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.pytorch_utils import Conv1D

torch.set_num_threads(1)  # one thread: fast enough here and keeps reductions reproducible
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS_DIR = os.path.join(ROOT, "Fixtures", "models")
REF_DIR = os.path.join(ROOT, "Fixtures", "reference")

SEQ_LENGTHS = (1, 6, 13)
SELF_CHECK_RTOL = 1e-5  # relative to max(1, max|ref|)


# --------------------------------------------------------------------------------------------
# Family tables: where each residual-stream quantity lives in the Hugging Face module tree.
# Paths are relative to the *ForCausalLM model; block-relative paths are relative to one layer.
# A path resolving to None (e.g. OPT's project_in when absent) means "not present".
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    blocks: str                 # nn.ModuleList of layers
    tok_embed: str              # token embedding (nn.Embedding)
    pos_embed: str | None       # learned position embedding, None for rotary
    project_in: str | None      # OPT project_in (applied to the token embedding)
    final_norm: str | None      # final norm ("ln_final"), None when the family has none
    project_out: str | None     # OPT project_out
    unembed: str                # lm_head (NeoX: stored as embed_out.weight on disk)
    attn: str                   # attention module: output[0] = attn_out, output[1] = pattern
    attn_o: str                 # attention output projection (its input gives hook_result)
    mlp_out: str                # module whose output is the MLP write
    mlp_down: str               # MLP down projection (its input is mlp.hook_post)
    ln1: str                    # the attention's norm
    ln2: str                    # the MLP's norm
    norm_placement: str | None = None   # "pre" / "post"; None = read from config (OPT)
    parallel: bool | None = False       # None = read from config (NeoX)


_LLAMA_LIKE = Family(
    blocks="model.layers", tok_embed="model.embed_tokens", pos_embed=None, project_in=None,
    final_norm="model.norm", project_out=None, unembed="lm_head",
    attn="self_attn", attn_o="self_attn.o_proj", mlp_out="mlp", mlp_down="mlp.down_proj",
    ln1="input_layernorm", ln2="post_attention_layernorm", norm_placement="pre")

FAMILIES = {
    "gpt2": Family(
        blocks="transformer.h", tok_embed="transformer.wte", pos_embed="transformer.wpe",
        project_in=None, final_norm="transformer.ln_f", project_out=None, unembed="lm_head",
        attn="attn", attn_o="attn.c_proj", mlp_out="mlp", mlp_down="mlp.c_proj",
        ln1="ln_1", ln2="ln_2", norm_placement="pre"),
    # GPT-1: x -> ln_1(x + attn(x)) -> ln_2(n + mlp(n)); no final norm.
    "openai-gpt": Family(
        blocks="transformer.h", tok_embed="transformer.tokens_embed",
        pos_embed="transformer.positions_embed", project_in=None, final_norm=None,
        project_out=None, unembed="lm_head",
        attn="attn", attn_o="attn.c_proj", mlp_out="mlp", mlp_down="mlp.c_proj",
        ln1="ln_1", ln2="ln_2", norm_placement="post"),
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "gpt_neox": Family(
        blocks="gpt_neox.layers", tok_embed="gpt_neox.embed_in", pos_embed=None, project_in=None,
        final_norm="gpt_neox.final_layer_norm", project_out=None, unembed="lm_head",
        attn="attention", attn_o="attention.dense", mlp_out="mlp", mlp_down="mlp.dense_4h_to_h",
        ln1="input_layernorm", ln2="post_attention_layernorm", norm_placement="pre",
        parallel=None),
    # OPT: per-layer final_layer_norm is the MLP's norm (ln2); OPT has no MLP module, fc2's
    # output is the MLP write. Positions use an offset of 2 inside embed_positions.
    "opt": Family(
        blocks="model.decoder.layers", tok_embed="model.decoder.embed_tokens",
        pos_embed="model.decoder.embed_positions", project_in="model.decoder.project_in",
        final_norm="model.decoder.final_layer_norm", project_out="model.decoder.project_out",
        unembed="lm_head",
        attn="self_attn", attn_o="self_attn.out_proj", mlp_out="fc2", mlp_down="fc2",
        ln1="self_attn_layer_norm", ln2="final_layer_norm", norm_placement=None, parallel=False),
}


# --------------------------------------------------------------------------------------------
# The fixture models
# --------------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    name: str
    model_type: str
    config: dict
    seed: int
    description: str
    disk_dtype: str = "float32"      # "float32" | "float16" | "bfloat16"
    layout: str = "save_pretrained"  # "save_pretrained" | "gpt2_noprefix"
    max_shard_size: str | None = None
    legacy_neox_rope: dict | None = None  # rewrite config.json with these legacy keys
    extra: dict = field(default_factory=dict)


MODELS = [
    ModelSpec(
        name="gpt2", model_type="gpt2", seed=101,
        config=dict(vocab_size=128, n_positions=32, n_embd=48, n_layer=3, n_head=4,
                    activation_function="gelu_new", bos_token_id=127, eos_token_id=127),
        description="GPT-2 layout: pre-norm LayerNorm, learned positions, tanh GELU (gelu_new), "
                    "Conv1D weights stored [in, out], tied unembedding, tensor names with the "
                    "'transformer.' prefix."),
    ModelSpec(
        name="gpt2-noprefix-f16", model_type="gpt2", seed=102, disk_dtype="float16",
        layout="gpt2_noprefix",
        config=dict(vocab_size=112, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                    activation_function="gelu", bos_token_id=111, eos_token_id=111),
        description="GPT-2 with exact (erf) GELU, stored in F16 with tensor names WITHOUT the "
                    "'transformer.' prefix (like the hub's gpt2 repo), no lm_head.weight (tied), "
                    "and the legacy h.{i}.attn.bias causal-mask buffers [1,1,P,P] that real "
                    "checkpoints carry (to be ignored). Reference = F16 weights upcast to F32."),
    ModelSpec(
        name="openai-gpt", model_type="openai-gpt", seed=103,
        config=dict(vocab_size=120, n_positions=32, n_embd=40, n_layer=3, n_head=4, afn="gelu"),
        description="GPT-1 (openai-gpt): post-norm blocks x -> ln_1(x + attn) -> ln_2(n + mlp), "
                    "no final norm, afn 'gelu' which HF maps to the tanh GELU (gelu_new), "
                    "masked scores set to -1e4 (not -inf), tied unembedding."),
    ModelSpec(
        name="llama-gqa", model_type="llama", seed=104,
        config=dict(vocab_size=128, max_position_embeddings=64, hidden_size=64,
                    intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                    num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0,
                    rms_norm_eps=1e-5),
        description="Llama: RMSNorm pre-norm, SwiGLU MLP, rotate-half RoPE (theta 10000), GQA "
                    "(4 query heads, 2 key/value heads), untied lm_head, no biases."),
    ModelSpec(
        name="llama-mqa-bf16", model_type="llama", seed=105, disk_dtype="bfloat16",
        config=dict(vocab_size=100, max_position_embeddings=48, hidden_size=48,
                    intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=1, tie_word_embeddings=True, attention_bias=True,
                    mlp_bias=True, rope_theta=500000.0, rms_norm_eps=1e-6),
        description="Llama stored in BF16: MQA (4 query heads, 1 key/value head), tied "
                    "embeddings, attention_bias (q/k/v/o biases) and mlp_bias (gate/up/down "
                    "biases), rope theta 500000. Reference = BF16 weights upcast to F32."),
    ModelSpec(
        name="mistral", model_type="mistral", seed=106,
        config=dict(vocab_size=96, max_position_embeddings=32, hidden_size=32,
                    intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, sliding_window=4, rope_theta=50000.0,
                    rms_norm_eps=1e-5, tie_word_embeddings=False),
        description="Mistral: head_dim 16 with 4 heads on width 32 (heads*head_dim = 64 != 32), "
                    "GQA 4/2, sliding_window 4 (query q sees keys k with q-4 < k <= q, i.e. "
                    "the last 4 positions including itself), rope theta 50000, untied."),
    ModelSpec(
        name="qwen2", model_type="qwen2", seed=107,
        config=dict(vocab_size=112, max_position_embeddings=32, hidden_size=48,
                    intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0,
                    rms_norm_eps=1e-6, use_sliding_window=False),
        description="Qwen2: q/k/v projections with bias, o_proj without bias, GQA 4/2, tied "
                    "embeddings, rope theta 1e6, no sliding window."),
    ModelSpec(
        name="neox-parallel", model_type="gpt_neox", seed=108,
        config=dict(vocab_size=128, max_position_embeddings=32, hidden_size=48,
                    intermediate_size=96, num_hidden_layers=3, num_attention_heads=3,
                    use_parallel_residual=True, rotary_pct=0.25, rotary_emb_base=30000,
                    hidden_act="gelu", tie_word_embeddings=False),
        legacy_neox_rope=dict(rotary_pct=0.25, rotary_emb_base=30000),
        description="GPT-NeoX with parallel residual (x + attn(ln1(x)) + mlp(ln2(x))), fused "
                    "query_key_value (per-head interleaved [q|k|v] blocks), partial rotary 0.25 "
                    "of head size 16 (4 dims) given by the LEGACY config keys rotary_pct / "
                    "rotary_emb_base (30000), exact GELU, untied unembedding (embed_out on disk)."),
    ModelSpec(
        name="neox-sequential", model_type="gpt_neox", seed=109,
        config=dict(vocab_size=96, max_position_embeddings=32, hidden_size=32,
                    intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                    use_parallel_residual=False,
                    rope_parameters=dict(rope_type="default", rope_theta=20000.0,
                                         partial_rotary_factor=0.5),
                    hidden_act="gelu", tie_word_embeddings=False),
        description="GPT-NeoX with sequential residual (use_parallel_residual false), partial "
                    "rotary 0.5 of head size 16 (8 dims), rope theta 20000, in the spelling the "
                    "installed transformers writes (rope_parameters)."),
    ModelSpec(
        name="opt-pre-sharded", model_type="opt", seed=110, max_shard_size="80KB",
        config=dict(vocab_size=112, max_position_embeddings=32, hidden_size=48, ffn_dim=96,
                    num_hidden_layers=2, num_attention_heads=4, do_layer_norm_before=True,
                    word_embed_proj_dim=48, pad_token_id=1, bos_token_id=2, eos_token_id=2),
        description="OPT pre-norm (do_layer_norm_before true, like OPT-125m): ReLU MLP "
                    "(fc1/fc2), learned positions with offset 2 (embed_positions has "
                    "max_position_embeddings + 2 rows, position t reads row t + 2), final "
                    "LayerNorm, tied lm_head, saved in 3 safetensors shards with "
                    "model.safetensors.index.json. OPT LayerNorm eps is 1e-5 (torch default, "
                    "no config key)."),
    ModelSpec(
        name="opt-post-proj", model_type="opt", seed=111,
        config=dict(vocab_size=128, max_position_embeddings=32, hidden_size=48, ffn_dim=96,
                    num_hidden_layers=2, num_attention_heads=4, do_layer_norm_before=False,
                    word_embed_proj_dim=24, pad_token_id=1, bos_token_id=2, eos_token_id=2),
        description="OPT post-norm (do_layer_norm_before false, like OPT-350m): "
                    "x -> self_attn_layer_norm(x + attn(x)) -> final_layer_norm(n + mlp(n)), no "
                    "final norm, word_embed_proj_dim 24 = hidden/2 so project_in (24->48) and "
                    "project_out (48->24) exist; tied lm_head reads the 24-dim embedding. "
                    "OPT LayerNorm eps is 1e-5 (torch default, no config key)."),
]


# Gradient references: every fixture model gets a <name>.grads.npz.
GRADIENT_MODELS = tuple(spec.name for spec in MODELS)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def get_module(root: nn.Module, path: str | None):
    if path is None:
        return None
    m = root
    for part in path.split("."):
        m = getattr(m, part, None)
        if m is None:
            return None
    return m


def is_norm(mod: nn.Module) -> bool:
    return isinstance(mod, nn.LayerNorm) or type(mod).__name__.endswith("RMSNorm")


def norm_eps(mod: nn.Module) -> float:
    if isinstance(mod, nn.LayerNorm):
        return float(mod.eps)
    return float(getattr(mod, "variance_epsilon", getattr(mod, "eps", None)))


def norm_scale(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The norm's divisor [..., 1]: sigma (LayerNorm) or RMS (RMSNorm), eps included."""
    x64 = x.detach().double()
    eps = norm_eps(mod)
    if isinstance(mod, nn.LayerNorm):
        var = x64.var(dim=-1, unbiased=False, keepdim=True)
    else:
        var = x64.pow(2).mean(dim=-1, keepdim=True)
    return torch.sqrt(var + eps).float()


@torch.no_grad()
def reinit(model: nn.Module, seed: int, d_model: int) -> None:
    """Re-initialise every parameter so that the reference is sensitive to bugs.

    matrices: N(0, (1.4/sqrt(d_model))^2) (std 0.18-0.25 for widths 32-64),
    token embeddings N(0, 0.5^2), position embeddings N(0, 0.3^2),
    norm weights 1 + 0.1 N(0,1), norm and linear biases 0.1 N(0,1).
    Tied parameters are drawn once.
    """
    g = torch.Generator().manual_seed(seed)
    w_std = 1.4 / math.sqrt(d_model)
    seen = set()

    def randn_like(p):
        return torch.randn(p.shape, generator=g, dtype=torch.float32)

    for mod_name, mod in model.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            full = f"{mod_name}.{pname}"
            if is_norm(mod):
                val = (1.0 + 0.1 * randn_like(p)) if pname == "weight" else 0.1 * randn_like(p)
            elif pname == "bias":
                val = 0.1 * randn_like(p)
            elif isinstance(mod, nn.Embedding):
                is_pos = any(k in mod_name for k in ("wpe", "positions_embed", "embed_positions"))
                val = (0.3 if is_pos else 0.5) * randn_like(p)
            elif isinstance(mod, (nn.Linear, Conv1D)):
                val = w_std * randn_like(p)
            else:
                raise RuntimeError(f"unexpected parameter {full} in {type(mod).__name__}")
            p.copy_(val.to(p.dtype))


@torch.no_grad()
def round_to(model: nn.Module, dtype: torch.dtype) -> None:
    """Round every parameter to `dtype` and back, so the F32 model = disk weights upcast."""
    for p in model.parameters():
        p.copy_(p.to(dtype).to(torch.float32))


def savez_deterministic(path: str, arrays: dict) -> None:
    """Same file layout as np.savez (uncompressed zip of .npy members), fixed timestamps so
    that rerunning the script gives byte-identical files."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


def max_rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    got, ref = got.detach().double(), ref.detach().double()
    return float((got - ref).abs().max() / max(1.0, float(ref.abs().max())))


def check(label: str, got: torch.Tensor, ref: torch.Tensor, checks: dict, tol=SELF_CHECK_RTOL):
    err = max_rel_err(got, ref)
    checks[label] = max(checks.get(label, 0.0), err)
    assert err <= tol, f"self-check failed: {label}: rel err {err:.3g} > {tol:g}"


# --------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------


def first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def hidden_arg(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def architecture(model: nn.Module, fam: Family):
    cfg = model.config
    placement = fam.norm_placement
    if placement is None:  # OPT
        placement = "pre" if cfg.do_layer_norm_before else "post"
    parallel = fam.parallel
    if parallel is None:  # NeoX
        parallel = bool(cfg.use_parallel_residual)
    return placement, parallel


@torch.no_grad()
def record(model: nn.Module, fam: Family, tokens: np.ndarray):
    """Run one sequence and return ({hook name: float32 tensor, batch dim dropped}, logits)."""
    placement, parallel = architecture(model, fam)
    blocks = get_module(model, fam.blocks)
    n_layers = len(blocks)
    T = len(tokens)
    acts: dict[str, torch.Tensor] = {}
    handles = []

    def put(name, value):
        assert name not in acts, f"{name} recorded twice"
        acts[name] = value.detach().float().clone()

    def stream(x):  # [1, T, D] (or OPT's flattened [T, D]) -> [T, D]
        return x.reshape(T, x.shape[-1])

    def on_output(mod, name):
        handles.append(mod.register_forward_hook(lambda m, a, out: put(name, stream(first(out)))))

    def on_input(mod, name):
        handles.append(mod.register_forward_pre_hook(
            lambda m, a, kw: put(name, stream(hidden_arg(a, kw))), with_kwargs=True))

    def on_norm_scale(mod, name):
        handles.append(mod.register_forward_pre_hook(
            lambda m, a, kw: put(name, norm_scale(m, hidden_arg(a, kw)).reshape(T, 1)),
            with_kwargs=True))

    # embeddings
    tok = get_module(model, fam.tok_embed)
    proj_in = get_module(model, fam.project_in)
    on_output(proj_in if proj_in is not None else tok, "hook_embed")
    pos = get_module(model, fam.pos_embed)
    if pos is not None:
        on_output(pos, "hook_pos_embed")

    for i, blk in enumerate(blocks):
        p = f"blocks.{i}."
        on_input(blk, p + "hook_resid_pre")
        on_output(blk, p + "hook_resid_post")
        attn = get_module(blk, fam.attn)
        on_output(attn, p + "hook_attn_out")
        handles.append(attn.register_forward_hook(
            lambda m, a, out, name=p + "attn.hook_pattern": acts.__setitem__(
                name, out[1].detach().float()[0])))
        on_output(get_module(blk, fam.mlp_out), p + "hook_mlp_out")
        on_input(get_module(blk, fam.mlp_down), p + "mlp.hook_post")
        ln1, ln2 = get_module(blk, fam.ln1), get_module(blk, fam.ln2)
        on_norm_scale(ln1, p + "ln1.hook_scale")
        on_norm_scale(ln2, p + "ln2.hook_scale")
        if not parallel:
            if placement == "pre":
                on_input(ln2, p + "hook_resid_mid")
            else:
                on_output(ln1, p + "hook_resid_mid")

        # per-head writes: z (input of the output projection) restricted to head h's slice,
        # times that slice of the projection weight, no bias.
        o = get_module(blk, fam.attn_o)
        if isinstance(o, Conv1D):
            W = o.weight.detach()          # [in, out]
        else:
            W = o.weight.detach().t()      # nn.Linear stores [out, in]
        n_heads = model.config.num_attention_heads

        def result_hook(m, a, kw, name=p + "attn.hook_result", W=W, H=n_heads):
            z = hidden_arg(a, kw).detach().reshape(T, -1)
            d = z.shape[-1] // H
            per_head = torch.stack(
                [z[:, h * d:(h + 1) * d] @ W[h * d:(h + 1) * d, :] for h in range(H)], dim=1)
            put(name, per_head)        # [T, H, D]
        handles.append(o.register_forward_pre_hook(result_hook, with_kwargs=True))

    fn = get_module(model, fam.final_norm)
    if fn is not None:
        on_norm_scale(fn, "ln_final.hook_scale")
        on_output(fn, "ln_final.hook_normalized")

    try:
        ids = torch.tensor(tokens, dtype=torch.long)[None, :]
        out = model(input_ids=ids, output_attentions=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()

    logits = out.logits[0].float()
    # the official output_attentions route must agree with the module-output hook
    assert out.attentions is not None and len(out.attentions) == n_layers
    for i, a in enumerate(out.attentions):
        assert torch.equal(a[0].float(), acts[f"blocks.{i}.attn.hook_pattern"])
    return acts, logits, (placement, parallel)


@torch.no_grad()
def final_read(model: nn.Module, fam: Family, x: torch.Tensor) -> torch.Tensor:
    for path in (fam.final_norm, fam.project_out, fam.unembed):
        m = get_module(model, path)
        if m is not None:
            x = m(x)
    return x


@torch.no_grad()
def self_check(model, fam, acts, logits, arch, checks):
    placement, parallel = arch
    blocks = get_module(model, fam.blocks)
    pos = acts.get("hook_pos_embed")
    emb = acts["hook_embed"] + (pos if pos is not None else 0)
    check("resid_pre0 = embed + pos_embed", acts["blocks.0.hook_resid_pre"], emb, checks)
    for i, blk in enumerate(blocks):
        p = f"blocks.{i}."
        pre, post = acts[p + "hook_resid_pre"], acts[p + "hook_resid_post"]
        attn_out, mlp_out = acts[p + "hook_attn_out"], acts[p + "hook_mlp_out"]
        if i > 0:
            assert torch.equal(pre, acts[f"blocks.{i-1}.hook_resid_post"])
        if placement == "pre":
            check("resid_post = resid_pre + attn_out + mlp_out", post, pre + attn_out + mlp_out,
                  checks)
            if not parallel:
                check("resid_mid = resid_pre + attn_out", acts[p + "hook_resid_mid"],
                      pre + attn_out, checks)
        else:
            ln1, ln2 = get_module(blk, fam.ln1), get_module(blk, fam.ln2)
            mid = acts[p + "hook_resid_mid"]
            check("post-norm: resid_mid = ln1(resid_pre + attn_out)", mid,
                  ln1(pre + attn_out), checks)
            check("post-norm: resid_post = ln2(resid_mid + mlp_out)", post,
                  ln2(mid + mlp_out), checks)
        # heads + output bias = attention write
        o = get_module(blk, fam.attn_o)
        bias = o.bias if getattr(o, "bias", None) is not None else 0
        check("sum_h hook_result + o bias = attn_out",
              acts[p + "attn.hook_result"].sum(dim=1) + bias, attn_out, checks)
        pat = acts[p + "attn.hook_pattern"]
        T = pat.shape[-1]
        check("pattern rows sum to 1", pat.sum(-1), torch.ones_like(pat.sum(-1)), checks)
        assert float(pat.triu(diagonal=1).abs().max()) == 0.0, "pattern is not causal"
    last = acts[f"blocks.{len(blocks)-1}.hook_resid_post"]
    check("final_read(last resid_post) = logits", final_read(model, fam, last), logits, checks)
    if "ln_final.hook_normalized" in acts:
        fnm = get_module(model, fam.final_norm)
        check("ln_final.hook_normalized = ln_final(last resid_post)",
              acts["ln_final.hook_normalized"], fnm(last), checks)


def record_gradients(model: nn.Module, fam: Family, tokens: np.ndarray) -> dict:
    """torch autograd on one sequence: the loss (mean next-token cross-entropy over positions
    0..T-2, i.e. cross_entropy(logits[:-1], tokens[1:])), its gradient with respect to every
    parameter (named as model.named_parameters() gives them; a tied lm_head is the embedding and
    appears once, its gradient the sum of both uses) and with respect to every block input
    (hook_resid_pre, kept with retain_grad on the tensor a forward pre-hook sees).

    npz keys: tokens (int64 [T]), loss (float32 []), grad.<parameter name> (float32, the
    parameter's shape) and grad.blocks.{i}.hook_resid_pre (float32 [T, D])."""
    model.zero_grad(set_to_none=True)
    blocks = get_module(model, fam.blocks)
    inputs, handles = {}, []
    T = len(tokens)

    def keep(i):
        def hook(m, a, kw):
            x = hidden_arg(a, kw)
            x.retain_grad()
            inputs[i] = x
        return hook

    for i, blk in enumerate(blocks):
        handles.append(blk.register_forward_pre_hook(keep(i), with_kwargs=True))
    try:
        ids = torch.tensor(tokens, dtype=torch.long)[None, :]
        logits = model(input_ids=ids, use_cache=False).logits[0]
        loss = nn.functional.cross_entropy(logits[:-1].float(), ids[0, 1:])
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    out = {"tokens": tokens, "loss": np.array(loss.item(), dtype=np.float32)}
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        out[f"grad.{name}"] = p.grad.detach().numpy().astype(np.float32)
    for i in range(len(blocks)):
        out[f"grad.blocks.{i}.hook_resid_pre"] = inputs[i].grad.detach().reshape(T, -1).numpy().astype(np.float32)
    model.zero_grad(set_to_none=True)
    return out


GRAD_CHECK_STEP = 1e-5  # central-difference step of the float64 gradient self-check
GRAD_CHECK_RTOL = 1e-5  # its tolerance, relative to max(1, max|gradient of that array|)


def _rms_norm_float64(self, x: torch.Tensor) -> torch.Tensor:
    """HF's RMSNorm formula (weight * x / sqrt(mean(x^2) + eps)) without its float32 upcast."""
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps(self)))


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of the model that really computes in float64. HF's Llama / Mistral / Qwen2
    RMSNorm casts its input to float32; those forwards are replaced by the same formula in
    float64 (checked against the original on a random input). The attention softmax, which
    several families call with dtype=torch.float32, is handled by float64_softmax().
    (Rotary cos/sin tables are computed in float32 from positions only: constants, the same in
    the float32 model.) Tied parameters stay tied (deepcopy keeps the sharing)."""
    m64 = copy.deepcopy(model).double()
    g = torch.Generator().manual_seed(0)
    for mod in m64.modules():
        if type(mod).__name__.endswith("RMSNorm"):
            x = torch.randn(3, mod.weight.shape[-1], generator=g, dtype=torch.float64)
            want = mod(x)
            mod.forward = types.MethodType(_rms_norm_float64, mod)
            assert max_rel_err(mod(x), want) <= 1e-6, type(mod).__name__
    return m64


@contextlib.contextmanager
def float64_softmax():
    """While active, nn.functional.softmax ignores dtype= for float64 inputs (the float32
    upcast of the attention softmax in the Llama, Mistral, Qwen2, GPT-NeoX and OPT code)."""
    orig = nn.functional.softmax

    def softmax(input, dim=None, _stacklevel=3, dtype=None):
        if input.dtype == torch.float64:
            dtype = None
        return orig(input, dim=dim, _stacklevel=_stacklevel, dtype=dtype)

    nn.functional.softmax = softmax
    try:
        yield
    finally:
        nn.functional.softmax = orig


def check_gradients(model: nn.Module, fam: Family, grads: dict, tokens: np.ndarray) -> float:
    """Self-check of the recorded gradients with central differences (step GRAD_CHECK_STEP) of
    the loss of a float64 copy of the model (float64_copy: float64 throughout, so a small step
    is exact enough and does not straddle ReLU kinks as a large one does in OPT).

    First asserts that the npz has exactly one gradient per named parameter (with the
    parameter's shape) and per block input. Then, for EVERY parameter and EVERY block input
    (hook_resid_pre), checks 3 random entries and the entry with the largest |gradient|. A block
    input is perturbed by a forward pre-hook that adds h to one entry of the tensor the block
    receives. Returns the worst error relative to max(1, max|gradient of that array|) and
    asserts it is <= GRAD_CHECK_RTOL (observed ~1e-6: the float32 rounding of autograd)."""
    params = dict(model.named_parameters())
    n_layers = len(get_module(model, fam.blocks))
    expected = ({f"grad.{n}" for n in params}
                | {f"grad.blocks.{i}.hook_resid_pre" for i in range(n_layers)})
    got = {k for k in grads if k.startswith("grad.")}
    assert got == expected, f"gradient keys differ: {sorted(got ^ expected)}"
    for n, p in params.items():
        assert grads[f"grad.{n}"].shape == tuple(p.shape), n

    m64 = float64_copy(model)
    ids = torch.tensor(tokens, dtype=torch.long)[None, :]
    bump = {}  # block index -> (flat index, step) added to that block's input

    def perturb(i):
        def hook(m, a, kw):
            if i not in bump:
                return None
            k, h = bump[i]
            x = hidden_arg(a, kw).clone(memory_format=torch.contiguous_format)
            x.view(-1)[k] += h
            if a:
                return (x,) + tuple(a[1:]), kw
            return a, {**kw, "hidden_states": x}
        return hook

    @torch.no_grad()
    def loss_of():
        logits = m64(input_ids=ids, use_cache=False).logits[0]
        return float(nn.functional.cross_entropy(logits[:-1], ids[0, 1:]))

    def central(set_offset):
        h = GRAD_CHECK_STEP
        set_offset(h)
        up = loss_of()
        set_offset(-h)
        down = loss_of()
        set_offset(0.0)
        return (up - down) / (2 * h)

    g = torch.Generator().manual_seed(0)

    def entries(ref):
        return torch.randint(0, ref.size, (3,), generator=g).tolist() + [int(np.abs(ref).argmax())]

    worst = 0.0
    handles = [blk.register_forward_pre_hook(perturb(i), with_kwargs=True)
               for i, blk in enumerate(get_module(m64, fam.blocks))]
    try:
        with float64_softmax():
            for name, p in sorted(m64.named_parameters()):
                ref = grads[f"grad.{name}"].reshape(-1)
                flat = p.data.view(-1)
                for k in entries(ref):
                    saved = float(flat[k])

                    def set_param(h, flat=flat, k=k, saved=saved):
                        flat[k] = saved + h
                    err = abs(central(set_param) - float(ref[k]))
                    worst = max(worst, err / max(1.0, float(np.abs(ref).max())))
            for i in range(n_layers):
                ref = grads[f"grad.blocks.{i}.hook_resid_pre"].reshape(-1)
                for k in entries(ref):
                    def set_input(h, i=i, k=k):
                        if h == 0.0:
                            bump.pop(i, None)
                        else:
                            bump[i] = (k, h)
                    err = abs(central(set_input) - float(ref[k]))
                    worst = max(worst, err / max(1.0, float(np.abs(ref).max())))
    finally:
        for h in handles:
            h.remove()
    assert worst <= GRAD_CHECK_RTOL, f"gradient self-check failed: {worst:.3g}"
    return worst


# --------------------------------------------------------------------------------------------
# Building and saving
# --------------------------------------------------------------------------------------------


def make_model(spec: ModelSpec) -> nn.Module:
    cfg = AutoConfig.for_model(spec.model_type, **spec.config)
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager",
                                             dtype=torch.float32)
    model.eval()
    d_model = getattr(cfg, "hidden_size", None) or cfg.n_embd
    reinit(model, spec.seed, d_model)
    if spec.disk_dtype != "float32":
        round_to(model, DTYPES[spec.disk_dtype])
    return model


def save_model(spec: ModelSpec, model: nn.Module, out_dir: str) -> None:
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    disk = DTYPES[spec.disk_dtype]
    if spec.layout == "gpt2_noprefix":
        # like the hub's gpt2 repo: no "transformer." prefix, no lm_head.weight (tied), and the
        # old causal-mask buffers h.{i}.attn.bias [1, 1, n_positions, n_positions].
        sd = {}
        for k, v in model.state_dict().items():
            if k == "lm_head.weight":
                continue
            assert k.startswith("transformer."), k
            sd[k[len("transformer."):]] = v.detach().to(disk).contiguous()
        P = model.config.n_positions
        mask = torch.tril(torch.ones(P, P, dtype=disk)).view(1, 1, P, P)
        for i in range(model.config.n_layer):
            sd[f"h.{i}.attn.bias"] = mask.clone()
        save_file(dict(sorted(sd.items())), os.path.join(out_dir, "model.safetensors"),
                  metadata={"format": "pt"})
        cfg = copy.deepcopy(model.config)
        cfg.dtype = disk
        cfg.architectures = ["GPT2LMHeadModel"]
        cfg.save_pretrained(out_dir)
    else:
        m = model if disk == torch.float32 else copy.deepcopy(model).to(disk)
        kw = {}
        if spec.max_shard_size:
            kw["max_shard_size"] = spec.max_shard_size
        m.save_pretrained(out_dir, **kw)
    if spec.legacy_neox_rope:
        path = os.path.join(out_dir, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        for k in ("rope_parameters", "rope_scaling", "rope_theta", "partial_rotary_factor"):
            cfg.pop(k, None)
        cfg.update(spec.legacy_neox_rope)
        with open(path, "w") as f:
            json.dump(dict(sorted(cfg.items())), f, indent=2)
            f.write("\n")


def tensor_listing(out_dir: str) -> dict:
    files = sorted(f for f in os.listdir(out_dir) if f.endswith(".safetensors"))
    listing = {}
    for fname in files:
        with safe_open(os.path.join(out_dir, fname), framework="pt") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                listing[k] = {"dtype": sl.get_dtype(), "shape": list(sl.get_shape()),
                              "file": fname}
    return dict(sorted(listing.items()))


@torch.no_grad()
def verify_reload(spec: ModelSpec, model: nn.Module, out_dir: str, seqs, ref_logits) -> None:
    """The saved directory must load in transformers (as F32) to the same model."""
    re, info = AutoModelForCausalLM.from_pretrained(
        out_dir, attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    re.eval()
    assert not info["missing_keys"], f"{spec.name}: missing keys {info['missing_keys']}"
    assert not info["mismatched_keys"], f"{spec.name}: mismatched {info['mismatched_keys']}"
    expected_unexpected = set()
    if spec.layout == "gpt2_noprefix":
        expected_unexpected = {f"h.{i}.attn.bias" for i in range(model.config.n_layer)}
        expected_unexpected |= {"transformer." + k for k in expected_unexpected}
    assert set(info["unexpected_keys"]) <= expected_unexpected, info["unexpected_keys"]
    sd0, sd1 = model.state_dict(), re.state_dict()
    assert set(sd0) == set(sd1), set(sd0) ^ set(sd1)
    for k in sd0:
        assert torch.equal(sd0[k], sd1[k]), f"{spec.name}: {k} differs after reload"
    if spec.legacy_neox_rope:
        rp = re.config.rope_parameters
        assert rp["rope_theta"] == spec.legacy_neox_rope["rotary_emb_base"], rp
        assert rp["partial_rotary_factor"] == spec.legacy_neox_rope["rotary_pct"], rp
        assert rp == model.config.rope_parameters, (rp, model.config.rope_parameters)
    for toks, ref in zip(seqs, ref_logits):
        got = re(input_ids=torch.tensor(toks)[None], use_cache=False).logits[0]
        # same weights; only kernel choice (e.g. memory layout of loaded tensors) may differ
        err = max_rel_err(got, ref)
        assert err <= 1e-6, f"{spec.name}: reloaded logits differ by {err:.3g}"


def attention_stats(acts) -> float:
    """Mean over (layer, head) of max attention prob of the last query (longest sequence)."""
    vals = [float(v[:, -1, :].max(dim=-1).values.mean())
            for k, v in acts.items() if k.endswith("attn.hook_pattern")]
    return sum(vals) / len(vals)


def hook_order(names, n_layers):
    """Stable, readable order: embeddings, then block by block, then final norm."""
    per_block = ["hook_resid_pre", "ln1.hook_scale", "attn.hook_pattern", "attn.hook_result",
                 "hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "mlp.hook_post",
                 "hook_mlp_out", "hook_resid_post"]
    order = [n for n in ("hook_embed", "hook_pos_embed") if n in names]
    for i in range(n_layers):
        order += [f"blocks.{i}.{n}" for n in per_block if f"blocks.{i}.{n}" in names]
    order += [n for n in ("ln_final.hook_scale", "ln_final.hook_normalized") if n in names]
    assert set(order) == set(names), set(order) ^ set(names)
    return order


def arch_summary(model) -> dict:
    c = model.config
    keys = ["model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "intermediate_size", "ffn_dim", "n_inner",
            "max_position_embeddings", "hidden_act", "activation_function", "afn",
            "layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps", "rope_parameters",
            "sliding_window", "use_parallel_residual", "do_layer_norm_before",
            "word_embed_proj_dim", "tie_word_embeddings", "attention_bias", "mlp_bias"]
    out = {}
    for k in keys:
        if hasattr(c, k):
            v = getattr(c, k)
            if v is not None:
                out[k] = v
    return out


# --------------------------------------------------------------------------------------------


def main() -> int:
    t0 = time.time()
    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"numpy {np.__version__}")
    os.makedirs(MODELS_DIR, exist_ok=True)
    os.makedirs(REF_DIR, exist_ok=True)

    for spec in MODELS:
        fam = FAMILIES[spec.model_type]
        model = make_model(spec)
        cfg = model.config
        V = cfg.vocab_size
        max_pos = getattr(cfg, "max_position_embeddings", None) or cfg.n_positions
        lengths = [min(T, max_pos) for T in SEQ_LENGTHS]
        rng = np.random.RandomState(spec.seed)
        seqs = [rng.randint(0, V, size=T).astype(np.int64) for T in lengths]

        arrays, checks, all_logits, names = {}, {}, [], None
        attn_peak = None
        for s, toks in enumerate(seqs):
            acts, logits, arch = record(model, fam, toks)
            self_check(model, fam, acts, logits, arch, checks)
            assert torch.isfinite(logits).all(), f"{spec.name}: non-finite logits"
            for k, v in acts.items():
                assert torch.isfinite(v).all(), f"{spec.name}: non-finite {k}"
            order = hook_order(list(acts), cfg.num_hidden_layers)
            if names is None:
                names = order
            assert order == names
            arrays[f"seq{s}.tokens"] = toks
            arrays[f"seq{s}.logits"] = logits.numpy().astype(np.float32)
            for k in order:
                arrays[f"seq{s}.{k}"] = acts[k].numpy().astype(np.float32)
            all_logits.append(logits)
            if s == len(seqs) - 1:
                attn_peak = attention_stats(acts)
                logit_std = float(logits.std())
        assert logit_std > 0.5, f"{spec.name}: logits too small (std {logit_std})"
        T_last = lengths[-1]
        assert attn_peak > 2.0 / T_last, f"{spec.name}: attention too uniform ({attn_peak})"

        out_dir = os.path.join(MODELS_DIR, spec.name)
        save_model(spec, model, out_dir)
        verify_reload(spec, model, out_dir, seqs, all_logits)

        savez_deterministic(os.path.join(REF_DIR, spec.name + ".npz"), arrays)
        grad_check = grad_loss = None
        if spec.name in GRADIENT_MODELS:
            grads = record_gradients(model, fam, seqs[-1])
            grad_check = check_gradients(model, fam, grads, seqs[-1])
            grad_loss = float(grads["loss"])
            savez_deterministic(os.path.join(REF_DIR, spec.name + ".grads.npz"), grads)
        placement, parallel = architecture(model, fam)
        with open(os.path.join(out_dir, "config.json")) as f:
            disk_config = json.load(f)
        sidecar = {
            "name": spec.name,
            "model_type": spec.model_type,
            "architectures": disk_config.get("architectures"),
            "dtype_on_disk": spec.disk_dtype,
            "reference_dtype": "float32" + ("" if spec.disk_dtype == "float32"
                                            else f" (the {spec.disk_dtype} weights upcast)"),
            "versions": versions,
            "seed": spec.seed,
            "sequence_lengths": lengths,
            "tokens": [t.tolist() for t in seqs],
            "norm_placement": placement,
            "parallel_residual": parallel,
            "hooks": names,
            "description": spec.description,
            "architecture": arch_summary(model),
            "config_json": disk_config,
            "tensors": tensor_listing(out_dir),
            "self_check_max_rel_err": {k: float(f"{v:.3g}") for k, v in sorted(checks.items())},
            **({"gradient_reference": {
                "file": spec.name + ".grads.npz", "sequence": 2, "tokens": seqs[-1].tolist(),
                "loss": "mean next-token cross-entropy over positions 0..T-2",
                "float64_finite_difference_max_rel_err": float(f"{grad_check:.3g}")}}
               if grad_check is not None else {}),
            "stats": {"logits_std_seq2": round(logit_std, 4),
                      "mean_max_attention_prob_last_query_seq2": round(attn_peak, 4)},
        }
        with open(os.path.join(REF_DIR, spec.name + ".json"), "w") as f:
            json.dump(sidecar, f, indent=2)
            f.write("\n")
        print(f"{spec.name:18s} {spec.model_type:10s} {spec.disk_dtype:8s} "
              f"{len(names):3d} hooks  logits std {logit_std:6.3f}  "
              f"attn peak {attn_peak:.3f} (uniform {1/T_last:.3f})  "
              f"worst self-check {max(checks.values()):.2e}")
        if grad_check is not None:
            print(f"{'':18s} gradients: loss {grad_loss:.6f}  "
                  f"worst float64 finite-difference error {grad_check:.2e}")

    with open(os.path.join(REF_DIR, "versions.json"), "w") as f:
        json.dump(versions, f, indent=2)
        f.write("\n")
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
