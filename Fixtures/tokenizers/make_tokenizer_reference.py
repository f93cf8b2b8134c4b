#!/usr/bin/env python3
"""Builds the small tokenizer fixtures and the reference ids the Swift tokenizer tests compare with.

Reference implementations: tiktoken (GPT-2 ranks) and Hugging Face `tokenizers`.
Building and testing StreamLab never runs this script; its outputs are committed.

Environment (once):

    python3 -m venv /work/venv && /work/venv/bin/pip install torch transformers tiktoken tokenizers numpy safetensors

Run from the package root (takes a few seconds; deterministic for a given `tokenizers` version):

    /work/venv/bin/python Fixtures/tokenizers/make_tokenizer_reference.py [--corpus PATH]

`--corpus` is the training text of the small tokenizers (its first 400 KB), by default
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
  Laid out like today's models' files (README.md names the source of each stage):
  gemma-style/tokenizer.json            Gemma 1 / 2: Replace normalizer only, no pre-tokenizer, byte_fallback
  gemma3-style/tokenizer.json           Gemma 3: the same with Split(" ", MergedWithPrevious), image tokens
  phi3-style/tokenizer.json             Phi-3 / 3.5-mini: Llama 2's stages, rstrip chat tokens, </s> not special
  qwen3-style/tokenizer.json (+ config) Qwen3: Qwen2's stages and its 26 added tokens (<think> not special)
  olmo2-style/tokenizer.json            OLMo 2: cl100k Split (Removed + invert), specials after an id gap
  phi4-mini-style/tokenizer.json        Phi-4-mini: o200k Split, ignore_merges, rstrip chat tokens
  gptj-style/tokenizer.json             GPT-J-6B: GPT-2's stages and <|extratoken_1..143|>
  phi2-style/tokenizer.json             Phi-2: GPT-2's stages and whitespace-run added tokens
  reference-*.json                      ids per line and for the whole text, per tokenizer (and `probes`:
                                        texts with the added tokens, for the eight above)

Regenerating rewrites every file byte for byte (same corpus, same `tokenizers` version).
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


# ---------------------------------------------------------------------------------------------
# Today's model families. Each fixture is laid out like the model's real tokenizer.json (stages,
# flags, added tokens, id layout); the vocabularies are the small ones trained above. README.md
# names the source of each stage. Every fixture also gets `probes`: short texts that exercise its
# added tokens (the conformance text has none of them), with their reference ids.

O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


def added(id_, content, special=True, normalized=None, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": (not special) if normalized is None else normalized, "special": special}


def template(bos, bos_id):
    """TemplateProcessing `bos $A` (pair `bos $A bos $B`), as transformers writes Llama / Gemma files."""
    return {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}},
    }


BYTELEVEL_STAGE = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}


def bpe_model(vocab, merges, **flags):
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False}
    model.update(flags)
    model["vocab"] = vocab
    model["merges"] = merges
    return model


def write_fixture(folder, config, text, lines, probes, sentencepiece=False, pretty=False):
    """Writes folder/tokenizer.json (checked by loading it back) and reference-<folder>.json."""
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    path = os.path.join(HERE, folder, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        if pretty:
            json.dump(config, f, ensure_ascii=False, indent=1)
            f.write("\n")
        else:
            json.dump(config, f, ensure_ascii=False, separators=(",", ":"))
    tok = Tokenizer.from_file(path)
    encode = lambda s: tok.encode(s, add_special_tokens=True).ids
    decode = lambda i: tok.decode(i, skip_special_tokens=False)
    ids = [encode(l) for l in lines]
    extra = {"probes": [{"text": p, "ids": encode(p)} for p in probes]}
    call = "Tokenizer.from_file(...).encode(s, add_special_tokens=True).ids; probes: the same call"
    if sentencepiece:
        call += ("; decoded = decode(ids[1:], skip_special_tokens=False); "
                 "decoded_with_bos = decode(ids, skip_special_tokens=False)")
        extra.update({"decoded": [decode(i[1:]) for i in ids], "decoded_with_bos": [decode(i) for i in ids],
                      "decoded_whole": decode(encode(text)[1:])})
    write_reference(f"reference-{folder}.json",
                    {"tokenizer": f"{folder}/tokenizer.json", "library": f"tokenizers {tokenizers.__version__}",
                     "call": call},
                    ids, encode(text), extra=extra)
    return tok


# Texts with the added tokens of the families below, plus whitespace around them (lstrip /
# rstrip), glued to words (single_word), doubled and cut short.
COMMON_PROBES = [
    "", " ", "Hello world", "  two leading spaces", "tabs\there\t\tand\t\t\tthere", "a    b        c",
    "line one\nline two\n\n\nthree", "don't STOP'S me'll", "café 中文 😀", "<unk> <s> </s> <mask>",
]


def sentencepiece_vocab(head, tokens, byte_first=True, tail=()):
    """`head` names (ids 0..), then <0x00>..<0xFF>, then the trained pieces, then `tail`."""
    vocab = {}
    for name in head:
        vocab[name] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t in tokens:
        if t not in vocab:
            vocab[t] = len(vocab)
    for name in tail:
        vocab[name] = len(vocab)
    return vocab


GEMMA_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}


def build_gemma_styles(tokens, merges, text, lines):
    """Gemma 1 / 2 and Gemma 3: Replace(" ", "▁") normalizer only (no dummy prefix), byte_fallback,
    fuse_unk, <unk>, decoder Replace/ByteFallback/Fuse (no Strip), template `<bos> $A`; special
    <pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn>, and SentencePiece user-defined symbols
    (<mask>, <2mass>, [@BOS@], <unusedN>) as non-special added tokens with normalized false.
    Gemma 3 adds the Split(" ", MergedWithPrevious) pre-tokenizer (a no-op after the normalizer),
    the image tokens, one added token past the model vocabulary, and [a, b] merges."""
    unused = [f"<unused{i}>" for i in range(8)]
    head = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<2mass>", "[@BOS@]"] + unused + ["<start_of_turn>", "<end_of_turn>"]
    special = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"}
    probes = COMMON_PROBES + [
        "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
        "a <mask> b<mask>c [@BOS@] <2mass> <unused0><unused7> <unused8>",
        "<start_of_turn> spaced <end_of_turn>  ", "x<eos>y<pad>z", "▁literal▁marks▁ and spaces",
    ]
    for folder, gemma3 in (("gemma-style", False), ("gemma3-style", True)):
        tail = ["<start_of_image>", "<end_of_image>"] if gemma3 else []
        vocab = sentencepiece_vocab(head, tokens, tail=tail)
        added_tokens = [added(vocab[t], t, special=t in special, normalized=False) for t in head]
        if gemma3:
            added_tokens += [added(vocab[t], t, normalized=False) for t in tail]
            # Gemma 3's <image_soft_token> sits just past the model vocabulary.
            added_tokens.append(added(len(vocab), "<image_soft_token>", normalized=False))
            probes_here = probes + ["<start_of_image><image_soft_token><image_soft_token><end_of_image> caption"]
        else:
            probes_here = probes
        config = {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            "pre_tokenizer": ({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                               "invert": False} if gemma3 else None),
            "post_processor": template("<bos>", vocab["<bos>"]),
            "decoder": GEMMA_DECODER,
            "model": bpe_model(vocab, [m.split(" ") for m in merges] if gemma3 else merges,
                               unk_token="<unk>", fuse_unk=True, byte_fallback=True),
        }
        write_fixture(folder, config, text, lines, probes_here, sentencepiece=True, pretty=not gemma3)


PHI3_ADDED = [  # content, special, rstrip: Phi-3 / Phi-3.5-mini's tokenizer_config.json added_tokens_decoder
    ("<|endoftext|>", True, False), ("<|assistant|>", True, True), ("<|placeholder1|>", True, True),
    ("<|placeholder2|>", True, True), ("<|placeholder3|>", True, True), ("<|placeholder4|>", True, True),
    ("<|system|>", True, True), ("<|end|>", True, True), ("<|placeholder5|>", True, True),
    ("<|placeholder6|>", True, True), ("<|user|>", True, True),
]


def build_phi3_style(tokens, merges, text, lines):
    """Phi-3 / Phi-3.5-mini: Llama 2's stages (Prepend + Replace normalizers, byte_fallback,
    Strip decoder, `<s> $A`) with `</s>` rstrip and not special, and the chat tokens 32000-32010
    (rstrip, except <|endoftext|>) after the 32,000-token vocabulary."""
    vocab = sentencepiece_vocab(["<unk>", "<s>", "</s>"], tokens)
    added_tokens = [added(0, "<unk>", normalized=False), added(1, "<s>", normalized=False),
                    added(2, "</s>", special=False, normalized=False, rstrip=True)]
    for content, special, rstrip in PHI3_ADDED:
        added_tokens.append(added(len(vocab) + len(added_tokens) - 3, content, special=special,
                                  normalized=False, rstrip=rstrip))
    config = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": template("<s>", 1),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": bpe_model(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True),
    }
    probes = COMMON_PROBES + [
        "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi  there<|end|>\n<|assistant|>\n",
        "<|user|>   spaces after<|end|>\t\n  next", "</s>  \n after end </s>x", "<|endoftext|>  kept spaces",
        "<|placeholder1|><|placeholder6|> <|placeholder3|>", "<s>Hello</s> <s> Hello </s>",
    ]
    write_fixture("phi3-style", config, text, lines, probes, sentencepiece=True, pretty=True)


def bytelevel_base():
    """The GPT-2-style model trained above, renumbered as GPT-2 lays it out: the byte-level
    vocabulary first and <|endoftext|> as its last entry."""
    with open(os.path.join(HERE, "bytelevel", "tokenizer.json"), encoding="utf-8") as f:
        model = json.load(f)["model"]
    names = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])
             if t not in ("<|endoftext|>", "<mask>")]
    vocab = {t: i for i, t in enumerate(names)}
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, [" ".join(m) for m in model["merges"]]


def gpt2_stages(config):
    """GPT-2's stages as transformers' GPT2Converter wrote them in 2021-2022 (ByteLevel without a
    `use_regex` key: the default, true)."""
    old = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
    config.update({"normalizer": None, "pre_tokenizer": old,
                   "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False},
                   "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True}})
    return config


def build_gptj_and_phi2_styles(text, lines):
    vocab, merges = bytelevel_base()
    eot = vocab["<|endoftext|>"]
    model = bpe_model(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="")
    del model["ignore_merges"]  # files of that time predate the key

    # GPT-J-6B: <|endoftext|> as GPT-2's file has it (special, normalized), then
    # <|extratoken_1|>..<|extratoken_143|> from added_tokens.json: plain added tokens.
    added_tokens = [added(eot, "<|endoftext|>", special=True, normalized=True)]
    added_tokens += [added(eot + i, f"<|extratoken_{i}|>", special=False) for i in range(1, 144)]
    config = gpt2_stages({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens})
    config["model"] = model
    probes = COMMON_PROBES + [
        "<|extratoken_1|><|extratoken_143|> <|extratoken_12|>x", "<|extratoken_1|2|> <|extratoken_144|>",
        "word<|extratoken_7|>word <|endoftext|><|extratoken_3|>", "<|extratoken_10|>0",
    ]
    write_fixture("gptj-style", config, text, lines, probes)

    # Phi-2 (CodeGen's tokenizer): <|endoftext|> special, not normalized; runs of 31..2 spaces
    # and 9..2 tabs as plain (normalized) added tokens.
    runs = [" " * n for n in range(31, 1, -1)] + ["\t" * n for n in range(9, 1, -1)]
    added_tokens = [added(eot, "<|endoftext|>", special=True, normalized=False)]
    added_tokens += [added(eot + 1 + i, r, special=False, normalized=True) for i, r in enumerate(runs)]
    config = gpt2_stages({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens})
    config["model"] = model
    probes = COMMON_PROBES + [
        "def f(x):\n    return x\n\tpass\n\t\t\t\tdeep", " " * 40 + "x" + "\t" * 12 + "y",
        "a <|endoftext|>  b", "  \t  \t\t  mixed", "x" + " " * 31 + "y" + " " * 32 + "z",
    ]
    write_fixture("phi2-style", config, text, lines, probes)


def cl100k_family_base(corpus_lines, text, pattern, specials=()):
    """Byte-level BPE (vocabulary 2,000) trained behind Split(pattern) + ByteLevel, vocabulary
    renumbered from 0 without the trainer's special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(
        vocab_size=2000, min_frequency=2, special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus_lines + text.split("\n") * 3, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    names = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if t not in specials]
    return {t: i for i, t in enumerate(names)}, model["merges"]


