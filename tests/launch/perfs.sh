#!/usr/bin/env bash
# perfs.sh BINDIR LAUNCHER [ARGS...] - runs every BINDIR/*_perf under a
# launcher, with the results checked (-c 1), and fails unless each run exits
# 0, prints at least one result row and ends with "Out of bounds values : 0
# OK".  The launcher line is the same for every benchmark, so the loop works
# alike under hring-run, mpirun and srun:
#
#   perfs.sh build/bin build/bin/hring-run -n 4
#   perfs.sh build/bin mpirun --allow-run-as-root --oversubscribe -n 4
#   perfs.sh build/bin srun --mpi=pmix -n 4
#
# fusion_perf takes flags of its own (docs/fusion.md): FUSION_ARGS (default
# a short ResNet-50 run in half precision); it must exit 0 (every gradient
# equal to the unfused reference) and print its ratio lines.
#
# Environment: PERF_ARGS (default "-b 8 -e 1M -f 8 -c 1 -w 2 -n 5"),
# PERF_TIMEOUT seconds per run (default 120), PERF_EXPECT_PMIX=N: also
# require N lines "PMIx: job ... joined" (one per rank; the caller sets
# HRING_DEBUG=INFO so that the library prints them), which shows the ranks
# found each other through PMIx and not through another path.
# Prints one line per run: ok|FAIL, seconds, command.
set -uo pipefail

[ $# -ge 2 ] || { echo "usage: $0 BINDIR LAUNCHER [ARGS...]" >&2; exit 2; }
bindir=$1
shift
read -r -a perf_args <<< "${PERF_ARGS:--b 8 -e 1M -f 8 -c 1 -w 2 -n 5}"
read -r -a fusion_args <<< "${FUSION_ARGS:--m resnet50 -d half -M none,ddp,planned -r 1 -n 1 -w 4 -c 0.05}"
shopt -s nullglob
perfs=("$bindir"/*_perf)
[ ${#perfs[@]} -gt 0 ] || { echo "FAIL: no *_perf in $bindir (build first)" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=0
for p in "${perfs[@]}"; do
  t0=$(date +%s%N)
  fusion=0
  [ "$(basename "$p")" = fusion_perf ] && fusion=1
  if [ $fusion = 1 ]; then
    timeout -k 5 "${PERF_TIMEOUT:-120}" "$@" "$p" "${fusion_args[@]}" > "$out" 2>&1
  else
    timeout -k 5 "${PERF_TIMEOUT:-120}" "$@" "$p" "${perf_args[@]}" > "$out" 2>&1
  fi
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  secs=$((ms / 1000)).$(printf %03d $((ms % 1000)))
  why=""
  rows=$(grep -cE '^(\[[0-9]+\] )? +[0-9]+ +[0-9]+ +[a-z0-9]+ +[a-z]+ ' "$out")
  if [ $fusion = 1 ]; then
    rows=$(grep -cE '^(\[[0-9]+\] )? +(none|ddp|planned|threshold:[0-9A-Za-z]+) +[0-9]+ ' "$out")
    if [ $rc -ne 0 ]; then why="exit status $rc"
    elif [ "$rows" -eq 0 ]; then why="no result rows"
    elif ! grep -qE 'planned exposed / none = ' "$out"; then why="no ratio line"
    fi
  elif [ $rc -ne 0 ]; then why="exit status $rc"
  elif [ "$rows" -eq 0 ]; then why="no result rows"
  elif ! grep -qE 'Out of bounds values : 0 OK' "$out"; then why="no '#wrong 0 OK' footer"
  elif [ -n "${PERF_EXPECT_PMIX:-}" ] &&
       [ "$(grep -cE 'PMIx: job .* joined, rank' "$out")" -ne "$PERF_EXPECT_PMIX" ]; then
    why="expected $PERF_EXPECT_PMIX ranks to join through PMIx, saw"
    why="$why $(grep -cE 'PMIx: job .* joined, rank' "$out")"
  fi
  if [ -z "$why" ]; then
    printf 'ok   %7s s  %s (%d rows)\n' "$secs" "$* $(basename "$p")" "$rows"
  else
    printf 'FAIL %7s s  %s: %s; its output ends:\n' "$secs" "$* $(basename "$p")" "$why"
    tail -n 25 "$out" | sed 's/^/    /'
    failed=1
  fi
done
exit $failed
