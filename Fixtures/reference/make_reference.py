#!/usr/bin/env python3
"""Build StreamLab's tiny Hugging Face fixture models and their residual-stream references.

Run from the repository root:

    /work/venv/bin/python Fixtures/reference/make_reference.py                 # every model
    /work/venv/bin/python Fixtures/reference/make_reference.py --only gemma,phi  # just these

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded: every model is random-initialised from a config written in this file,
with fixed seeds, and the script only writes below Fixtures/models/ and Fixtures/reference/.
The torch and transformers versions used are printed and recorded in every <name>.json sidecar
and in Fixtures/reference/versions.json.

Outputs
  Fixtures/models/<name>/       config.json + safetensors weights (save_pretrained, or
                                safetensors.torch.save_file for the prefix-less GPT-2 and for
                                the hub layout of Gemma3ForConditionalGeneration; config.json
                                rewritten into a legacy spelling where a spec asks for it)
  Fixtures/reference/<name>.npz uncompressed npz: seq{s}.tokens (int64 [T]), seq{s}.logits
                                (float32 [T, V]) and seq{s}.<hook> (float32, batch dim dropped)
                                for s = 0, 1, 2 (lengths 1, 6, 13)
  Fixtures/reference/<name>.json sidecar: what the model is, versions, hooks, tensor names
  Fixtures/reference/<name>.grads.npz   for every model (GRADIENT_MODELS = all of MODELS):
                                torch autograd gradients of the mean next-token cross-entropy
                                over positions 0..T-2 of sequence 2, with respect to every
                                parameter and every block input (see record_gradients),
                                self-checked with float64 finite differences
                                (check_gradients); parameter keys of the later fixtures are the
                                checkpoint's tensor names (grad_name)

The hook values are recorded with forward hooks / forward pre-hooks on the modules of the
*unprocessed* Hugging Face model (no LayerNorm folding, no centering); nothing is re-implemented.
The family-specific module paths are in FAMILIES below; the models are in MODELS. Norm
placements: "pre" x + f(norm(x)); "post" norm(x + f(x)); "sandwich" (Gemma 2/3)
x + norm_post(f(norm_pre(x))); "output" (OLMo 2) x + norm_post(f(x)); for the last two the
writes hook_attn_out / hook_mlp_out are the post norms' outputs and attn.hook_result is taken
before the post norm.
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
    ln1: str | None             # the attention's (input) norm; None: none (OLMo 2)
    ln2: str | None             # the MLP's (input) norm; None: none (OLMo 2, one-norm parallel)
    norm_placement: str | None = None   # "pre" / "post" / "sandwich" / "output";
                                        # None = read from config (OPT)
    parallel: bool | None = False       # None = read from config (NeoX)
    ln1_post: str | None = None  # sandwich / output: norm applied to the attention output
    ln2_post: str | None = None  # sandwich / output: norm applied to the MLP output


_LLAMA_LIKE = Family(
    blocks="model.layers", tok_embed="model.embed_tokens", pos_embed=None, project_in=None,
    final_norm="model.norm", project_out=None, unembed="lm_head",
    attn="self_attn", attn_o="self_attn.o_proj", mlp_out="mlp", mlp_down="mlp.down_proj",
    ln1="input_layernorm", ln2="post_attention_layernorm", norm_placement="pre")

_GEMMA_SANDWICH = Family(
    blocks="model.layers", tok_embed="model.embed_tokens", pos_embed=None, project_in=None,
    final_norm="model.norm", project_out=None, unembed="lm_head",
    attn="self_attn", attn_o="self_attn.o_proj", mlp_out="mlp", mlp_down="mlp.down_proj",
    ln1="input_layernorm", ln2="pre_feedforward_layernorm", norm_placement="sandwich",
    ln1_post="post_attention_layernorm", ln2_post="post_feedforward_layernorm")

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
    # Gemma 1 (pre-norm like Llama; the (1 + w) RMSNorm and the sqrt(D) embedding scale live
    # inside the modules), Qwen3 (q_norm / k_norm inside the attention), Phi-3 (fused qkv_proj and
    # gate_up_proj inside the modules): the Llama paths.
    "gemma": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "phi3": _LLAMA_LIKE,
    # Gemma 2 / Gemma 3: sandwich norms x + post(f(pre(x))).
    "gemma2": _GEMMA_SANDWICH,
    "gemma3_text": _GEMMA_SANDWICH,
    # Gemma3ForConditionalGeneration: the same text tower under model.language_model.
    "gemma3": Family(
        blocks="model.language_model.layers", tok_embed="model.language_model.embed_tokens",
        pos_embed=None, project_in=None, final_norm="model.language_model.norm",
        project_out=None, unembed="lm_head", attn="self_attn", attn_o="self_attn.o_proj",
        mlp_out="mlp", mlp_down="mlp.down_proj", ln1="input_layernorm",
        ln2="pre_feedforward_layernorm", norm_placement="sandwich",
        ln1_post="post_attention_layernorm", ln2_post="post_feedforward_layernorm"),
    # OLMo 2: output norms x + post(f(x)), no input norms.
    "olmo2": Family(
        blocks="model.layers", tok_embed="model.embed_tokens", pos_embed=None, project_in=None,
        final_norm="model.norm", project_out=None, unembed="lm_head",
        attn="self_attn", attn_o="self_attn.o_proj", mlp_out="mlp", mlp_down="mlp.down_proj",
        ln1=None, ln2=None, norm_placement="output",
        ln1_post="post_attention_layernorm", ln2_post="post_feedforward_layernorm"),
    # GPT-J: parallel block with ONE norm: x + attn(ln_1(x)) + mlp(ln_1(x)).
    "gptj": Family(
        blocks="transformer.h", tok_embed="transformer.wte", pos_embed=None, project_in=None,
        final_norm="transformer.ln_f", project_out=None, unembed="lm_head",
        attn="attn", attn_o="attn.out_proj", mlp_out="mlp", mlp_down="mlp.fc_out",
        ln1="ln_1", ln2=None, norm_placement="pre", parallel=True),
    # Phi (Phi-2 layout): parallel block with one norm, like GPT-J.
    "phi": Family(
        blocks="model.layers", tok_embed="model.embed_tokens", pos_embed=None, project_in=None,
        final_norm="model.final_layernorm", project_out=None, unembed="lm_head",
        attn="self_attn", attn_o="self_attn.dense", mlp_out="mlp", mlp_down="mlp.fc2",
        ln1="input_layernorm", ln2=None, norm_placement="pre", parallel=True),
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
    # rewrite config.json into a legacy spelling that transformers still reads:
    # {"section": None | "text_config", "drop": [keys], "set": {key: value}}
    legacy_config: dict | None = None
    feature_report: bool = False  # sidecar "features": rope tables, windows, soft-caps


# RoPE scaling factors of the LongRoPE fixtures (one per rotary frequency).
PHI3_SHORT = [1.02, 1.08, 1.17, 1.3, 1.48, 1.72, 2.05, 2.5]
PHI3_LONG = [1.25, 1.8, 2.6, 3.7, 5.2, 7.1, 9.6, 12.8]
PHI4_SHORT = [1.05, 1.1, 1.2, 1.4, 1.7, 2.1]
PHI4_LONG = [1.5, 2.0, 3.0, 4.5, 7.0, 10.0]


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

    # ---------------------------------------------------------------------------------------
    # RoPE scaling variants (Llama)
    ModelSpec(
        name="llama3-rope", model_type="llama", seed=112, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=128, hidden_size=32,
                    intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                    rms_norm_eps=1e-5,
                    rope_parameters=dict(rope_type="llama3", rope_theta=100.0, factor=8.0,
                                         low_freq_factor=1.0, high_freq_factor=4.0,
                                         original_max_position_embeddings=32)),
        description="Llama with Llama-3.1 RoPE scaling, rope_parameters {rope_type: llama3, "
                    "rope_theta: 100, factor: 8, low_freq_factor: 1, high_freq_factor: 4, "
                    "original_max_position_embeddings: 32}: of the 8 frequencies of head_dim 16 "
                    "(wavelengths 2 pi 100^(i/8) = 6.3 .. 353) 1 is unchanged (wavelen < 32/4), 2 "
                    "are smoothed ((1-s) inv/8 + s inv, s = (32/wavelen - 1)/(4 - 1)) and 5 "
                    "divided by 8 (wavelen > 32/1); attention_scaling 1. GQA 4 query / 2 kv heads, "
                    "head_dim 16 on width 32, tied embeddings."),
    ModelSpec(
        name="llama-linear", model_type="llama", seed=113, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, tie_word_embeddings=False,
                    rms_norm_eps=1e-5,
                    rope_parameters=dict(rope_type="linear", rope_theta=1000.0, factor=4.0)),
        description="Llama with linear RoPE scaling (position interpolation), rope_parameters "
                    "{rope_type: linear, rope_theta: 1000, factor: 4}: every inverse frequency "
                    "divided by 4. 2 query heads / 1 kv head, head_dim 16, untied."),
    ModelSpec(
        name="llama-dynamic", model_type="llama", seed=114, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=8, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                    rms_norm_eps=1e-5,
                    rope_parameters=dict(rope_type="dynamic", rope_theta=500.0, factor=2.0)),
        description="Llama with dynamic-NTK RoPE, rope_parameters {rope_type: dynamic, rope_theta: "
                    "500, factor: 2}, max_position_embeddings 8: sequences of length 1 and 6 use "
                    "theta 500, the length-13 one theta' = 500 * ((2*13/8) - 1)^(16/14) = 1263.18 "
                    "(computed from that sequence's length alone: the reference is a fresh model's "
                    "run on each sequence; transformers' rotary module is stateful across calls). "
                    "2 heads, 2 kv heads, head_dim 16, tied."),
    ModelSpec(
        name="llama-yarn", model_type="llama", seed=115, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, tie_word_embeddings=False,
                    rms_norm_eps=1e-5,
                    rope_parameters=dict(rope_type="yarn", rope_theta=1000.0, factor=4.0,
                                         original_max_position_embeddings=16)),
        description="Llama with YaRN RoPE, rope_parameters {rope_type: yarn, rope_theta: 1000, "
                    "factor: 4, original_max_position_embeddings: 16}, max_position_embeddings 64, "
                    "default beta_fast 32 / beta_slow 1, truncate (floor/ceil) on: correction "
                    "range [0, 2], ramp over the 8 frequency indices 0, 0.5, 1, 1, ...: frequency "
                    "0 kept, 1 blended half/half with inv/4, 2..7 divided by 4; attention_factor "
                    "0.1 ln 4 + 1 = 1.13863 multiplies cos and sin (so q.k by its square). 2 heads "
                    "/ 1 kv head, head_dim 16, untied."),
    # ---------------------------------------------------------------------------------------
    # Gemma family
    ModelSpec(
        name="gemma", model_type="gemma", seed=116, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=1, head_dim=16, hidden_act="gelu_pytorch_tanh",
                    rms_norm_eps=1e-6, tie_word_embeddings=True,
                    rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        description="Gemma (v1): GeGLU MLP (gelu_pytorch_tanh(gate) * up; config key hidden_act, "
                    "which transformers 5 reads for Gemma 1), RMSNorm x / rms * (1 + w) with "
                    "random w (0.3 N(0,1)), embeddings multiplied by sqrt(hidden_size) (float32 "
                    "5.656854), head_dim 16 with 4 heads on width 32 (MQA: 1 kv head), tied, rope "
                    "theta 10000."),
    ModelSpec(
        name="gemma2-bf16", model_type="gemma2", seed=117, disk_dtype="bfloat16",
        feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=24,
                    sliding_window=4, attn_logit_softcapping=5.0,
                    final_logit_softcapping=4.0, hidden_activation="gelu_pytorch_tanh",
                    rms_norm_eps=1e-6, tie_word_embeddings=True,
                    rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        description="Gemma 2 stored in BF16 (reference = BF16 weights upcast to F32): sandwich "
                    "norms x + post_attention_layernorm(attn(input_layernorm(x))), then x + "
                    "post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))), all (1 + w) "
                    "RMSNorms; attention scores q.k * query_pre_attn_scalar^-0.5 (24, head_dim "
                    "16), then soft-capped 5 tanh(s/5) (attn_logit_softcapping 5), then masked; "
                    "final logits 4 tanh(l/4) (final_logit_softcapping 4); layer_types [sliding, "
                    "full, sliding] with sliding_window 4; 2 heads / 1 kv head; sqrt(32) embedding "
                    "scale; tied."),
    ModelSpec(
        name="gemma3-text", model_type="gemma3_text", seed=118, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=16, num_hidden_layers=4, num_attention_heads=2,
                    num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=24,
                    sliding_window=4,
                    layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                 "sliding_attention"],
                    rope_parameters=dict(
                        sliding_attention=dict(rope_type="default", rope_theta=10000.0),
                        full_attention=dict(rope_type="linear", factor=8.0,
                                            rope_theta=1000000.0)),
                    hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                    tie_word_embeddings=True),
        description="Gemma 3 text (Gemma3ForCausalLM, config in transformers 5 spelling: "
                    "layer_types [sliding, sliding, full, sliding], nested rope_parameters "
                    "{sliding_attention: default theta 10000, full_attention: linear factor 8 "
                    "theta 1e6} -- the stale key _sliding_window_pattern: 6 that transformers "
                    "writes is to be ignored): q_norm / k_norm (1 + w) RMSNorm over head_dim 16 "
                    "before RoPE, sandwich norms, query_pre_attn_scalar 24, sliding_window 4, no "
                    "soft-caps, 2 heads / 1 kv head, tied, sqrt(32) embedding scale."),
    ModelSpec(
        name="gemma3-multimodal", model_type="gemma3", seed=119, layout="gemma3_hub",
        feature_report=True,
        config=dict(
            text_config=dict(
                model_type="gemma3_text", vocab_size=96, max_position_embeddings=64,
                hidden_size=32, intermediate_size=16, num_hidden_layers=3,
                num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                query_pre_attn_scalar=32, sliding_window=5, sliding_window_pattern=2,
                rope_scaling=dict(factor=8.0, rope_type="linear"), rope_theta=1000000.0,
                rope_local_base_freq=10000.0, hidden_activation="gelu_pytorch_tanh",
                rms_norm_eps=1e-6),
            vision_config=dict(
                model_type="siglip_vision_model", hidden_size=16, intermediate_size=16,
                num_hidden_layers=1, num_attention_heads=2, image_size=8, patch_size=4,
                vision_use_head=False),
            mm_tokens_per_image=4),
        legacy_config=dict(
            section="text_config",
            drop=["layer_types", "rope_parameters", "_sliding_window_pattern"],
            set=dict(sliding_window_pattern=2,
                     rope_scaling=dict(factor=8.0, rope_type="linear"),
                     rope_theta=1000000.0, rope_local_base_freq=10000.0)),
        description="Gemma3ForConditionalGeneration (model_type gemma3) with a tiny SigLIP vision "
                    "tower (hidden 16, 1 layer, image 8, patch 4) laid out like "
                    "google/gemma-3-4b-it: language_model.model.*, vision_tower.vision_model.*, "
                    "multi_modal_projector.*, no lm_head (tied). text_config in the legacy hub "
                    "spelling: sliding_window_pattern 2 (-> [sliding, full, sliding]), "
                    "rope_scaling {factor 8, rope_type linear} for the global layers with "
                    "rope_theta 1e6, rope_local_base_freq 10000 for the local ones, no layer_types "
                    "/ rope_parameters; sliding_window 5, query_pre_attn_scalar 32, head_dim 16. "
                    "Reference = the text-only forward (input_ids only)."),
    # ---------------------------------------------------------------------------------------
    ModelSpec(
        name="qwen3", model_type="qwen3", seed=120, feature_report=True,
        config=dict(vocab_size=112, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                    rms_norm_eps=1e-6,
                    rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
        description="Qwen3: per-head q_norm / k_norm (plain RMSNorm, weight [head_dim]) applied to "
                    "each head's query / key before RoPE, head_dim 16 with 4 heads on width 32 "
                    "(GQA 4/2), no biases, tied, rope theta 1e6, no sliding window."),
    ModelSpec(
        name="olmo2", model_type="olmo2", seed=121, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, tie_word_embeddings=False, rms_norm_eps=1e-6,
                    pad_token_id=None, eos_token_id=None,
                    rope_parameters=dict(rope_type="default", rope_theta=500000.0)),
        description="OLMo 2: output norms x + post_attention_layernorm(attn(x)), then x + "
                    "post_feedforward_layernorm(mlp(x)), no input norms; q_norm / k_norm RMSNorm "
                    "over the WHOLE projections (H*Dh = 32 and Hkv*Dh = 16 wide) before the head "
                    "split and RoPE; GQA 4/2, head_dim 8, untied, rope theta 500000."),
    ModelSpec(
        name="phi3-longrope", model_type="phi3", seed=122, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=32,
                    original_max_position_embeddings=8, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, tie_word_embeddings=False, rms_norm_eps=1e-5,
                    sliding_window=5, bos_token_id=None, eos_token_id=None, pad_token_id=None,
                    rope_theta=1000.0,
                    rope_scaling=dict(long_factor=PHI3_LONG, short_factor=PHI3_SHORT,
                                      type="longrope")),
        legacy_config=dict(
            section=None, drop=["rope_parameters"],
            set=dict(rope_theta=1000.0,
                     rope_scaling=dict(long_factor=PHI3_LONG, short_factor=PHI3_SHORT,
                                       type="longrope"))),
        description="Phi-3 (Phi-3-mini-128k config spelling: top-level "
                    "original_max_position_embeddings 8, rope_scaling {type: longrope, "
                    "short_factor [8], long_factor [8]}, rope_theta 1000): fused qkv_proj ([q | k "
                    "| v] rows) and gate_up_proj ([gate | up] rows), RMSNorm; "
                    "max_position_embeddings 32, so sequences of length <= 8 use short_factor and "
                    "13 uses long_factor (inv_freq = 1 / (factor_i * theta^(2i/d))); attention "
                    "factor sqrt(1 + ln(32/8) / ln 8) = 1.29099 on cos and sin for every length; "
                    "sliding_window 5 (applied by Phi-3); 2 heads / 1 kv head, untied."),
    ModelSpec(
        name="phi4-mini", model_type="phi3", seed=123, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=64,
                    original_max_position_embeddings=8, hidden_size=32,
                    intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, tie_word_embeddings=True, rms_norm_eps=1e-5,
                    bos_token_id=None, eos_token_id=None, pad_token_id=None,
                    rope_parameters=dict(rope_type="longrope", rope_theta=1000.0,
                                         partial_rotary_factor=0.75,
                                         short_factor=PHI4_SHORT, long_factor=PHI4_LONG)),
        description="Phi-4-mini-like Phi-3: partial_rotary_factor 0.75 (rotate-half on the first "
                    "12 of head_dim 16; 6 short / long factors), longrope with "
                    "original_max_position_embeddings 8 and max_position_embeddings 64 (attention "
                    "factor sqrt(1 + ln 8 / ln 8) = sqrt 2), config in transformers 5 spelling "
                    "(rope_parameters with partial_rotary_factor inside), tied embeddings, GQA 2 "
                    "query / 1 kv head, no sliding window."),
    # ---------------------------------------------------------------------------------------
    ModelSpec(
        name="gptj", model_type="gptj", seed=124, feature_report=True,
        config=dict(vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                    rotary_dim=8, n_inner=32, activation_function="gelu_new",
                    layer_norm_epsilon=1e-5, tie_word_embeddings=False,
                    bos_token_id=None, eos_token_id=None),
        description="GPT-J: parallel block with ONE norm, x + attn(ln_1(x)) + mlp(ln_1(x)); rotary "
                    "on the first rotary_dim 8 of head_dim 16 with INTERLEAVED pairs "
                    "(rotate_every_two: (x0, x1) pairs, fixed base 10000, float32 sin/cos table); "
                    "q/k/v/out_proj without bias, fc_in / fc_out with bias, gelu_new, untied "
                    "lm_head with bias."),
    ModelSpec(
        name="phi", model_type="phi", seed=125, feature_report=True,
        config=dict(vocab_size=96, max_position_embeddings=32, hidden_size=32,
                    intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                    hidden_act="gelu_new", layer_norm_eps=1e-5, tie_word_embeddings=False,
                    bos_token_id=None, eos_token_id=None,
                    rope_parameters=dict(rope_type="default", rope_theta=10000.0,
                                         partial_rotary_factor=0.5)),
        description="Phi (Phi-2 layout): parallel block with one LayerNorm, x + attn(ln(x)) + "
                    "mlp(ln(x)); partial rotary 0.5 (rotate-half on the first 8 of head_dim 16); "
                    "q/k/v/dense biases, fc1/fc2 biases, gelu_new, final_layernorm, untied lm_head "
                    "with bias."),
]


# Gradient references: every fixture model gets a <name>.grads.npz.
GRADIENT_MODELS = tuple(spec.name for spec in MODELS)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
GEMMA_NORM_STD = 0.3  # std of the stored offset w of Gemma's (1 + w) RMSNorm weights


def get_module(root: nn.Module, path: str | None):
    if path is None:
        return None
    m = root
    for part in path.split("."):
        m = getattr(m, part, None)
        if m is None:
            return None
    return m


def text_config(model_or_config):
    """The language model's config (Gemma3ForConditionalGeneration nests it in text_config)."""
    cfg = getattr(model_or_config, "config", model_or_config)
    tc = getattr(cfg, "text_config", None)
    return tc if tc is not None else cfg


