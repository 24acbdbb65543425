#!/usr/bin/env bash
# run.sh [seconds] - builds (make fuzz) and runs every libFuzzer target
# tests/fuzz/fuzz_<name>.c that has a seed corpus tests/fuzz/corpus/<name>/,
# each for `seconds` (default 60), as many at once as there are cores.
#
# Each target works on a copy of its corpus in a temporary directory: the
# repository (and ../shared) is never written.  Exit status: 0 when no
# target found anything; 1 when one crashed, leaked, timed out or ran out of
# memory (its log and the input that did it are kept and their paths
# printed); 0 with a SKIPPED line when clang cannot build libFuzzer targets.
#
# Environment: BUILD (default build), FUZZ_JOBS (targets at once, default
# nproc), FUZZ_ARGS (more libFuzzer flags), MAKE (default make).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

secs=${1:-60}
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2 ;;
esac
BUILD=${BUILD:-build}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

if ! out=$(${MAKE:-make} --no-print-directory BUILD="$BUILD" fuzz -j"$jobs" 2>&1); then
  echo "$out" | tail -30
  echo "fuzz: FAILED: make fuzz failed" >&2
  exit 1
fi
if echo "$out" | grep -q "SKIPPED"; then
  echo "$out" | grep "SKIPPED"
  echo "fuzz: SKIPPED: no fuzz target could be built"
  exit 0
fi

names=()
for src in tests/fuzz/fuzz_*.c; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  if [ ! -d "tests/fuzz/corpus/$name" ]; then
    echo "fuzz: $src has no corpus tests/fuzz/corpus/$name/: not run"
    continue
  fi
  if [ ! -x "$BUILD/fuzz/fuzz_$name" ]; then
    echo "fuzz: FAILED: $BUILD/fuzz/fuzz_$name was not built" >&2
    exit 1
  fi
  names+=("$name")
done
if [ ${#names[@]} -eq 0 ]; then
  echo "fuzz: no targets"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hring-fuzz.XXXXXX")
keep=0
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() { [ "$keep" = 1 ] || rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# One target: its corpus copy, log and artifacts under $tmp/<name>/.
run_one() {
  local name=$1 dir=$tmp/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "tests/fuzz/corpus/$name/." "$dir/corpus/"
  # -timeout: one input slower than this is a hang; -rss_limit_mb: an
  # allocation storm is a finding, not a reason to swap.
  # shellcheck disable=SC2086
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$BUILD/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$dir/artifacts/" ${FUZZ_ARGS:-} \
      "$dir/corpus" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

echo "fuzz: ${names[*]} for ${secs}s each, $jobs at once, in $tmp"
start=$(date +%s)
running=0
for name in "${names[@]}"; do
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

fail=0
for name in "${names[@]}"; do
  dir=$tmp/$name
  rc=$(cat "$dir/rc" 2>/dev/null || echo 99)
  stats=$(grep -E '^#[0-9]+.*DONE' "$dir/log" | tail -1)
  execs=$(grep -E 'stat::number_of_executed_units' "$dir/log" | awk '{print $2}')
  ninputs=$(find "$dir/corpus" -type f | wc -l)
  if [ "$rc" = 0 ]; then
    echo "fuzz: $name: ok: ${execs:-?} runs, corpus $ninputs inputs ${stats:+($stats)}"
  else
    fail=1
    echo "fuzz: $name: FAILED (exit $rc); log $dir/log" >&2
    grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|^==[0-9]+==' "$dir/log" | head -20 >&2
    for a in "$dir"/artifacts/*; do
      [ -f "$a" ] || continue
      echo "fuzz: $name: input that did it: $a (replay: $BUILD/fuzz/fuzz_$name $a)" >&2
      od -A d -t x1 "$a" | head -20 >&2
    done
  fi
done
echo "fuzz: done in $(($(date +%s) - start))s"
if [ "$fail" = 1 ]; then
  keep=1
  echo "fuzz: FAILED: logs and inputs kept in $tmp" >&2
  exit 1
fi
exit 0
