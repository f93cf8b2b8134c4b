#!/usr/bin/env bash
# Trains the bundled models' tuned lenses and writes each model card's "Tuned lens" section:
#
#   Fixtures/models/make_tuned_lenses.sh          # from the repository root, about 5 minutes on 2 cores
#
# For each of shakespeare-pre and shakespeare-post: `stream-probe tuned-lens train` on the
# training corpus with the default settings (its last 64 KiB held out), written to
# Fixtures/models/<name>.tuned-lens.safetensors, then `lens --tuned --compare` on the first
# 64 KiB of the held-out Hamlet text. The torch check of the result is
# Fixtures/reference/make_tuned_lens_reference.py --part bundled (rerun it after this).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product stream-probe
P=.build/release/stream-probe
VALID=$(mktemp)
trap 'rm -f "$VALID"' EXIT
head -c 65536 Fixtures/corpora/shakespeare-valid.txt > "$VALID"
for name in shakespeare-pre shakespeare-post; do
  lens=Fixtures/models/$name.tuned-lens.safetensors
  command="stream-probe tuned-lens train Fixtures/models/$name --text-file Fixtures/corpora/shakespeare-train.txt --out $lens --threads 2"
  start=$(date +%s.%N)
  $P tuned-lens train "Fixtures/models/$name" --text-file Fixtures/corpora/shakespeare-train.txt --out "$lens" --threads 2 \
    --format json > /tmp/streamlab-$name-tuned-lens.json
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
  table=$($P lens "Fixtures/models/$name" --text-file "$VALID" --tuned "$lens" --compare --threads 2 | sed -n '/^layer/,$p')
  card=Fixtures/models/$name/README.md
  # Replace the section from its heading to the end of the card (it is always last).
  sed -i '/^## Tuned lens$/,$d' "$card"
  {
    echo "## Tuned lens"
    echo
    echo "\`../$name.tuned-lens.safetensors\` ($(du -k "$lens" | cut -f1) KB): one affine translator per layer (the embedding"
    echo "stream and blocks 0-4), trained with this model frozen by"
    echo
    echo '```'
    echo "$command"
    echo '```'
    echo
    echo "in $seconds s (whole process, 2 threads): 250 steps of 8,192 bytes, SGD with Nesterov momentum 0.9,"
    echo "learning rate 1 (25 warm-up steps, then linear decay), weight decay 1e-3, seed 0. Mean KL(final ‖ layer)"
    echo "and next-byte cross-entropy (nats) over the first 64 KiB of \`Fixtures/corpora/shakespeare-valid.txt\`"
    echo "(\`stream-probe lens Fixtures/models/$name --text-file FILE --tuned ../$name.tuned-lens.safetensors --compare\`):"
    echo
    echo '```'
    echo "$table"
    echo '```'
  } >> "$card"
  echo "== $name: $seconds s"
done
