#!/usr/bin/env bash
# srun_hosts.sh [BINDIR] - hring_comm_init_env under Slurm's `srun
# --mpi=pmix` across 2 emulated hosts: a Slurm cluster started for the test
# (slurm_local.sh with SLURM_LOCAL_HOSTS: slurmctld and a slurmd on host 0,
# a slurmd on host 1, each host a network namespace of tests/netns/cluster.sh
# with its own hostname) and stopped at the end, also when the test fails
# or is killed; srun runs on host 0 with -N 2, 2 ranks per host, so hring
# sees 2 nodes: shm within a host, tcp between.  The checks are
# hosts_lib.sh's, the same as mpirun_hosts.sh's.
# Exit status 0: passed; 77: skipped (not root, no namespaces, Slurm or
# munge missing, no pmix plugin; the last line says why); otherwise failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(cd "${1:-$here/../../build/bin}" 2>/dev/null && pwd) || bindir=${1:-$here/../../build/bin}
. "$here/lib.sh"
. "$here/hosts_lib.sh"

hosts_require
for t in munged slurmctld slurmd srun sinfo; do
  command -v "$t" >/dev/null 2>&1 ||
    skip "$t not found (apt-get install slurmctld slurmd slurm-client munge)"
done
t_start=$(date +%s%N)

# The pid in the prefix: two copies of the test do not share namespaces; the
# final letter: no prefix is the start of another's names.
P=hls$$x
dir=$(mktemp -d "${TMPDIR:-/tmp}/hring-slurm-hosts.XXXXXX")
hosts_on_exit "$dir" "slurm and hosts" bash "$here/slurm_local.sh" down "$dir/slurm"
# If this script is killed outright, the watchdog stops the daemons,
# removes the namespaces (slurm_local.sh down) and the directory, which
# holds more than the cluster (hosts_runs' files), so slurm_local.sh's own
# watchdog would not do.
wd=$(hosts_watchdog $$ bash -c 'bash "$1" down "$2/slurm"; rm -rf "$2"' _ \
  "$here/slurm_local.sh" "$dir")
t0=$(date +%s%N)
env_lines=$(SLURM_LOCAL_HOSTS=$P:2 bash "$here/slurm_local.sh" up "$dir/slurm")
rc=$?
[ $rc -eq 77 ] && skip "slurm_local.sh cannot run here"
[ $rc -eq 0 ] || { echo "FAIL: the Slurm cluster of 2 emulated hosts did not start"; exit 1; }
eval "$env_lines"
up_s=$(ms_since "$t0")
agent=$here/netns_agent.sh
echo "== $(srun --version 2>&1 | head -1): 2 emulated hosts and their Slurm up in $up_s s"
"$agent" --exec 10.78.0.1 srun --mpi=list 2>&1 | grep -qw pmix ||
  skip "this Slurm has no pmix MPI plugin (srun --mpi=list)"

pmix_env
# -K1: when one rank fails, the step is killed at once, not left running.
# --ntasks-per-node: without it, Slurm fills host 0's 8 advertised CPUs
# first (3 ranks there, 1 on host 1).
s=("$agent" --exec 10.78.0.1 srun --mpi=pmix -K1 -N 2)
failed=0
topology_case "$P" "${s[@]}" --ntasks-per-node=2 || failed=1
hosts_runs "$dir" "${s[@]}" --ntasks-per-node=2 -- "${s[@]}" -n 2 || failed=1
exit $failed
