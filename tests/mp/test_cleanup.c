/*
 * test_cleanup.c - ranks killed with SIGKILL (or exiting normally) leave
 * nothing behind: no segment in /dev/shm, no socket.
 *
 * 4 ranks (and a bootstrap root child, as mp_run has) create their
 * communicator, run an allreduce and report ready.  While they are alive
 * the test checks that their shared-memory segments exist (mapped, in
 * /proc/<pid>/maps) and that their names are already gone from /dev/shm:
 * shm.c removes them right after the set-up barrier, so that a kill cannot
 * leave them.  It records every socket each process holds.  Then every
 * process is killed with SIGKILL (or, in the exit_ tests, the ranks destroy
 * their communicator and exit 0), and afterwards:
 *  - no killed pid exists any more (reaped, not a zombie);
 *  - /dev/shm holds no hring segment of any of these pids;
 *  - no tcp socket they held (by inode, /proc/net/tcp and tcp6) remains,
 *    in LISTEN or any other state.
 *
 * HTEST_INJECT=cleanup_shm makes every rank create a segment named as
 * hring names its own (/hring-inject-<rank>-<pid>) and keep it, as a
 * library that unlinked only at destroy would: the test must then fail.
 * HTEST_INJECT=cleanup_socket makes every rank fork a child that keeps the
 * rank's fds for 2 s after it died (its tcp sockets survive it): the tcp
 * tests must then fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hring.h"
#include "mp.h"
#include "resources.h"

#define CL_RANKS 4
#define CL_MAX_SOCKS 64

typedef struct {
  hring_unique_id_t id;
  int ready[2]; /* ranks -> test: one byte each once the comm works */
  int go[2];    /* test -> ranks: closed when the ranks may leave */
} cl_t;

static void inject_name(char *out, size_t len, int rank, pid_t pid) {
  snprintf(out, len, "/hring-inject-%d-%d", rank, (int)pid);
}

static void cleanup_body(int rank, int nranks, void *arg) {
  cl_t *c = arg;
  close(c->ready[0]);
  close(c->go[1]);
  hring_comm_t comm;
  hring_result_t r = hring_comm_init_rank(&comm, nranks, c->id, rank);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: init: %s: %s", rank, hring_strerror(r), hring_last_error());
  float x[4096];
  for (int i = 0; i < 4096; i++) x[i] = (float)(rank + i % 7);
  r = hring_allreduce(x, x, 4096, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: allreduce: %s", rank, hring_last_error());
  for (int i = 0; i < 4096; i++)
    HREQUIRE(x[i] == (float)(6 + 4 * (i % 7)), "rank %d: x[%d] = %g", rank, i, x[i]);
  if (res_inject("cleanup_shm")) {
    char name[64];
    inject_name(name, sizeof name, rank, getpid());
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd >= 0) close(fd);
  }
  if (res_inject("cleanup_socket") && fork() == 0) {
    /* a process outliving the rank with its fds (its sockets) */
    sleep(2);
    _exit(0);
  }
  char one = 1;
  HREQUIRE(write(c->ready[1], &one, 1) == 1, "rank %d: ready", rank);
  /* Killed here, or told to leave by the end of the go pipe. */
  char b;
  while (read(c->go[0], &b, 1) < 0 && errno == EINTR) {
  }
  r = hring_comm_destroy(comm);
  HCHECK(r == HRING_SUCCESS, "rank %d: destroy: %s", rank, hring_last_error());
}

typedef struct {
  pid_t pid;
  const char *what;
} cl_proc_t;

/* Reaps the ranks: killed ones must have died of SIGKILL, the others
 * exited 0.  Returns the number that did not end as expected. */
static int reap(const pid_t *ranks, int kill_them) {
  if (!kill_them) return res_wait_ranks(CL_RANKS, (pid_t *)ranks, 20);
  int bad = 0;
  for (int r = 0; r < CL_RANKS; r++) {
    int st = 0;
    if (waitpid(ranks[r], &st, 0) != ranks[r] || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
      fprintf(stderr, "  rank %d did not die of SIGKILL (status %#x)\n", r, st);
      bad++;
    }
  }
  return bad;
}

