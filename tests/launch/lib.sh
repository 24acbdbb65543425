# shellcheck shell=bash
# lib.sh - shared by mpirun.sh and srun.sh (sourced, not run; they set
# `here` to this directory).

# Ends the script as skipped: exit status 77, which test_launch_pmix.c and
# CI read as "cannot run here", with the reason on the last line.
skip() {
  echo "SKIP: $*"
  exit 77
}

# The launched ranks must find each other through PMIx: nothing in the
# environment may name another bootstrap root.  INFO lines of INIT say which
# path was taken (perfs.sh counts the "PMIx: job ... joined" lines).
# Sanitizer builds: libpmix's own leaks are not hring's (lsan.supp).
pmix_env() {
  unset HRING_ROOT HRING_RANK HRING_NRANKS MASTER_ADDR MASTER_PORT RANK WORLD_SIZE
  export HRING_DEBUG=INFO HRING_DEBUG_SUBSYS=INIT
  local supp="suppressions=${here:?}/lsan.supp:print_suppressions=0"
  export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}$supp"
}

# expect_error NAME PATTERN MAX_S CMD... - CMD must fail (not exit 0), print
# a line matching the extended regex PATTERN, and end within MAX_S seconds
# (a hang is killed there and fails).  Prints ok|FAIL, seconds, NAME.
expect_error() {
  local name=$1 pattern=$2 max=$3 out rc ms why=""
  shift 3
  out=$(mktemp)
  local t0
  t0=$(date +%s%N)
  timeout -k 5 "$max" "$@" > "$out" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  if [ $rc -eq 0 ]; then why="it succeeded"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="no answer within $max s (a hang)"
  elif ! grep -qE "$pattern" "$out"; then why="no line matches '$pattern'"
  fi
  if [ -z "$why" ]; then
    printf 'ok   %3d.%03d s  %s: %s\n' $((ms / 1000)) $((ms % 1000)) "$name" \
      "$(grep -m1 -oE "$pattern.*" "$out" | cut -c1-150)"
  else
    printf 'FAIL %3d.%03d s  %s: %s; its output ends:\n' $((ms / 1000)) $((ms % 1000)) \
      "$name" "$why"
    tail -n 25 "$out" | sed 's/^/    /'
  fi
  rm -f "$out"
  [ -z "$why" ]
}

# comms_case BINDIR LAUNCH... - launch_comms (comms.c: three communicators of
# one job, two alive at once, one made after another was destroyed) on 3
# ranks; PMIx_Init runs once per process, so 3 "joined" lines in all.
comms_case() {
  local bindir=$1 out rc ms t0
  shift
  [ -x "$bindir/launch_comms" ] || { echo "FAIL: $bindir/launch_comms not built"; return 1; }
  out=$(mktemp)
  t0=$(date +%s%N)
  timeout -k 5 120 "$@" -n 3 "$bindir/launch_comms" > "$out" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  local joined
  joined=$(grep -cE 'PMIx: job .* joined, rank' "$out")
  if [ $rc -eq 0 ] && grep -q 'launch_comms: 3 communicators on 3 ranks: ok' "$out" &&
     [ "$joined" -eq 3 ]; then
    printf 'ok   %3d.%03d s  %s\n' $((ms / 1000)) $((ms % 1000)) "$* -n 3 launch_comms"
    rm -f "$out"
    return 0
  fi
  printf 'FAIL %3d.%03d s  %s: exit status %d, %d PMIx joins; its output ends:\n' \
    $((ms / 1000)) $((ms % 1000)) "$* -n 3 launch_comms" $rc "$joined"
  tail -n 25 "$out" | sed 's/^/    /'
  rm -f "$out"
  return 1
}

# The error cases, the same under both launchers: LAUNCH is the launcher's
# command line up to the program (with -n given here).  Rank 0 is chosen by
# PMIX_RANK, which PMIx servers set.
#  1. rank 0 runs a program that never calls hring (sleep): the fence cannot
#     complete, and the others must give up at HRING_TIMEOUT_MS (3 s here)
#     with a message, not hang.
#  2. rank 0 cannot create the id (a network interface that does not exist):
#     the others must fail at once, saying so.
error_cases() {
  local bindir=$1 failed=0
  shift
  local perf=$bindir/all_reduce_perf
  [ -x "$perf" ] || { echo "FAIL: $perf not built"; return 1; }
  HRING_TIMEOUT_MS=3000 expect_error "rank 0 never joins" \
    "did not complete within 3000 ms" 60 "$@" -n 2 sh -c \
    'if [ "$PMIX_RANK" = 0 ]; then exec sleep 60; fi; exec "$0" -b 8 -e 8 -c 1' "$perf" ||
    failed=1
  expect_error "rank 0 cannot create the id" \
    "rank 0 of job .* could not create the unique id" 60 "$@" -n 3 sh -c \
    'if [ "$PMIX_RANK" = 0 ]; then export HRING_SOCKET_IFNAME=hring-none0; fi
     exec "$0" -b 8 -e 8 -c 1' \
    "$perf" || failed=1
  return $failed
}
