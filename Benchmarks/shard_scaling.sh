#!/usr/bin/env bash
# Does a sweep scale with processes? The same ablate sweep over a text file, timed as one 1-thread
# process and as 2 concurrent 1-thread shard processes (then merged). Goal: the 2 shards finish in
# at most 0.6x the single process's time. Run on an idle machine, from the repository root:
#
#   Benchmarks/shard_scaling.sh                      # bundled model, first 256 KiB of the held-out text
#   MODEL=DIR TEXT=FILE BYTES=N Benchmarks/shard_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-Fixtures/models/shakespeare-pre}
BYTES=${BYTES:-262144}
swift build -c release --product stream-probe > /dev/null
P=.build/release/stream-probe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TEXT=${TEXT:-}
if [ -z "$TEXT" ]; then TEXT=$work/text.txt; head -c "$BYTES" Fixtures/corpora/shakespeare-valid.txt > "$TEXT"; fi
now() { date +%s.%N; }
t0=$(now)
"$P" ablate "$MODEL" --text-file "$TEXT" --threads 1 --format json > "$work/whole.json" 2>/dev/null
t1=$(now)
for i in 0 1; do "$P" ablate "$MODEL" --text-file "$TEXT" --threads 1 --shard $i/2 --format json > "$work/shard-$i.json" 2>/dev/null & done
wait
t2=$(now)
"$P" merge "$work/shard-0.json" "$work/shard-1.json" --format json > "$work/merged.json"
t3=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
  one = b - a; two = c - b; merge = d - c
  printf "one process, 1 thread:          %.2f s\n", one
  printf "two shard processes, 1 thread:  %.2f s (merge %.3f s)\n", two, merge
  printf "ratio (shards + merge) / one:   %.2f (goal <= 0.6)\n", (two + merge) / one }'
