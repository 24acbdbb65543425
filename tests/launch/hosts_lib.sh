# shellcheck shell=bash
# hosts_lib.sh - shared by mpirun_hosts.sh and srun_hosts.sh (sourced after
# lib.sh; they set `here` and `bindir`): the checks run on 2 emulated hosts
# (tests/netns/cluster.sh) x 2 ranks, the same under both launchers.

# Skips unless emulated hosts can exist here: root, iproute2, unshare (the
# UTS namespaces that give each host its own hostname).
hosts_require() {
  [ "$(id -u)" = 0 ] || skip "emulated hosts need root (network namespaces)"
  command -v ip >/dev/null 2>&1 || skip "ip not found (apt-get install iproute2)"
  command -v unshare >/dev/null 2>&1 || skip "unshare not found (util-linux)"
  [ -f "$here/../netns/cluster.sh" ] || skip "tests/netns/cluster.sh not found"
}

# hosts_up PREFIX N - the emulated hosts; skips when the kernel or the
# container refuses network or UTS namespaces (the message says which).
hosts_up() {
  local err
  if ! err=$(bash "$here/../netns/cluster.sh" up "$1" "$2" 2>&1); then
    bash "$here/../netns/cluster.sh" down "$1" >/dev/null 2>&1
    skip "network namespaces not available here: $(echo "$err" | tail -n 1)"
  fi
  if ! err=$(ip netns exec "${1}0" unshare --uts hostname "${1}0" 2>&1); then
    bash "$here/../netns/cluster.sh" down "$1" >/dev/null 2>&1
    skip "UTS namespaces not available here: $(echo "$err" | tail -n 1)"
  fi
}

# hosts_watchdog OWNER_PID CMD... - runs CMD (the cleanup) once OWNER_PID is
# gone, however it ended: the test runner kills a test's process group with
# SIGKILL at its timeout, which no trap sees; in a session of its own, that
# kill spares it.  Prints its pid.
hosts_watchdog() {
  local owner=$1
  shift
  setsid bash -c 'o=$1; shift; while kill -0 "$o" 2>/dev/null; do sleep 1; done; "$@"' \
    _ "$owner" "$@" </dev/null >/dev/null 2>&1 &
  echo $!
}

# hosts_on_exit DIR WHAT CMD... - at exit, however the script ends (TERM,
# INT and HUP exit too): stop the watchdog ($wd), run CMD (which takes the
# hosts down), remove DIR, and say how long WHAT took to stop.
hosts_on_exit() {
  _he_dir=$1 _he_what=$2
  shift 2
  _he_cmd=("$@")
  trap _hosts_cleanup EXIT
  trap 'exit 143' TERM INT HUP
}
_hosts_cleanup() {
  local t0
  t0=$(date +%s%N)
  [ -n "${wd:-}" ] && kill "$wd" 2>/dev/null
  "${_he_cmd[@]}" >/dev/null 2>&1
  rm -rf "$_he_dir"
  [ -n "${up_s:-}" ] && echo "== $_he_what stopped in $(ms_since "$t0") s; total $(ms_since "$t_start") s"
}

# ms_since T0 - seconds.milliseconds since T0 (date +%s%N).
ms_since() {
  local ms=$((($(date +%s%N) - $1) / 1000000))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# topology_case PREFIX LAUNCH... - one 4-rank allreduce, whose INFO lines
# must show what the other runs take for granted: 4 ranks joined through
# PMIx; ranks 0,1 on host 0 and 2,3 on host 1 (by the hostname in each
# line, the emulated host's); hring counting 2 nodes x 2 local ranks; each
# rank with 1 peer over shm (its host's other rank) and 2 over tcp (the
# other host's); the allreduce choice made for 2 nodes.
topology_case() {
  local prefix=$1 out t0 rc why=""
  shift
  out=$(mktemp)
  t0=$(date +%s%N)
  HRING_DEBUG_SUBSYS=INIT,COLL timeout -k 5 "${PERF_TIMEOUT:-30}" "$@" -n 4 \
    "$bindir/all_reduce_perf" -b 1M -e 1M -c 1 -w 1 -n 2 > "$out" 2>&1
  rc=$?
  local r h
  [ "$(grep -cE 'PMIx: job .* joined, rank' "$out")" -eq 4 ] || why="not 4 PMIx joins"
  for r in 0 1 2 3; do
    h=$prefix$((r / 2))
    grep -qE "^$h:.* rank $r/4 up: node $((r / 2))/2, local rank $((r % 2))/2 " "$out" ||
      why="${why:+$why; }no line '$h:... rank $r/4 up: node $((r / 2))/2, local rank $((r % 2))/2'"
    grep -qE "^$h:.* rank $r: 1 peer\(s\) over shm" "$out" ||
      why="${why:+$why; }rank $r: not 1 peer over shm"
    grep -qE "^$h:.* rank $r: 2 peer\(s\) over tcp" "$out" ||
      why="${why:+$why; }rank $r: not 2 peers over tcp"
  done
  grep -qE 'allreduce of 1048576 bytes on 4 ranks, 2 node\(s\): ' "$out" ||
    why="${why:+$why; }no allreduce choice for 2 nodes"
  [ $rc -eq 0 ] || why="exit status $rc${why:+; $why}"
  if [ -z "$why" ]; then
    printf 'ok   %7s s  topology: 2 nodes x 2 local ranks, shm within, tcp between (%s)\n' \
      "$(ms_since "$t0")" \
      "$(grep -m1 -oE 'allreduce of 1048576 bytes on 4 ranks, 2 node\(s\): [a-z0-9]+' "$out" |
        sed 's/.*: /1M: /')"
    rm -f "$out"
    return 0
  fi
  printf 'FAIL %7s s  topology: %s; its output ends:\n' "$(ms_since "$t0")" "$why"
  grep -vE 'CUDA unavailable' "$out" | tail -n 30 | sed 's/^/    /'
  rm -f "$out"
  return 1
}

