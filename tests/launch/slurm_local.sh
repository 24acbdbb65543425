#!/usr/bin/env bash
# slurm_local.sh up|down|status DIR - a one-node Slurm cluster (munged,
# slurmctld, slurmd; or several emulated hosts, below) whose configuration, state, sockets and logs all live
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
# Environment: SLURM_LOCAL_CPUS, the CPUs each node advertises (default 8:
# more than the real cores is allowed, so a test may oversubscribe).
#
# SLURM_LOCAL_HOSTS=PREFIX:N - N emulated hosts instead of one node: the
# network namespaces of tests/netns/cluster.sh (PREFIX0.. at 10.78.0.1..),
# made by `up` and removed by `down`, one slurmd in each, in a UTS
# namespace of its own whose hostname is its NodeName (how slurmd finds
# which node it is; Debian's slurmd is built without multiple-slurmd
# support, so `slurmd -N` is not available); slurmctld on host 0.  Their
# spool, pid and log files are per node (%n), and so is TmpFS: the pmix
# plugin makes each step's client directory there, under a name that would
# collide in the /tmp the hosts share.  Only host 0 reaches the
# controller: clients run there (`netns_agent.sh --exec 10.78.0.1 srun ...`,
# which `up` prints NETNS_AGENT_PREFIX for).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

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
  shopt -s nullglob
  stop_pidfiles "$d"/slurmd*.pid "$d/slurmctld.pid" "$d/munge/munged.pid" "$d/watchdog.pid"
  shopt -u nullglob
  # The namespaces go last: cluster.sh kills what is left in them at once.
  if [ -f "$d/hosts" ]; then
    bash "$here/../netns/cluster.sh" down "$(cut -d: -f1 "$d/hosts")" >/dev/null 2>&1 || true
    rm -f "$d/hosts"
  fi
}

# on_host I CMD... - CMD on node I: in its namespaces in the emulated-hosts
# mode, else here.
on_host() {
  local i=$1
  shift
  if [ -n "$hosts_prefix" ]; then
    NETNS_AGENT_PREFIX=$hosts_prefix "$here/netns_agent.sh" --exec "10.78.0.$((i + 1))" "$@"
  else
    "$@"
  fi
}

# Nodes in state idle, as the controller sees them.
idle_nodes() {
  on_host 0 sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' idle$' || true
}

# A TCP port for a daemon to listen on: no socket of any state on it in
# /proc/net/tcp{,6}, and outside the kernel's ephemeral range where one can be
# found, since a port inside it may become the local end of some other
# connection before the daemon binds it ("Address already in use"; `up`
# retries with fresh ports then, but rarely needs to).
free_port() {
  local lo=32768 hi=60999 p used pass
  read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  used=$(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null || true)
  for pass in outside any; do
    for _ in $(seq 100); do
      p=$((10000 + RANDOM % 50000))
      [ $pass = outside ] && ((p >= lo && p <= hi)) && continue
      grep -qix "$(printf %04X "$p")" <<<"$used" && continue
      echo "$p"
      return 0
    done
  done
  return 1
}

