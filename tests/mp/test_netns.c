/*
 * test_netns.c - the same checks across emulated hosts: 4 network
 * namespaces joined by a bridge (tests/netns/cluster.sh), 2 ranks each,
 * shm within a host and tcp between hosts; and what only separate hosts
 * can show, a host that vanishes without closing anything.  Needs root and
 * iproute2; skips with a message where namespaces cannot be made.  Each test
 * removes its namespaces (and kills the processes it stopped) whether its
 * checks pass or fail; one killed by its timeout leaves them to the next
 * run's "up" (fixed names per test), or to `cluster.sh down`, which also
 * kills whatever still runs in them.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bodies.h"
#include "mp.h"

#define HOSTS 4

static char prefix[16];
static char script[4200];

static void cluster_down(void) {
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "bash %s down %s >/dev/null 2>&1", script, prefix);
  if (system(cmd) != 0) fprintf(stderr, "  warning: %s failed\n", cmd);
}

/* Makes `hosts` namespaces (rate-limited when rate != NULL) and points the
 * ranks at them; skips the test where that is impossible. */
static void cluster_up_n(const char *name, const char *rate, int hosts) {
  if (geteuid() != 0) htest_skip("emulated hosts need root (network namespaces)");
  snprintf(script, sizeof script, "%s/../../tests/netns/cluster.sh", mp_bindir());
  if (access(script, R_OK) != 0) snprintf(script, sizeof script, "tests/netns/cluster.sh");
  if (access(script, R_OK) != 0) htest_skip("tests/netns/cluster.sh not found");
  snprintf(prefix, sizeof prefix, "%s", name);
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "bash %s up %s %d %s > /dev/null 2>&1", script, prefix, hosts,
           rate ? rate : "");
  if (system(cmd) != 0) {
    cluster_down();
    htest_skip("cannot create network namespaces here (%s up failed)", script);
  }
  char v[64];
  snprintf(v, sizeof v, "%s:%d", prefix, hosts);
  setenv("MP_NETNS", v, 1);
  snprintf(v, sizeof v, "%d", hosts);
  setenv("MP_NODES", v, 1);
  setenv("HRING_SOCKET_IFNAME", "eth0", 1);
}

static void cluster_up(const char *name, const char *rate) { cluster_up_n(name, rate, HOSTS); }

HTEST(netns_allreduce_4x2, 240) {
  cluster_up("hrtm", NULL);
  size_t counts[] = {0, 1, 7, 1001, 65536 + 7, (1u << 20) + 3};
  mp_matrix_t m = {counts, 6, 1};
  int failed = mp_run(2 * HOSTS, mp_allreduce_matrix, &m);
  cluster_down();
  HREQUIRE(failed == 0, "the matrix on 4 hosts x 2 ranks failed");
}

/* The other collectives across hosts: rings and chains that cross tcp
 * between namespaces and shm within them. */
HTEST(netns_colls_4x2, 240) {
  cluster_up("hrtc", NULL);
  int failed = mp_run(2 * HOSTS, mp_colls_matrix, NULL);
  cluster_down();
  HREQUIRE(failed == 0, "the collectives matrix on 4 hosts x 2 ranks failed");
}

HTEST(netns_peer_death_4x2, 90) {
  cluster_up("hrtd", NULL);
  mp_run_death(NULL, 2 * HOSTS);
  cluster_down();
}

/* ---- a host vanishes ----
 * In the middle of a loop of allreduces, one host's cable is pulled at the
 * switch (its port on the bridge goes down: nothing it sends or is sent
 * gets through, and nothing is closed) and its ranks are stopped, so no
 * local process or notice tells anyone.  Every rank on the other hosts must
 * return a remote error naming a rank of that host within 5 s and a margin
 * (core/socket.h: 4 s of silence, the 100 ms health poll, the notices). */

#define VANISH_RANKS 8     /* at most */
#define VANISH_WARMUP 20   /* allreduces every rank completes first */
#define VANISH_LIMIT_S 6.0 /* 5 s promised, plus a second of margin */

typedef struct {
  int hosts, nranks, victim; /* rank r is on host r % hosts */
  volatile pid_t pid[VANISH_RANKS];
  volatile int iters[VANISH_RANKS];
  volatile int done[VANISH_RANKS];
  volatile double vanish_time; /* 0 until the host vanished */
  volatile double down_time;   /* when the command that pulled the cable returned */
  volatile double last_ok[VANISH_RANKS]; /* when each rank's last allreduce returned */
  double detect[VANISH_RANKS]; /* seconds from the vanishing to the error */
  int result[VANISH_RANKS];
  char msg[VANISH_RANKS][512];
} vanish_t;

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int on_victim(const vanish_t *v, int rank) { return rank % v->hosts == v->victim; }

/* "rank R" followed by something that is not a digit. */
static int names_rank(const char *msg, int r) {
  char want[16];
  int n = snprintf(want, sizeof want, "rank %d", r);
  for (const char *p = strstr(msg, want); p; p = strstr(p + 1, want))
    if (p[n] < '0' || p[n] > '9') return 1;
  return 0;
}