static void run_cleanup(const char *transports, int kill_them) {
  if (transports) setenv("HRING_TRANSPORTS", transports, 1);
  else unsetenv("HRING_TRANSPORTS");
  setenv("HRING_TIMEOUT_MS", "10000", 1);
  cl_t *c = res_shared(sizeof *c);
  HREQUIRE(c, "mmap");
  pid_t root = mp_start_root(&c->id);
  HREQUIRE(root > 0, "bootstrap root");
  /* after the root's fork: it must not hold an end of the pipes */
  HREQUIRE(pipe(c->ready) == 0 && pipe(c->go) == 0, "pipe");
  pid_t ranks[CL_RANKS];
  if (res_fork_ranks(CL_RANKS, cleanup_body, c, ranks) != 0) {
    kill(root, SIGKILL);
    waitpid(root, NULL, 0);
    HREQUIRE(0, "fork");
  }
  close(c->ready[1]);
  close(c->go[0]);

  /* Every rank ready (or one failed: EOF, or the deadline). */
  int nready = 0;
  double t0 = res_now();
  while (nready < CL_RANKS && res_now() - t0 < 20) {
    struct pollfd p = {c->ready[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char b[CL_RANKS];
    ssize_t n = read(c->ready[0], b, sizeof b);
    if (n <= 0) break;
    nready += (int)n;
  }
  cl_proc_t procs[CL_RANKS + 1];
  for (int r = 0; r < CL_RANKS; r++) procs[r] = (cl_proc_t){ranks[r], "rank"};
  procs[CL_RANKS] = (cl_proc_t){root, "bootstrap root"};
  /* Every socket of every process, with its owner. */
  unsigned long socks[(CL_RANKS + 1) * CL_MAX_SOCKS];
  int owner[(CL_RANKS + 1) * CL_MAX_SOCKS], nsocks = 0;
  unsigned char state[(CL_RANKS + 1) * CL_MAX_SOCKS];
  int mapped_min = 1 << 30, own_min = 1 << 30, named = 0, ntcp = 0, listening = 0;
  if (nready == CL_RANKS) {
    for (int k = 0; k <= CL_RANKS; k++) {
      int n = res_socket_inodes(procs[k].pid, socks + nsocks, CL_MAX_SOCKS);
      for (int s = 0; s < n; s++) owner[nsocks + s] = k;
      if (n > 0) nsocks += n;
      if (k < CL_RANKS) {
        int m = res_shm_maps(procs[k].pid);
        if (m < mapped_min) mapped_min = m;
        if (res_shm_maps_own(procs[k].pid) < own_min) own_min = res_shm_maps_own(procs[k].pid);
        named += res_shm_count(procs[k].pid);
      }
    }
    ntcp = res_tcp_scan(socks, nsocks, state);
    for (int s = 0; s < nsocks; s++) listening += state[s] == RES_TCP_LISTEN;
  }

  if (kill_them) {
    for (int k = 0; k <= CL_RANKS; k++) kill(procs[k].pid, SIGKILL);
  } else {
    close(c->go[1]); /* the ranks destroy their comm and exit */
    c->go[1] = -1;
  }
  int bad = reap(ranks, kill_them);
  if (!kill_them) kill(root, SIGKILL);
  waitpid(root, NULL, 0);
  if (c->go[1] >= 0) close(c->go[1]);
  close(c->ready[0]);

  printf("  %s, %d ranks %s: while alive %d tcp sockets (%d listening), every rank mapping at "
         "least %d /dev/shm segment(s), %d still named in /dev/shm\n",
         transports ? transports : "shm+tcp", CL_RANKS,
         kill_them ? "killed with SIGKILL" : "exiting normally", ntcp, listening,
         mapped_min == 1 << 30 ? 0 : mapped_min, named);
  HREQUIRE(nready == CL_RANKS, "only %d of %d ranks became ready", nready, CL_RANKS);
  HCHECK(bad == 0, "%d rank(s) did not end as expected", bad);
  if (!transports || strcmp(transports, "tcp") != 0) {
    HCHECK(mapped_min > 0, "a rank mapped no /dev/shm segment: the shm check checks nothing");
    HCHECK(own_min > 0, "a rank maps no segment named /hring-*-<its pid>: shm.c names them "
           "otherwise now; update resources.c (shm_name_pid)");
  }
  else
    HCHECK(ntcp >= CL_RANKS * (CL_RANKS - 1), "only %d tcp sockets while alive: the socket "
           "check checks nothing", ntcp);

  int left_pids = 0, left_shm = 0;
  for (int k = 0; k <= CL_RANKS; k++) {
    cl_proc_t *p = &procs[k];
    if (res_pid_exists(p->pid)) {
      left_pids++;
      HCHECK(0, "%s pid %d still exists", p->what, (int)p->pid);
    }
    int shm = res_shm_count(p->pid);
    left_shm += shm;
    HCHECK(shm == 0, "%s pid %d left %d segment(s) in /dev/shm", p->what, (int)p->pid, shm);
  }
  int left_socks = res_tcp_scan(socks, nsocks, state), left_listen = 0;
  for (int s = 0; s < nsocks; s++) {
    if (!state[s]) continue;
    left_listen += state[s] == RES_TCP_LISTEN;
    HCHECK(0, "%s pid %d: its tcp socket (inode %lu) remains in state %#x", procs[owner[s]].what,
           (int)procs[owner[s]].pid, socks[s], state[s]);
  }
  printf("  afterwards: %d of these pids exist, %d of their segments in /dev/shm, %d of their "
         "sockets (%d listening)\n",
         left_pids, left_shm, left_socks, left_listen);
  for (int r = 0; r < CL_RANKS; r++) {
    char name[64];
    inject_name(name, sizeof name, r, ranks[r]);
    shm_unlink(name);
  }
  munmap(c, sizeof *c);
}

HTEST(cleanup_sigkill_np4, 30) { run_cleanup(NULL, 1); }
HTEST(cleanup_sigkill_tcp_np4, 30) { run_cleanup("tcp", 1); }
HTEST(cleanup_exit_np4, 30) { run_cleanup(NULL, 0); }
HTEST(cleanup_exit_tcp_np4, 30) { run_cleanup("tcp", 0); }
