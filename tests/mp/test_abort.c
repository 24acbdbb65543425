/*
 * test_abort.c - hring_comm_abort from another thread ends a blocked
 * collective promptly and releases everything (hring.h).
 *
 * 2 ranks, HRING_TIMEOUT_MS=60000.  Rank 1 does not call the collective.
 * Rank 0 blocks in hring_allreduce; a second thread of rank 0 calls
 * hring_comm_abort 200 ms later.  The blocked call must return an error
 * (HRING_ERR_INVALID_USAGE, hring.h) within 1 s of the abort, and the
 * abort must return HRING_SUCCESS.  The handle is released: destroying it
 * again is refused, not a double free.  Then rank 0 must hold as many fds,
 * threads, own /dev/shm segments and /dev/shm mappings as before it
 * created the communicator.  Rank 1, once rank 0 is done, calls the
 * allreduce: it must fail with a remote error well before its timeout, and
 * its destroy succeeds.
 *
 * HTEST_INJECT=abort_skip makes the thread not call abort at all (and
 * lowers the timeout to 3 s): the test must then fail on the time and the
 * error; abort_fd leaks an fd in rank 0 after the abort: the test must
 * fail on the fd count (resources.h).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

#define AB_COUNT (1 << 18)

typedef struct {
  hring_unique_id_t id;
  atomic_int rank0_done;
  /* rank 0's report */
  double t_call, t_abort, t_abort_ret, t_ret;
  int call_result, abort_result;
  int fds[2], threads[2], shm[2], maps[2], maps_alive, own_alive;
  /* rank 1's */
  double r1_fail_s;
  int r1_result;
  char r1_msg[256];
} ab_t;

typedef struct {
  hring_comm_t comm;
  ab_t *a;
} ab_thread_t;

static void *aborter(void *arg) {
  ab_thread_t *t = arg;
  usleep(200000);
  t->a->t_abort = res_now();
  t->a->abort_result = res_inject("abort_skip") ? HRING_SUCCESS : hring_comm_abort(t->comm);
  t->a->t_abort_ret = res_now();
  return NULL;
}

static void *noop(void *arg) { return arg; }

static void rank0(ab_t *a) {
  /* A thread sanitizer's runtime starts a helper thread at the first
   * pthread_create: make that happen before the count, not inside it. */
  pthread_t warm;
  HREQUIRE(pthread_create(&warm, NULL, noop, NULL) == 0, "pthread_create");
  pthread_join(warm, NULL);
  a->fds[0] = res_fds(0);
  a->threads[0] = res_threads(0);
  a->shm[0] = res_shm_count(getpid());
  a->maps[0] = res_shm_maps(0);
  hring_comm_t comm;
  hring_result_t r = hring_comm_init_rank(&comm, 2, a->id, 0);
  HREQUIRE(r == HRING_SUCCESS, "rank 0: init: %s: %s", hring_strerror(r), hring_last_error());
  a->maps_alive = res_shm_maps(0);
  a->own_alive = res_shm_maps_own(0);
  float *x = malloc(AB_COUNT * sizeof *x);
  HREQUIRE(x, "malloc");
  /* one collective that works: the connections are up */
  x[0] = 1;
  r = hring_allreduce(x, x, 1, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS && x[0] == 2, "rank 0: first allreduce: %s", hring_last_error());

  ab_thread_t t = {comm, a};
  pthread_t th;
  HREQUIRE(pthread_create(&th, NULL, aborter, &t) == 0, "pthread_create");
  for (int i = 0; i < AB_COUNT; i++) x[i] = 1;
  a->t_call = res_now();
  r = hring_allreduce(x, x, AB_COUNT, HRING_FLOAT32, HRING_SUM, comm, NULL);
  a->t_ret = res_now();
  a->call_result = r;
  char msg[256];
  snprintf(msg, sizeof msg, "%s", hring_last_error());
  pthread_join(th, NULL);
  free(x);
  atomic_store(&a->rank0_done, 1);

  double after = a->t_ret - a->t_abort;
  HCHECK(a->t_ret >= a->t_abort, "rank 0: the call returned %.0f ms before the abort (%s): it was "
         "not blocked", -1e3 * after, hring_strerror(r));
  HCHECK(r != HRING_SUCCESS, "rank 0: the aborted call returned success");
  HCHECK(r == HRING_ERR_INVALID_USAGE, "rank 0: the aborted call returned %s (hring.h: invalid "
         "usage): %s", hring_strerror(r), msg);
  HCHECK(after < 1.0, "rank 0: the blocked call returned %.3f s after the abort", after);
  HCHECK(a->abort_result == HRING_SUCCESS, "rank 0: hring_comm_abort returned %s",
         hring_strerror((hring_result_t)a->abort_result));
  HCHECK(a->t_abort_ret - a->t_abort < 1.0, "rank 0: hring_comm_abort took %.3f s",
         a->t_abort_ret - a->t_abort);
  HCHECK(strstr(msg, "abort") != NULL, "rank 0: the error does not say it was aborted: %s", msg);
  /* released: a second release is refused (it was not freed twice) */
  if (!res_inject("abort_skip")) {
    r = hring_comm_destroy(comm);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "rank 0: destroy after abort: %s", hring_strerror(r));
  } else {
    hring_comm_destroy(comm);
  }
  if (res_inject("abort_fd")) (void)!open("/dev/null", O_RDONLY);

  (void)res_settle(a->fds[0], a->threads[0], a->shm[0], 2.0);
  a->fds[1] = res_fds(0);
  a->threads[1] = res_threads(0);
  a->shm[1] = res_shm_count(getpid());
  a->maps[1] = res_shm_maps(0);
  HCHECK(a->fds[1] == a->fds[0], "rank 0: %d fds before init, %d after the abort", a->fds[0],
         a->fds[1]);
  if (a->fds[1] != a->fds[0]) res_print_fds("rank 0");
  HCHECK(a->threads[1] == a->threads[0], "rank 0: %d threads before init, %d after the abort",
         a->threads[0], a->threads[1]);
  HCHECK(a->shm[1] == a->shm[0], "rank 0: %d own /dev/shm segments before init, %d after the "
         "abort", a->shm[0], a->shm[1]);
  HCHECK(a->maps[1] == a->maps[0], "rank 0: %d /dev/shm mappings before init, %d after the abort",
         a->maps[0], a->maps[1]);
}

