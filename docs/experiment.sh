#!/usr/bin/env bash
# The depth experiment of issue 7 (docs/depth-experiment.md): plain (no skip connections) and
# residual models at two depths, trained for the same number of steps with the same settings;
# then their final training and validation loss, the gradient norm per layer (stream-probe
# gradients), and the layer-skip damage per layer of the residual models (stream-probe ablate).
#
# Run from the repository root. Resumable: rerun the same command after an interruption and
# finished models are skipped, unfinished ones continue from their checkpoint.
#
#   docs/experiment.sh                      # defaults below; the committed run's four trainings
#                                           # took 40 min on 2 shared cores, plus gradients/ablate
#   STEPS=300 OUT=/tmp/depth docs/experiment.sh    # a quick look
#   PUBLISH=docs/depth-experiment docs/experiment.sh   # also copy the results to be committed
#
# Everything is written to $OUT (experiments/depth by default), which git ignores. The copies
# committed in docs/depth-experiment/ (summary.md, <model>-gradients.{csv,svg},
# <model>-ablate.{txt,svg}, and from now on <model>-training.json) are what PUBLISH copies; the
# two plain models are also committed as Fixtures/models/shakespeare-plain-{2,12}.
#
# Settings (environment variables):
STEPS=${STEPS:-1500}          # optimizer steps for every model
DEPTHS=${DEPTHS:-"2 12"}      # the two depths
WIDTH=${WIDTH:-64}
HEADS=${HEADS:-4}
CONTEXT=${CONTEXT:-256}
BATCH=${BATCH:-16}
NORM=${NORM:-pre}             # pre (GPT-2 layout) or post (GPT-1 layout)
LR=${LR:-2e-3}
WARMUP=${WARMUP:-100}
SEED=${SEED:-1234}
THREADS=${THREADS:-2}
OUT=${OUT:-experiments/depth}
PUBLISH=${PUBLISH:-}          # a directory to copy the results to (e.g. docs/depth-experiment); empty: none
TRAIN=${TRAIN:-Fixtures/corpora/shakespeare-train.txt}
VALID=${VALID:-Fixtures/corpora/shakespeare-valid.txt}
set -euo pipefail
cd "$(dirname "$0")/.."

swift build -c release --product stream-probe
P=.build/release/stream-probe
mkdir -p "$OUT"
# Gradient norms and ablations are averaged over the first 64 KiB of the validation file (the
# held-out measure's text), cut into windows of the context.
head -c 65536 "$VALID" > "$OUT/valid-64k.txt"

for depth in $DEPTHS; do
  for kind in residual plain; do
    dir="$OUT/$NORM-$kind-$depth"
    flags=()
    [ "$kind" = plain ] && flags+=(--plain)
    if [ -f "$dir/training.json" ] && grep -q "\"steps_done\":$STEPS," "$dir/training.json" && [ -f "$dir/model.safetensors" ]; then
      echo "== $dir: already trained"
    else
      if [ -f "$dir/train-state.bin" ]; then flags+=(--resume); elif [ -d "$dir" ]; then flags+=(--overwrite); fi
      echo "== training $dir"
      "$P" train --corpus "$TRAIN" --valid "$VALID" --layers "$depth" --width "$WIDTH" --heads "$HEADS" \
        --context "$CONTEXT" --batch "$BATCH" --steps "$STEPS" --norm "$NORM" --lr "$LR" --warmup "$WARMUP" \
        --seed "$SEED" --threads "$THREADS" --out "$dir" "${flags[@]}"
    fi
    "$P" gradients "$dir" --text-file "$OUT/valid-64k.txt" --format json --svg "$dir/gradients.svg" \
      > "$dir/gradients.json"
    "$P" gradients "$dir" --text-file "$OUT/valid-64k.txt" --format csv > "$dir/gradients.csv"
    if [ "$kind" = residual ]; then
      if "$P" ablate --help > /dev/null 2>&1; then
        "$P" ablate "$dir" --text-file "$OUT/valid-64k.txt" --format json --svg "$dir/ablate.svg" > "$dir/ablate.json"
        "$P" ablate "$dir" --text-file "$OUT/valid-64k.txt" > "$dir/ablate.txt"
      else
        echo "   (stream-probe ablate is not available in this build: layer-skip damage skipped)"
      fi
    fi
  done
done

