#!/usr/bin/env python3
"""StreamLab against PyTorch and numpy (OpenBLAS), measured side by side in one run.

Runs `stream-bench` (release build) for StreamLab's figures, the same workloads with
PyTorch + transformers and numpy, and prints one table of ratios (ours / theirs; below 1
means StreamLab is faster). Then the whole-process comparison a user would make: `stream-probe
ablate` on a saved GPT-2-small-shaped Hugging Face directory (random weights, written here)
against a plain PyTorch + transformers script doing the same job with forward hooks.

    swift build -c release
    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers numpy safetensors
    /work/venv/bin/python Benchmarks/compare.py [--quick] [--results Benchmarks/RESULTS.md] [--big DIR]

--big DIR adds the 7B-class comparison on a checkpoint written by Benchmarks/make_big_model.py
(not committed; about 14.5 GB): StreamLab's load and forward (`stream-bench big`), the same BF16
forward with transformers (dtype=torch.bfloat16, same threads), and `stream-probe ablate
--layers all` on 64 tokens as a whole process, each with its peak RSS.

With --results the whole file is written from this run's figures (Benchmarks/RESULTS.md is
generated: never edit it by hand). Run it on an otherwise idle machine.

Torch and numpy are optional: a missing one leaves its column empty. Thread counts are set
per measurement (torch.set_num_threads; OPENBLAS_NUM_THREADS in a child process for numpy).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, ".build", "release", "stream-bench")
PROBE = os.path.join(ROOT, ".build", "release", "stream-probe")
SHAPES = [("768x768", 768, 768), ("768x3072", 768, 3072), ("3072x768", 3072, 768), ("768x50257", 768, 50257)]
ROWS = [1, 16, 128, 512]
CORES = os.cpu_count() or 1
THREADS = sorted({1, CORES})


def best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# ----------------------------------------------------------------------------- numpy

NUMPY_CHILD = r"""
import json, sys, time, numpy as np
shapes, rows = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rng = np.random.default_rng(0)
out = {}
def best(fn, n):
    fn(); ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return min(ts)
for name, k, n in shapes:
    b = rng.standard_normal((k, n), dtype=np.float32)
    for m in rows:
        a = rng.standard_normal((m, k), dtype=np.float32)
        c = np.empty((m, n), dtype=np.float32)
        out[f"M={m} {name}"] = best(lambda: np.matmul(a, b, out=c), 3 if m * k * n > 1e8 else 10)
