#!/usr/bin/env bash
# The ensemble-view experiment (docs/ensemble-view.md): four byte-level models, one per norm
# placement (pre: GPT-2 layout, post: GPT-1, sandwich: Gemma 2, output: OLMo 2), trained with the
# same data, size, steps, batch, learning-rate schedule and seed; a fifth, post-warmup, is the
# Post-Norm model with the longer warm-up and lower peak that Post-Norm training usually gets
# (train's own default for --norm post); plus the bundled residual model and the plain 12-block
# model of the depth experiment. For each: held-out loss, gradient norm by depth, the path-length
# spectrum, the lesion curve, the adjacent-swap table, single-block skip damage with Block
# Influence, and what prune would cut. Then a depth curve: plain and residual stacks of 1, 2, 4,
# 8 and 12 blocks, each trained at every learning rate of $LRS, the best one kept.
#
# Run from the repository root (one command; resumable: finished trainings are skipped):
#
#   docs/ensemble-view.sh                                   # the committed run's settings
#   STEPS=200 DEPTH_STEPS=100 OUT=/tmp/ev docs/ensemble-view.sh   # a quick look
#   PUBLISH=docs/ensemble-view docs/ensemble-view.sh        # also copy the results to be committed
#
# Everything goes to $OUT (experiments/ensemble by default, ignored by git); PUBLISH copies the
# summary, each model's training.json and the pictures.
STEPS=${STEPS:-1000}           # optimizer steps of the four placement models
LAYERS=${LAYERS:-6}
WIDTH=${WIDTH:-128}
HEADS=${HEADS:-4}
CONTEXT=${CONTEXT:-256}
BATCH=${BATCH:-16}
SEED=${SEED:-1234}
LR=${LR:-2e-3}                 # peak learning rate of the four placement models
WARMUP=${WARMUP:-100}          # their linear warm-up steps
THREADS=${THREADS:-2}
DEPTHS=${DEPTHS:-"1 2 4 8 12"} # the depth curve
DEPTH_STEPS=${DEPTH_STEPS:-400}
DEPTH_WIDTH=${DEPTH_WIDTH:-64}
LRS=${LRS:-"5e-4 2e-3"}        # learning rates tried for every depth-curve model
TEXT_BYTES=${TEXT_BYTES:-32768} # the probes' text: the first bytes of the validation file
OUT=${OUT:-experiments/ensemble}
PUBLISH=${PUBLISH:-}
TRAIN=${TRAIN:-Fixtures/corpora/shakespeare-train.txt}
VALID=${VALID:-Fixtures/corpora/shakespeare-valid.txt}
set -euo pipefail
cd "$(dirname "$0")/.."

swift build -c release --product stream-probe
P=.build/release/stream-probe
mkdir -p "$OUT"
TEXT="$OUT/valid-text.txt"
head -c "$TEXT_BYTES" "$VALID" > "$TEXT"

# train DIR [flags...]: trains unless DIR already holds a finished run of the same steps.
train() {
  local dir=$1 steps=$2; shift 2
  if [ -f "$dir/training.json" ] && grep -q "\"steps_done\":$steps," "$dir/training.json" && [ -f "$dir/model.safetensors" ]; then
    echo "== $dir: already trained"; return
  fi
  local resume=()
  if [ -f "$dir/train-state.bin" ] || [ -f "$dir.partial/train-state.bin" ]; then resume=(--resume); elif [ -d "$dir" ]; then resume=(--overwrite); fi
  echo "== training $dir"
  "$P" train --corpus "$TRAIN" --valid "$VALID" --context "$CONTEXT" --batch "$BATCH" --steps "$steps" --seed "$SEED" \
    --threads "$THREADS" --eval-every 0 --checkpoint-every 500 --out "$dir" "${resume[@]}" "$@"
}

for norm in pre post sandwich output; do
  train "$OUT/$norm" "$STEPS" --layers "$LAYERS" --width "$WIDTH" --heads "$HEADS" --norm "$norm" --lr "$LR" --warmup "$WARMUP"
done
train "$OUT/post-warmup" "$STEPS" --layers "$LAYERS" --width "$WIDTH" --heads "$HEADS" --norm post --lr 1.5e-3 --warmup 400