def is_norm(mod: nn.Module) -> bool:
    return isinstance(mod, nn.LayerNorm) or type(mod).__name__.endswith("RMSNorm")


def is_one_plus_w_norm(mod: nn.Module) -> bool:
    """Gemma's RMSNorm (Gemma, Gemma2, Gemma3): x / rms * (1 + w), w stored as the offset."""
    name = type(mod).__name__
    return name.startswith("Gemma") and name.endswith("RMSNorm")


def norm_gain(mod: nn.Module) -> torch.Tensor | None:
    """The norm's effective elementwise gain: w, (1 + w) for Gemma's RMSNorm, None if absent."""
    w = getattr(mod, "weight", None)
    if w is None:
        return None
    w = w.detach()
    return 1.0 + w if is_one_plus_w_norm(mod) else w


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
    norm weights 1 + 0.1 N(0,1), norm and linear biases 0.1 N(0,1); Gemma's (1 + w) RMSNorm
    weights (the offset w) 0.3 N(0,1), so 1 + w spreads over about 0.4 .. 1.6.
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
            if is_one_plus_w_norm(mod):
                # Gemma's (1 + w) RMSNorm: the stored w is the offset from 1
                val = GEMMA_NORM_STD * randn_like(p)
            elif is_norm(mod):
                val = (1.0 + 0.1 * randn_like(p)) if pname == "weight" else 0.1 * randn_like(p)
            elif pname == "bias":
                val = 0.1 * randn_like(p)
            elif isinstance(mod, nn.Embedding):
                is_pos = any(k in mod_name for k in ("wpe", "positions_embed", "embed_positions"))
                val = (0.3 if is_pos else 0.5) * randn_like(p)
            elif isinstance(mod, (nn.Linear, Conv1D)):
                val = w_std * randn_like(p)
            elif isinstance(mod, nn.Conv2d) or pname == "mm_input_projection_weight":
                # the Gemma 3 vision tower's patch embedding and the multimodal projector
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


