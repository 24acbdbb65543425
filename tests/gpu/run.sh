#!/usr/bin/env bash
# tests/gpu/run.sh - every check that needs a GPU, as one script (under 5
# minutes on an H100).  Run from the repository root on a machine with an
# NVIDIA GPU and driver:
#
#   bash tests/gpu/run.sh            # log and summary also in $OUT (default /tmp/hring-gpu)
#
# 1. builds with CUDA (when nvcc is there; else uses the build/ it finds),
# 2. the device correctness matrix (1, 2, 4 ranks on GPU 0, every type and
#    op, odd counts, in/out of place, stream order before and after),
#    staged and host-function variants, and the CPU suite's CUDA tests,
# 3. an unchanged NCCL program on the drop-in (stream-ordered),
# 4. device-to-device copy bandwidth, the cost of processes sharing the
#    GPU (ctx_bench), then all_reduce_perf on device buffers with 2 and 4
#    ranks, and on host buffers with and without CUDA (regression check),
# 5. a summary against the targets of docs/gpu.md.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hring-gpu}
mkdir -p "$OUT"
LOG=$OUT/gpu-run.log
B=${BUILD:-build}
: > "$LOG"
fails=0
step() { # step NAME TIMEOUT CMD... : runs, logs, counts failures
  local name=$1 t=$2; shift 2
  echo "=== $name: $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout -k 5 "$t" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  tail -n 40 "$OUT/$name.txt" >> "$LOG"
  echo "=== $name: rc=$rc ($((SECONDS - t0)) s)" | tee -a "$LOG"
  [ $rc -eq 0 ] || fails=$((fails + 1))
  return $rc
}

{ nvidia-smi -L 2>&1 || true; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true; } | tee -a "$LOG"
# SKIP_BUILD=1 uses the build/ found (e.g. one built on a machine without a GPU).
if [ -z "${SKIP_BUILD:-}" ] && { command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  step build 240 make -j"$(nproc)" BUILD="$B" || { echo "build failed"; exit 1; }
fi
step info 30 "$B/bin/hring-info"
grep -q "CUDA available" "$OUT/info.txt" || { echo "CUDA not available: see $OUT/info.txt" | tee -a "$LOG"; exit 1; }
# A hang becomes an error after 60 s instead of the default 5 minutes.
export HRING_TIMEOUT_MS=${HRING_TIMEOUT_MS:-60000}

step plugin_check 90 "$B/bin/plugin_check" "$B/lib/libhring_cuda.so" quick
step copy_bw 60 "$B/bin/copy_bw" 256
run=("$B/bin/hring-run")
ar="$B/bin/all_reduce_perf"
step ctx_bench 90 sh -c "$B/bin/ctx_bench procs 1 && $B/bin/ctx_bench procs 2 && $B/bin/ctx_bench inproc 2 && $B/bin/ctx_bench inproc 4"
step perf_dev_np2 120 env HRING_DEBUG=INFO HRING_DEBUG_SUBSYS=COLL "${run[@]}" -n 2 "$ar" -b 8 -e 64M -f 8 --repetitions 3
step perf_dev_np2_f32 60 "${run[@]}" -n 2 "$ar" -b 256M -e 256M --repetitions 3
step nccl_prog_np2 60 "$B/bin/nccl_stream_test" 2
export HRING_TEST_DEVICE=real
step tests_device 240 "$B/bin/hring-tests" -t 0.5 device_ cuda_ nccl_shim
unset HRING_TEST_DEVICE
step nccl_prog_np4 60 "$B/bin/nccl_stream_test" 4 262147
step perf_dev_np2_bf16 60 "${run[@]}" -n 2 "$ar" -b 256M -e 256M -d bfloat16 --repetitions 3
step perf_dev_np4 120 "${run[@]}" -n 4 "$ar" -b 8 -e 256M -f 8 --repetitions 3
step perf_dev_np2_hostfn 60 env HRING_CUDA_WAIT=hostfn "${run[@]}" -n 2 "$ar" -b 8 -e 64K -f 8 --repetitions 3
step perf_host_np2 60 "${run[@]}" -n 2 "$ar" --host -b 8 -e 16M -f 8 --repetitions 3
step perf_host_np2_nocuda 60 env HRING_CUDA=0 "${run[@]}" -n 2 "$ar" -b 8 -e 16M -f 8 --repetitions 3

# Summary: busbw and time columns of the out-of-place group.
col() { # col FILE SIZE FIELD -> value of FIELD (6 time, 8 busbw) on the SIZE row
  awk -v s="$2" -v f="$3" '{sub(/^\[[0-9]+\] */, "")} $1 == s {print $f; exit}' "$1" 2>/dev/null
}
copy=$(awk '/^d2d_copy_GBps/ {print $2}' "$OUT/copy_bw.txt" 2>/dev/null)
dev=$(awk '/^d2d_copy_GBps/ {$1=$2=$3=""; sub(/^ +/, ""); print}' "$OUT/copy_bw.txt" 2>/dev/null)
big=268435456
f32=$(col "$OUT/perf_dev_np2_f32.txt" $big 8)
bf16=$(col "$OUT/perf_dev_np2_bf16.txt" $big 8)
lat=$(col "$OUT/perf_dev_np2.txt" 8 6)
lat_h=$(col "$OUT/perf_dev_np2_hostfn.txt" 8 6)
h8=$(col "$OUT/perf_host_np2.txt" 8 6); h8n=$(col "$OUT/perf_host_np2_nocuda.txt" 8 6)
h16=$(col "$OUT/perf_host_np2.txt" 16777216 8); h16n=$(col "$OUT/perf_host_np2_nocuda.txt" 16777216 8)
{
  echo "==================== summary ($(date -u +%F))"
  echo "device                        : ${dev:-?}"
  echo "d2d copy bandwidth (GB/s)     : ${copy:-?}   target busbw = 0.5 * copy / 2.5"
  if [ -n "${copy:-}" ]; then
    tgt=$(awk -v c="$copy" 'BEGIN {printf "%.1f", 0.5 * c / 2.5}')
    for v in "float32:$f32" "bfloat16:$bf16"; do
      n=${v%%:*} b=${v#*:}
      ok=$(awk -v b="${b:-0}" -v t="$tgt" 'BEGIN {print (b + 0 >= t) ? "MET" : "MISSED"}')
      echo "np2 256 MiB $n busbw (GB/s) : ${b:-?} (target >= $tgt) $ok"
    done
  fi
  ok=$(awk -v l="${lat:-1e9}" 'BEGIN {print (l + 0 < 30) ? "MET" : "MISSED"}')
  echo "np2 8 B device latency (us)   : ${lat:-?} (target < 30) $ok; with HRING_CUDA_WAIT=hostfn ${lat_h:-?}"
  grep -h "per op" "$OUT/perf_dev_np2.txt" 2>/dev/null | sed 's/^.*hring INFO /proxy: /'
  grep -h "us per" "$OUT/ctx_bench.txt" 2>/dev/null
  echo "host np2 8 B (us)             : ${h8:-?} (HRING_CUDA=0: ${h8n:-?})"
  echo "host np2 16 MiB busbw (GB/s)  : ${h16:-?} (HRING_CUDA=0: ${h16n:-?})"
  echo "failed steps                  : $fails"
} | tee -a "$LOG"
[ $fails -eq 0 ]
