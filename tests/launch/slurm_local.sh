#!/usr/bin/env bash
# slurm_local.sh up|down|status DIR - a one-node Slurm cluster (munged,
# slurmctld, slurmd) whose configuration, state, sockets and logs all live
# under DIR, for running jobs with `srun --mpi=pmix` on this machine.
#
#   up DIR [OWNER_PID]   start it; prints the variables srun needs
#                        (eval "$(slurm_local.sh up DIR $$)").  With
#                        OWNER_PID, a watchdog stops the daemons and removes
#                        DIR when that process is gone, however it ended
#                        (even SIGKILL).
#   down DIR             stop the daemons this script started (by their pid
#                        files under DIR); safe to repeat.
#   status DIR           sinfo and the daemons' pids.
#
# Needs root (slurmd runs jobs as any user) and the Debian packages slurmctld,
# slurmd, slurm-client and munge.  Exit status 77: cannot run here (the
# message says why); 1: the cluster did not come up (the logs are printed).
# Environment: SLURM_LOCAL_CPUS, the CPUs the node advertises (default 8:
# more than the real cores is allowed, so a test may oversubscribe).
set -euo pipefail

skip() { echo "SKIP: $*" >&2; exit 77; }

# Stops the processes named by the pid files given: TERM to all at once (each
# takes 1 to 2 s to leave; one after the other would add up), KILL to those
# still there after 3 s (slurmctld, saving the state of a busy test cluster,
# can take longer, and that state is thrown away).  Only pids from this
# script's own files are used.
stop_pidfiles() {
  local f p pids=()
  for f in "$@"; do
    [ -f "$f" ] || continue
    p=$(cat "$f" 2>/dev/null || true)
    [ -n "$p" ] && kill "$p" 2>/dev/null && pids+=("$p")
  done
  for _ in $(seq 30); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null; done
  rm -f "$@"
}

down() {
  local d=$1
  stop_pidfiles "$d/slurmd.pid" "$d/slurmctld.pid" "$d/munge/munged.pid" "$d/watchdog.pid"
}

# A TCP port nobody listens on (bash's /dev/tcp: no other tool needed).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

up() {
  local d=$1 owner=${2:-}
  [ "$(id -u)" = 0 ] || skip "a local Slurm needs root (slurmd)"
  local t
  for t in munged slurmctld slurmd srun sinfo; do
    command -v "$t" >/dev/null 2>&1 ||
      skip "$t not found (apt-get install slurmctld slurmd slurm-client munge)"
  done
  down "$d"
  mkdir -p "$d"/{munge,state,spool,log}
  chmod 700 "$d/munge"
  if [ ! -f "$d/munge/munge.key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile="$d/munge/munge.key"
    else
      dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 2>/dev/null
    fi
  fi
  chmod 600 "$d/munge/munge.key"
  local host ctld_port slurmd_port
  host=$(hostname -s)
  if ! ctld_port=$(free_port) || ! slurmd_port=$(free_port); then
    echo "slurm_local.sh: no free TCP port found" >&2
    return 1
  fi
  # proctrack/pgid and task/none: no cgroups needed, so it runs in a
  # container; config_overrides lets the node advertise more CPUs than it has.
  cat > "$d/slurm.conf" <<CONF
ClusterName=hring-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket
CredType=cred/munge
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=${SLURM_LOCAL_CPUS:-8} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$d/slurm.conf
  if [ -n "$owner" ]; then
    # In its own session, so that killing the owner's process group spares it.
    # It also removes what `up` made under DIR, which the owner cannot.
    setsid bash -c 'echo $$ > "$3/watchdog.pid"; while kill -0 "$1" 2>/dev/null; do sleep 1; done
                    rm -f "$3/watchdog.pid"; bash "$2" down "$3"
                    rm -rf "$3"/{munge,state,spool,log} "$3/slurm.conf"; rmdir "$3"' \
      _ "$owner" "$0" "$d" </dev/null >/dev/null 2>&1 &
  fi
  munged --force --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
    --seed-file="$d/munge/munged.seed"
  slurmctld -f "$d/slurm.conf"
  slurmd -f "$d/slurm.conf"
  for _ in $(seq 300); do
    sinfo -h -o '%T' 2>/dev/null | grep -qE '^idle' && break
    sleep 0.1
  done
  if ! sinfo -h -o '%T' 2>/dev/null | grep -qE '^idle'; then
    echo "slurm_local.sh: the node did not become idle in 30 s" >&2
    tail -n 20 "$d"/log/*.log >&2 || true
    down "$d"
    return 1
  fi
  echo "export SLURM_CONF='$d/slurm.conf'"
}

status() {
  SLURM_CONF=$1/slurm.conf sinfo 2>&1 || true
  local f
  for f in munge/munged slurmctld slurmd watchdog; do
    printf '%s pid=%s\n' "$f" "$(cat "$1/$f.pid" 2>/dev/null || echo -)"
  done
}

[ $# -ge 2 ] || { echo "usage: $0 up|down|status DIR [OWNER_PID]" >&2; exit 2; }
case $1 in
  up) up "$2" "${3:-}" ;;
  down) down "$2" ;;
  status) status "$2" ;;
  *) echo "usage: $0 up|down|status DIR [OWNER_PID]" >&2; exit 2 ;;
esac
