#!/usr/bin/env python3
"""Writes the bad tokenizer inputs that Tests/StreamLabTests/TokenizerErrorTests.swift expects
clear errors for (one small file or directory per case). Plain python3, no packages:

    python3 Fixtures/tokenizers/bad/make_bad.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
WORDS = r"""\w+|[^\w\s]+"""


def write(path, data):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def tokenizer_json(model=None, pre_tokenizer=None, **extra):
    config = {"version": "1.0", "added_tokens": [], "normalizer": None,
              "pre_tokenizer": pre_tokenizer or {"type": "ByteLevel", "add_prefix_space": False,
                                                 "trim_offsets": True, "use_regex": True},
              "post_processor": None, "decoder": {"type": "ByteLevel"},
              "model": model or {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
    config.update(extra)
    return json.dumps(config, indent=1) + "\n"


write("malformed-json/tokenizer.json", '{"model": {"type": "BPE",\n  "vocab": {"a": 0,},\n  "merges": []}}\n')
write("missing-model/tokenizer.json", '{"version": "1.0", "added_tokens": []}\n')
write("vocab-not-object/tokenizer.json", tokenizer_json({"type": "BPE", "vocab": ["a", "b"], "merges": []}))
write("negative-vocab-id/tokenizer.json", tokenizer_json({"type": "BPE", "vocab": {"a": -1}, "merges": []}))
# Ids index tables: a huge one in a tiny file must be refused, not allocated (the tiktoken fuzzer).
write("huge-vocab-id/tokenizer.json", tokenizer_json({"type": "BPE", "vocab": {"a": 0, "b": 2000000000}, "merges": []}))
write("huge-added-token-id/tokenizer.json", tokenizer_json(added_tokens=[
    {"id": 220000000, "content": "<|x|>", "special": True, "single_word": False, "lstrip": False,
     "rstrip": False, "normalized": False}]))
write("merge-unknown-token/tokenizer.json",
      tokenizer_json({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a x"]}))
write("merge-result-unknown/tokenizer.json",
      tokenizer_json({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}))
write("unknown-unk-token/tokenizer.json",
      tokenizer_json({"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}))
write("unsupported-model/tokenizer.json",
      tokenizer_json({"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "a"}))
write("unsupported-pre-tokenizer/tokenizer.json", tokenizer_json(pre_tokenizer={"type": "Whitespace"}))
write("unsupported-split-pattern/tokenizer.json", tokenizer_json(pre_tokenizer={
    "type": "Split", "pattern": {"Regex": WORDS}, "behavior": "Isolated", "invert": False}))
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# A known pattern whose matches would be merged: not the plain cut StreamLab implements for it.
write("unsupported-split-behavior/tokenizer.json", tokenizer_json(pre_tokenizer={
    "type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "MergedWithNext", "invert": False}))
write("invalid-split-behavior/tokenizer.json", tokenizer_json(pre_tokenizer={
    "type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": False}))
write("unsupported-split-empty-string/tokenizer.json", tokenizer_json(pre_tokenizer={
    "type": "Split", "pattern": {"String": ""}, "behavior": "Isolated", "invert": False}))
write("invalid-utf8-json/tokenizer.json", b'{"model": {"type": "BPE", "vocab": {"\xff": 0}, "merges": []}}\n')

vocab = json.dumps({"\u0120": 0, "a": 1, "b": 2, "\u0120a": 3, "ab": 4})
write("merges-txt-unknown-token/vocab.json", vocab)
write("merges-txt-unknown-token/merges.txt", "#version: 0.2\n\u0120 a\n\u0120 zz\n")
write("merges-txt-malformed/vocab.json", vocab)
write("merges-txt-malformed/merges.txt", "#version: 0.2\na b c\n")
write("vocab-without-merges/vocab.json", vocab)
write("huge-vocab-id-txt/vocab.json", json.dumps({"a": 0, "b": 1048576}))
write("huge-vocab-id-txt/merges.txt", "#version: 0.2\n")
write("gpt1-style/vocab.json", json.dumps({"t": 0, "h": 1, "e</w>": 2, "th": 3, "the</w>": 4}))
write("gpt1-style/merges.txt", "#version: 0.2\nt h\nth e</w>\n")
write("empty-model-directory/README.md", "A model directory without tokenizer files.\n")
write("not-a-tokenizer.bin", b"\x00\x01\x02")

write("missing-rank.tiktoken", "IQ== 0\nIg==\n")
write("bad-base64.tiktoken", "IQ== 0\n!!!! 1\n")
write("bad-rank.tiktoken", "IQ== 0\nIg== one\n")
write("huge-rank.tiktoken", "IQ== 0\nIg== 220000000\n")
write("duplicate-rank.tiktoken", "IQ== 0\nIg== 1\nIw== 1\n")

write("invalid-utf8.txt", b"valid start\n\xe2\x28\xa1 and more\n")      # bad continuation at 12
write("overlong-utf8.txt", b"ok \xc0\xaf\n")                              # overlong '/' at 3
write("surrogate-utf8.txt", b"\xed\xa0\x80\n")                            # UTF-8 of U+D800 at 0
write("truncated-utf8.txt", b"abc\xe2\x82")                               # cut in the middle at 3
