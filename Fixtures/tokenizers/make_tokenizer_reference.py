#!/usr/bin/env python3
"""Builds the small tokenizer fixtures and the reference ids the Swift tokenizer tests compare with.

Reference implementations: tiktoken (GPT-2 ranks) and Hugging Face `tokenizers`.
Building and testing StreamLab never runs this script; its outputs are committed.

Environment (once):

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Run from the package root (takes a few seconds; deterministic for a given `tokenizers` version):

    /work/venv/bin/python Fixtures/tokenizers/make_tokenizer_reference.py [--corpus PATH]

`--corpus` is the training text for the two small tokenizers, by default the first 400 KB of
Fixtures/corpora/shakespeare-train.txt. Only this script reads it.

Reads:  Fixtures/tokenizers/gpt2.tiktoken, Fixtures/tokenizers/conformance.txt
Writes (all in Fixtures/tokenizers/):
  bytelevel/tokenizer.json              byte-level BPE (GPT-2 style, vocab 2,000), trained here
  bytelevel/vocab.json, merges.txt      the same model as GPT-2's slow-tokenizer files
  sentencepiece/tokenizer.json          Llama-2 style: Prepend + Replace normalizers, byte_fallback,
                                        decoder Replace/ByteFallback/Fuse/Strip, "<s> $A" template
  sentencepiece-metaspace/tokenizer.json  the same vocabulary with a Metaspace pre-tokenizer
                                        (prepend_scheme "first", split) and a Metaspace decoder
  bytelevel-nfc/tokenizer.json          bytelevel/ with an NFC normalizer (GPT-NeoX / Pythia style)
  llama3-style/tokenizer.json           byte-level BPE behind Llama 3's Split pattern, ignore_merges,
                                        "<|begin_of_text|> $A" template (vocab 2,000), trained here
  qwen2-style/tokenizer.json            the same model behind Qwen2's Split pattern, NFC normalizer
  reference-*.json                      ids per line and for the whole text, per tokenizer
"""
import argparse
import json
import os
import sys

import tiktoken
import tiktoken.load
import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def conformance_lines():
    """The text and its lines: split on "\\n" only (not str.splitlines), final newline dropped."""
    with open(os.path.join(HERE, "conformance.txt"), "rb") as f:
        text = f.read().decode("utf-8")  # strict: the text must be valid UTF-8
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return text, lines


def write_reference(name, meta, lines, whole, extra=None):
    """One JSON object; one list of ids per line of the file for readable diffs."""
    path = os.path.join(HERE, name)
    dump = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    parts = ["{"]
    for key, value in meta.items():
        parts.append(f"{dump(key)}:{dump(value)},")
    parts.append('"lines":[')
    parts.append(",\n".join(dump(ids) for ids in lines))
    parts.append("],")
    for key, value in (extra or {}).items():
        if isinstance(value, list):
            parts.append(f'{dump(key)}:[\n' + ",\n".join(dump(v) for v in value) + "],")
        else:
            parts.append(f"{dump(key)}:{dump(value)},")
    parts.append(f'"whole":{dump(whole)}')
    parts.append("}\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    print(f"wrote {name}: {len(lines)} lines, {len(whole)} ids for the whole text")


def tiktoken_reference(text, lines):
    ranks = tiktoken.load.load_tiktoken_bpe(os.path.join(HERE, "gpt2.tiktoken"))
    enc = tiktoken.Encoding(
        name="gpt2-fixture",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks)},
    )
    encode = lambda s: enc.encode(s, allowed_special="all")
    for line in lines:
        assert enc.decode(encode(line)) == line
    write_reference(
        "reference-tiktoken-gpt2.json",
        {"tokenizer": "gpt2.tiktoken", "library": f"tiktoken {tiktoken.__version__}",
         "call": "Encoding(pat_str=GPT-2, special_tokens={'<|endoftext|>': 50256}).encode(s, allowed_special='all')"},
        [encode(line) for line in lines],
        encode(text),
    )