static void vanish_body(hring_comm_t comm, int rank, int nranks, void *arg) {
  vanish_t *v = arg;
  (void)nranks;
  v->pid[rank] = getpid();
  size_t count = 256 * 1024;
  float *x = calloc(count, sizeof *x);
  if (!x) {
    snprintf(v->msg[rank], sizeof v->msg[rank], "calloc failed");
    v->done[rank] = 1;
    return;
  }
  hring_result_t r = HRING_SUCCESS;
  double t0 = mono_s();
  while (r == HRING_SUCCESS && mono_s() - t0 < 60) {
    r = hring_allreduce(x, x, count, HRING_FLOAT32, HRING_SUM, comm, NULL);
    if (r == HRING_SUCCESS) v->last_ok[rank] = mono_s();
    v->iters[rank]++;
  }
  double t = mono_s();
  v->detect[rank] = v->vanish_time > 0 ? t - v->vanish_time : -1;
  v->result[rank] = (int)r;
  snprintf(v->msg[rank], sizeof v->msg[rank], "%s", hring_last_error());
  free(x);
  v->done[rank] = 1;
}

/* The process that pulls the cable: waits for the warm-up, takes the victim's
 * port down, stops its ranks, and kills them once every survivor is done
 * (or 30 s later), so that mp_run can reap them. */
static void vanish_controller(vanish_t *v) {
  double t0 = mono_s();
  for (;;) {
    int ready = 1;
    for (int r = 0; r < v->nranks; r++) ready &= v->iters[r] >= VANISH_WARMUP;
    if (ready) break;
    if (mono_s() - t0 > 60) _exit(1); /* the ranks never got going: nothing to do */
    usleep(1000);
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "ip -n %ssw link set v%d down", prefix, v->victim);
  v->vanish_time = mono_s(); /* before the command: the time measured errs long */
  int rc = system(cmd);
  v->down_time = mono_s();
  for (int r = 0; r < v->nranks; r++)
    if (on_victim(v, r)) kill(v->pid[r], SIGSTOP);
  if (rc != 0) fprintf(stderr, "  %s failed (%d)\n", cmd, rc);
  double tv = mono_s();
  for (;;) {
    int all = 1;
    for (int r = 0; r < v->nranks; r++) all &= on_victim(v, r) || v->done[r];
    if (all || mono_s() - tv > 30) break;
    usleep(10000);
  }
  for (int r = 0; r < v->nranks; r++)
    if (on_victim(v, r)) kill(v->pid[r], SIGKILL);
  _exit(0);
}

/* hosts x per_host ranks; host `victim` (not 0, where the bootstrap root
 * lives) vanishes. */