def write_module(blk: nn.Module, fam: Family, which: str) -> nn.Module:
    """The module whose output is a sublayer's write to the stream ("attn" / "mlp"): the post
    norm for sandwich / output placements (Gemma 2/3, OLMo 2), else the attention module / the
    MLP output module."""
    if which == "attn":
        return get_module(blk, fam.ln1_post or fam.attn)
    return get_module(blk, fam.ln2_post or fam.mlp_out)


def resid_mid_point(fam: Family, placement: str):
    """(module path, "input" | "output"): where a sequential block's resid_mid is read. Pre-norm
    and sandwich: the MLP's input norm's input; post-norm: the first norm's output; output
    placement (OLMo 2, no input norms): the MLP's input."""
    if placement == "post":
        return fam.ln1, "output"
    if fam.ln2 is not None:
        return fam.ln2, "input"
    return fam.mlp_out, "input"


def fresh_rope_state(model: nn.Module) -> None:
    """transformers' dynamic-NTK RoPE (rope_type "dynamic") is stateful: the rotary module keeps
    the inv_freq of the longest sequence it has seen (max_seq_len_cached) and resets only for a
    sequence shorter than max_position_embeddings. Restore the state of a freshly built module so
    that every forward equals a fresh model's run on that sequence alone (main() checks this
    against a freshly loaded model). No-op for every other RoPE type."""
    for m in model.modules():
        rt = getattr(m, "rope_type", None)
        if isinstance(rt, str) and "dynamic" in rt and hasattr(m, "original_inv_freq"):
            m.register_buffer("inv_freq", m.original_inv_freq.clone(), persistent=False)
            m.max_seq_len_cached = m.original_max_seq_len