print(json.dumps(out))
"""


def numpy_gemm(threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    try:
        r = subprocess.run([sys.executable, "-c", NUMPY_CHILD, json.dumps(SHAPES), json.dumps(ROWS)],
                           env=env, capture_output=True, text=True, check=True)
        return json.loads(r.stdout)
    except Exception as e:  # numpy missing or failing
        print(f"numpy: skipped ({e})", file=sys.stderr)
        return {}


# ----------------------------------------------------------------------------- torch

def skip_block(_module, inputs, output):
    """Forward hook that makes a block pass its input through unchanged."""
    return (inputs[0],) + tuple(output[1:]) if isinstance(output, tuple) else inputs[0]


def torch_workloads(quick):
    try:
        import torch
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception as e:
        print(f"torch: skipped ({e})", file=sys.stderr)
        return {}
    transformers.logging.set_verbosity_error()
    results = {}
    torch.manual_seed(0)
    for threads in THREADS:
        torch.set_num_threads(threads)
        for name, k, n in SHAPES:
            b = torch.randn(k, n)
            for m in ROWS:
                a = torch.randn(m, k)
                c = torch.empty(m, n)
                results[("gemm", f"M={m} {name}", threads)] = best(lambda: torch.matmul(a, b, out=c), 3 if m * k * n > 1e8 else 10)
    model = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).eval()
    blocks = model.transformer.h
    for threads in THREADS:
        torch.set_num_threads(threads)
        for t in ([128] if quick else [128, 512]):
            ids = torch.tensor([[(i * 7919) % 50257 for i in range(t)]])
            with torch.no_grad():
                plain = best(lambda: model(ids), 3)
                results[("forward", f"GPT-2 small, {t} tokens, all logits", threads)] = plain
                # Full recording, cloned: every hook point StreamLab records (embeddings, each block's input,
                # attention and MLP writes, stream between the sublayers, output, MLP activation, per-head
                # outputs before the projection, attention patterns, final norm).
                store = []
                handles = []
                def keep(_m, _i, o):
                    store.append((o[0] if isinstance(o, tuple) else o).detach().clone())
                def keep_input(_m, i):
                    store.append(i[0].detach().clone())
                for blk in blocks:
                    handles += [blk.register_forward_pre_hook(keep_input), blk.register_forward_hook(keep),
                                blk.attn.register_forward_hook(keep), blk.mlp.register_forward_hook(keep),
                                blk.ln_2.register_forward_pre_hook(keep_input), blk.mlp.act.register_forward_hook(keep),
                                blk.attn.c_proj.register_forward_pre_hook(keep_input)]
                handles += [model.transformer.wte.register_forward_hook(keep), model.transformer.wpe.register_forward_hook(keep),
                            model.transformer.ln_f.register_forward_hook(keep)]
                full = best(lambda: (store.clear(), model(ids, output_attentions=True)), 3)
                for h in handles:
                    h.remove()
                results[("forward", f"GPT-2 small, {t} tokens, full recording", threads)] = full
                if t == 128:
                    def sweep():
                        model(ids)
                        for k in range(len(blocks)):
                            h = blocks[k].register_forward_hook(skip_block)
                            model(ids)
                            h.remove()
                    results[("sweep", f"skip each of 12 blocks, {t} tokens", threads)] = best(sweep, 2)
                    def lens():
                        out = model(ids, output_hidden_states=True)
                        # HF's last hidden state is already ln_f'ed; read the others through ln_f.
                        stacked = torch.cat([model.transformer.ln_f(h) for h in out.hidden_states[:-1]] + [out.hidden_states[-1]], 0)
                        model.lm_head(stacked).log_softmax(-1)
                    results[("lens", f"logit lens, 13 reads, {t} tokens", threads)] = best(lens, 3)
    return results


# ----------------------------------------------------------------------------- patching and generation

def patch_inputs():
    """The inputs stream-bench's patch group uses: 64 clean tokens, 4 of them changed."""
    clean = [(i * 7919) % 50257 for i in range(64)]
    corrupted = list(clean)
    for i in (5, 21, 40, 58):
        corrupted[i] = (clean[i] + 1000) % 50257
    return clean, corrupted, 11, 13


def torch_patching():
    """The same patching grid done as TransformerLens does it (one hooked forward per
    (layer, position), the clean resid_pre cached first), attribution patching with
    autograd, and transformers' generate with its KV cache; GPT-2 small, random weights."""
    try:
        import torch
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception as e:
        print(f"torch: skipped ({e})", file=sys.stderr)
        return {}
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    results = {}
    clean, corrupted, answer, wrong = patch_inputs()
    t = len(clean)
    clean_ids, corrupted_ids = torch.tensor([clean]), torch.tensor([corrupted])
    model = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).eval()
    blocks = model.transformer.h
    torch.set_num_threads(CORES)

    def logit_diff(logits):
        return (logits[0, -1, answer] - logits[0, -1, wrong]).item()

    with torch.no_grad():
        results[("patch", f"one forward, {t} tokens", CORES)] = best(lambda: model(corrupted_ids, use_cache=False), 3)
        resid = {}
        handles = [blk.register_forward_pre_hook(lambda m, args, l=l: resid.__setitem__(l, args[0].clone()))
                   for l, blk in enumerate(blocks)]
        model(clean_ids, use_cache=False)
        for h in handles:
            h.remove()

        def grid():
            out = []
            for l in range(len(blocks)):
                for p in range(t):
                    def patch_hook(_m, args, l=l, p=p):
                        h = args[0].clone()
                        h[:, p] = resid[l][:, p]
                        return (h,) + tuple(args[1:])
                    handle = blocks[l].register_forward_pre_hook(patch_hook)
                    out.append(logit_diff(model(corrupted_ids, use_cache=False).logits))
                    handle.remove()
            return out
        start = time.perf_counter()
        grid()
        results[("patch", f"exact resid_pre grid, 12 x {t}", CORES)] = time.perf_counter() - start

    def attribution():
        with torch.no_grad():
            source = {}
            hs = [blk.register_forward_pre_hook(lambda m, args, l=l: source.__setitem__(l, args[0])) for l, blk in enumerate(blocks)]
            model(clean_ids, use_cache=False)
            for h in hs:
                h.remove()
        base = {}
        def keep(_m, args, l):
            args[0].retain_grad()
            base[l] = args[0]
        hs = [blk.register_forward_pre_hook(lambda m, args, l=l: keep(m, args, l)) for l, blk in enumerate(blocks)]
        logits = model(corrupted_ids, use_cache=False).logits
        for h in hs:
            h.remove()
        model.zero_grad(set_to_none=True)
        (logits[0, -1, answer] - logits[0, -1, wrong]).backward()
        return torch.stack([((source[l] - base[l]) * base[l].grad).sum(-1)[0] for l in range(len(blocks))])
    results[("patch", f"attribution resid_pre grid, 12 x {t}", CORES)] = best(attribution, 3)

    generator = GPT2LMHeadModel(GPT2Config()).eval()       # transformers' default attention
    prompt = torch.tensor([clean[:16]])
    for threads in THREADS:
        torch.set_num_threads(threads)
        with torch.no_grad():
            results[("generate", "greedy, 16-token prompt + 64 tokens", threads)] = best(
                lambda: generator.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=64,
                                           min_new_tokens=64, do_sample=False, pad_token_id=0), 3)
    return results


