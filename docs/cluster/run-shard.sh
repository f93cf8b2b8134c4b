#!/usr/bin/env bash
# One shard of a sweep over a text file, for a cluster's array job (Slurm, a Kubernetes Indexed
# Job) or a plain loop: writes $OUT/shard-<i>-of-<n>.json atomically and skips a shard whose file is
# already there and complete. Then `stream-probe merge $OUT` gives the report of the whole run.
#
# The shard index comes from SHARD_INDEX, else Slurm's SLURM_ARRAY_TASK_ID, else Kubernetes'
# JOB_COMPLETION_INDEX; the count from SHARD_COUNT, else SLURM_ARRAY_TASK_COUNT.
#
#   SHARD_INDEX=0 SHARD_COUNT=4 MODEL=models/gpt2 TEXT=corpus.txt OUT=shards docs/cluster/run-shard.sh
set -euo pipefail
INDEX=${SHARD_INDEX:-${SLURM_ARRAY_TASK_ID:-${JOB_COMPLETION_INDEX:?set SHARD_INDEX (or run as an array job)}}}
COUNT=${SHARD_COUNT:-${SLURM_ARRAY_TASK_COUNT:?set SHARD_COUNT}}
STREAM_PROBE=${STREAM_PROBE:-stream-probe}
MODEL=${MODEL:?set MODEL (a model directory)}
TEXT=${TEXT:?set TEXT (a UTF-8 text file)}
OUT=${OUT:-shards}
THREADS=${THREADS:-1}
ARGS=${ARGS:-}                 # more options of the command, e.g. "--layers 0,5 --mode mean"
COMMAND=${COMMAND:-ablate}
mkdir -p "$OUT"
file="$OUT/shard-$INDEX-of-$COUNT.json"
if [ -s "$file" ] && tail -c 2 "$file" | grep -q '}'; then echo "shard $INDEX/$COUNT: already done ($file)"; exit 0; fi
# shellcheck disable=SC2086
"$STREAM_PROBE" "$COMMAND" "$MODEL" --text-file "$TEXT" --shard "$INDEX/$COUNT" --threads "$THREADS" --format json $ARGS \
  > "$file.tmp"
mv "$file.tmp" "$file"
echo "shard $INDEX/$COUNT: $file"
