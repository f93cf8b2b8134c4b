#!/usr/bin/env python3
"""Tokenizer throughput, StreamLab beside tiktoken and Hugging Face `tokenizers`, one thread each.

Encodes one corpus with the GPT-2 vocabulary (the tiktoken ranks file) three ways in the same
run and prints one table of MB/s (10^6 bytes of UTF-8 per second, best of three encodes of the
whole text in one call, loading not timed), then checks that all three produce the same
number of tokens:
  - StreamLab: `swift run -c release stream-bench tokenizer --corpus FILE --vocab FILE`, which
    prints {"mb_per_s": f, "tokens": n} (or the binary given with --stream-bench);
  - tiktoken: an Encoding built from the same ranks file with GPT-2's pattern;
  - tokenizers: a byte-level BPE tokenizer.json converted from the same ranks (merges
    recovered by replaying BPE on each token, as transformers' tiktoken converter does),
    RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false.
Python packages that are missing are skipped with a note.

Usage (from the package root; environment as in Fixtures/tokenizers/make_tokenizer_reference.py):

    /work/venv/bin/python Benchmarks/tokenizer_compare.py [--corpus FILE] [--vocab FILE] [--stream-bench BINARY]

Defaults: Fixtures/corpora/shakespeare-train.txt (4.8 MB) and Fixtures/tokenizers/gpt2.tiktoken.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"          # before tokenizers is imported
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def best_of(runs, encode, text):
    best, count = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        ids = encode(text)
        best = min(best, time.perf_counter() - start)
        count = len(ids)
    return len(text.encode("utf-8")) / 1e6 / best, count


def load_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def streamlab(args):
    if args.stream_bench:
        command = [args.stream_bench]
    else:
        command = ["swift", "run", "-c", "release", "stream-bench"]
    command += ["tokenizer", "--corpus", args.corpus, "--vocab", args.vocab]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    result = json.loads(line)
    return result["mb_per_s"], result["tokens"]


def tiktoken_run(ranks, text):
    import tiktoken
    enc = tiktoken.Encoding(name="gpt2-bench", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": len(ranks)})
    return best_of(3, enc.encode_ordinary, text), f"tiktoken {tiktoken.__version__}"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def merges_from_ranks(ranks):
    """The merge that creates each multi-byte token: replay BPE on its bytes using only
    lower ranks; two parts remain."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = [bytes([b]) for b in token]
        while len(parts) > 2:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]
        assert len(parts) == 2, token
        merges.append(tuple(parts))
    return merges


def tokenizers_run(ranks, text):
    import tokenizers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    spell = bytes_to_unicode()
    spelling = lambda b: "".join(spell[x] for x in b)
    vocab = {spelling(t): r for t, r in ranks.items()}
    merges = [(spelling(a), spelling(b)) for a, b in merges_from_ranks(ranks)]
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path, merges_path = os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt")
        with open(vocab_path, "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(merges_path, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
        tok = Tokenizer(models.BPE.from_file(vocab_path, merges_path))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    encode = lambda s: tok.encode(s, add_special_tokens=False).ids
    return best_of(3, encode, text), f"tokenizers {tokenizers.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(ROOT, "Fixtures", "corpora", "shakespeare-train.txt"),
                        help="UTF-8 text to encode (default: Fixtures/corpora/shakespeare-train.txt)")
    parser.add_argument("--vocab", default=os.path.join(ROOT, "Fixtures", "tokenizers", "gpt2.tiktoken"),
                        help="GPT-2 ranks file (default: Fixtures/tokenizers/gpt2.tiktoken)")
    parser.add_argument("--stream-bench", help="a built stream-bench binary instead of `swift run`")
    args = parser.parse_args()
    args.corpus, args.vocab = os.path.abspath(args.corpus), os.path.abspath(args.vocab)
    with open(args.corpus, "rb") as f:
        text = f.read().decode("utf-8")
    ranks = load_ranks(args.vocab)

    rows = [("StreamLab (Swift, release)", *streamlab(args))]
    for name, run in (("tiktoken", tiktoken_run), ("tokenizers", tokenizers_run)):
        try:
            (speed, count), label = run(ranks, text)
            rows.append((label, speed, count))
        except ImportError as error:
            print(f"note: {name} not available ({error}); skipped", file=sys.stderr)

    size = len(text.encode("utf-8")) / 1e6
    print(f"{os.path.basename(args.corpus)}: {size:.2f} MB, vocabulary {os.path.basename(args.vocab)}, one thread")
    print(f"{'implementation':<28} {'MB/s':>8} {'tokens':>10}")
    for label, speed, count in rows:
        print(f"{label:<28} {speed:>8.2f} {count:>10}")
    counts = {count for _, _, count in rows}
    if len(counts) != 1:
        sys.exit(f"token counts differ: {[(label, count) for label, _, count in rows]}")
    print("token counts agree")


if __name__ == "__main__":
    main()