# The probes, on every model: the four above, the bundled residual model and the plain 12-block one.
MODELS="$OUT/pre $OUT/post $OUT/sandwich $OUT/output $OUT/post-warmup Fixtures/models/shakespeare-pre Fixtures/models/shakespeare-plain-12"
for model in $MODELS; do
  name=$(basename "$model")
  dir="$OUT/probes/$name"
  mkdir -p "$dir"
  [ -f "$dir/prune.txt" ] && { echo "== $name: probes done"; continue; }
  echo "== probing $name"
  "$P" ablate "$model" --text-file "$TEXT" --format csv > "$dir/ablate.csv"
  "$P" gradients "$model" --text-file "$TEXT" --format csv --svg "$dir/gradients.svg" > "$dir/gradients.csv"
  "$P" paths "$model" --text-file "$TEXT" --format csv --svg "$dir/paths.svg" > "$dir/paths.csv"
  "$P" lesion "$model" --text-file "$TEXT" --samples 10 --format csv --svg "$dir/lesion.svg" > "$dir/lesion.csv"
  "$P" reorder "$model" --text-file "$TEXT" --swaps --format csv --svg "$dir/reorder.svg" > "$dir/reorder.csv"
  "$P" prune "$model" --text-file "$TEXT" --blocks 2 --format csv --svg "$dir/prune.svg" > "$dir/prune.csv"
  "$P" prune "$model" --text-file "$TEXT" --blocks 2 > "$dir/prune.txt"
done

# The depth curve.
for depth in $DEPTHS; do
  for kind in residual plain; do
    for lr in $LRS; do
      flags=(--layers "$depth" --width "$DEPTH_WIDTH" --heads "$HEADS" --norm pre --lr "$lr")
      [ "$kind" = plain ] && flags+=(--plain)
      train "$OUT/depth/$kind-$depth-lr$lr" "$DEPTH_STEPS" "${flags[@]}"
    done
  done
done

