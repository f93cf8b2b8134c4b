#!/usr/bin/env python3
"""Training throughput of PyTorch on the bundled StreamLab shape, for comparison with
`stream-probe train` (Benchmarks/compare.py calls this).

The same model, batch, threads and optimizer as `stream-probe train`: a Hugging Face
GPT2LMHeadModel (pre-norm) or OpenAIGPTLMHeadModel (post-norm) with vocabulary 256, no
dropout, tied embeddings; random byte windows of the corpus; AdamW (betas 0.9/0.95, weight
decay 0.1 on matrices and embeddings only), global-norm clipping at 1.0, a fixed learning rate
(the schedule costs nothing). Prints one JSON line on stdout, of this form (the values here are
placeholders, not a measurement; measured figures are in Benchmarks/RESULTS.md):

    {"impl": "pytorch", "norm": "pre", "threads": 2, "batch": 16, "context": 256, ...,
     "steps": S, "seconds": X, "tokens_per_second": Y}

With --steps N it instead trains exactly N steps with the same warm-up and cosine schedule as
`stream-probe train` and reports the held-out loss (first 64 KiB of --valid), to compare the
learning curves of the two implementations.

Usage (from the repository root; the venv recipe is in Fixtures/reference/README.md):

    /work/venv/bin/python Benchmarks/torch_train_throughput.py --threads 2 --seconds 60 \
        --corpus Fixtures/corpora/shakespeare-train.txt
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel


def build(args):
    common = dict(vocab_size=256, n_positions=args.context, n_embd=args.width, n_layer=args.layers,
                  n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                  layer_norm_epsilon=1e-5, tie_word_embeddings=True)
    if args.norm == "pre":
        cfg = GPT2Config(activation_function="gelu_new", **common)
        model = GPT2LMHeadModel._from_config(cfg, attn_implementation=args.attn)
    else:
        cfg = OpenAIGPTConfig(afn="gelu", **common)
        model = OpenAIGPTLMHeadModel._from_config(cfg, attn_implementation=args.attn)
    return model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--norm", choices=["pre", "post"], default="pre")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=60.0, help="measure for about this long")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--attn", choices=["eager", "sdpa"], default="eager",
                   help="attention implementation (default eager, the one compare.py measures; "
                        "rerun with sdpa to compare the two on this machine)")
    p.add_argument("--corpus", default=None, help="bytes to sample windows from (default: random bytes)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=None,
                   help="instead of timing: train exactly this many steps with stream-probe train's "
                        "schedule (--lr, --warmup, cosine to 10%%) and report the held-out loss")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--valid", default=None, help="with --steps: held-out loss on its first 64 KiB")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    transformers.logging.set_verbosity_error()
    model = build(args)
    model.train()
    decay = [q for n, q in model.named_parameters() if q.dim() >= 2]
    no_decay = [q for n, q in model.named_parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    if args.corpus:
        with open(args.corpus, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
    else:
        data = torch.randint(0, 256, (1 << 20,))
    g = torch.Generator().manual_seed(args.seed)
    T, B = args.context, args.batch

    def rate(s):
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        q = min(1.0, (s - args.warmup) / max(1, args.steps - args.warmup))
        return args.lr * (0.1 + 0.9 * (1 + math.cos(math.pi * q)) / 2)

    def step():
        starts = torch.randint(0, len(data) - T - 1, (B,), generator=g)
        x = torch.stack([data[s:s + T] for s in starts])
        y = torch.stack([data[s + 1:s + T + 1] for s in starts])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    if args.steps is not None:
        t0 = time.perf_counter()
        for s in range(args.steps):
            for group in opt.param_groups:
                group["lr"] = rate(s)
            loss = step()
            if (s + 1) % 50 == 0:
                print(f"step {s + 1}: loss {loss:.4f}", file=sys.stderr)
        seconds = time.perf_counter() - t0
        held_out = None
        if args.valid:
            model.eval()
            with open(args.valid, "rb") as f:
                v = torch.frombuffer(bytearray(f.read(65536)), dtype=torch.uint8).long()
            w = v[: (len(v) // T) * T].view(-1, T)
            with torch.no_grad():
                total, count = 0.0, 0
                for chunk in w.split(16):
                    logits = model(input_ids=chunk).logits
                    total += float(torch.nn.functional.cross_entropy(
                        logits[:, :-1].reshape(-1, 256), chunk[:, 1:].reshape(-1), reduction="sum"))
                    count += chunk.shape[0] * (T - 1)
            held_out = total / count
        print(json.dumps({"impl": "pytorch", "norm": args.norm, "steps": args.steps, "lr": args.lr,
                          "warmup": args.warmup, "threads": args.threads, "seconds": round(seconds, 1),
                          "tokens_per_second": round(args.steps * B * T / seconds, 1),
                          "last_loss": round(loss, 4), "held_out_loss": held_out}))
        return 0

    for _ in range(args.warmup_steps):
        step()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        loss = step()
        steps += 1
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "attn": args.attn, "norm": args.norm,
        "layers": args.layers, "width": args.width, "heads": args.heads, "context": T, "batch": B,
        "threads": args.threads, "steps": steps, "seconds": round(seconds, 2),
        "tokens_per_second": round(steps * B * T / seconds, 1), "last_loss": round(loss, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
