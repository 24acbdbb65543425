#!/usr/bin/env bash
# cluster.sh - emulated hosts for the multi-host tests: network namespaces
# ${P}0..${P}{N-1}, each with eth0 = 10.78.0.(i+1)/24 on a bridge that lives
# in a namespace of its own (${P}sw), so nothing touches the root
# namespace's addresses or routes.
#
#   cluster.sh up PREFIX N [RATE]   (RATE e.g. 1gbit: tc htb, else tbf, on each host)
#   cluster.sh down PREFIX
#
# Needs root and iproute2.  "up" first removes a cluster of the same prefix
# (a test killed by its timeout leaves one behind).
set -euo pipefail
cmd=${1:?up|down}; P=${2:?prefix}; N=${3:-4}; RATE=${4:-}

down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${P}([0-9]+|sw)$" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  down
  ip netns add "${P}sw"
  ip -n "${P}sw" link add br0 type bridge
  ip -n "${P}sw" link set br0 up
  for i in $(seq 0 $((N - 1))); do
    ip netns add "${P}$i"
    ip -n "${P}$i" link add eth0 type veth peer name "v$i" netns "${P}sw"
    ip -n "${P}sw" link set "v$i" master br0 up
    ip -n "${P}$i" addr add "10.78.0.$((i + 1))/24" dev eth0
    ip -n "${P}$i" link set eth0 up
    ip -n "${P}$i" link set lo up
    if [ -n "$RATE" ]; then
      ip netns exec "${P}$i" tc qdisc add dev eth0 root handle 1: htb default 10 &&
        ip netns exec "${P}$i" tc class add dev eth0 parent 1: classid 1:10 htb rate "$RATE" ||
        ip netns exec "${P}$i" tc qdisc replace dev eth0 root tbf rate "$RATE" burst 4mb latency 10ms
    fi
  done
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down PREFIX [N [RATE]]" >&2; exit 2 ;;
esac
