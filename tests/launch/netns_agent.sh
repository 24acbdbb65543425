#!/usr/bin/env bash
# netns_agent.sh - "ssh" into an emulated host of tests/netns/cluster.sh:
# host 10.78.0.(i+1) is network namespace ${NETNS_AGENT_PREFIX}i, entered
# with its own UTS namespace whose hostname is that namespace's name, so
# that each emulated host is a node of its own to hring (node id = hostname
# + boot id), to OpenMPI (session directories carry the hostname) and to
# Slurm (slurmd finds its NodeName by hostname).
#
#   netns_agent.sh HOST WORD...          as OpenMPI's plm_rsh_agent calls an
#                                        ssh: the words form one shell command
#   netns_agent.sh --exec HOST CMD ARG...  CMD with its arguments as they are
#
# Environment: NETNS_AGENT_PREFIX (the cluster.sh prefix).  The environment
# passes through (ssh would not; the launchers forward what ranks need with
# their own options anyway).
set -u
exec_mode=0
if [ "${1:-}" = --exec ]; then exec_mode=1; shift; fi
[ $# -ge 2 ] || { echo "usage: $0 [--exec] HOST CMD..." >&2; exit 2; }
prefix=${NETNS_AGENT_PREFIX:?NETNS_AGENT_PREFIX: the cluster.sh prefix}
host=$1
shift
case $host in
  10.78.0.*) i=$((${host##*.} - 1)) ;;
  "$prefix"[0-9]*) i=${host#"$prefix"} ;;
  *) echo "netns_agent.sh: $host is not an emulated host of $prefix" >&2; exit 255 ;;
esac
ns=$prefix$i
if [ $exec_mode = 1 ]; then
  exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$ns" "$@"
fi
# ssh hands its words to the remote shell joined by spaces; so does this.
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$ns" "$*"