# ---------------------------------------------------------------------------- summary (markdown)
num() { grep -o "\"$1\": *[-0-9.e]*" "$2" | head -1 | sed 's/.*: *//'; }
{
  echo "## Headline"
  echo
  echo "Held-out loss: mean next-byte loss on the probes' text (the first $TEXT_BYTES bytes of $VALID, windows of"
  echo "$CONTEXT). Paths: the length k whose paths carry the largest ||g_k|| and its share of sum_k ||g_k||."
  echo "Lesion: mean delta loss with k random blocks skipped. Swap: mean delta loss over the adjacent swaps."
  echo
  echo "| model | parameters | held-out loss | grad norm block 0 / last block | dominant path length of n units (share) | lesion k=1 | lesion k=2 | worst single skip | mean swap | prune 2 blocks: BI's cut, its delta loss (best cut) | Spearman BI vs skip damage |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for model in $MODELS; do
    name=$(basename "$model"); dir="$OUT/probes/$name"
    params=$(num parameters "$model/training.json")
    loss=$(awk -F, 'NR == 2 { printf "%.4f", $10 }' "$dir/ablate.csv")
    grad=$(awk -F, 'NR > 1 { g[NR] = $2; n = NR } END { printf "%.3g", g[2] / g[n] }' "$dir/gradients.csv")
    paths=$(awk -F, 'NR > 1 { s += $3; if ($3 > best) { best = $3; k = $1 }; n = $1 } END { printf "%d of %d (%.2f)", k, n, best / s }' "$dir/paths.csv")
    lesion1=$(awk -F, 'NR > 1 && $1 == 1 { s += $7; c++ } END { printf "%+.3f", s / c }' "$dir/lesion.csv")
    lesion2=$(awk -F, 'NR > 1 && $1 == 2 { s += $7; c++ } END { printf "%+.3f", s / c }' "$dir/lesion.csv")
    worst=$(awk -F, 'NR > 1 && ($9 > w || NR == 2) { w = $9; l = $1 } END { printf "%+.3f (block %s)", w, l }' "$dir/ablate.csv")
    swap=$(awk -F, 'NR > 1 { s += $6; c++ } END { printf "%+.3f", s / c }' "$dir/reorder.csv")
    cut=$(grep "^by block influence" "$dir/prune.txt" | sed 's/by block influence: cut blocks //; s/, delta loss /, /')
    best=$(grep "^best measured" "$dir/prune.txt" | sed 's/best measured: cut blocks //; s/, delta loss.*//')
    rho=$(grep "^Spearman" "$dir/prune.txt" | sed 's/.*: //')
    echo "| $name | $params | $loss | $grad | $paths | $lesion1 | $lesion2 | $worst | $swap | $cut ($best) | $rho |"
  done
  echo
  echo "## Per model"
  for model in $MODELS; do
    name=$(basename "$model"); dir="$OUT/probes/$name"
    echo
    echo "### $name"
    echo
    echo "- gradient norm ||dL/d resid_pre|| by block: $(awk -F, 'NR > 1 { printf "%s%.3g", (NR > 2 ? ", " : ""), $2 }' "$dir/gradients.csv")"
    echo "- path spectrum ||g_k|| for k = 0..n: $(awk -F, 'NR > 1 { printf "%s%.3g", (NR > 2 ? ", " : ""), $3 }' "$dir/paths.csv")"
    echo "- lesion, mean delta loss (std) for k = 0..L: $(awk -F, 'NR > 1 { s[$1] += $7; q[$1] += $7 * $7; c[$1]++; if ($1 > m) m = $1 }
        END { for (k = 0; k <= m; k++) { mu = s[k] / c[k]; v = q[k] / c[k] - mu * mu; printf "%s%.3f (%.3f)", (k ? ", " : ""), mu, sqrt(v > 0 ? v : 0) } }' "$dir/lesion.csv")"
    echo "- adjacent swaps, delta loss for (0,1), (1,2), ...: $(awk -F, 'NR > 1 { printf "%s%+.3f", (NR > 2 ? ", " : ""), $6 }' "$dir/reorder.csv")"
    echo "- single-block skip delta loss (Block Influence) by block: $(awk -F, 'NR > 1 { printf "%s%+.3f (%.3f)", (NR > 2 ? ", " : ""), $9, $12 }' "$dir/ablate.csv")"
    echo "- prune, spans of 2 by first block: angular distance / delta loss: $(awk -F, 'NR > 1 { printf "%s%d: %.3f / %+.3f", (NR > 2 ? ", " : ""), $1, $3, $9 }' "$dir/prune.csv")"
  done
  echo
  echo "## Depth curve"
  echo
  echo "Pre-norm (GPT-2 layout), width $DEPTH_WIDTH, $DEPTH_STEPS steps, batch $BATCH, seed $SEED; validation loss"
  echo "(first 64 KiB of $VALID) at the best of the learning rates $LRS."
  echo
  echo "| blocks | residual: loss (lr) | plain: loss (lr) | time residual + plain, all lrs (s) |"
  echo "|---|---|---|---|"
  for depth in $DEPTHS; do
    row="| $depth"
    total=0
    for kind in residual plain; do
      bestLoss=""; bestLR=""
      for lr in $LRS; do
        f="$OUT/depth/$kind-$depth-lr$lr/training.json"
        l=$(num final_validation_loss "$f"); e=$(num elapsed_seconds "$f")
        total=$(awk -v a="$total" -v b="$e" 'BEGIN { print a + b }')
        if [ -z "$bestLoss" ] || awk -v a="$l" -v b="$bestLoss" 'BEGIN { exit !(a < b) }'; then bestLoss=$l; bestLR=$lr; fi
      done
      row="$row | $(awk -v x="$bestLoss" 'BEGIN { printf "%.4f", x }') ($bestLR)"
    done
    echo "$row | $(awk -v x="$total" 'BEGIN { printf "%.0f", x }') |"
  done
  echo
  echo "## Training"
  echo
  echo "| model | norm | steps | lr | warm-up | training time (s) | final validation loss (64 KiB) |"
  echo "|---|---|---|---|---|---|---|"
  for name in pre post sandwich output post-warmup; do
    f="$OUT/$name/training.json"
    echo "| $name | $(grep -o '"norm": *"[a-z]*"' "$f" | sed 's/.*"\([a-z]*\)"$/\1/') | $(num steps_done "$f") | $(num lr "$f") | $(num warmup "$f") | $(num elapsed_seconds "$f") | $(awk -v x="$(num final_validation_loss "$f")" 'BEGIN { printf "%.4f", x }') |"
  done
} | tee "$OUT/summary.md"

if [ -n "$PUBLISH" ]; then
  mkdir -p "$PUBLISH"
  cp "$OUT/summary.md" "$PUBLISH/summary.md"
  for name in pre post sandwich output post-warmup; do cp "$OUT/$name/training.json" "$PUBLISH/$name-training.json"; done
  for model in $MODELS; do
    name=$(basename "$model")
    for f in paths lesion reorder prune gradients; do cp "$OUT/probes/$name/$f.svg" "$PUBLISH/$name-$f.svg"; done
    for f in paths lesion reorder prune gradients ablate; do cp "$OUT/probes/$name/$f.csv" "$PUBLISH/$name-$f.csv"; done
  done
  echo "copied the summary, training logs, CSVs and pictures to $PUBLISH"
fi