static void run_vanish(const char *name, int hosts, int per_host, int victim) {
  vanish_t *v = mmap(NULL, sizeof *v, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  HREQUIRE(v != MAP_FAILED, "mmap");
  memset(v, 0, sizeof *v);
  v->hosts = hosts;
  v->nranks = hosts * per_host;
  v->victim = victim;
  HREQUIRE(v->nranks <= VANISH_RANKS && victim > 0 && victim < hosts, "bad layout");
  cluster_up_n(name, NULL, hosts);
  setenv("HRING_TIMEOUT_MS", "60000", 1); /* detection must not be the timeout */
  /* From here every path reaches cluster_down: no HREQUIRE. */
  fflush(NULL);
  pid_t ctl = fork();
  if (ctl == 0) vanish_controller(v);
  int failed = ctl > 0 ? mp_run(v->nranks, vanish_body, v) : -1;
  if (ctl > 0) waitpid(ctl, NULL, 0);
  cluster_down();
  HCHECK(ctl > 0, "fork of the controller failed");
  HCHECK(v->vanish_time > 0, "the host never vanished (ranks did not reach %d allreduces)",
         VANISH_WARMUP);
  /* The ranks of the vanished host are killed at the end; nobody else may
   * fail to exit cleanly. */
  HCHECK(failed == per_host, "%d ranks failed to exit cleanly (only the %d vanished ones may)",
         failed, per_host);
  double lo = 1e9, hi = 0;
  for (int r = 0; r < v->nranks && v->vanish_time > 0; r++) {
    if (on_victim(v, r)) continue;
    HCHECK(v->done[r], "rank %d never returned", r);
    if (!v->done[r]) continue;
    HCHECK(v->result[r] == HRING_ERR_REMOTE, "rank %d: got %s: %s", r,
           hring_strerror((hring_result_t)v->result[r]), v->msg[r]);
    int named = 0;
    for (int k = victim; k < v->nranks; k += hosts) named |= names_rank(v->msg[r], k);
    HCHECK(named, "rank %d: the error names no rank of the vanished host: %s", r, v->msg[r]);
    HCHECK(v->detect[r] >= 0 && v->detect[r] < VANISH_LIMIT_S, "rank %d: took %.2f s: %s", r,
           v->detect[r], v->msg[r]);
    if (v->detect[r] < lo) lo = v->detect[r];
    if (v->detect[r] > hi) hi = v->detect[r];
  }
  if (v->vanish_time > 0 && hi > 0) {
    double last = 0;
    for (int r = 0; r < v->nranks; r++)
      if (v->last_ok[r] > last) last = v->last_ok[r];
    printf("  %d x %d: host %d vanished (the port went down within %.0f ms; the last "
           "allreduce returned %.0f ms after the command started); survivors' errors after "
           "%.0f to %.0f ms (rank 0: %s)\n", hosts, per_host, victim,
           (v->down_time - v->vanish_time) * 1e3,
           (last - v->vanish_time) * 1e3, lo * 1e3, hi * 1e3, v->msg[0]);
  }
  munmap(v, sizeof *v);
}

/* 4 hosts of 2 ranks: host 2 (ranks 2 and 6) vanishes.  Most connections
 * to it are quiet at that moment (only some ranks exchange data with it), so
 * the first survivor to notice is the one whose keepalive was due soonest,
 * and its notice tells the others: typically 2 to 4 s. */
HTEST(netns_host_vanishes_4x2, 120) { run_vanish("hrtv", HOSTS, 2, 2); }

/* 2 hosts of 1 rank: the only connection carries data both ways when host
 * 1 vanishes, so the survivor's data goes unacknowledged and no keepalive
 * is due: the slow path of the 4 s, with nobody to hear it from sooner. */
HTEST(netns_host_vanishes_2x1, 120) { run_vanish("hrtw", 2, 1, 1); }

/* ---- the bootstrap root's host vanishes ----
 * Rank 1 of 2 (host 1) joins the root (host 0) and waits for the ack, which
 * never comes since rank 0 never starts; then host 0's port goes down and
 * the root is stopped.  The rank must give up within 5 s and a margin
 * (keepalive on the bootstrap socket: 2 + 2 * 1 s), not at its 60 s
 * timeout. */

typedef struct {
  volatile double vanish_time, done_time;
  int result;
  char msg[512];
} bs_vanish_t;

static int join_ns(int host) {
  char path[128];
  snprintf(path, sizeof path, "/var/run/netns/%s%d", prefix, host);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int rc = fd >= 0 ? setns(fd, CLONE_NEWNET) : -1;
  if (fd >= 0) close(fd);
  return rc;
}

HTEST(netns_bootstrap_root_vanishes, 60) {
  bs_vanish_t *v = mmap(NULL, sizeof *v, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  HREQUIRE(v != MAP_FAILED, "mmap");
  memset(v, 0, sizeof *v);
  cluster_up_n("hrtb", NULL, 2);
  setenv("HRING_TIMEOUT_MS", "60000", 1);
  /* From here every path reaches cluster_down: no HREQUIRE. */
  int fds[2] = {-1, -1};
  hring_unique_id_t id;
  pid_t root = -1, rank = -1;
  if (pipe(fds) != 0) goto out;
  fflush(NULL);
  root = fork();
  if (root == 0) {
    if (join_ns(0) != 0 || hring_get_unique_id(&id) != HRING_SUCCESS ||
        write(fds[1], &id, sizeof id) != (ssize_t)sizeof id)
      _exit(1);
    for (;;) pause();
  }
  if (root < 0 || read(fds[0], &id, sizeof id) != (ssize_t)sizeof id) goto out;
  rank = fork();
  if (rank == 0) {
    hring_comm_t comm;
    if (join_ns(1) != 0) _exit(1);
    v->result = (int)hring_comm_init_rank(&comm, 2, id, 1);
    v->done_time = mono_s();
    snprintf(v->msg, sizeof v->msg, "%s", hring_last_error());
    _exit(0);
  }
  if (rank < 0) goto out;
  usleep(500000); /* the rank has joined and waits for the ack */
  char cmd[256];
  snprintf(cmd, sizeof cmd, "ip -n %ssw link set v0 down", prefix);
  v->vanish_time = mono_s();
  int rc = system(cmd);
  kill(root, SIGSTOP);
  HCHECK(rc == 0, "%s failed", cmd);
  for (int i = 0; i < 200 && waitpid(rank, NULL, WNOHANG) == 0; i++) usleep(100000);
out:
  if (rank > 0) {
    kill(rank, SIGKILL);
    waitpid(rank, NULL, 0);
  }
  if (root > 0) {
    kill(root, SIGKILL);
    waitpid(root, NULL, 0);
  }
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  cluster_down();
  HCHECK(v->vanish_time > 0, "the root's host never vanished (set-up failed)");
  HCHECK(v->done_time > 0, "the rank never returned from init (20 s)");
  if (v->vanish_time > 0 && v->done_time > 0) {
    double dt = v->done_time - v->vanish_time;
    HCHECK(v->result == HRING_ERR_REMOTE, "init returned %s: %s",
           hring_strerror((hring_result_t)v->result), v->msg);
    HCHECK(strstr(v->msg, "bootstrap root") && strstr(v->msg, "stopped answering"),
           "the error does not say the bootstrap root stopped answering: %s", v->msg);
    HCHECK(dt < VANISH_LIMIT_S, "the rank took %.2f s: %s", dt, v->msg);
    printf("  the root's host vanished; the waiting rank gave up after %.0f ms: %s\n", dt * 1e3,
           v->msg);
  }
  munmap(v, sizeof *v);
}