@torch.no_grad()
def record(model: nn.Module, fam: Family, tokens: np.ndarray):
    """Run one sequence and return ({hook name: float32 tensor, batch dim dropped}, logits)."""
    fresh_rope_state(model)
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
        # the writes: attention / MLP module outputs, or (sandwich / output) the post norms'
        # outputs
        on_output(write_module(blk, fam, "attn"), p + "hook_attn_out")
        handles.append(attn.register_forward_hook(
            lambda m, a, out, name=p + "attn.hook_pattern": acts.__setitem__(
                name, out[1].detach().float()[0])))
        on_output(write_module(blk, fam, "mlp"), p + "hook_mlp_out")
        on_input(get_module(blk, fam.mlp_down), p + "mlp.hook_post")
        for key in ("ln1", "ln2", "ln1_post", "ln2_post"):
            norm = get_module(blk, getattr(fam, key))
            if norm is not None:
                on_norm_scale(norm, p + key + ".hook_scale")
        if not parallel:
            path, side = resid_mid_point(fam, placement)
            (on_input if side == "input" else on_output)(get_module(blk, path),
                                                         p + "hook_resid_mid")

        # per-head writes: z (input of the output projection) restricted to head h's slice,
        # times that slice of the projection weight, no bias.
        o = get_module(blk, fam.attn_o)
        if isinstance(o, Conv1D):
            W = o.weight.detach()          # [in, out]
        else:
            W = o.weight.detach().t()      # nn.Linear stores [out, in]
        n_heads = text_config(model).num_attention_heads

        def result_hook(m, a, kw, name=p + "attn.hook_result", W=W, H=n_heads, zname=p + "attn.hook_z"):
            z = hidden_arg(a, kw).detach().reshape(T, -1)
            d = z.shape[-1] // H
            put(zname, z.reshape(T, H, d))   # [T, H, Dh]: each head's output before the output projection
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


def final_softcap(model: nn.Module) -> float | None:
    """Gemma 2's final_logit_softcapping (None for every other family)."""
    return getattr(text_config(model), "final_logit_softcapping", None)


