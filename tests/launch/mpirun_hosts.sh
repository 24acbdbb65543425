#!/usr/bin/env bash
# mpirun_hosts.sh [BINDIR] - hring_comm_init_env under OpenMPI's mpirun
# across 2 emulated hosts (tests/netns/cluster.sh: network namespaces on a
# bridge, 10.78.0.1 and .2), 2 ranks each: mpirun runs inside host 0 and
# starts its daemon on host 1 through netns_agent.sh (in place of ssh), each
# host with its own hostname (UTS namespace), so hring sees 2 nodes: shm
# within a host, tcp between.  The checks are hosts_lib.sh's: topology,
# every *_perf (default build/bin), all_reduce_perf under each forced
# algorithm, every op and datatype, launch_comms.
# Exit status 0: passed; 77: skipped (not root, no namespaces, mpirun
# missing or not a PMIx launcher; the last line says why); otherwise failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(cd "${1:-$here/../../build/bin}" 2>/dev/null && pwd) || bindir=${1:-$here/../../build/bin}
. "$here/lib.sh"
. "$here/hosts_lib.sh"

hosts_require
run=$(command -v mpirun.openmpi || command -v mpirun) ||
  skip "mpirun not found (apt-get install openmpi-bin)"
t_start=$(date +%s%N)

# The pid in the prefix: two copies of the test do not share namespaces; the
# final letter: no prefix is the start of another's names (cluster.sh's down
# matches PREFIX followed by digits).
P=hlm$$x
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hring-mpirun-hosts.XXXXXX")
hosts_on_exit "$tmp" hosts bash "$here/../netns/cluster.sh" down "$P"
wd=$(hosts_watchdog $$ bash -c 'bash "$1" down "$2"; rm -rf "$3"' _ \
  "$here/../netns/cluster.sh" "$P" "$tmp")

t0=$(date +%s%N)
hosts_up "$P" 2
up_s=$(ms_since "$t0")
echo "== $("$run" --version 2>&1 | head -1); 2 emulated hosts up in $up_s s"

pmix_env
export NETNS_AGENT_PREFIX=$P HRING_ALGO=auto
agent=$here/netns_agent.sh
# mpirun on host 0, its daemon on host 1 by the agent; session directories
# under $tmp (removed with it, also after a kill); -x forwards what the
# ranks read, as with a real ssh, which would not pass the environment on.
mpi=("$agent" --exec 10.78.0.1 "$(basename "$run")" --oversubscribe
  --mca plm_rsh_agent "$agent" --mca orte_tmpdir_base "$tmp"
  -x HRING_DEBUG -x HRING_DEBUG_SUBSYS -x HRING_ALGO -x LSAN_OPTIONS)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
# One rank per host, each must print the job's PMIx namespace.
ns=$(timeout 30 "${mpi[@]}" --host 10.78.0.1:1,10.78.0.2:1 -n 2 printenv PMIX_NAMESPACE 2>&1)
if [ $? -ne 0 ] || [ "$(echo "$ns" | wc -l)" -ne 2 ] || [ "$(echo "$ns" | sort -u | wc -l)" -ne 1 ] ||
   [ -z "$ns" ]; then
  echo "$ns" | tail -n 5
  skip "this mpirun does not start ranks on both emulated hosts as PMIx clients"
fi

failed=0
topology_case "$P" "${mpi[@]}" --host 10.78.0.1:2,10.78.0.2:2 || failed=1
hosts_runs "$tmp" "${mpi[@]}" --host 10.78.0.1:2,10.78.0.2:2 \
  -- "${mpi[@]}" --host 10.78.0.1:1,10.78.0.2:1 -n 2 || failed=1
exit $failed