# write_conf DIR - slurm.conf with fresh ports, from up()'s variables.
write_conf() {
  local d=$1
  if ! ctld_port=$(free_port) || ! slurmd_port=$(free_port); then
    echo "slurm_local.sh: no free TCP port found" >&2
    return 1
  fi
  # proctrack/pgid and task/none: no cgroups needed, so it runs in a
  # container; config_overrides lets the node advertise more CPUs than it has.
  cat > "$d/slurm.conf" <<CONF
ClusterName=hring-test
SlurmctldHost=$host($ctld_addr)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket
CredType=cred/munge
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/$spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/$pidf
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/$logf
TmpFS=$tmpfs
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
${nodes}PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

# start_daemons DIR - slurmctld on host 0, a slurmd on each node; waits until
# all are idle.  Status 2: a daemon could not bind its port (worth a retry).
start_daemons() {
  local d=$1 i
  on_host 0 slurmctld -f "$d/slurm.conf"
  if [ -n "$hosts_prefix" ]; then
    # `ip netns exec` mounts a fresh /sys, without the cgroup mounts, and
    # slurmd will not start without its cgroup plugin, even with nothing in
    # cgroups to do (proctrack/pgid, task/none): the v1 plugin wants a
    # cgroup filesystem at /sys/fs/cgroup/systemd.  The host's named
    # hierarchy, read-only, in the daemon's own mount namespace (gone with
    # it), satisfies it and changes nothing.
    for i in $(seq 0 $((nhosts - 1))); do
      mkdir -p "$d/spool/$hosts_prefix$i" "$d/tmp/$hosts_prefix$i"
      on_host "$i" sh -c 'mount -t tmpfs hring-cgroup /sys/fs/cgroup &&
        mkdir /sys/fs/cgroup/systemd &&
        mount -r -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd &&
        exec "$@"' slurmd slurmd -f "$d/slurm.conf"
    done
  else
    slurmd -f "$d/slurm.conf"
  fi
  for _ in $(seq 300); do
    [ "$(idle_nodes)" -ge "$nhosts" ] && return 0
    grep -qs 'Address already in use' "$d"/log/slurm*.log && return 2
    sleep 0.1
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
  local nhosts=1
  hosts_prefix=""
  if [ -n "${SLURM_LOCAL_HOSTS:-}" ]; then
    hosts_prefix=${SLURM_LOCAL_HOSTS%%:*}
    nhosts=${SLURM_LOCAL_HOSTS#*:}
    [[ $hosts_prefix =~ ^[a-zA-Z][a-zA-Z0-9]*[a-zA-Z]$ && $nhosts =~ ^[1-9][0-9]*$ ]] || {
      echo "slurm_local.sh: SLURM_LOCAL_HOSTS=$SLURM_LOCAL_HOSTS: want PREFIX:N (PREFIX" \
        "of letters and digits, ending in a letter)" >&2
      return 2
    }
    for t in ip unshare; do
      command -v "$t" >/dev/null 2>&1 || skip "$t not found (iproute2, util-linux)"
    done
  fi
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
  local host ctld_port slurmd_port ctld_addr=127.0.0.1 nodes="" names="" i pidf=slurmd.pid
  local spool=spool logf=slurmd.log tmpfs=/tmp
  host=$(hostname -s)
  if [ -n "$hosts_prefix" ]; then
    host=${hosts_prefix}0
    ctld_addr=10.78.0.1
    pidf=slurmd-%n.pid spool=spool/%n logf=slurmd-%n.log tmpfs=$d/tmp/%n
    for i in $(seq 0 $((nhosts - 1))); do
      nodes+="NodeName=$hosts_prefix$i NodeAddr=10.78.0.$((i + 1)) CPUs=${SLURM_LOCAL_CPUS:-8} RealMemory=1000 State=UNKNOWN"$'\n'
      names+="${names:+,}$hosts_prefix$i"
    done
  else
    nodes="NodeName=$host NodeAddr=127.0.0.1 CPUs=${SLURM_LOCAL_CPUS:-8} RealMemory=1000 State=UNKNOWN"$'\n'
    names=$host
  fi
  export SLURM_CONF=$d/slurm.conf
  if [ -n "$owner" ]; then
    # In its own session, so that killing the owner's process group spares it.
    # It also removes what `up` made under DIR, which the owner cannot.
    setsid bash -c 'echo $$ > "$3/watchdog.pid"; while kill -0 "$1" 2>/dev/null; do sleep 1; done
                    rm -f "$3/watchdog.pid"; bash "$2" down "$3"
                    rm -rf "$3"/{munge,state,spool,log,tmp} "$3/slurm.conf"; rmdir "$3"' \
      _ "$owner" "$0" "$d" </dev/null >/dev/null 2>&1 &
  fi
  munged --force --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
    --seed-file="$d/munge/munged.seed"
  if [ -n "$hosts_prefix" ]; then
    # Recorded before the namespaces exist, so that `down` (also the
    # watchdog's) removes them whatever happens next.
    echo "$hosts_prefix:$nhosts" > "$d/hosts"
    local err
    if ! err=$(bash "$here/../netns/cluster.sh" up "$hosts_prefix" "$nhosts" 2>&1); then
      down "$d"
      skip "network namespaces not available here: $(echo "$err" | tail -n 1)"
    fi
  fi
  local attempt rc
  for attempt in 1 2 3; do
    write_conf "$d" || { down "$d"; return 1; }
    rc=0
    start_daemons "$d" || rc=$?
    [ $rc = 0 ] && break
    if [ $rc = 2 ] && [ $attempt -lt 3 ]; then
      echo "slurm_local.sh: a daemon's port was taken before it could bind it;" \
        "again with fresh ports" >&2
      stop_pidfiles "$d"/slurmd*.pid "$d/slurmctld.pid"
      rm -rf "$d"/log/slurm*.log "$d"/state/*
      continue
    fi
    echo "slurm_local.sh: $nhosts node(s) did not become idle in 30 s" >&2
    on_host 0 sinfo -N >&2 || true
    tail -n 20 "$d"/log/*.log >&2 || true
    down "$d"
    return 1
  done
  echo "export SLURM_CONF='$d/slurm.conf'"
  [ -z "$hosts_prefix" ] || echo "export NETNS_AGENT_PREFIX='$hosts_prefix'"
}

status() {
  hosts_prefix=""
  [ -f "$1/hosts" ] && hosts_prefix=$(cut -d: -f1 "$1/hosts")
  SLURM_CONF=$1/slurm.conf on_host 0 sinfo -N 2>&1 || true
  local f
  for f in munge/munged slurmctld watchdog; do
    printf '%s pid=%s\n' "$f" "$(cat "$1/$f.pid" 2>/dev/null || echo -)"
  done
  for f in "$1"/slurmd*.pid; do
    [ -f "$f" ] && printf '%s pid=%s\n' "$(basename "$f" .pid)" "$(cat "$f" 2>/dev/null || echo -)"
  done
  return 0
}

[ $# -ge 2 ] || { echo "usage: $0 up|down|status DIR [OWNER_PID]" >&2; exit 2; }
case $1 in
  up) up "$2" "${3:-}" ;;
  down) down "$2" ;;
  status) status "$2" ;;
  *) echo "usage: $0 up|down|status DIR [OWNER_PID]" >&2; exit 2 ;;
esac