def softcap(x: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(x / cap), in the operation order of transformers' Gemma2ForCausalLM."""
    return torch.tanh(x / cap) * cap


@torch.no_grad()
def final_read(model: nn.Module, fam: Family, x: torch.Tensor, cap: bool = True) -> torch.Tensor:
    """Final norm, project_out, unembedding, then (if the model has one and cap) the final logit
    soft-cap."""
    for path in (fam.final_norm, fam.project_out, fam.unembed):
        m = get_module(model, path)
        if m is not None:
            x = m(x)
    c = final_softcap(model)
    if cap and c is not None:
        x = softcap(x, c)
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
        if placement in ("pre", "sandwich", "output"):   # no norm on the highway
            check("resid_post = resid_pre + attn_out + mlp_out", post, pre + attn_out + mlp_out,
                  checks)
            if not parallel:
                check("resid_mid = resid_pre + attn_out", acts[p + "hook_resid_mid"],
                      pre + attn_out, checks)
                if placement != "pre":
                    check(f"{placement}: resid_post = resid_mid + mlp_out", post,
                          acts[p + "hook_resid_mid"] + mlp_out, checks)
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
        heads = acts[p + "attn.hook_result"].sum(dim=1) + bias
        if fam.ln1_post is None:
            check("sum_h hook_result + o bias = attn_out", heads, attn_out, checks)
        else:  # sandwich / output: the heads (+ bias) are the post norm's input
            ln1p, ln2p = get_module(blk, fam.ln1_post), get_module(blk, fam.ln2_post)
            check(f"{placement}: attn_out = ln1_post(sum_h hook_result + o bias)",
                  ln1p(heads), attn_out, checks)
            check(f"{placement}: ln1_post.hook_scale = scale(sum_h hook_result + o bias)",
                  acts[p + "ln1_post.hook_scale"], norm_scale(ln1p, heads), checks)
            raw = get_module(blk, fam.mlp_down)(acts[p + "mlp.hook_post"])
            check(f"{placement}: mlp_out = ln2_post(down_proj(mlp.hook_post))",
                  ln2p(raw), mlp_out, checks)
            check(f"{placement}: ln2_post.hook_scale = scale(down_proj(mlp.hook_post))",
                  acts[p + "ln2_post.hook_scale"], norm_scale(ln2p, raw), checks)
        pat = acts[p + "attn.hook_pattern"]
        T = pat.shape[-1]
        check("pattern rows sum to 1", pat.sum(-1), torch.ones_like(pat.sum(-1)), checks)
        assert float(pat.triu(diagonal=1).abs().max()) == 0.0, "pattern is not causal"
    last = acts[f"blocks.{len(blocks)-1}.hook_resid_post"]
    check("final_read(last resid_post) = logits", final_read(model, fam, last), logits, checks)
    c = final_softcap(model)
    if c is not None:
        check("logits = cap * tanh(unembed(ln_final(last resid_post)) / cap)",
              softcap(final_read(model, fam, last, cap=False).double(), c), logits, checks)
    if "ln_final.hook_normalized" in acts:
        fnm = get_module(model, fam.final_norm)
        check("ln_final.hook_normalized = ln_final(last resid_post)",
              acts["ln_final.hook_normalized"], fnm(last), checks)


def record_gradients(model: nn.Module, fam: Family, tokens: np.ndarray,
                     stored_name=None) -> dict:
    """torch autograd on one sequence: the loss (mean next-token cross-entropy over positions
    0..T-2, i.e. cross_entropy(logits[:-1], tokens[1:])), its gradient with respect to every
    parameter (named as model.named_parameters() gives them; a tied lm_head is the embedding and
    appears once, its gradient the sum of both uses) and with respect to every block input
    (hook_resid_pre, kept with retain_grad on the tensor a forward pre-hook sees).

    npz keys: tokens (int64 [T]), loss (float32 []), grad.<parameter name> (float32, the
    parameter's shape) and grad.blocks.{i}.hook_resid_pre (float32 [T, D]).

    stored_name (optional): maps an in-memory parameter name to the name written (the tensor's
    name in the checkpoint file), or to None to leave the parameter out (the Gemma 3 vision
    tower and projector, which the text-only loss does not reach)."""
    fresh_rope_state(model)
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
        key = stored_name(name) if stored_name is not None else name
        if key is None:
            continue
        assert p.grad is not None, f"no gradient for {name}"
        out[f"grad.{key}"] = p.grad.detach().numpy().astype(np.float32)
    for i in range(len(blocks)):
        out[f"grad.blocks.{i}.hook_resid_pre"] = inputs[i].grad.detach().reshape(T, -1).numpy().astype(np.float32)
    model.zero_grad(set_to_none=True)
    return out


GRAD_CHECK_STEP = 1e-5  # central-difference step of the float64 gradient self-check
GRAD_CHECK_RTOL = 1e-5  # its tolerance, relative to max(1, max|gradient of that array|)


def _rms_norm_float64(self, x: torch.Tensor) -> torch.Tensor:
    """HF's RMSNorm formula (weight * x / sqrt(mean(x^2) + eps)) without its float32 upcast."""
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps(self)))


def _gemma_rms_norm_float64(self, x: torch.Tensor) -> torch.Tensor:
    """HF's Gemma RMSNorm formula (x / sqrt(mean(x^2) + eps) * (1 + weight)) without its float32
    upcast."""
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps(self))) * (1.0 + self.weight)


def _gptj_attn_float64(self, query, key, value, attention_mask=None):
    """GPTJAttention._attn without its casts of query and key to float32."""
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) / self.scale_attn
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1).to(value.dtype)
    attn_weights = self.attn_dropout(attn_weights)
    return torch.matmul(attn_weights, value), attn_weights


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
            f64 = _gemma_rms_norm_float64 if is_one_plus_w_norm(mod) else _rms_norm_float64
            mod.forward = types.MethodType(f64, mod)
            assert max_rel_err(mod(x), want) <= 1e-6, type(mod).__name__
        elif type(mod).__name__ == "GPTJAttention":   # casts q and k to float32 in _attn
            q, k, v = (torch.randn(1, 2, 5, 4, generator=g, dtype=torch.float64)
                       for _ in range(3))
            want = mod._attn(q, k, v)[0]
            mod._attn = types.MethodType(_gptj_attn_float64, mod)
            assert max_rel_err(mod._attn(q, k, v)[0], want) <= 1e-6, type(mod).__name__
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


