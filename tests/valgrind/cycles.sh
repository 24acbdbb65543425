#!/usr/bin/env bash
# tests/valgrind/cycles.sh - the communicator create/destroy cycles
# (tests/mp/test_cycles.c) under valgrind's leak check.
#
# usage: tests/valgrind/cycles.sh [path/to/hring-tests] [FILTER...]
#   default binary: build/bin/hring-tests beside this script's repository;
#   default filter: cycles_init_destroy (both cycle tests).
#   HTEST_CYCLES=N shortens the tests (default: the tests' own 100 / 50).
#   HTEST_INJECT=cycles_malloc leaks 100 bytes per cycle in the test body:
#   this script must then fail (how it was checked to catch a leak).
#
# hring-tests forks every test, and the test forks its rank processes;
# valgrind follows forks by itself (--trace-children=yes also follows
# exec), and writes one log per process (%p).  The script checks that the
# rank processes were followed (at least 2 per test, found as grandchildren
# of the runner), then prints one line per process and fails when any
# process reports an error or a definite or indirect leak, or when a test
# failed.  Exit status: 0 clean (or valgrind not installed: skipped),
# 1 leak or error, 2 usage or set-up problem.
set -u

case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
here=$(cd "$here" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/build/bin/hring-tests}
[ $# -gt 0 ] && shift
filters=("$@")
[ ${#filters[@]} -eq 0 ] && filters=(cycles_init_destroy)

if ! command -v valgrind >/dev/null 2>&1; then
  echo "SKIP: valgrind is not installed (apt-get install valgrind); nothing checked"
  exit 0
fi
if [ ! -x "$bin" ]; then
  echo "error: $bin is not an executable (build it with make)" >&2
  exit 2
fi
ntests=$("$bin" -l "${filters[@]}" | wc -l)
if [ "$ntests" -eq 0 ]; then
  echo "error: no test of $bin matches: ${filters[*]}" >&2
  exit 2
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/hring-valgrind.XXXXXX")
echo "valgrind $(valgrind --version | sed 's/valgrind-//') on $bin: ${filters[*]} ($ntests tests); logs in $logs"
start=$(date +%s)
# -t 20: every timeout of the runner 20 times longer under valgrind.
valgrind --leak-check=full --error-exitcode=3 --errors-for-leak-kinds=definite,indirect \
  --trace-children=yes --child-silent-after-fork=no --log-file="$logs/vg.%p.log" \
  "$bin" -t 20 "${filters[@]}" 2>&1 | sed 's/^/  | /'
rc=${PIPESTATUS[0]}
echo "hring-tests exited $rc after $(( $(date +%s) - start )) s"

# One line per process: pid, parent, role, errors, definite and indirect
# leaks.  The runner is the process whose parent was not logged; tests are
# its children; ranks are the tests' children.
summary=$(
  for f in "$logs"/vg.*.log; do
    pid=${f##*/vg.}; pid=${pid%.log}
    ppid=$(sed -n 's/^==[0-9]*== Parent PID: \([0-9]*\).*/\1/p' "$f" | head -1)
    errors=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tail -1 | tr -d ,)
    def=$(sed -n 's/^==[0-9]*==  *definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1 | tr -d ,)
    ind=$(sed -n 's/^==[0-9]*==  *indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1 | tr -d ,)
    if grep -q "All heap blocks were freed" "$f"; then def=0; ind=0; fi
    echo "$pid ${ppid:-?} ${errors:-?} ${def:--} ${ind:--}"
  done
)
declare -A parent
while read -r pid ppid _; do parent[$pid]=$ppid; done <<<"$summary"
bad=0
ranks=0
printf '%-8s %-8s %-7s %8s %16s %16s\n' pid parent role errors "definitely lost" "indirectly lost"
while read -r pid ppid errors def ind; do
  role=runner
  if [ -n "${parent[$ppid]:-}" ]; then
    role="test"
    if [ -n "${parent[${parent[$ppid]}]:-}" ]; then role=rank; ranks=$((ranks + 1)); fi
  fi
  mark=""
  if [ "$errors" = "?" ]; then
    mark="  <- no summary (killed before it could report)"
    [ "$role" = rank ] && { mark="  <- rank without a summary: killed?"; bad=1; }
  elif [ "$errors" != 0 ] || { [ "$def" != - ] && [ "$def" != 0 ]; } || { [ "$ind" != - ] && [ "$ind" != 0 ]; }; then
    mark="  <- LEAK OR ERROR: $logs/vg.$pid.log"
    bad=1
  fi
  printf '%-8s %-8s %-7s %8s %16s %16s%s\n' "$pid" "$ppid" "$role" "$errors" "$def" "$ind" "$mark"
done <<<"$summary"

if [ "$ranks" -lt $((2 * ntests)) ]; then
  echo "FAIL: valgrind followed $ranks rank processes, expected at least $((2 * ntests)) ($ntests tests of 2 ranks)"
  bad=1
fi
if [ "$bad" -ne 0 ]; then
  echo "FAIL: leaks or memory errors; the first records:"
  for f in "$logs"/vg.*.log; do
    awk '/(definitely|indirectly) lost in loss record/ {p=12} /Invalid|uninitialised|Mismatched/ {p=12} p-- > 0' "$f" | head -40
  done
  exit 1
fi
if [ "$rc" -ne 0 ]; then
  echo "FAIL: hring-tests exited $rc (a test failed; see above)"
  exit 1
fi
echo "OK: no leak and no memory error in $ranks rank processes and their parents"
rm -rf "$logs"
exit 0
