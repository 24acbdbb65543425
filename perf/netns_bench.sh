#!/usr/bin/env bash
# netns_bench.sh - a perf binary on emulated hosts: H network namespaces
# (tests/netns/cluster.sh), K ranks each (ranks h*K .. h*K+K-1 on host h,
# so a host's ranks share memory and hosts talk tcp over a bridge), every
# host's link limited to RATE.  For each algorithm in ALGOS and each of REPS
# repetitions (algorithms interleaved within a repetition, since the machine
# drifts) it prints rank 0's nccl-tests rows; at the end a summary of busbw,
# min and median over the repetitions, per algorithm and size.
#
# usage: perf/netns_bench.sh  (as root, from the repository root, after make)
# env:   HOSTS=4 K=2 RATE=1gbit (empty: no limit) REPS=3 ALGOS="ring hier hier2d auto"
#        BIN=all_reduce_perf ARGS="-b 64K -e 64M -f 4 -c 1"
#        OUT=/tmp/hring-netns/<date>   raw outputs and summary.md
#        An entry ALGO:TAG of ALGOS runs the binary of $BINDIR_TAG instead of
#        build/bin (A/B of two builds in one run: ALGOS="ring ring:old"
#        BINDIR_old=/path/to/old/build/bin).
set -u
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-4}
K=${K:-2}
RATE=${RATE-1gbit}
REPS=${REPS:-3}
ALGOS=${ALGOS:-"ring hier hier2d auto"}
BIN=${BIN:-all_reduce_perf}
ARGS=${ARGS:-"-b 64K -e 64M -f 4 -c 1"}
OUT=${OUT:-/tmp/hring-netns/$(date +%Y%m%d-%H%M%S)}
P=hrb
N=$((HOSTS * K))

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
  echo "netns_bench: SKIPPED: needs root and iproute2 (network namespaces)" >&2
  exit 0
fi
[ -x "build/bin/$BIN" ] || { echo "netns_bench: build/bin/$BIN missing: run make" >&2; exit 2; }
mkdir -p "$OUT"
trap 'bash tests/netns/cluster.sh down $P' EXIT
bash tests/netns/cluster.sh up $P "$HOSTS" "$RATE" || exit 1

# One job: every rank started in its host's namespace, rank 0 serving the
# bootstrap root on host 0's address.
run_job() {
  local algo=${1%%:*} log=$2 port=$((20000 + RANDOM % 20000)) pids=() rc=0 bindir=build/bin
  if [ "$1" != "$algo" ]; then
    local var="BINDIR_${1#*:}"
    bindir=${!var:?"$var is not set (ALGOS entry $1)"}
  fi
  local secret
  secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  for r in $(seq 0 $((N - 1))); do
    local h=$((r / K)) env_algo=()
    [ "$algo" != auto ] && env_algo=(HRING_ALGO="$algo")
    ip netns exec "$P$h" env HRING_ROOT="10.78.0.1:$port" HRING_RANK="$r" HRING_NRANKS="$N" \
      HRING_SECRET="$secret" HRING_NODE_ID="host$h" HRING_SOCKET_IFNAME=eth0 "${env_algo[@]}" \
      "$bindir/$BIN" $ARGS > "$log.$r" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  cp "$log.0" "$log"
  return $rc
}

for rep in $(seq 1 "$REPS"); do
  for algo in $ALGOS; do
    log="$OUT/$algo.$rep.txt"
    if run_job "$algo" "$log"; then
      echo "== $algo rep $rep"
      grep -E '^ +[0-9]+ ' "$log"
    else
      echo "== $algo rep $rep: FAILED (logs $log.*)"
    fi
  done
done

# Summary: busbw (column 8, out of place) per algorithm and size.
python3 perf/summarize_busbw.py "$OUT" "$BIN on $HOSTS emulated hosts x $K ranks, links ${RATE:-unlimited}" $ALGOS > "$OUT/summary.md"
cat "$OUT/summary.md"