def check_gradients(model: nn.Module, fam: Family, grads: dict, tokens: np.ndarray,
                    stored_name=None) -> float:
    """Self-check of the recorded gradients with central differences (step GRAD_CHECK_STEP) of
    the loss of a float64 copy of the model (float64_copy: float64 throughout, so a small step
    is exact enough and does not straddle ReLU kinks as a large one does in OPT).

    First asserts that the npz has exactly one gradient per named parameter (with the
    parameter's shape) and per block input. Then, for EVERY parameter and EVERY block input
    (hook_resid_pre), checks 3 random entries and the entry with the largest |gradient|. A block
    input is perturbed by a forward pre-hook that adds h to one entry of the tensor the block
    receives. Returns the worst error relative to max(1, max|gradient of that array|) and
    asserts it is <= GRAD_CHECK_RTOL (observed ~1e-6: the float32 rounding of autograd)."""
    def key(n):
        return stored_name(n) if stored_name is not None else n

    params = {key(n): p for n, p in model.named_parameters() if key(n) is not None}
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
        fresh_rope_state(m64)
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
                if key(name) is None:
                    continue
                ref = grads[f"grad.{key(name)}"].reshape(-1)
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
    cfg = AutoConfig.for_model(spec.model_type, **copy.deepcopy(spec.config))
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager",
                                             dtype=torch.float32)
    model.eval()
    tc = text_config(cfg)
    d_model = getattr(tc, "hidden_size", None) or tc.n_embd
    reinit(model, spec.seed, d_model)
    if spec.disk_dtype != "float32":
        round_to(model, DTYPES[spec.disk_dtype])
    return model