# ----------------------------------------------------------------------------- whole process

TORCH_ABLATE = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from transformers import GPT2LMHeadModel
t_import = time.perf_counter()
torch.set_num_threads(int(sys.argv[3]))
model = GPT2LMHeadModel.from_pretrained(sys.argv[1], attn_implementation="eager").eval()
t_load = time.perf_counter()
ids = torch.tensor([[int(x) for x in sys.argv[2].split(",")]])
blocks = model.transformer.h
with torch.no_grad():
    clean = model(ids).logits[0].double().log_softmax(-1)
    rows = []
    for k in range(len(blocks)):
        h = blocks[k].register_forward_hook(lambda m, i, o: ((i[0],) + tuple(o[1:])) if isinstance(o, tuple) else i[0])
        q = model(ids).logits[0].double().log_softmax(-1)
        h.remove()
        kl = (clean.exp() * (clean - q)).sum(-1)
        loss = -q[:-1].gather(1, ids[0, 1:, None]).mean().item()
        rows.append({"layer": k, "kl_mean": kl.mean().item(), "loss": loss})
t_end = time.perf_counter()
print(json.dumps({"import": t_import - t0, "load": t_load - t_import, "work": t_end - t_load, "ablations": rows}))
"""


def whole_process(threads):
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception as e:
        print(f"whole-process comparison: skipped ({e})", file=sys.stderr)
        return None
    directory = tempfile.mkdtemp(prefix="streamlab-gpt2-small-")
    try:
        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config()).save_pretrained(directory)
        tokens = ",".join(str((i * 7919) % 50257) for i in range(128))
        ours, theirs = [], []   # theirs: (end-to-end seconds, the script's own JSON) per run
        for _ in range(3):
            t = time.perf_counter()
            r = subprocess.run([PROBE, "ablate", directory, "--tokens", tokens, "--threads", str(threads), "--format", "json"],
                               capture_output=True, text=True, check=True)
            ours.append(time.perf_counter() - t)
            our_json = json.loads(r.stdout)
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", TORCH_ABLATE, directory, tokens, str(threads)],
                               capture_output=True, text=True, check=True)
            theirs.append((time.perf_counter() - t, json.loads(r.stdout)))
        # Best of 3 for both; PyTorch's import / load / forward split is that of its fastest run.
        torch_total, torch_json = min(theirs, key=lambda x: x[0])
        worst = max(abs(a["kl_mean"] - b["kl_mean"]) + abs(a["loss"] - b["loss"])
                    for a, b in zip(our_json["ablations"], torch_json["ablations"]))
        return {"ours": min(ours), "torch_total": torch_total, "torch_work": torch_json["work"],
                "torch_import": torch_json["import"], "torch_load": torch_json["load"], "agreement": worst}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ----------------------------------------------------------------------------- training

TRAIN_SHAPE = ["--layers", "6", "--width", "128", "--heads", "4", "--context", "256", "--batch", "16"]


def training_throughput(threads, seconds):
    """Tokens/s of `stream-probe train` and of the PyTorch loop on the bundled shape."""
    corpus = os.path.join(ROOT, "Fixtures", "corpora", "shakespeare-train.txt")
    valid = os.path.join(ROOT, "Fixtures", "corpora", "shakespeare-valid.txt")
    out = tempfile.mkdtemp(prefix="streamlab-train-")
    try:
        steps = train_steps(seconds)
        subprocess.run([PROBE, "train", "--corpus", corpus, "--valid", valid, *TRAIN_SHAPE, "--norm", "pre",
                        "--steps", str(steps), "--eval-every", "0", "--eval-bytes", "4096", "--threads", str(threads),
                        "--out", os.path.join(out, "model")], check=True, capture_output=True, text=True)
        log = json.load(open(os.path.join(out, "model", "training.json")))["log"]["steps"]
        later = log[len(log) // 4:] or log                        # skip the warm-up of the first quarter
        ours = sum(e["tokens_per_second"] for e in later) / len(later)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    try:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks", "torch_train_throughput.py"),
                            "--threads", str(threads), "--seconds", str(seconds), "--corpus", corpus],
                           check=True, capture_output=True, text=True)
        theirs = json.loads(r.stdout.strip().splitlines()[-1])["tokens_per_second"]
    except Exception as e:
        print(f"torch training: skipped ({e})", file=sys.stderr)
        theirs = None
    return ours, theirs


# ----------------------------------------------------------------------------- report

RESULTS_HEADER = ("<!-- Generated by Benchmarks/compare.py --results: do not edit this file by hand; rerun "
                  "`python3 Benchmarks/compare.py --results Benchmarks/RESULTS.md` on a quiet machine instead. -->")


def train_steps(seconds):
    """Steps of the StreamLab training measurement: about `seconds` if it ran at 12k tokens/s (an
    assumed rate that only sizes the run; the table reports the measured one)."""
    return max(20, int(seconds * 12000 / (16 * 256)))


TORCH_BIG = r'''
import json, resource, sys, time
import torch
from transformers import AutoModelForCausalLM
directory, tokens, threads = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], int(sys.argv[3])
torch.set_num_threads(threads)
t = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16).eval()
load = time.perf_counter() - t
with torch.no_grad():
    model(torch.tensor([tokens[:4]]))                     # warm-up on 4 tokens
    t = time.perf_counter()
    logits = model(torch.tensor([tokens])).logits
    forward = time.perf_counter() - t
print(json.dumps({"load": load, "forward": forward, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "finite": bool(torch.isfinite(logits).all())}))
'''


def max_rss_of(command):
    """Runs a command under /usr/bin/time -f %M (or without it); returns (seconds, stdout, peak RSS bytes or None)."""
    timer = shutil.which("time") or "/usr/bin/time"
    if os.path.exists(timer):
        t = time.perf_counter()
        r = subprocess.run([timer, "-f", "%M", *command], capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if r.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {r.stderr.strip()[-400:]}")
        rss = int(r.stderr.strip().splitlines()[-1]) * 1024
        return seconds, r.stdout, rss
    t = time.perf_counter()
    r = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - t, r.stdout, None


def big_model(directory, threads):
    """The 7B-class comparison on `directory`: ours (stream-bench big, stream-probe ablate) and transformers."""
    config = json.load(open(os.path.join(directory, "config.json")))
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory) if f.endswith(".safetensors"))
    tokens = ",".join(str((i * 7919) % config["vocab_size"]) for i in range(64))
    # Read the checkpoint once first, so both sides load from a warm page cache.
    subprocess.run([PROBE, "info", directory], capture_output=True, check=True)
    out = tempfile.mktemp(suffix=".json")
    _, _, bench_rss = max_rss_of([BENCH, "big", "--model", directory, "--tokens", "64", "--json", out])
    figures = {(f["name"], f["threads"]): f for f in json.load(open(out))["figures"] if f["group"] == "big"}
    os.remove(out)
    ablate_seconds, _, ablate_rss = max_rss_of([PROBE, "ablate", directory, "--tokens", tokens, "--threads", str(threads),
                                                "--format", "json"])
    result = {"model": os.path.basename(directory.rstrip("/")), "file_bytes": size, "threads": threads, "ours": figures,
              "bench_rss": bench_rss, "ablate_seconds": ablate_seconds, "ablate_rss": ablate_rss, "torch": None}
    try:
        _, text, torch_rss = max_rss_of([sys.executable, "-c", TORCH_BIG, directory, tokens, str(threads)])
        result["torch"] = dict(json.loads(text), rss=torch_rss)
    except Exception as e:       # noqa: BLE001  (no torch, or it ran out of memory: the column stays empty)
        print(f"transformers big-model forward: skipped ({e})", file=sys.stderr)
    return result


def render(run):
    """The report as Markdown lines, from the figures of one run (no numbers from anywhere else).

    run: date, quick, machine, cores, peak {threads: GFLOP/s}, ours {(group, name, threads): figure},
    torch {(group, name, threads): seconds}, numpy {threads: {name: seconds}}, process (dict or None),
    training {threads: (ours tokens/s, PyTorch tokens/s or None)}, train_seconds.
    """
    cores, peak = run["cores"], run["peak"]
    lines = [f"Machine: {run['machine']}, {cores} cores; "
             f"measured FMA peak {peak.get(1, 0):.0f} GFLOP/s on 1 thread, {peak.get(cores, 0):.0f} on {cores}.",
             "",
             "| workload | threads | StreamLab ms | GFLOP/s (% peak) | PyTorch ms | numpy ms | ours / PyTorch | ours / numpy |",
             "|---|---|---|---|---|---|---|---|"]
    memory_tokens = None
    for key, f in run["ours"].items():
        group, name, threads = key
        if group == "peak":
            continue
        if group == "memory":
            words = name.split()
            memory_tokens = next((int(w) for w, nxt in zip(words, words[1:]) if w.isdigit() and nxt.startswith("tok")), None)
        ms = "" if f["seconds"] == 0 else f"{f['seconds'] * 1000:.2f}"   # 0: not a timing (memory)
        g = f["gflops"]
        gtext = f"{g:.0f} ({100 * g / peak[threads]:.0f}%)" if g else f["note"]
        t = run["torch"].get(key)
        # In-place rows ("M=128 768x768 BF16 [out,in] in place") compare with numpy's F32 of that shape.
        n = run["numpy"].get(threads, {}).get(" ".join(name.split()[:2])) if group == "gemm" else None
        cells = ["" if t is None else f"{t * 1000:.2f}", "" if n is None else f"{n * 1000:.2f}",
                 "" if t is None else f"{f['seconds'] / t:.2f}", "" if n is None else f"{f['seconds'] / n:.2f}"]
        lines.append(f"| {group}: {name.strip()} | {threads} | {ms} | {gtext} | " + " | ".join(cells) + " |")
    ours, theirs = run["ours"], run["torch"]
    grid_key = next((k for k in ours if k[0] == "patch" and k[1].startswith("exact")), None)
    if grid_key:
        forward = next(f for k, f in ours.items() if k[0] == "patch" and k[1].startswith("one forward"))
        attribution_key = next(k for k in ours if k[0] == "patch" and k[1].startswith("attribution"))
        attribution = ours[attribution_key]["seconds"]
        lines += ["", "Patching and generation on the GPT-2-small shape (random weights; 64 tokens, the corrupted input "
                      "differing in 4; PyTorch: the clean `resid_pre` cached, then one hooked forward per (layer, position) "
                      "as TransformerLens's `get_act_patch_resid_pre` does; attribution with autograd; `generate` with "
                      "transformers' default attention and KV cache):", ""]
        if grid_key in theirs:
            lines.append(f"- exact `resid_pre` grid (12 x 64 patched runs): ours / PyTorch = "
                         f"{ours[grid_key]['seconds'] / theirs[grid_key]:.2f} (goal: at most 0.5).")
        their_forward = theirs.get(("patch", forward["name"], forward["threads"]))
        their_attribution = theirs.get(attribution_key)
        lines.append(f"- attribution patching of the whole grid: {attribution / forward['seconds']:.2f} of our forwards' time "
                     "(goal: at most 3)" + (f"; PyTorch's: {their_attribution / their_forward:.2f} of its forwards', "
                                              f"ours / PyTorch = {attribution / their_attribution:.2f}."
                                              if their_forward and their_attribution else "."))
        for key, f in ours.items():
            if key[0] == "generate" and key in theirs:
                lines.append(f"- generation, {key[2]} thread{'s' if key[2] > 1 else ''}: ours {64 / f['seconds']:.0f} tokens/s, "
                             f"transformers' generate {64 / theirs[key]:.0f} tokens/s; ours / theirs (throughput) = "
                             f"{theirs[key] / f['seconds']:.2f} (goal: at least 1).")
    process = run["process"]
    if process:
        lines += ["",
                  f"Whole process, `stream-probe ablate` (load + clean pass + 12 block skips, 128 tokens, {cores} threads) "
                  f"on a saved GPT-2-small-shaped directory:",
                  f"StreamLab {process['ours']:.2f} s end to end; the PyTorch script {process['torch_total']:.2f} s end to end "
                  f"(imports {process['torch_import']:.2f} s, load {process['torch_load']:.2f} s, 13 forwards {process['torch_work']:.2f} s).",
                  f"Ratios: ours / PyTorch end to end = {process['ours'] / process['torch_total']:.2f}; "
                  f"ours / PyTorch's 13 forwards alone = {process['ours'] / process['torch_work']:.2f}. "
                  f"Metrics agree within {process['agreement']:.1e} (worst layer's |KL difference| + |loss difference|)."]
    big = run.get("big")
    if big:
        gib = 2 ** 30
        ours = big["ours"]
        load = next((f for (n, _), f in ours.items() if n.startswith("load")), None)
        forward = {t: f for (n, t), f in ours.items() if n.startswith("forward")}
        lines += ["", f"7B-class checkpoint `{big['model']}` (random BF16 weights with its real shapes, "
                      f"{big['file_bytes'] / gib:.1f} GiB on disk, written by `Benchmarks/make_big_model.py`), 64 tokens:", "",
                  "| | StreamLab | transformers (BF16) | ours / transformers |", "|---|---|---|---|"]
        t = big["torch"]
        if load:
            their_load = "" if not t else f"{t['load']:.2f} s"
            lines.append(f"| load (page cache warm) | {load['seconds']:.2f} s | {their_load} | |")
        for threads, f in sorted(forward.items()):
            theirs = t["forward"] if t and threads == big["threads"] else None
            ratio = "" if theirs is None else f"{f['seconds'] / theirs:.3f}"
            lines.append(f"| forward, {threads} thread{'s' if threads > 1 else ''} | {f['seconds']:.2f} s "
                         f"({f['gflops']:.0f} GFLOP/s, {100 * f['gflops'] / peak[threads]:.0f}% of peak) | "
                         f"{'' if theirs is None else f'{theirs:.2f} s'} | {ratio} |")
        rss = lambda b: "" if b is None else f"{b / gib:.2f} GiB"
        lines.append(f"| peak RSS of that process | {rss(big['bench_rss'])} | {rss(t['rss'] if t else None)} | |")
        lines.append(f"| `stream-probe ablate --layers all`, whole process | {big['ablate_seconds']:.1f} s, peak RSS "
                     f"{rss(big['ablate_rss'])} (file + {(big['ablate_rss'] - big['file_bytes']) / gib:.2f} GiB) | | |"
                     if big["ablate_rss"] else f"| `stream-probe ablate --layers all`, whole process | {big['ablate_seconds']:.1f} s | | |")
    seconds = run["train_seconds"]
    lines += ["",
              "Training throughput on the bundled shape (6 layers x 128, 4 heads, context 256, batch 16, AdamW), tokens/s. "
              f"StreamLab: `stream-probe train --norm pre` for {train_steps(seconds)} steps, the mean of its progress lines' "
              f"tokens/s after the first quarter; PyTorch: `Benchmarks/torch_train_throughput.py` for {seconds:.0f} s "
              "after 3 warm-up steps (the same model as a Hugging Face `GPT2LMHeadModel`, eager attention).",
              "",
              "| threads | StreamLab | PyTorch | ours / PyTorch (throughput; above 1 is faster) |",
              "|---|---|---|---|"]
    for t, (ours_tps, torch_tps) in run["training"].items():
        ratio = "" if not torch_tps else f"{ours_tps / torch_tps:.2f}"
        lines.append(f"| {t} | {ours_tps:.0f} | {'' if torch_tps is None else f'{torch_tps:.0f}'} | {ratio} |")
    lines += ["",
              "## Reading this table",
              "",
              f"- Every figure above comes from this one run ({run['date']}{', --quick' if run['quick'] else ''}):",
              "  StreamLab's from `stream-bench` (release build), PyTorch's and numpy's timed by compare.py with",
              "  the same thread counts. Each time is the best of a few repeats (training: a mean over the",
              "  measured steps). Runs on a shared machine differ from each other, so compare ratios within",
              "  one run, not figures across runs.",
              "- `ours / PyTorch` and `ours / numpy` are ratios of times (below 1: StreamLab is faster); the",
              "  training table's ratio is one of throughputs (above 1: StreamLab is faster).",
              "- `% peak` is the GFLOP/s figure over the FMA peak measured in this run at the same thread count.",
              "  M = 1 rows are memory-bound (each weight is used once), so the peak fraction is a meaningful",
              "  goal only for M >= 128.",
              "- The packed multiply's generated code is not checked here; to check it, run",
              "  `objdump -d --no-show-raw-insn .build/release/stream-bench` and look for `vfmadd231ps` on ymm",
              "  registers (the micro-kernel keeps a 6 x 16 block of C in twelve 8-float registers) and no",
              "  calls to `fmaf`."]
    if memory_tokens:
        patterns = 12 * 12 * memory_tokens * memory_tokens * 4 / 2 ** 20
        lines += [f"- Memory: `info` reports what a model takes; the memory row is the peak RSS of a process that",
                  f"  builds a random GPT-2-small-shaped model and records every hook point for {memory_tokens} tokens",
                  f"  (the attention patterns alone are 12 x [12, {memory_tokens}, {memory_tokens}] floats, {patterns:.0f} MiB)."]
    return lines


def results_file(run, lines):
    """The whole of RESULTS.md: nothing in it is written by hand."""
    command = "python3 Benchmarks/compare.py" + (" --quick" if run["quick"] else "")
    return "\n".join([RESULTS_HEADER, "", "# Benchmark results", "",
                      f"Latest run of `{command}` ({run['date']}).", "", *lines]) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer workloads")
    parser.add_argument("--results", help="write the whole report as Markdown to this file (Benchmarks/RESULTS.md)")
    parser.add_argument("--big", metavar="DIR", help="also compare on a 7B-class checkpoint (Benchmarks/make_big_model.py)")
    args = parser.parse_args()
    for exe in (BENCH, PROBE):
        if not os.path.exists(exe):
            sys.exit(f"{exe} is missing: run `swift build -c release` first")
    print("running stream-bench ...", file=sys.stderr)
    out = tempfile.mktemp(suffix=".json")
    groups = ["peak", "gemm", "forward", "sweep", "lens", "patch", "paths", "memory"]
    subprocess.run([BENCH, *groups, "--json", out], check=True, stdout=sys.stderr)
    ours_json = json.load(open(out))
    os.remove(out)
    run = {"date": time.strftime("%Y-%m-%d"), "quick": args.quick,
           "machine": platform.processor() or platform.machine(), "cores": CORES,
           "peak": {p["threads"]: p["gflops"] for p in ours_json["peak"]},
           "ours": {(f["group"], f["name"], f["threads"]): f for f in ours_json["figures"]}}
    print("running numpy ...", file=sys.stderr)
    run["numpy"] = {t: numpy_gemm(t) for t in THREADS}
    print("running torch ...", file=sys.stderr)
    run["torch"] = torch_workloads(args.quick)
    print("running torch patching and generation ...", file=sys.stderr)
    run["torch"].update(torch_patching())
    print("running the whole-process ablate comparison ...", file=sys.stderr)
    run["process"] = whole_process(CORES)
    print("running training throughput ...", file=sys.stderr)
    run["train_seconds"] = 20 if args.quick else 60
    run["training"] = {t: training_throughput(t, run["train_seconds"]) for t in THREADS}
    if args.big:
        print("running the 7B-class comparison ...", file=sys.stderr)
        run["big"] = big_model(args.big, CORES)

    lines = render(run)
    print("\n".join(lines))
    if args.results:
        with open(args.results, "w") as fh:
            fh.write(results_file(run, lines))


if __name__ == "__main__":
    main()