def training_lines(corpus, text):
    with open(corpus, "rb") as f:
        data = f.read(400_000).decode("utf-8", errors="ignore")
    return data.split("\n"), text


def build_bytelevel(corpus_lines, text):
    """GPT-2 style byte-level BPE trained on Shakespeare plus the conformance text (so that
    multi-byte sequences get merges too)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = tokenizers.processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines + text.split("\n") * 3, trainer=trainer)
    # An extra special token that strips the whitespace on its left, as RoBERTa's <mask> does.
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    out = os.path.join(HERE, "bytelevel")
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    tok.model.save(out)  # vocab.json + merges.txt
    return Tokenizer.from_file(os.path.join(out, "tokenizer.json"))


def bytelevel_references(tok, text, lines):
    meta = {"tokenizer": "bytelevel/tokenizer.json", "library": f"tokenizers {tokenizers.__version__}",
            "call": "Tokenizer.from_file(...).encode(s, add_special_tokens=True).ids"}
    encode = lambda s: tok.encode(s, add_special_tokens=True).ids
    for line in lines:
        if "<mask>" not in line:  # lstrip drops the space before <mask>, so no round trip there
            assert tok.decode(encode(line), skip_special_tokens=False) == line, line
    write_reference("reference-bytelevel.json", meta, [encode(l) for l in lines], encode(text))

    # The vocab.json + merges.txt pair knows only <|endoftext|> as a special token
    # (as GPT-2's slow tokenizer files do); "<mask>" is ordinary text there.
    out = os.path.join(HERE, "bytelevel")
    vm = Tokenizer(models.BPE.from_file(os.path.join(out, "vocab.json"), os.path.join(out, "merges.txt")))
    vm.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    vm.decoder = decoders.ByteLevel()
    vm.add_special_tokens(["<|endoftext|>"])
    encode = lambda s: vm.encode(s, add_special_tokens=True).ids
    meta = {"tokenizer": "bytelevel/vocab.json + bytelevel/merges.txt",
            "library": f"tokenizers {tokenizers.__version__}",
            "call": "Tokenizer(BPE.from_file(vocab, merges)) + ByteLevel(add_prefix_space=False) + special <|endoftext|>"}
    write_reference("reference-bytelevel-vocab-merges.json", meta, [encode(l) for l in lines], encode(text))


def encode_references(tok, name, folder, text, lines, note=""):
    encode = lambda s: tok.encode(s, add_special_tokens=True).ids
    meta = {"tokenizer": f"{folder}/tokenizer.json", "library": f"tokenizers {tokenizers.__version__}",
            "call": "Tokenizer.from_file(...).encode(s, add_special_tokens=True).ids" + note}
    write_reference(name, meta, [encode(l) for l in lines], encode(text))


def build_bytelevel_nfc(text, lines):
    """bytelevel/tokenizer.json with an NFC normalizer, as GPT-NeoX / Pythia ship theirs."""
    with open(os.path.join(HERE, "bytelevel", "tokenizer.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["normalizer"] = {"type": "NFC"}
    tok = save_compact(Tokenizer.from_str(json.dumps(config)), "bytelevel-nfc")
    encode_references(tok, "reference-bytelevel-nfc.json", "bytelevel-nfc", text, lines)


def save_compact(tok, folder):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    path = os.path.join(HERE, folder, "tokenizer.json")
    tok.save(path, pretty=False)
    return Tokenizer.from_file(path)


def build_cl100k_style(corpus_lines, text, lines):
    """Byte-level BPE behind the cl100k-family Split patterns: Llama 3 (digits in threes,
    ignore_merges, BOS template) and Qwen2 (single digits, NFC)."""
    split = lambda pattern: pre_tokenizers.Split(tokenizers.Regex(pattern), behavior="isolated", invert=False)
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        split(LLAMA3_PATTERN), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, min_frequency=2, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus_lines + text.split("\n") * 3, trainer=trainer)
    tok.post_processor = tokenizers.processors.Sequence([
        tokenizers.processors.ByteLevel(trim_offsets=False),
        tokenizers.processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                                 special_tokens=[("<|begin_of_text|>", 0)])])
    llama3 = save_compact(tok, "llama3-style")
    encode_references(llama3, "reference-llama3-style.json", "llama3-style", text, lines)

    config = json.loads(llama3.to_str())
    config["normalizer"] = {"type": "NFC"}
    config["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": QWEN2_PATTERN}
    config["post_processor"] = None
    config["model"]["ignore_merges"] = False
    config["added_tokens"][1]["content"] = "<|endoftext|>"  # Qwen2's only special token here
    vocab = config["model"]["vocab"]
    vocab["<|endoftext|>"] = vocab.pop("<|end_of_text|>")
    qwen2 = save_compact(Tokenizer.from_str(json.dumps(config)), "qwen2-style")
    encode_references(qwen2, "reference-qwen2-style.json", "qwen2-style", text, lines)


def train_sentencepiece_style(corpus_lines):
    """BPE over SentencePiece-style words (`▁` marks a preceding space), vocabulary 2,000.
    Returns the trained vocabulary (in id order) and merges, specials excluded."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=2000 - 256,
        min_frequency=2,
        special_tokens=["<unk>", "<s>", "</s>"],
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab if t not in ("<unk>", "<s>", "</s>")]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def sentencepiece_json(tokens, merges, variant):
    """A tokenizer.json laid out as Llama 2's: <unk> <s> </s>, then <0x00>..<0xFF>, then pieces."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t in tokens:
        assert t not in vocab, t
        vocab[t] = len(vocab)
    special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False,
                            "rstrip": False, "normalized": False, "special": True}
    config = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": None,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab,
            # Llama 2's files spell merges as "a b" strings; the Metaspace variant uses the
            # newer [a, b] arrays, so both spellings are covered.
            "merges": merges if variant == "normalizer" else [m.split(" ") for m in merges],
        },
    }
    if variant == "normalizer":
        config["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ]}
        config["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]}
    else:
        config["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True}
        config["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"},
            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True},
        ]}
    return config


def sentencepiece_references(tokens, merges, text, lines):
    for variant, folder in (("normalizer", "sentencepiece"), ("metaspace", "sentencepiece-metaspace")):
        config = sentencepiece_json(tokens, merges, variant)
        os.makedirs(os.path.join(HERE, folder), exist_ok=True)
        path = os.path.join(HERE, folder, "tokenizer.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
            f.write("\n")
        tok = Tokenizer.from_file(path)  # also checks that `tokenizers` accepts the file
        encode = lambda s: tok.encode(s, add_special_tokens=True).ids
        ids = [encode(l) for l in lines]
        assert all(i[0] == 1 for i in ids)
        decode = lambda i: tok.decode(i, skip_special_tokens=False)
        write_reference(
            f"reference-{folder}.json",
            {"tokenizer": f"{folder}/tokenizer.json", "library": f"tokenizers {tokenizers.__version__}",
             "call": "encode(s, add_special_tokens=True).ids; decoded = decode(ids[1:], skip_special_tokens=False); "
                     "decoded_with_bos = decode(ids, skip_special_tokens=False)"},
            ids,
            encode(text),
            extra={
                "decoded": [decode(i[1:]) for i in ids],
                "decoded_with_bos": [decode(i) for i in ids],
                "decoded_whole": decode(encode(text)[1:]),
            },
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(HERE, "..", "corpora", "shakespeare-train.txt"))
    args = parser.parse_args()
    if not os.path.exists(args.corpus):
        sys.exit(f"training corpus not found: {args.corpus} (pass --corpus PATH)")
    text, lines = conformance_lines()
    corpus_lines, _ = training_lines(args.corpus, text)
    tiktoken_reference(text, lines)
    bytelevel_references(build_bytelevel(corpus_lines, text), text, lines)
    sentencepiece_references(*train_sentencepiece_style(corpus_lines), text, lines)
    build_bytelevel_nfc(text, lines)
    build_cl100k_style(corpus_lines, text, lines)


if __name__ == "__main__":
    main()
