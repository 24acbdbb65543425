#!/usr/bin/env bash
# mpirun.sh [BINDIR] - hring_comm_init_env under OpenMPI's mpirun, whose
# daemons are PMIx servers: every BINDIR/*_perf (default build/bin) with 2
# and 4 ranks, results checked, each rank joining through PMIx; several
# communicators in one job (comms.c); then the error cases of lib.sh.  Exit status 0: passed; 77: skipped (mpirun missing,
# or not a PMIx launcher; the last line says why); otherwise failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=${1:-$here/../../build/bin}
. "$here/lib.sh"

# Debian names OpenMPI's launcher mpirun.openmpi; mpirun may be MPICH's.
run=$(command -v mpirun.openmpi || command -v mpirun) ||
  skip "mpirun not found (apt-get install openmpi-bin)"
# On 2 cores, 4 ranks need --oversubscribe; as root OpenMPI wants consent.
mpi=("$(basename "$run")" --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
echo "== $("$run" --version 2>&1 | head -1)"
ns=$(timeout 60 "${mpi[@]}" -n 1 printenv PMIX_NAMESPACE 2>/dev/null)
[ -n "$ns" ] || skip "this mpirun does not start its ranks as PMIx clients (no PMIX_NAMESPACE)"

pmix_env
failed=0
for np in 2 4; do
  PERF_EXPECT_PMIX=$np bash "$here/perfs.sh" "$bindir" "${mpi[@]}" -n "$np" || failed=1
done
comms_case "$bindir" "${mpi[@]}" || failed=1
error_cases "$bindir" "${mpi[@]}" || failed=1
exit $failed