def split_sequence(pattern, behavior="Isolated", invert=False):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": behavior, "invert": invert},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}


QWEN3_ADDED = [  # content, special: Qwen3's added tokens 151643-151668 in order
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]

CHATML_PROBES = [
    "<|im_start|>user\nWhat's 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nAdd them.\n</think>\n\n4<|im_end|>",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call> <tool_response>ok</tool_response>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|> <|repo_name|>x<|file_sep|>y",
    "<think></think><think>  </think>", "<|vision_start|><|image_pad|><|vision_end|>", "<|im_end",
]


def build_qwen3_style(text, lines):
    """Qwen3: Qwen2's stages (NFC, the `\\p{N}` Split, ByteLevel without regex, ByteLevel
    decoder and post-processor) and its 26 added tokens after the vocabulary, 12 of them
    not special (<think>, <tool_call>, the FIM tokens ...)."""
    with open(os.path.join(HERE, "qwen2-style", "tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)
    names = [t for t, _ in sorted(base["model"]["vocab"].items(), key=lambda kv: kv[1])
             if t not in ("<|begin_of_text|>", "<|endoftext|>")]
    vocab = {t: i for i, t in enumerate(names)}
    added_tokens = [added(len(vocab) + i, c, special=s, normalized=False) for i, (c, s) in enumerate(QWEN3_ADDED)]
    config = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": split_sequence(QWEN2_PATTERN),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": bpe_model(vocab, base["model"]["merges"], continuing_subword_prefix="", end_of_word_suffix=""),
    }
    write_fixture("qwen3-style", config, text, lines, COMMON_PROBES + CHATML_PROBES)
    # Qwen3's tokenizer_config.json names no BOS and <|im_end|> as EOS (`tokenizers` ignores the
    # file; StreamLab reads these two names from it).
    with open(os.path.join(HERE, "qwen3-style", "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "tokenizer_class": "Qwen2Tokenizer"}, f, indent=2)
        f.write("\n")


def build_olmo2_style(corpus_lines, text, lines):
    """OLMo 2 (dolma2 tokenizer, cl100k): the cl100k Split written as tiktoken conversions write it
    (behavior Removed, invert true: keep the matches), ByteLevel without regex, no normalizer, and
    cl100k's special tokens at 100257-100260, 100276, 100277 (a gap of unused ids between)."""
    vocab, merges = cl100k_family_base(corpus_lines, text, LLAMA3_PATTERN)
    n = len(vocab)
    specials = [(n, "<|endoftext|>"), (n + 1, "<|fim_prefix|>"), (n + 2, "<|fim_middle|>"),
                (n + 3, "<|fim_suffix|>"), (n + 19, "<|endofprompt|>"), (n + 20, "<|pad|>")]
    for i, c in specials:
        vocab[c] = i
    config = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, c, normalized=False) for i, c in specials],
        "normalizer": None,
        "pre_tokenizer": split_sequence(LLAMA3_PATTERN, behavior="Removed", invert=True),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": BYTELEVEL_STAGE,
        "model": bpe_model(vocab, merges, continuing_subword_prefix="", end_of_word_suffix=""),
    }
    probes = COMMON_PROBES + [
        "<|endoftext|>doc one<|endoftext|>doc two", "<|fim_prefix|>a<|fim_suffix|>c<|fim_middle|>b",
        "<|endofprompt|> <|pad|><|pad|>", "1234567 12,345.678 ２３４５",
    ]
    tok = write_fixture("olmo2-style", config, text, lines, probes)
    # Removed + invert keeps every match of a pattern whose matches tile the text: the same
    # pieces as Isolated.
    iso = json.loads(tok.to_str())
    iso["pre_tokenizer"]["pretokenizers"][0].update({"behavior": "Isolated", "invert": False})
    iso = Tokenizer.from_str(json.dumps(iso))
    assert all(iso.encode(l).ids == tok.encode(l).ids for l in lines)


