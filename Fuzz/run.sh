#!/usr/bin/env bash
# Fuzzing with libFuzzer (not part of CI). Builds one binary from a snapshot of the
# library's sources, every target, libFuzzer and AddressSanitizer (so editing the
# sources meanwhile is safe), and runs the chosen targets on their corpora:
#
#   Fuzz/run.sh TARGET [SECONDS]      # default 600 s; TARGET is a file in Fuzz/Targets
#   Fuzz/run.sh all [SECONDS]         # every target in turn
#
# Targets: safetensors, config, tokenizer_json, tiktoken, vocab_merges, pretokenizer, npz.
# Seeds are in Fuzz/seeds/TARGET (committed); the growing corpus goes to
# Fuzz/corpus/TARGET and crashing inputs to Fuzz/crashes/TARGET (neither committed).
# A crash found here becomes a regression case in Fixtures/bad (make_bad.py) or a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${2:-600}
targets=${1:?usage: Fuzz/run.sh TARGET|all [SECONDS]}
if [ "$targets" = all ]; then
    targets="safetensors config tokenizer_json tiktoken vocab_merges pretokenizer npz"
fi
flags=()
if [ "$(uname -m)" = x86_64 ]; then flags+=(-Xcc -mavx2 -Xcc -mfma -Xcc -mf16c); fi
mkdir -p Fuzz/.build
# One binary holds every target (selected by STREAMLAB_FUZZ_TARGET): the library is compiled once.
binary=Fuzz/.build/streamlab-fuzz
if [ ! -x "$binary" ] || [ -n "$(find Sources Fuzz/Targets -newer "$binary" -name '*.swift' | head -1)" ]; then
    echo "building $binary ..." >&2
    rm -rf Fuzz/.build/src && mkdir -p Fuzz/.build/src && cp -R Sources/StreamLab Fuzz/Targets Fuzz/.build/src/
    swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name StreamLabFuzz "${flags[@]}" \
        $(find Fuzz/.build/src -name '*.swift' | sort) -o "$binary.tmp" 2>&1 \
        | grep -v "Cannot export local symbol" >&2 || true
    mv "$binary.tmp" "$binary"
fi
for target in $targets; do
    mkdir -p "Fuzz/corpus/$target" "Fuzz/crashes/$target"
    echo "fuzzing $target for $seconds s ..." >&2
    STREAMLAB_FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -timeout=5 -report_slow_units=1 \
        -artifact_prefix="Fuzz/crashes/$target/" "Fuzz/corpus/$target" "Fuzz/seeds/$target" 2>&1 \
        | tee "Fuzz/.build/$target.log" | grep -E "^Done|ERROR|SUMMARY|==[0-9]+==" >&2 || true
    # The slowest input of the run (libFuzzer reports each new slowest one above 1 s).
    grep -E "Slowest unit" "Fuzz/.build/$target.log" | tail -1 >&2 || true
done
