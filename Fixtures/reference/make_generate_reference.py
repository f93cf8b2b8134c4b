#!/usr/bin/env python3
"""Independent greedy-generation reference for StreamLab's `generate` command.

Run from the repository root (after make_reference.py has built Fixtures/models/):

    /work/venv/bin/python Fixtures/reference/make_generate_reference.py

The virtual environment (never inside the repository) is recreated with:

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Nothing is downloaded and nothing of the models is re-implemented; this script imports nothing
from the other reference scripts. It writes exactly one file, Fixtures/reference/generate.json.

For each fixture in FIXTURES (index i) it
  * loads Fixtures/models/<name>/ with Hugging Face transformers exactly like make_reference.py
    does: float32 (F16/BF16 weights upcast), eager attention, eval mode, one torch thread;
  * draws a prompt of PROMPT_LEN token ids with numpy RandomState(4242 + i).randint(0, vocab);
  * runs the greedy continuation with KV cache,
        model.generate(input_ids, attention_mask=ones, do_sample=False, max_new_tokens=12,
                       min_new_tokens=12, eos_token_id=None, pad_token_id=0, use_cache=True)
    The fixture's generation_config.json is neutralised: model.generation_config is replaced by a
    blank GenerationConfig() and a fresh GenerationConfig carrying the arguments above is passed,
    so no eos/bos/pad id, repetition penalty, etc. can be merged in. The explicit all-ones
    attention mask is needed because generate() would otherwise infer a padding mask from
    pad_token_id=0 whenever the prompt contains token 0. The script asserts that the logits
    processor list generate() builds is empty, that the processed scores equal the raw logits
    bit for bit, that every generated token is the argmax of its step's logits and that exactly 12
    tokens were produced;
  * records per step the margin top1 - top2 of the logits that chose the token (so a test can
    skip steps whose margin is below 1e-4: ties within float error);
  * cross-checks generate() against a hand-written "plain cache" greedy loop (fresh model copy,
    prefill + one token per step through past_key_values; GPT-1 has no KV cache in
    transformers, so there, as in generate(), every step re-runs the whole sequence). It must
    agree (tokens equal, logits within 1e-4) except for the length-dependent RoPE types, where
    the result is only recorded ("plain_cache_loop_agrees");
  * self-checks without cache: one plain forward of the full sequence (prompt + 12 generated
    tokens, fresh model copy) must have each chosen token as the argmax at its step
    ("no_cache_agrees"); every disagreeing step is listed in "no_cache_mismatches". As a
    diagnostic for length-dependent RoPE it also recomputes each step statelessly from its own
    prefix (prompt + tokens so far, a fresh model copy per prefix) ("prefix_recompute_agrees").

Why the checks can disagree: transformers' dynamic-NTK ("dynamic") and LongRoPE ("longrope")
rotary embeddings pick their frequencies from the largest position of the *current forward call*
(and dynamic keeps state in the module). In cached generation the keys of earlier positions
were rotated with the frequencies valid at the step they were computed, while a no-cache forward
of the full sequence rotates every position with the frequencies of the full length. For
llama-dynamic (max_position_embeddings 8) and phi3-longrope (original_max_position_embeddings 8)
the 17-token sequence crosses that threshold, so the cached logits are not those of a no-cache
recomputation; the JSON records whether that changes any greedy choice.
Phi-3 is special: Phi3ForCausalLM.prepare_inputs_for_generation drops the KV cache once, at the
step where the sequence first exceeds original_max_position_embeddings, and re-runs the whole
sequence, so that generate() afterwards uses the long factors for every position. generate()
then equals the stateless per-prefix recomputation, but not a plain KV-cache loop (which keeps
the short-factor keys) nor, for the steps before the switch, one forward of the full sequence.

JSON layout:
  {"versions": {python, torch, transformers, numpy}, "max_new_tokens": 12, "prompt_len": 5,
   "prompt_seed": "numpy RandomState(4242 + index).randint(0, vocab_size, size=5)",
   "generate_call": "...", "margin_skip_threshold": 1e-4,
   "models": [{"name", "prompt" [5 ids], "generated" [12 ids], "margins" [12 floats],
               "no_cache_agrees" bool,
               -- extra diagnostics --
               "vocab_size", "has_kv_cache", "rope_type", "min_margin",
               "no_cache_mismatches" [{"step", "generated", "no_cache_argmax",
                                       "margin", "no_cache_margin"}],
               "no_cache_max_abs_logit_diff", "prefix_recompute_agrees",
               "prefix_recompute_max_abs_logit_diff", "plain_cache_loop_agrees",
               "plain_cache_loop_max_abs_logit_diff" (over the steps up to the first differing
               token), "plain_cache_loop_generated" (only when it differs)}]}
Step k (0-based) produced generated[k] from the logits at sequence position PROMPT_LEN - 1 + k.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, GenerationConfig

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS_DIR = os.path.join(ROOT, "Fixtures", "models")
OUT_PATH = os.path.join(ROOT, "Fixtures", "reference", "generate.json")

FIXTURES = [
    "gpt2", "openai-gpt", "llama-gqa", "mistral", "neox-parallel", "opt-post-proj",
    "gemma2-bf16", "gemma3-text", "qwen3", "olmo2", "phi3-longrope", "gptj", "phi",
    "llama-dynamic",
]
PROMPT_LEN = 5
MAX_NEW_TOKENS = 12
SEED_BASE = 4242
PAD_TOKEN_ID = 0
MARGIN_SKIP = 1e-4
# RoPE types whose frequencies depend on the length of the current forward call
LENGTH_DEPENDENT_ROPE = ("dynamic", "longrope")


def load(name: str):
    model = AutoModelForCausalLM.from_pretrained(
        os.path.join(MODELS_DIR, name), attn_implementation="eager", dtype=torch.float32)
    model.eval()
    for p in model.parameters():
        assert p.dtype == torch.float32, (name, p.dtype)
    # Blank model-level generation config: nothing from generation_config.json can be merged in.
    model.generation_config = GenerationConfig()
    return model


def margin(logits_row: torch.Tensor) -> float:
    top = torch.topk(logits_row.double(), 2).values
    return float(top[0] - top[1])


def rope_type(model) -> str | None:
    cfg = model.config.get_text_config()
    params = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None)
    if not params:
        return None
    if "rope_type" in params or "type" in params:
        return params.get("rope_type", params.get("type"))
    return ",".join(f"{k}:{v.get('rope_type')}" for k, v in params.items())


def generation_config() -> GenerationConfig:
    return GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=MAX_NEW_TOKENS,
        min_new_tokens=MAX_NEW_TOKENS, eos_token_id=None, pad_token_id=PAD_TOKEN_ID,
        use_cache=True, return_dict_in_generate=True, output_scores=True, output_logits=True)


def run_generate(model, prompt: list[int]):
    """model.generate with the processor list and effective config captured for checking."""
    captured = {}
    orig_lp = model._get_logits_processor
    orig_cfg = model._prepare_generation_config

    def get_lp(*args, **kwargs):
        captured["processors"] = orig_lp(*args, **kwargs)
        return captured["processors"]

    def prep_cfg(*args, **kwargs):
        cfg, mk = orig_cfg(*args, **kwargs)
        captured["config"] = cfg
        return cfg, mk

    model._get_logits_processor = get_lp
    model._prepare_generation_config = prep_cfg
    try:
        ids = torch.tensor([prompt], dtype=torch.long)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids),
                                 generation_config=generation_config())
    finally:
        del model._get_logits_processor
        del model._prepare_generation_config

    cfg = captured["config"]
    assert len(captured["processors"]) == 0, captured["processors"]
    assert cfg.eos_token_id is None and cfg.do_sample is False and cfg.num_beams == 1, cfg
    assert cfg.repetition_penalty in (None, 1.0) and not cfg.no_repeat_ngram_size, cfg
    assert not cfg.bad_words_ids and not cfg.suppress_tokens and not cfg.begin_suppress_tokens
    assert cfg.forced_bos_token_id is None and cfg.forced_eos_token_id is None
    seq = out.sequences[0].tolist()
    assert seq[:PROMPT_LEN] == prompt and len(seq) == PROMPT_LEN + MAX_NEW_TOKENS, seq
    generated = seq[PROMPT_LEN:]
    logits = torch.stack([l[0] for l in out.logits]).float()          # [12, V]
    scores = torch.stack([s[0] for s in out.scores]).float()
    assert torch.equal(logits, scores), "a logits processor changed the scores"
    assert logits.argmax(-1).tolist() == generated
    return generated, logits


def manual_cached_loop(model, prompt: list[int]) -> tuple[list[int], torch.Tensor, bool]:
    """Greedy loop through past_key_values. A model without a KV cache (GPT-1: its forward
    returns no past_key_values, and generate() then re-runs the whole sequence each step) is
    re-run on the full sequence; the third value says whether a cache was used."""
    ids = [list(prompt)]
    rows, toks = [], []
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids), use_cache=True)
        has_cache = getattr(out, "past_key_values", None) is not None
        for _ in range(MAX_NEW_TOKENS):
            row = out.logits[0, -1].float()
            tok = int(row.argmax())
            rows.append(row)
            toks.append(tok)
            ids[0].append(tok)
            if has_cache:
                out = model(input_ids=torch.tensor([[tok]]),
                            past_key_values=out.past_key_values, use_cache=True)
            else:
                out = model(input_ids=torch.tensor(ids), use_cache=True)
    return toks, torch.stack(rows), has_cache


def main() -> None:
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__}
    print(json.dumps(versions))
    models = []
    for index, name in enumerate(FIXTURES):
        pristine = load(name)
        vocab = pristine.config.get_text_config().vocab_size
        assert pristine.get_output_embeddings().weight.shape[0] == vocab, name
        prompt = np.random.RandomState(SEED_BASE + index).randint(0, vocab, size=PROMPT_LEN)
        prompt = [int(t) for t in prompt]

        # 1. The reference: model.generate with KV cache.
        generated, logits = run_generate(copy.deepcopy(pristine), prompt)
        margins = [margin(r) for r in logits]

        # 2. Independent cached greedy loop (fresh copy).
        m_toks, m_logits, has_cache = manual_cached_loop(copy.deepcopy(pristine), prompt)
        manual_agrees = m_toks == generated
        # logits are comparable up to and including the first step whose token differs
        upto = next((k for k in range(MAX_NEW_TOKENS) if m_toks[k] != generated[k]),
                    MAX_NEW_TOKENS - 1) + 1
        manual_diff = float((m_logits[:upto] - logits[:upto]).abs().max())
        if rope_type(pristine) not in LENGTH_DEPENDENT_ROPE:
            assert manual_agrees and manual_diff < 1e-4, (name, m_toks, generated, manual_diff)

        # 3. One plain no-cache forward of the full sequence (fresh copy).
        full = torch.tensor([prompt + generated], dtype=torch.long)
        with torch.no_grad():
            nc = copy.deepcopy(pristine)(input_ids=full, use_cache=False).logits[0].float()
        nc = nc[PROMPT_LEN - 1:PROMPT_LEN - 1 + MAX_NEW_TOKENS]
        nc_diff = float((nc - logits).abs().max())
        mismatches = []
        for k in range(MAX_NEW_TOKENS):
            a = int(nc[k].argmax())
            if a != generated[k]:
                mismatches.append({"step": k, "generated": generated[k], "no_cache_argmax": a,
                                   "margin": margins[k], "no_cache_margin": margin(nc[k])})

        # 4. Stateless per-prefix recomputation (fresh copy per prefix).
        pre_rows = []
        for k in range(MAX_NEW_TOKENS):
            ids = torch.tensor([prompt + generated[:k]], dtype=torch.long)
            with torch.no_grad():
                pre_rows.append(copy.deepcopy(pristine)(input_ids=ids, use_cache=False)
                                .logits[0, -1].float())
        pre = torch.stack(pre_rows)
        pre_agrees = pre.argmax(-1).tolist() == generated
        pre_diff = float((pre - logits).abs().max())

        entry = {
            "name": name, "prompt": prompt, "generated": generated, "margins": margins,
            "no_cache_agrees": not mismatches,
            "vocab_size": vocab, "has_kv_cache": has_cache, "rope_type": rope_type(pristine), "min_margin": min(margins),
            "no_cache_mismatches": mismatches, "no_cache_max_abs_logit_diff": nc_diff,
            "prefix_recompute_agrees": pre_agrees,
            "prefix_recompute_max_abs_logit_diff": pre_diff,
            "plain_cache_loop_agrees": manual_agrees,
            "plain_cache_loop_max_abs_logit_diff": manual_diff,
        }
        if not manual_agrees:
            entry["plain_cache_loop_generated"] = m_toks
        models.append(entry)
        print(f"{name:14s} prompt={prompt} generated={generated} min_margin={min(margins):.3g} "
              f"no_cache_agrees={not mismatches} (max|dlogit| {nc_diff:.2e}) "
              f"prefix_agrees={pre_agrees} (max|dlogit| {pre_diff:.2e}) "
              f"plain-cache-loop agrees={manual_agrees} (max|dlogit| {manual_diff:.2e}) "
              f"kv_cache={has_cache}")
        for mm in mismatches:
            print("    no-cache mismatch:", mm)

    doc = {
        "versions": versions,
        "max_new_tokens": MAX_NEW_TOKENS,
        "prompt_len": PROMPT_LEN,
        "prompt_seed": f"numpy RandomState({SEED_BASE} + index in models).randint(0, vocab_size, "
                       f"size={PROMPT_LEN})",
        "generate_call": "model.generate(input_ids, attention_mask=ones, do_sample=False, "
                         "max_new_tokens=12, min_new_tokens=12, eos_token_id=None, pad_token_id=0, "
                         "use_cache=True); float32, eager attention, blank generation_config",
        "margin_skip_threshold": MARGIN_SKIP,
        "models": models,
    }
    with open(OUT_PATH, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT_PATH, ROOT)} ({os.path.getsize(OUT_PATH)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