PHI4_MINI_ADDED = [  # id offset after <|endoftext|>, content, rstrip
    (19, "<|endofprompt|>", False), (20, "<|assistant|>", True), (21, "<|end|>", True), (22, "<|user|>", True),
    (23, "<|system|>", True), (24, "<|tool|>", True), (25, "<|/tool|>", True), (26, "<|tool_call|>", True),
    (27, "<|/tool_call|>", True), (28, "<|tool_response|>", True), (29, "<|tag|>", True),
]


def build_phi4_mini_style(corpus_lines, text, lines):
    """Phi-4-mini: o200k's Split pattern (case-aware letter runs, contractions as suffixes,
    `[\\r\\n/]*` after punctuation) and ByteLevel without regex, as transformers' TikTokenConverter
    writes it (ignore_merges, ByteLevel decoder and post-processor); <|endoftext|> as the last
    vocabulary entry and the chat tokens after a gap of unused ids, rstrip as in Phi-3."""
    vocab, merges = cl100k_family_base(corpus_lines, text, O200K_PATTERN)
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot
    added_tokens = [added(eot, "<|endoftext|>", normalized=False)]
    added_tokens += [added(eot + off, c, normalized=False, rstrip=r) for off, c, r in PHI4_MINI_ADDED]
    # In the vocabulary too, as tiktoken conversions write them: `tokenizers` keeps the id of an
    # added token only when the model knows it, and numbers the others from the vocabulary size.
    for off, c, _ in PHI4_MINI_ADDED:
        vocab[c] = eot + off
    config = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
        "normalizer": None,
        "pre_tokenizer": split_sequence(O200K_PATTERN),
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": BYTELEVEL_STAGE,
        "model": bpe_model(vocab, merges, ignore_merges=True),
    }
    probes = COMMON_PROBES + [
        "<|system|>You are helpful.<|end|><|user|>  Hi\n<|end|>\n<|assistant|>\n\nHello",
        "<|tool|>[{\"name\": \"f\"}]<|/tool|> <|tool_call|> x <|/tool_call|>", "<|endofprompt|>  <|tag|>\t",
        "HTTPServer camelCase JSONData iPhone HELLO'S hello's It'LL", "path/to//file\n/\r\n// ok",
        "ǅungla ǈ Ǌ ʰʱ ᾈ ÀÉ naïve ŉ", "Καλημέρα ΚΌΣΜΕ Привет МИР", "x\u0301\u0302y \u0301a A\u0301B",
    ]
    write_fixture("phi4-mini-style", config, text, lines, probes)


def build_today(corpus_lines, text, lines, sp_tokens, sp_merges):
    build_gemma_styles(sp_tokens, sp_merges, text, lines)
    build_phi3_style(sp_tokens, sp_merges, text, lines)
    build_gptj_and_phi2_styles(text, lines)
    build_qwen3_style(text, lines)
    build_olmo2_style(corpus_lines, text, lines)
    build_phi4_mini_style(corpus_lines, text, lines)


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
    sp_tokens, sp_merges = train_sentencepiece_style(corpus_lines)
    sentencepiece_references(sp_tokens, sp_merges, text, lines)
    build_bytelevel_nfc(text, lines)
    build_cl100k_style(corpus_lines, text, lines)
    build_today(corpus_lines, text, lines, sp_tokens, sp_merges)


if __name__ == "__main__":
    main()