static void rank1(ab_t *a) {
  int fds = res_fds(0), threads = res_threads(0), shm = res_shm_count(getpid());
  hring_comm_t comm;
  hring_result_t r = hring_comm_init_rank(&comm, 2, a->id, 1);
  HREQUIRE(r == HRING_SUCCESS, "rank 1: init: %s: %s", hring_strerror(r), hring_last_error());
  float x = 1;
  r = hring_allreduce(&x, &x, 1, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS && x == 2, "rank 1: first allreduce: %s", hring_last_error());
  /* never joins the second collective; waits for rank 0 to be done */
  double t0 = res_now();
  while (!atomic_load(&a->rank0_done) && res_now() - t0 < 20) usleep(10000);
  float *y = calloc(AB_COUNT, sizeof *y);
  HREQUIRE(y, "calloc");
  t0 = res_now();
  r = hring_allreduce(y, y, AB_COUNT, HRING_FLOAT32, HRING_SUM, comm, NULL);
  a->r1_fail_s = res_now() - t0;
  a->r1_result = r;
  snprintf(a->r1_msg, sizeof a->r1_msg, "%s", hring_last_error());
  free(y);
  HCHECK(r == HRING_ERR_REMOTE, "rank 1: after rank 0 aborted: %s: %s", hring_strerror(r),
         hring_last_error());
  HCHECK(a->r1_fail_s < 5.0, "rank 1: took %.2f s to see that rank 0 aborted", a->r1_fail_s);
  r = hring_comm_destroy(comm);
  HCHECK(r == HRING_SUCCESS, "rank 1: destroy: %s", hring_strerror(r));
  HCHECK(res_settle(fds, threads, shm, 2.0), "rank 1: fds %d -> %d, threads %d -> %d, own "
         "/dev/shm segments %d -> %d", fds, res_fds(0), threads, res_threads(0), shm,
         res_shm_count(getpid()));
}

static void abort_body(int rank, int nranks, void *arg) {
  (void)nranks;
  if (rank == 0) rank0(arg);
  else rank1(arg);
}

static void run_abort(const char *transport) {
  setenv("HRING_TRANSPORTS", transport, 1);
  setenv("HRING_TIMEOUT_MS", res_inject("abort_skip") ? "3000" : "60000", 1);
  ab_t *a = res_shared(sizeof *a);
  HREQUIRE(a, "mmap");
  pid_t root = mp_start_root(&a->id);
  HREQUIRE(root > 0, "bootstrap root");
  pid_t pids[2];
  int failed = 2;
  if (res_fork_ranks(2, abort_body, a, pids) == 0) failed = res_wait_ranks(2, pids, 25);
  kill(root, SIGKILL);
  waitpid(root, NULL, 0);
  printf("  %s: call blocked %.0f ms, then aborted: the call returned %.2f ms after the abort "
         "(%s), hring_comm_abort returned %s in %.2f ms\n",
         transport, 1e3 * (a->t_abort - a->t_call), 1e3 * (a->t_ret - a->t_abort),
         hring_strerror((hring_result_t)a->call_result),
         hring_strerror((hring_result_t)a->abort_result), 1e3 * (a->t_abort_ret - a->t_abort));
  printf("  rank 0 before init / after abort: fds %d/%d, threads %d/%d, own /dev/shm segments "
         "%d/%d, /dev/shm mappings %d/%d (%d while the comm lived); rank 1 saw the abort in "
         "%.0f ms (%s: %s)\n",
         a->fds[0], a->fds[1], a->threads[0], a->threads[1], a->shm[0], a->shm[1], a->maps[0],
         a->maps[1], a->maps_alive, 1e3 * a->r1_fail_s,
         hring_strerror((hring_result_t)a->r1_result), a->r1_msg);
  HCHECK(failed == 0, "%d rank(s) failed", failed);
  if (strcmp(transport, "shm") == 0) {
    HCHECK(a->maps_alive > a->maps[0], "no /dev/shm mapping while the shm comm lived: the "
           "mapping check checks nothing");
    HCHECK(a->own_alive > 0, "no mapped segment named /hring-*-<pid>: shm.c names them "
           "otherwise now; update resources.c (shm_name_pid)");
  }
  munmap(a, sizeof *a);
}

HTEST(abort_blocked_allreduce_shm, 30) { run_abort("shm"); }
HTEST(abort_blocked_allreduce_tcp, 30) { run_abort("tcp"); }