# Summary table (markdown) from training.json and gradients.csv.
num() { grep -o "\"$1\": *[-0-9.e]*" "$2" | head -1 | sed 's/.*: *//'; }
# The validation points of a training.json ("log": {"validation": [{"step": s, "loss": x}, ...]}),
# one "step loss" pair per line.
validation_curve() {
  grep -o '"validation": *\[[^]]*\]' "$1" | grep -o '"step": *[0-9]*, *"loss": *[-0-9.e]*' \
    | sed 's/"step": *//; s/, *"loss": */ /'
}
# The unigram level: the held-out loss (same windows, positions 0..T-2 of each) of predicting
# every byte from the training file's byte frequencies (add-one smoothing).
unigram_level() {
  local full=$(( $(wc -c < "$OUT/valid-64k.txt") / CONTEXT * CONTEXT ))
  awk -v T="$CONTEXT" -v full="$full" '
    NR == FNR { for (i = 1; i <= NF; i++) { c[$i]++; n++ }; next }
    { for (i = 1; i <= NF; i++) { if (k < full && k % T > 0) { s -= log((c[$i] + 1) / (n + 256)); m++ }; k++ } }
    END { printf "%.4f", s / m }' <(od -An -v -tu1 "$TRAIN") <(od -An -v -tu1 "$OUT/valid-64k.txt")
}
{
  echo "| model | layers | skip connections | parameters | steps | training loss | validation loss | training time (s) | tokens/s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for depth in $DEPTHS; do
    for kind in residual plain; do
      dir="$OUT/$NORM-$kind-$depth"
      awk -v name="$NORM-$kind-$depth" -v depth="$depth" -v skip="$([ "$kind" = plain ] && echo no || echo yes)" \
          -v params="$(num parameters "$dir/training.json")" \
          -v steps="$(num steps_done "$dir/training.json")" -v train="$(num final_train_loss "$dir/training.json")" \
          -v valid="$(num final_validation_loss "$dir/training.json")" -v e="$(num elapsed_seconds "$dir/training.json")" \
          -v b="$BATCH" -v t="$CONTEXT" \
          'BEGIN { printf "| %s | %s | %s | %s | %s | %.4f | %.4f | %.0f | %.0f |\n", name, depth, skip, params, steps, train, valid, e, (e > 0 ? steps * b * t / e : 0) }'
    done
  done
  echo
  echo "Unigram level (each byte predicted from the training file's byte frequencies, add-one smoothing;"
  echo "the same held-out windows): $(unigram_level) nats/byte."
  echo
  echo "Validation loss during training (from each model's training.json):"
  echo
  first="$OUT/$NORM-residual-${DEPTHS%% *}/training.json"
  echo "| model | $(validation_curve "$first" | awk '{ printf "%s%s", (NR > 1 ? " | " : ""), $1 }') |"
  echo "|---|$(validation_curve "$first" | awk '{ printf "---|" }')"
  for depth in $DEPTHS; do
    for kind in residual plain; do
      echo "| $NORM-$kind-$depth | $(validation_curve "$OUT/$NORM-$kind-$depth/training.json" | awk '{ printf "%s%.4f", (NR > 1 ? " | " : ""), $2 }') |"
    done
  done
  echo
  echo "Gradient norm ||dL/d resid_pre|| per layer (mean over the $CONTEXT-byte windows of the first 64 KiB of $VALID):"
  echo
  for depth in $DEPTHS; do
    for kind in residual plain; do
      dir="$OUT/$NORM-$kind-$depth"
      echo "- $NORM-$kind-$depth: $(awk -F, 'NR > 1 { printf "%s%.3g", (NR > 2 ? ", " : ""), $2 }' "$dir/gradients.csv")"
    done
  done
} | tee "$OUT/summary.md"
echo "wrote $OUT/summary.md and, per model, training.json, gradients.{json,csv,svg}, ablate.{json,txt,svg}"

if [ -n "$PUBLISH" ]; then
  mkdir -p "$PUBLISH"
  cp "$OUT/summary.md" "$PUBLISH/summary.md"
  for depth in $DEPTHS; do
    for kind in residual plain; do
      name="$NORM-$kind-$depth"
      cp "$OUT/$name/training.json" "$PUBLISH/$name-training.json"
      cp "$OUT/$name/gradients.csv" "$PUBLISH/$name-gradients.csv"
      cp "$OUT/$name/gradients.svg" "$PUBLISH/$name-gradients.svg"
      if [ -f "$OUT/$name/ablate.txt" ]; then
        cp "$OUT/$name/ablate.txt" "$PUBLISH/$name-ablate.txt"
        cp "$OUT/$name/ablate.svg" "$PUBLISH/$name-ablate.svg"
      fi
    done
  done
  echo "copied the summary, training logs, gradient CSVs and plots and ablation tables to $PUBLISH"
fi
