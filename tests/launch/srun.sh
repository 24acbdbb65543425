#!/usr/bin/env bash
# srun.sh [BINDIR] - hring_comm_init_env under Slurm's `srun --mpi=pmix`, on
# a one-node Slurm started for the test under a temporary directory
# (slurm_local.sh) and stopped at the end, also when the test fails or is
# killed: every BINDIR/*_perf (default build/bin) with 2 and 4 ranks, results
# checked, each rank joining through PMIx; several communicators in one job
# (comms.c); then the error cases of lib.sh.
# Prints the time Slurm took to start.  Exit status 0: passed; 77: skipped
# (not root, Slurm or munge missing, no pmix plugin; the last line says why);
# otherwise failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=${1:-$here/../../build/bin}
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || skip "a local Slurm needs root (slurmd)"
for t in munged slurmctld slurmd srun sinfo; do
  command -v "$t" >/dev/null 2>&1 ||
    skip "$t not found (apt-get install slurmctld slurmd slurm-client munge)"
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/hring-slurm.XXXXXX")
cleanup() {
  local t ms
  t=$(date +%s%N)
  bash "$here/slurm_local.sh" down "$dir"
  rm -rf "$dir"
  ms=$((($(date +%s%N) - t) / 1000000))
  [ -n "${up_ms:-}" ] && echo "== slurm stopped in $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
t0=$(date +%s%N)
# $$ owns the cluster: if this script is killed outright, slurm_local.sh's
# watchdog stops the daemons.
env_lines=$(bash "$here/slurm_local.sh" up "$dir" $$)
rc=$?
[ $rc -eq 77 ] && skip "slurm_local.sh cannot run here"
[ $rc -eq 0 ] || { echo "FAIL: the local Slurm did not start"; exit 1; }
eval "$env_lines"
up_ms=$((($(date +%s%N) - t0) / 1000000))
echo "== $(srun --version 2>&1 | head -1): one node up in" \
  "$((up_ms / 1000)).$(printf %03d $((up_ms % 1000))) s"
srun --mpi=list 2>&1 | grep -qw pmix || skip "this Slurm has no pmix MPI plugin (srun --mpi=list)"

pmix_env
failed=0
# -K1: when one rank fails, the step is killed at once, not left running.
for np in 2 4; do
  PERF_EXPECT_PMIX=$np bash "$here/perfs.sh" "$bindir" srun --mpi=pmix -K1 -n "$np" || failed=1
done
comms_case "$bindir" srun --mpi=pmix -K1 || failed=1
error_cases "$bindir" srun --mpi=pmix -K1 || failed=1
exit $failed
