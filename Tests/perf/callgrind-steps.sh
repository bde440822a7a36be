#!/usr/bin/env bash
# Instructions per message of each step of a message's way through the bus, counted by callgrind:
# `ctbus-steps STEP N` runs one step N times in one thread on N messages it prepared first;
# `none` prepares them and runs nothing, so a step's count is its run's less none's, over N.
# An instruction count repeats to a fraction of a percent where a time on these machines varies
# two-fold, so a change of a few percent shows. The release binary is copied and stripped of its
# debug information first (valgrind cannot read what Swift writes there). CURVE and TCP are not
# steps: they are libzmq's, and `ctbus bench` measures them per party.
#
#   swift build -c release --product ctbus-steps && Tests/perf/callgrind-steps.sh [N] [STEP...]
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-200}
shift || true
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(decode validate policy sign verify sign-batch hash-path verify-batch seal open store journal store-batch journal-batch)
binary=${CTBUS_STEPS:-.build/release/ctbus-steps}
[ -x "$binary" ] || { echo "no $binary: swift build -c release --product ctbus-steps first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$binary" "$work/ctbus-steps"
strip --strip-debug "$work/ctbus-steps"

instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$1" \
        "$work/ctbus-steps" "$1" "$count" >/dev/null 2>"$work/log.$1" \
        || { cat "$work/log.$1" >&2; exit 1; }
    awk '/^(summary|totals):/ { print $2; exit }' "$work/callgrind.$1"
}

echo "callgrind: $count messages a step, $(basename "$binary") stripped of debug information" >&2
base=$(instructions none)
echo "| step | instructions per message |"
echo "|---|---:|"
for step in "${steps[@]}"; do
    echo "callgrind: $step" >&2
    total=$(instructions "$step")
    echo "| $step | $(( (total - base) / count )) |"
done
