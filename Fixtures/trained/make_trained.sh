#!/usr/bin/env bash
# Tiny models trained by `stream-probe train` and checked with Hugging Face transformers:
# the export path (gpt2 layout for pre-norm, openai-gpt for post-norm, gemma2 for sandwich,
# olmo2 for output norms, plain stack)
# under test. Run from the repository root; about a minute.
#   Fixtures/trained/make_trained.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product stream-probe
P=.build/release/stream-probe
C=(--corpus Fixtures/corpora/shakespeare-train.txt --valid Fixtures/corpora/shakespeare-valid.txt
   --layers 2 --width 32 --heads 4 --context 64 --steps 60 --batch 8 --eval-every 30
   --eval-bytes 16384 --checkpoint-every 0 --seed 7 --threads 2 --overwrite)
$P train "${C[@]}" --norm pre --out Fixtures/trained/tiny-pre
$P train "${C[@]}" --norm post --out Fixtures/trained/tiny-post
$P train "${C[@]}" --norm pre --plain --out Fixtures/trained/tiny-plain-pre
$P train "${C[@]}" --norm sandwich --out Fixtures/trained/tiny-sandwich
$P train "${C[@]}" --norm output --out Fixtures/trained/tiny-output
rm -f Fixtures/trained/tiny-*/train-state.bin
/work/venv/bin/python Fixtures/trained/hf_check.py Fixtures/trained/tiny-pre Fixtures/trained/tiny-post \
    Fixtures/trained/tiny-sandwich Fixtures/trained/tiny-output \
    --valid Fixtures/corpora/shakespeare-valid.txt --valid-bytes 16384 --out-dir Fixtures/trained
