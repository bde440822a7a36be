#!/usr/bin/env bash
# Builds the libFuzzer target over the broker's frame decoding and admission and runs it for
# a bounded time. Usage: Fuzz/run.sh [SECONDS]   (default 60)
# Crashes land in Fuzz/artifacts/; the corpus grows in Fuzz/corpus/ (both ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
# The seed writer only converts the examples: a debug build (75 s here) is enough, where release took 140 s.
swift build --product CTBusFuzzSeeds >/dev/null
"$(swift build --show-bin-path)/CTBusFuzzSeeds" ../Schemas/examples corpus
swift build -c debug --sanitize fuzzer --product CTBusFrameFuzzer --scratch-path .build-fuzzer >/dev/null
mkdir -p artifacts
"$(swift build -c debug --sanitize fuzzer --scratch-path .build-fuzzer --show-bin-path)/CTBusFrameFuzzer" \
  -max_total_time="$seconds" -max_len=65536 -artifact_prefix=artifacts/ -print_final_stats=1 corpus
