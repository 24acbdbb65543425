#!/usr/bin/env bash
# algo_sweep.sh - one perf binary on local ranks with each algorithm of
# ALGOS forced (auto: the library's choice), interleaved within each of REPS
# repetitions since the machine drifts; prints a summary with, per size,
# each algorithm's median time over the best one's (summarize_busbw.py).
# Each algorithm runs as a job of its own, so the machine's drift between
# jobs enters the ratios; build/bin/hring-choice times them in one process
# (docs/perf.md) and is the one to decide auto against the forced ones.
#
# usage: perf/algo_sweep.sh   (from the repository root, after make)
# env:   NPS="2 4 8" REPS=3 ALGOS="auto ring allpairs direct rdouble rabenseifner tree"
#        BIN=all_reduce_perf ARGS="-b 8 -e 64M -f 8 -c 1"
#        OUT=/tmp/hring-sweep/<date>   raw outputs and summary-<np>.md
set -u
cd "$(dirname "$0")/.."
NPS=${NPS:-"2 4 8"}
REPS=${REPS:-3}
ALGOS=${ALGOS:-"auto ring allpairs direct rdouble rabenseifner tree"}
BIN=${BIN:-all_reduce_perf}
ARGS=${ARGS:-"-b 8 -e 64M -f 8 -c 1"}
OUT=${OUT:-/tmp/hring-sweep/$(date +%Y%m%d-%H%M%S)}
[ -x "build/bin/$BIN" ] || { echo "algo_sweep: build/bin/$BIN missing: run make" >&2; exit 2; }
for np in $NPS; do
  mkdir -p "$OUT/np$np"
  for rep in $(seq 1 "$REPS"); do
    for algo in $ALGOS; do
      if [ "$algo" = auto ]; then unset HRING_ALGO; else export HRING_ALGO=$algo; fi
      build/bin/hring-run -n "$np" "build/bin/$BIN" $ARGS > "$OUT/np$np/$algo.$rep.txt" 2>&1 ||
        echo "== np $np $algo rep $rep: FAILED ($OUT/np$np/$algo.$rep.txt)"
    done
  done
  unset HRING_ALGO
  python3 perf/summarize_busbw.py "$OUT/np$np" "$BIN, $np local ranks" $ALGOS | tee "$OUT/summary-np$np.md"
done
