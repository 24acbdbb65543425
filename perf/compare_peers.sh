#!/usr/bin/env bash
# compare_peers.sh - hring's all_reduce_perf side by side with OpenMPI, MPICH
# and Gloo on this machine, interleaved in one run (the machine drifts, so
# configurations alternate within each repetition), min and median over
# REPS runs.
#
# usage: perf/compare_peers.sh            (from the repository root, after make)
# env:   REPS=3  NPS="2 4 8"  MAXB=64M  TARGET=0.1
#        WHAT="hring-shm hring-tcp ompi-vader ompi-tcp gloo-ring mpich mpich-tcp"
#        (also hring-shm-unpinned: hring-run --bind none)
#        (MPICH busy-polls: with more ranks than cores it takes milliseconds per call)
#        PEERS_DIR=../shared/peers   sources of the peer harnesses
#        OUT=/tmp/hring-compare/<date>  raw outputs + summary.md
# The peer harnesses print nccl-tests rows for float32 sum, out of place, time
# = max over ranks of elapsed/iters with adaptive iterations; all_reduce_perf
# measures the same way (-a 3, -T), so the rows compare directly.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
REPS=${REPS:-3}
NPS=${NPS:-"2 4 8"}
MAXB=${MAXB:-64M}
TARGET=${TARGET:-0.1}
WHAT=${WHAT:-"hring-shm hring-tcp ompi-vader ompi-tcp gloo-ring"}
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
W=${W:-/tmp/hring-compare}
OUT=${OUT:-$W/$(date +%Y%m%d-%H%M%S)}
TO=${TO:-900}
mkdir -p "$OUT" "$W/build"

build() {
  [ -x build/bin/all_reduce_perf ] || make -s || return 1
  case " $WHAT " in *" ompi-"*)
    mpicc.openmpi -O2 -Wall -o "$W/build/mpi_allreduce_perf.ompi" "$PEERS_DIR/mpi_allreduce_perf.c" || return 1;;
  esac
  case " $WHAT " in *" mpich"*)
    mpicc.mpich -O2 -Wall -o "$W/build/mpi_allreduce_perf.mpich" "$PEERS_DIR/mpi_allreduce_perf.c" || return 1;;
  esac
  case " $WHAT " in *" gloo-"*)
    g++ -std=c++17 -O3 -march=native -Wall -o "$W/build/gloo_allreduce_perf" \
      "$PEERS_DIR/gloo_allreduce_perf.cc" -lgloo -pthread || return 1;;
  esac
}

# cmd NAME NP : the command line of one configuration
cmd() {
  local name=$1 np=$2 os=""
  local ompi="mpirun.openmpi --allow-run-as-root --mca pml ob1"
  [ "$np" -gt 2 ] && os="--oversubscribe"
  local hr="build/bin/all_reduce_perf -b 8 -e $MAXB -f 2 -I 0 --target_time $TARGET"
  case $name in
    hring-shm) echo "env HRING_TRANSPORTS=shm build/bin/hring-run -n $np $hr" ;;
    # the launcher's default pins ranks that outnumber the cores; this does not
    hring-shm-unpinned) echo "env HRING_TRANSPORTS=shm build/bin/hring-run --bind none -n $np $hr" ;;
    hring-tcp) echo "env HRING_TRANSPORTS=tcp build/bin/hring-run -n $np $hr" ;;
    ompi-vader) echo "$ompi $os -np $np --mca btl self,vader $W/build/mpi_allreduce_perf.ompi -T $TARGET -e $MAXB" ;;
    ompi-tcp) echo "$ompi $os -np $np --mca btl self,tcp $W/build/mpi_allreduce_perf.ompi -T $TARGET -e $MAXB" ;;
    mpich) echo "mpiexec.mpich -n $np $W/build/mpi_allreduce_perf.mpich -T $TARGET -e $MAXB" ;;
    # MPICH's ch4:ucx over loopback tcp only (UCX's shm and cma transports off)
    mpich-tcp) echo "env UCX_TLS=tcp,self mpiexec.mpich -n $np $W/build/mpi_allreduce_perf.mpich -T $TARGET -e $MAXB" ;;
    gloo-ring) echo "$W/build/gloo_allreduce_perf -n $np -a ring -P -T $TARGET -e $MAXB" ;;
    gloo-new_ring) echo "$W/build/gloo_allreduce_perf -n $np -a new_ring -P -T $TARGET -e $MAXB" ;;
    *) echo "unknown configuration $name" >&2; return 1 ;;
  esac
}

build || { echo "build failed"; exit 1; }
echo "# output folder: $OUT"
for k in $(seq 1 "$REPS"); do
  for np in $NPS; do
    for name in $WHAT; do
      f="$OUT/$name-np$np.run$k.txt"
      c=$(cmd "$name" "$np") || exit 1
      {
        echo "# config: $name-np$np  run $k/$REPS  $(date -Is)"
        echo "# cmd: $c"
        echo "# nranks $np"
        echo "# loadavg before: $(cat /proc/loadavg)"
      } > "$f"
      t0=$(date +%s.%N)
      # hring-run prefixes rank output; only rank 0 prints rows
      timeout "$TO" $c 2>&1 | sed -e 's/^\[[0-9]*\] //' >> "$f"
      rc=${PIPESTATUS[0]}
      t1=$(date +%s.%N)
      echo "# rc: $rc  wall: $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s" >> "$f"
      echo ">>> $name np=$np run $k: rc=$rc"
    done
  done
done
python3 "$PEERS_DIR/summarize.py" "$OUT" | tee "$OUT/summary.md"