# The algorithms HRING_ALGO can force (src/algos/allreduce.c), exchange
# aside: it runs on 2 ranks only (4 ranks would fall back to the automatic
# choice), so it has a 2-rank job of its own (one rank per host).
HOSTS_ALGOS="ring hier hier2d tree rdouble rabenseifner direct allpairs"

# algo_reaches_all LAUNCH... - the forced-algorithm runs below prove
# nothing unless HRING_ALGO reaches the ranks of both hosts: an unknown name
# must make all 4 refuse it.  Each rank's failure is turned into exit 0:
# else the launcher kills the job at the first rank that fails (mpirun; srun
# -K1), and a slower rank may not get to say it.
algo_reaches_all() {
  local out t0 n rc
  out=$(mktemp)
  t0=$(date +%s%N)
  HRING_ALGO=no-such-algo timeout -k 5 "${PERF_TIMEOUT:-30}" "$@" -n 4 \
    sh -c '"$0" -b 8 -e 8 || true' "$bindir/all_reduce_perf" > "$out" 2>&1
  rc=$?
  n=$(grep -c 'init_env failed: .*HRING_ALGO=no-such-algo: unknown' "$out")
  if [ $rc -eq 0 ] && [ "$n" -eq 4 ]; then
    printf 'ok   %7s s  HRING_ALGO reaches all 4 ranks (an unknown name: 4 refusals)\n' \
      "$(ms_since "$t0")"
    rm -f "$out"
    return 0
  fi
  printf 'FAIL %7s s  HRING_ALGO=no-such-algo: exit status %d, %d of 4 ranks refused it; its output ends:\n' \
    "$(ms_since "$t0")" $rc "$n"
  tail -n 25 "$out" | sed 's/^/    /'
  rm -f "$out"
  return 1
}

# hosts_runs TMPDIR LAUNCH4 -- LAUNCH2 - the checks after topology_case:
#  - perfs.sh, every *_perf on 4 ranks (fusion_perf with fewer warmup steps:
#    its default ResNet-50 run takes 3 to 12 s over the emulated tcp);
#  - all_reduce_perf under each forced algorithm (HRING_ALGO, exported: the
#    launch line must forward it), and exchange on LAUNCH2's 2 ranks;
#  - all_reduce_perf and reduce_scatter_perf with every op and datatype
#    (-o all -d all) on 3 sizes, under the automatic choice;
#  - launch_comms on 3 ranks (2 on host 0, 1 on host 1).
# LAUNCH4 and LAUNCH2 end where the program comes; LAUNCH4 without -n.
hosts_runs() {
  local tmp=$1 failed=0 l4=() l2=() a
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do l4+=("$1"); shift; done
  shift
  l2=("$@")
  # perfs.sh runs every *_perf of a directory: directories with one each.
  local b
  for b in all_reduce_perf reduce_scatter_perf; do
    mkdir -p "$tmp/$b"
    ln -sf "$bindir/$b" "$tmp/$b/$b"
  done
  # auto, not unset: mpirun's -x HRING_ALGO wants the variable to exist.
  export PERF_TIMEOUT=${PERF_TIMEOUT:-30} HRING_ALGO=auto
  FUSION_ARGS=${FUSION_ARGS:--m resnet50 -d half -M none,ddp,planned -r 1 -n 1 -w 1 -c 0.05} \
    PERF_EXPECT_PMIX=4 bash "$here/perfs.sh" "$bindir" "${l4[@]}" -n 4 || failed=1
  algo_reaches_all "${l4[@]}" || failed=1
  for a in $HOSTS_ALGOS; do
    HRING_ALGO=$a PERF_EXPECT_PMIX=4 bash "$here/perfs.sh" "$tmp/all_reduce_perf" \
      "${l4[@]}" -n 4 | sed "s/^\(....\) \( *[0-9.]* s\)/\1 \2  HRING_ALGO=$a/"
    [ "${PIPESTATUS[0]}" = 0 ] || failed=1
  done
  HRING_ALGO=exchange PERF_EXPECT_PMIX=2 bash "$here/perfs.sh" "$tmp/all_reduce_perf" \
    "${l2[@]}" | sed "s/^\(....\) \( *[0-9.]* s\)/\1 \2  HRING_ALGO=exchange/"
  [ "${PIPESTATUS[0]}" = 0 ] || failed=1
  for b in all_reduce_perf reduce_scatter_perf; do
    PERF_ARGS="-b 8 -e 64K -f 64 -c 1 -w 1 -n 2 -o all -d all" PERF_EXPECT_PMIX=4 \
      bash "$here/perfs.sh" "$tmp/$b" "${l4[@]}" -n 4 || failed=1
  done
  comms_case "$bindir" "${l4[@]}" || failed=1
  return $failed
}