# Gemma3ForConditionalGeneration: in-memory parameter prefix -> the prefix in the hub's
# checkpoints (google/gemma-3-4b-it's model-0000i-of-00002.safetensors). transformers 5 maps the
# hub names back when loading (conversion_mapping.py: the "llava" / "LlavaModel" renamings for
# language_model.model.* and the SiglipVisionModel -> "CLIPVisionModel" PrefixChange that drops
# "vision_model."; in memory the tower is model.vision_tower.embeddings..., flat).
GEMMA3_HUB_PREFIXES = (
    ("model.language_model.", "language_model.model."),
    ("model.vision_tower.", "vision_tower.vision_model."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)


def hub_name(spec: ModelSpec, name: str) -> str | None:
    """The tensor name as stored in the fixture's checkpoint for an in-memory state-dict name;
    None for a tensor that is not stored (the tied lm_head of the Gemma 3 hub layout)."""
    if spec.layout == "gemma3_hub":
        if name == "lm_head.weight":
            return None
        for old, new in GEMMA3_HUB_PREFIXES:
            if name.startswith(old):
                return new + name[len(old):]
        raise KeyError(name)
    return name


def grad_name(spec: ModelSpec):
    """stored_name for record_gradients / check_gradients, or None (in-memory names).
    Gemma 3 hub layout: the stored names; the vision tower and projector are left out."""
    if spec.layout != "gemma3_hub":
        return None

    def f(name):
        if name.startswith(("model.vision_tower.", "model.multi_modal_projector.")):
            return None
        return hub_name(spec, name)
    return f


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
    elif spec.layout == "gemma3_hub":
        # like google/gemma-3-4b-it: language_model.model.*, vision_tower.vision_model.*,
        # multi_modal_projector.*, no lm_head (tied); one file here.
        sd = {}
        for k, v in model.state_dict().items():
            name = hub_name(spec, k)
            if name is not None:
                sd[name] = v.detach().to(disk).contiguous()
        save_file(dict(sorted(sd.items())), os.path.join(out_dir, "model.safetensors"),
                  metadata={"format": "pt"})
        cfg = copy.deepcopy(model.config)
        cfg.dtype = disk
        cfg.architectures = [type(model).__name__]
        cfg.save_pretrained(out_dir)
    else:
        m = model if disk == torch.float32 else copy.deepcopy(model).to(disk)
        kw = {}
        if spec.max_shard_size:
            kw["max_shard_size"] = spec.max_shard_size
        m.save_pretrained(out_dir, **kw)
    if spec.legacy_config:
        path = os.path.join(out_dir, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        sec = cfg if spec.legacy_config["section"] is None else cfg[spec.legacy_config["section"]]
        for k in spec.legacy_config["drop"]:
            assert k in sec, (spec.name, k)
            del sec[k]
        sec.update(copy.deepcopy(spec.legacy_config["set"]))
        if spec.legacy_config["section"] is not None:
            cfg[spec.legacy_config["section"]] = dict(sorted(sec.items()))
        with open(path, "w") as f:
            json.dump(dict(sorted(cfg.items())), f, indent=2)
            f.write("\n")
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
    re_tc, tc = text_config(re), text_config(model)
    for k in ("rope_parameters", "layer_types", "sliding_window", "max_position_embeddings",
              "original_max_position_embeddings", "head_dim", "query_pre_attn_scalar",
              "attn_logit_softcapping", "final_logit_softcapping", "rotary_dim",
              "partial_rotary_factor", "hidden_act", "hidden_activation", "activation_function"):
        assert getattr(re_tc, k, None) == getattr(tc, k, None), (spec.name, k)
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
        fresh_rope_state(re)
        got = re(input_ids=torch.tensor(toks)[None], use_cache=False).logits[0]
        # same weights; only kernel choice (e.g. memory layout of loaded tensors) may differ
        err = max_rel_err(got, ref)
        assert err <= 1e-6, f"{spec.name}: reloaded logits differ by {err:.3g}"


# --------------------------------------------------------------------------------------------
# Feature report (sidecar "features", new fixtures only): what the RoPE scaling, sliding windows
# and soft-caps actually did on the recorded sequences, with assertions that each feature
# changes the numbers within 13 tokens.
# --------------------------------------------------------------------------------------------


def rope_tables(model: nn.Module) -> dict:
    """The state of every rotary module right after a forward: {label: {"rope_type",
    "inv_freq", "attention_scaling"}}; label "all_layers", or the layer type for Gemma 3's
    per-layer-type tables. inv_freq as used (dynamic / longrope already updated)."""
    out = {}
    for _, m in model.named_modules():
        if not type(m).__name__.endswith("RotaryEmbedding"):
            continue
        rt = m.rope_type
        if isinstance(rt, dict):
            for lt in sorted(rt):
                out[lt] = {"rope_type": rt[lt],
                           "inv_freq": getattr(m, f"{lt}_inv_freq").double().tolist(),
                           "attention_scaling": float(getattr(m, f"{lt}_attention_scaling"))}
        else:
            assert "all_layers" not in out
            out["all_layers"] = {"rope_type": rt, "inv_freq": m.inv_freq.double().tolist(),
                                 "attention_scaling": float(m.attention_scaling)}
    return out


def default_inv_freq(tc, params: dict) -> np.ndarray:
    """Unscaled RoPE inverse frequencies theta^(-2i/d), d = head_dim * partial_rotary_factor,
    in float64 (the comparison baseline of the feature report)."""
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    d = int(head_dim * params.get("partial_rotary_factor", 1.0))
    return params["rope_theta"] ** (-np.arange(0, d, 2, dtype=np.float64) / d)


def layer_window(blk: nn.Module, fam: Family, tc):
    """The sliding window of a block's attention: the attention module's own attribute
    (Gemma 2/3, Qwen3: None on full-attention layers), else the config's (Phi-3, Mistral)."""
    attn = get_module(blk, fam.attn)
    if hasattr(attn, "sliding_window"):
        return attn.sliding_window
    return getattr(tc, "sliding_window", None)


@torch.no_grad()
def feature_report(spec: ModelSpec, model: nn.Module, fam: Family, seqs, acts_list, ropes,
                   out_dir: str) -> dict:
    tc = text_config(model)
    rep = {}
    T = len(seqs[-1])
    pos = T - 1    # angles compared at the last position of the longest sequence (12)

    # --- RoPE: tables as used per sequence, change of angle at position 12 vs unscaled
    if ropes and ropes[0]:
        params_by_label = (tc.rope_parameters if "all_layers" not in ropes[0]
                           else {"all_layers": tc.rope_parameters})
        rep["rope"] = {}
        for label in ropes[0]:
            params = params_by_label[label]
            base = default_inv_freq(tc, params)
            per_seq = []
            for s, r in enumerate(ropes):
                inv = np.array(r[label]["inv_freq"])
                assert inv.shape == base.shape, (spec.name, label, inv.shape, base.shape)
                per_seq.append({"sequence": s, "length": len(seqs[s]),
                                "inv_freq": inv.tolist(),
                                "attention_scaling": r[label]["attention_scaling"]})
            d_angle = np.abs(pos * (np.array(ropes[-1][label]["inv_freq"]) - base))
            entry = {"rope_type": ropes[0][label]["rope_type"],
                     "parameters": {k: v for k, v in sorted(params.items())},
                     "unscaled_inv_freq": base.tolist(), "per_sequence": per_seq,
                     f"angle_change_at_position_{pos}_rad": d_angle.tolist(),
                     "frequencies_changed_over_0.1_rad": int((d_angle > 0.1).sum())}
            rt = entry["rope_type"]
            n = len(base)
            if rt != "default":
                # at least half of the frequencies, or (Gemma 3's theta 1e6) every frequency
                # that turns by more than 0.2 rad over the sequence at all
                need = min(n // 2, int((pos * base > 0.2).sum()))
                assert entry["frequencies_changed_over_0.1_rad"] >= need, (spec.name, d_angle)
            if rt == "llama3":
                L = params["original_max_position_embeddings"]
                wl = 2 * math.pi / base
                regimes = {"unchanged (wavelen < L/high_freq_factor)":
                           int((wl < L / params["high_freq_factor"]).sum()),
                           "divided by factor (wavelen > L/low_freq_factor)":
                           int((wl > L / params["low_freq_factor"]).sum())}
                regimes["smoothed"] = n - sum(regimes.values())
                assert min(regimes.values()) >= 1, (spec.name, regimes)
                entry["llama3_regimes"] = regimes
                entry["wavelengths"] = wl.tolist()
            if rt == "dynamic":
                mp, fac = tc.max_position_embeddings, params["factor"]
                d = len(base) * 2
                for e in per_seq:
                    Ts = e["length"]
                    theta = params["rope_theta"]
                    if Ts > mp:
                        theta = theta * ((fac * Ts / mp) - (fac - 1)) ** (d / (d - 2))
                    want = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
                    e["formula_theta"] = theta
                    e["max_rel_err_vs_float64_formula"] = float(
                        np.abs(np.array(e["inv_freq"]) / want - 1).max())
                    assert e["max_rel_err_vs_float64_formula"] < 1e-5, (spec.name, e)
                assert per_seq[-1]["inv_freq"] != per_seq[0]["inv_freq"]
            if rt == "longrope":
                Lo = params["original_max_position_embeddings"]
                for e in per_seq:
                    which = "long_factor" if e["length"] > Lo else "short_factor"
                    want = base / np.array(params[which])
                    e["factors_used"] = which
                    e["max_rel_err_vs_float64_formula"] = float(
                        np.abs(np.array(e["inv_freq"]) / want - 1).max())
                    assert e["max_rel_err_vs_float64_formula"] < 1e-5, (spec.name, e)
                assert [e["factors_used"] for e in per_seq] == [
                    "short_factor", "short_factor", "long_factor"], spec.name
            rep["rope"][label] = entry
    if spec.model_type == "gptj":
        rep["rope"] = {"gptj": {"rotary_dim": tc.rotary_dim,
                                "note": "fixed base 10000, interleaved pairs, table in float32"}}

    # --- sliding windows: exact mask semantics on the longest sequence
    blocks = get_module(model, fam.blocks)
    windows = []
    for i, blk in enumerate(blocks):
        W = layer_window(blk, fam, tc)
        pat = acts_list[-1][f"blocks.{i}.attn.hook_pattern"]     # [H, T, T]
        q = torch.arange(T)[:, None]
        k = torch.arange(T)[None, :]
        visible = (k <= q) & ((k > q - W) if W is not None else True)
        assert float(pat[:, ~visible].abs().max()) == 0.0, (spec.name, i)
        assert float(pat[:, visible].min()) > 0.0, (spec.name, i)
        windows.append({"layer": i, "sliding_window": W,
                        "keys_masked_by_window_seq2": int(((k <= q) & ~visible).sum())})
        if W is not None:
            assert T > W and windows[-1]["keys_masked_by_window_seq2"] > 0
    if any(w["sliding_window"] is not None for w in windows):
        rep["sliding_windows"] = {
            "semantics": "query q attends to key k iff q - W < k <= q (the last W positions, "
                         "itself included); checked on every layer's seq2 pattern",
            "layers": windows}

    # --- soft-caps: the same run with the caps removed
    attn_caps = [m for m in model.modules() if getattr(m, "attn_logit_softcapping", None)]
    fcap = final_softcap(model)
    if attn_caps or fcap is not None:
        toks = seqs[-1]
        saved = [(m, m.attn_logit_softcapping) for m in attn_caps]
        for m, _ in saved:
            m.attn_logit_softcapping = None
        tc.final_logit_softcapping = None
        try:
            acts_u, logits_u, _ = record(model, fam, toks)
        finally:
            for m, v in saved:
                m.attn_logit_softcapping = v
            tc.final_logit_softcapping = fcap
        acts_c = acts_list[-1]
        fresh_rope_state(model)
        logits_c = model(input_ids=torch.tensor(toks)[None], use_cache=False).logits[0]
        pat_diff = max(float((acts_u[f"blocks.{i}.attn.hook_pattern"]
                              - acts_c[f"blocks.{i}.attn.hook_pattern"]).abs().max())
                       for i in range(len(blocks)))
        first_pat = float((acts_u["blocks.0.attn.hook_pattern"]
                           - acts_c["blocks.0.attn.hook_pattern"]).abs().max())
        rep["softcaps"] = {
            "attn_logit_softcapping": saved[0][1] if saved else None,
            "final_logit_softcapping": fcap,
            "seq2_layer0_max_abs_pattern_change_without_attn_cap": first_pat,
            "seq2_max_abs_pattern_change_without_caps": pat_diff,
            "seq2_max_abs_logit_change_without_caps": float((logits_u - logits_c).abs().max()),
            "seq2_max_abs_logit_before_final_cap": float(
                final_read(model, fam, acts_c[f"blocks.{len(blocks)-1}.hook_resid_post"],
                           cap=False).abs().max()),
        }
        if saved:
            assert first_pat > 0.02, (spec.name, first_pat)
        if fcap is not None:
            assert rep["softcaps"]["seq2_max_abs_logit_change_without_caps"] > 0.5

    # --- Gemma's embedding normaliser
    emb = get_module(model, fam.tok_embed)
    if hasattr(emb, "embed_scale"):
        rep["embed_scale"] = {
            "value_float32": float(emb.embed_scale.float()),
            "sqrt_hidden_size_float64": math.sqrt(tc.hidden_size),
            "value_if_rounded_to_bfloat16": float(emb.embed_scale.to(torch.bfloat16)),
            "note": "GemmaTextScaledWordEmbedding multiplies by embed_scale.to(weight dtype): "
                    "float32 here (weights upcast to F32); bfloat16 when HF runs in bf16"}

    # --- dynamic RoPE: every sequence equals a freshly loaded model's run on it alone, and the
    # statefulness of transformers' implementation (documented, not used)
    if ropes and any(e.get("rope_type") == "dynamic" for e in rep.get("rope", {}).values()):
        fresh_logits = []
        for toks in seqs:
            fm = AutoModelForCausalLM.from_pretrained(out_dir, attn_implementation="eager",
                                                      dtype=torch.float32).eval()
            fresh_logits.append(fm(input_ids=torch.tensor(toks)[None],
                                   use_cache=False).logits[0])
        fm = AutoModelForCausalLM.from_pretrained(out_dir, attn_implementation="eager",
                                                  dtype=torch.float32).eval()
        fm(input_ids=torch.tensor(seqs[-1])[None], use_cache=False)          # 13 tokens first
        mp = tc.max_position_embeddings
        stale = fm(input_ids=torch.tensor(seqs[-1][:mp])[None], use_cache=False).logits[0]
        fm2 = AutoModelForCausalLM.from_pretrained(out_dir, attn_implementation="eager",
                                                   dtype=torch.float32).eval()
        clean8 = fm2(input_ids=torch.tensor(seqs[-1][:mp])[None], use_cache=False).logits[0]
        rep["dynamic_rope_state"] = {
            "fresh_model_per_sequence": "checked: same logits (rel. err <= 1e-6)",
            f"max_abs_logit_diff_len{mp}_run_after_len{T}_vs_fresh": float(
                (stale - clean8).abs().max())}
        rep["_fresh_logits"] = fresh_logits
    return rep


def attention_stats(acts) -> float:
    """Mean over (layer, head) of max attention prob of the last query (longest sequence)."""
    vals = [float(v[:, -1, :].max(dim=-1).values.mean())
            for k, v in acts.items() if k.endswith("attn.hook_pattern")]
    return sum(vals) / len(vals)


def hook_order(names, n_layers):
    """Stable, readable order: embeddings, then block by block, then final norm."""
    per_block = ["hook_resid_pre", "ln1.hook_scale", "attn.hook_pattern", "attn.hook_z", "attn.hook_result",
                 "ln1_post.hook_scale", "hook_attn_out", "hook_resid_mid", "ln2.hook_scale",
                 "mlp.hook_post", "ln2_post.hook_scale", "hook_mlp_out", "hook_resid_post"]
    order = [n for n in ("hook_embed", "hook_pos_embed") if n in names]
    for i in range(n_layers):
        order += [f"blocks.{i}.{n}" for n in per_block if f"blocks.{i}.{n}" in names]
    order += [n for n in ("ln_final.hook_scale", "ln_final.hook_normalized") if n in names]
    assert set(order) == set(names), set(order) ^ set(names)
    return order


def arch_summary(model, new_fixture: bool = False) -> dict:
    c = text_config(model)
    keys = ["model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "intermediate_size", "ffn_dim", "n_inner",
            "max_position_embeddings", "hidden_act", "activation_function", "afn",
            "layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps", "rope_parameters",
            "sliding_window", "use_parallel_residual", "do_layer_norm_before",
            "word_embed_proj_dim", "tie_word_embeddings", "attention_bias", "mlp_bias"]
    if new_fixture:   # the fields of the families added later (not listed for the first eleven)
        keys += ["n_embd", "n_layer", "n_head", "n_positions", "rotary_dim", "hidden_activation",
                 "original_max_position_embeddings", "partial_rotary_factor", "layer_types",
                 "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping",
                 "qk_layernorm", "use_sliding_window"]
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

    only = None
    args = sys.argv[1:]
    if args:
        assert len(args) == 2 and args[0] == "--only", "usage: make_reference.py [--only a,b]"
        only = args[1].split(",")
        unknown = set(only) - {m.name for m in MODELS}
        assert not unknown, f"unknown models: {sorted(unknown)}"

    for spec in MODELS:
        if only is not None and spec.name not in only:
            continue
        fam = FAMILIES[spec.model_type]
        model = make_model(spec)
        cfg = text_config(model)
        V = cfg.vocab_size
        if fam.pos_embed is not None:   # learned positions: at most the table's length
            max_pos = getattr(cfg, "max_position_embeddings", None) or cfg.n_positions
            lengths = [min(T, max_pos) for T in SEQ_LENGTHS]
        else:                           # rotary: the lengths as given (RoPE scaling needs 13)
            lengths = list(SEQ_LENGTHS)
        rng = np.random.RandomState(spec.seed)
        seqs = [rng.randint(0, V, size=T).astype(np.int64) for T in lengths]

        arrays, checks, all_logits, names = {}, {}, [], None
        attn_peak = None
        acts_list, ropes = [], []
        for s, toks in enumerate(seqs):
            acts, logits, arch = record(model, fam, toks)
            if spec.feature_report:
                ropes.append(rope_tables(model))
                acts_list.append(acts)
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

        features = None
        if spec.feature_report:
            features = feature_report(spec, model, fam, seqs, acts_list, ropes, out_dir)
            for got, ref in zip(features.pop("_fresh_logits", []), all_logits):
                # same weights, fresh rotary state; only kernel choice may differ (as in
                # verify_reload)
                assert max_rel_err(got, ref) <= 1e-6, f"{spec.name}: fresh model differs"

        savez_deterministic(os.path.join(REF_DIR, spec.name + ".npz"), arrays)
        grad_check = grad_loss = None
        if spec.name in GRADIENT_MODELS:
            stored = grad_name(spec)
            grads = record_gradients(model, fam, seqs[-1], stored)
            grad_check = check_gradients(model, fam, grads, seqs[-1], stored)
            grad_loss = float(grads["loss"])
            if spec.feature_report:   # new fixtures: gradient keys = checkpoint tensor names
                on_disk = set(tensor_listing(out_dir))
                for k in grads:
                    if k.startswith("grad.") and not k.startswith("grad.blocks."):
                        assert k[len("grad."):] in on_disk, (spec.name, k)
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
            "architecture": arch_summary(model, spec.feature_report),
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
            **({"features": features} if features is not None else {}),
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
