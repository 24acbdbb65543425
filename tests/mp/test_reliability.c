/*
 * test_reliability.c - the guarantees of docs/reliability.md that need
 * several ranks: a rank killed in the middle of a collective is reported by
 * every survivor, naming it, within 5 s (not by the timeout); ranks that
 * disagree on a collective's arguments all get an error naming the
 * disagreement, never a hang or wrong data.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bodies.h"
#include "mp.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Shared by the ranks (MAP_SHARED before the fork). */
typedef struct {
  int victim;
  volatile double kill_time;
  volatile double detect_max;
} death_t;

static void *killer(void *arg) {
  death_t *d = arg;
  usleep(150000);
  d->kill_time = now_s();
  kill(getpid(), SIGKILL);
  return NULL;
}

#define N_ELEMS (256 * 1024)

static void death_body(hring_comm_t comm, int rank, int n, void *arg) {
  death_t *d = arg;
  (void)n;
  float *x = calloc(N_ELEMS, sizeof *x);
  HREQUIRE(x, "calloc");
  pthread_t t;
  if (rank == d->victim) pthread_create(&t, NULL, killer, d);
  hring_result_t r = HRING_SUCCESS;
  double t0 = now_s();
  while (r == HRING_SUCCESS && now_s() - t0 < 30)
    r = hring_allreduce(x, x, N_ELEMS, HRING_FLOAT32, HRING_SUM, comm, NULL);
  double dt = now_s() - d->kill_time;
  char want[32];
  snprintf(want, sizeof want, "rank %d", d->victim);
  HCHECK(r == HRING_ERR_REMOTE, "rank %d: got %s: %s", rank, hring_strerror(r), hring_last_error());
  HCHECK(strstr(hring_last_error(), want), "rank %d: the error does not name %s: %s", rank, want,
         hring_last_error());
  HCHECK(dt < 5.0, "rank %d: detection took %.2f s", rank, dt);
  if (dt > d->detect_max) d->detect_max = dt; /* a report, races are harmless */
  r = hring_allreduce(x, x, 1, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HCHECK(r == HRING_ERR_INVALID_USAGE, "rank %d: a failed comm accepted a call: %s", rank,
         hring_strerror(r));
  free(x);
}

void mp_run_death(const char *transport, int n) {
  if (transport) setenv("HRING_TRANSPORTS", transport, 1);
  setenv("HRING_TIMEOUT_MS", "60000", 1); /* detection must not be the timeout */
  death_t *d = mmap(NULL, sizeof *d, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  HREQUIRE(d != MAP_FAILED, "mmap");
  d->victim = n / 2;
  d->kill_time = 1e18;
  d->detect_max = 0;
  int failed = mp_run(n, death_body, d);
  /* The victim itself "fails" (killed); every survivor must pass. */
  HREQUIRE(failed == 1, "%s n=%d: %d ranks failed (only the killed one may)", transport, n, failed);
  printf("  %s, %d ranks: rank %d killed; every survivor reported it within %.0f ms\n",
         transport ? transport : "shm+tcp", n,
         d->victim, d->detect_max * 1e3);
  munmap(d, sizeof *d);
}

HTEST(peer_death_shm_np2, 60) { mp_run_death("shm", 2); }
HTEST(peer_death_shm_np4, 60) { mp_run_death("shm", 4); }
HTEST(peer_death_shm_np8, 90) { mp_run_death("shm", 8); }
HTEST(peer_death_tcp_np2, 60) { mp_run_death("tcp", 2); }
HTEST(peer_death_tcp_np4, 60) { mp_run_death("tcp", 4); }
HTEST(peer_death_tcp_np8, 90) { mp_run_death("tcp", 8); }

/* Rank 2 of 4 passes another count, op or type: every rank gets an error
 * (a disagreement, told to all), none returns success, nobody hangs. */
typedef enum { DIFF_COUNT, DIFF_OP, DIFF_TYPE } diff_t;

static void disagree_body(hring_comm_t comm, int rank, int n, void *arg) {
  diff_t what = *(diff_t *)arg;
  (void)n;
  float x[1000] = {0};
  size_t count = 1000;
  hring_redop_t op = HRING_SUM;
  hring_datatype_t type = HRING_FLOAT32;
  if (rank == 2) {
    if (what == DIFF_COUNT) count = 999;
    if (what == DIFF_OP) op = HRING_MAX;
    if (what == DIFF_TYPE) type = HRING_INT32;
  }
  double t0 = now_s();
  hring_result_t r = HRING_SUCCESS;
  /* A few agreeing calls first, then the disagreeing one (and a few more
   * in case the disagreement is seen only at the next). */
  for (int i = 0; i < 3 && r == HRING_SUCCESS; i++)
    r = hring_allreduce(x, x, 1000, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS, "agreeing calls failed: %s", hring_last_error());
  for (int i = 0; i < 3 && r == HRING_SUCCESS; i++)
    r = hring_allreduce(x, x, i == 0 ? count : 1000, i == 0 ? type : HRING_FLOAT32,
                        i == 0 ? op : HRING_SUM, comm, NULL);
  double dt = now_s() - t0;
  HCHECK(r != HRING_SUCCESS, "rank %d: disagreeing calls succeeded", rank);
  /* Over tcp a rank may learn of the failure only from a connection that
   * a failed rank closed: its notice was behind full receive slots, or
   * lost with the reset of a socket whose process had exited
   * (docs/reliability.md, known gaps).  It must still fail, in time, with
   * a remote error that names a rank; the others name the disagreement. */
  const char *e = hring_last_error();
  int tcp = strcmp(getenv("HRING_TRANSPORTS"), "tcp") == 0;
  HCHECK(strstr(e, "disagree") || strstr(e, "rank 2") ||
             (tcp && r == HRING_ERR_REMOTE && strstr(e, "closed")),
         "rank %d: error neither says the ranks disagree nor names rank 2: %s", rank, e);
  HCHECK(dt < 5.0, "rank %d: took %.2f s", rank, dt);
}

static void run_disagree(const char *transport, diff_t what) {
  setenv("HRING_TRANSPORTS", transport, 1);
  setenv("HRING_TIMEOUT_MS", "60000", 1);
  HREQUIRE(mp_run(4, disagree_body, &what) == 0, "%s: a rank failed", transport);
}

HTEST(disagree_count_shm, 60) { run_disagree("shm", DIFF_COUNT); }
HTEST(disagree_op_shm, 60) { run_disagree("shm", DIFF_OP); }
HTEST(disagree_type_shm, 60) { run_disagree("shm", DIFF_TYPE); }
HTEST(disagree_count_tcp, 60) { run_disagree("tcp", DIFF_COUNT); }
HTEST(disagree_op_tcp, 60) { run_disagree("tcp", DIFF_OP); }
HTEST(disagree_type_tcp, 60) { run_disagree("tcp", DIFF_TYPE); }
