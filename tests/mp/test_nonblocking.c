/*
 * test_nonblocking.c - hring_iallreduce and its siblings, hring_test,
 * hring_wait and hring_waitall (hring.h, docs/nonblocking.md), with
 * HRING_PROGRESS=thread and caller.
 *
 * - order: 16 nonblocking collectives of several kinds and sizes, a
 *   blocking allreduce issued while they are outstanding, waited in
 *   reverse order; every result is exact (sums of small integers); the
 *   requests issued before the blocking call have completed when it
 *   returns; over shm and tcp (MP_NODES=2), 2 and 4 ranks.
 * - overlap: a 4 MiB iallreduce completes in thread mode while both ranks
 *   sleep (rank 1 longer: in caller mode rank 0's hring_test would run it
 *   and wait for rank 1).
 * - idle: the progress thread starts at the first nonblocking call and
 *   uses no CPU while idle (/proc/self/task/<tid>/stat).
 * - bad arguments: refused with HRING_ERR_INVALID_ARGUMENT, no request
 *   made, *req unchanged; device buffers HRING_ERR_UNSUPPORTED (mock
 *   plugin); NULL requests; one rank and count 0 complete at once.
 * - abort from another thread with a running and queued requests: all
 *   complete with errors within 1 s; fds and threads back to before.
 * - destroy with requests never waited: they complete, and are waited
 *   after destroy with their results; no leak (LeakSanitizer, when built
 *   with it).
 * - a peer that dies, or skips the collectives (HRING_TIMEOUT_MS=2000):
 *   every request completes with an error, none hangs.
 *
 * HTEST_INJECT=nb_caller runs the thread-mode tests in caller mode: the
 * overlap and idle tests must then fail.  nb_leak leaks a block in the
 * destroy tests: they must fail under LeakSanitizer.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cuda.h"
#include "harness.h"
#include "hring.h"
#include "mp.h"
#include "resources.h"

#define MUSTOK(call, ...)                                                               \
  do {                                                                                  \
    hring_result_t mk_r_ = (call);                                                      \
    if (mk_r_ != HRING_SUCCESS) {                                                       \
      char mk_what_[160];                                                               \
      snprintf(mk_what_, sizeof mk_what_, __VA_ARGS__);                                 \
      HREQUIRE(0, "%s: %s: %s", mk_what_, hring_strerror(mk_r_), hring_last_error());   \
    }                                                                                   \
  } while (0)

static void set_mode(const char *mode) {
  setenv("HRING_PROGRESS", res_inject("nb_caller") ? "caller" : mode, 1);
}

/* ---- ops and their exact results ---- */

typedef enum {
  K_ALLREDUCE,
  K_REDUCE_SCATTER,
  K_ALLGATHER,
  K_BROADCAST,
  K_REDUCE,
  K_BARRIER
} kind_t;

typedef struct {
  kind_t kind;
  size_t count; /* the call's count (recvcount, sendcount) */
  int root;     /* < 0: n + root */
  int inplace;
} spec_t;

typedef struct {
  spec_t s;
  int root;
  int32_t *in, *out;
  size_t in_n, out_n;
  hring_request_t req;
} op_t;

/* Input element k of op i on rank r: small, so that sums are exact. */
static int32_t in_value(int i, int r, size_t k) { return (r + 1) * (i + 1) + (int32_t)(k % 13); }

static int32_t sum_value(int i, int n, size_t k) {
  return (i + 1) * n * (n + 1) / 2 + n * (int32_t)(k % 13);
}

static void op_setup(op_t *o, const spec_t *s, int i, int rank, int n) {
  memset(o, 0, sizeof *o);
  o->s = *s;
  o->root = s->root < 0 ? n + s->root : s->root % n;
  size_t c = s->count;
  switch (s->kind) {
    case K_ALLREDUCE: case K_BROADCAST: case K_REDUCE: o->in_n = o->out_n = c; break;
    case K_REDUCE_SCATTER: o->in_n = c * (size_t)n; o->out_n = c; break;
    case K_ALLGATHER: o->in_n = c; o->out_n = c * (size_t)n; break;
    case K_BARRIER: break;
  }
  if (s->kind == K_BARRIER) return;
  o->in = malloc((o->in_n + 1) * sizeof(int32_t));
  o->out = s->inplace ? o->in : malloc((o->out_n + 1) * sizeof(int32_t));
  HREQUIRE(o->in && o->out, "malloc");
  for (size_t k = 0; k < o->in_n; k++) o->in[k] = in_value(i, rank, k);
  if (!s->inplace)
    for (size_t k = 0; k < o->out_n; k++) o->out[k] = -7;
}

static hring_result_t op_issue(op_t *o, hring_comm_t comm) {
  size_t c = o->s.count;
  switch (o->s.kind) {
    case K_ALLREDUCE:
      return hring_iallreduce(o->in, o->out, c, HRING_INT32, HRING_SUM, comm, &o->req);
    case K_REDUCE_SCATTER:
      return hring_ireduce_scatter(o->in, o->out, c, HRING_INT32, HRING_SUM, comm, &o->req);
    case K_ALLGATHER: return hring_iallgather(o->in, o->out, c, HRING_INT32, comm, &o->req);
    case K_BROADCAST:
      return hring_ibroadcast(o->in, o->out, c, HRING_INT32, o->root, comm, &o->req);
    case K_REDUCE:
      return hring_ireduce(o->in, o->out, c, HRING_INT32, HRING_SUM, o->root, comm, &o->req);
    case K_BARRIER: return hring_ibarrier(comm, &o->req);
  }
  return HRING_ERR_INTERNAL;
}

/* Whether op i's result is right on this rank; reports the first wrong
 * element. */
static int op_right(const op_t *o, int i, int rank, int n) {
  for (size_t k = 0; k < o->out_n; k++) {
    int32_t want;
    switch (o->s.kind) {
      case K_ALLREDUCE: want = sum_value(i, n, k); break;
      case K_REDUCE:
        if (rank != o->root) return 1;
        want = sum_value(i, n, k);
        break;
      case K_REDUCE_SCATTER: want = sum_value(i, n, (size_t)rank * o->s.count + k); break;
      case K_ALLGATHER: want = in_value(i, (int)(k / o->s.count), k % o->s.count); break;
      case K_BROADCAST: want = in_value(i, o->root, k); break;
      default: return 1;
    }
    if (o->out[k] != want) {
      htest_fail(__FILE__, __LINE__, "rank %d: op %d (kind %d, count %zu): element %zu is %d, "
                 "expected %d", rank, i, (int)o->s.kind, o->s.count, k, o->out[k], want);
      return 0;
    }
  }
  return 1;
}

static void op_free(op_t *o) {
  if (o->out != o->in) free(o->out);
  free(o->in);
}

/* ---- 1. order ---- */

#define NOPS 16
static const spec_t order_specs[NOPS] = {
    {K_ALLREDUCE, 1, 0, 0},          {K_ALLREDUCE, 1000, 0, 1},
    {K_ALLGATHER, 37, 0, 0},         {K_ALLREDUCE, 65536 + 5, 0, 0},
    {K_BROADCAST, 4099, 1, 0},       {K_ALLREDUCE, 3, 0, 1}, /* 5, 6: a chain (below) */
    {K_ALLREDUCE, 3, 0, 1},          {K_REDUCE_SCATTER, 513, 0, 0},
    {K_BARRIER, 0, 0, 0},            {K_ALLREDUCE, 1 << 17, 0, 0},
    {K_REDUCE, 777, -1, 0},          {K_ALLREDUCE, 7, 0, 0},
    {K_ALLGATHER, 5000, 0, 0},       {K_ALLREDUCE, 4096 * 3, 0, 0},
    {K_BROADCAST, 1, 0, 0},          {K_ALLREDUCE, 100, 0, 0}};

static void order_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  op_t ops[NOPS];
  for (int i = 0; i < NOPS; i++) op_setup(&ops[i], &order_specs[i], i, rank, n);
  /* Ops 5 and 6 reduce one buffer in place twice: only in issue order is
   * the result n * sum (each would see the other's input otherwise). */
  free(ops[6].in);
  ops[6].in = ops[6].out = ops[5].in;
  for (int i = 0; i < 8; i++) MUSTOK(op_issue(&ops[i], comm), "rank %d: issue op %d", rank, i);

  /* A blocking collective with eight requests outstanding. */
  int32_t mid[2048];
  for (size_t k = 0; k < 2048; k++) mid[k] = in_value(99, rank, k);
  MUSTOK(hring_allreduce(mid, mid, 2048, HRING_INT32, HRING_SUM, comm, NULL),
         "rank %d: blocking allreduce among the requests", rank);
  int bad = 0;
  for (size_t k = 0; k < 2048 && !bad; k++)
    if (mid[k] != sum_value(99, n, k)) bad = 1;
  HCHECK(!bad, "rank %d: the blocking allreduce issued among requests is wrong", rank);
  /* It ran after them: their results are there before any test or wait. */
  for (int i = 0; i < 5; i++) HCHECK(op_right(&ops[i], i, rank, n), "rank %d: op %d not done "
                                     "when the blocking call returned", rank, i);
  HCHECK(op_right(&ops[7], 7, rank, n), "rank %d: op 7 not done when the blocking call returned",
         rank);
  for (int i = 0; i < 8; i++) {
    int done = -1;
    hring_request_t q = ops[i].req;
    hring_result_t r = hring_test(&q, &done);
    HCHECK(r == HRING_SUCCESS && done == 1, "rank %d: op %d: test after the blocking call: %s, "
           "done %d", rank, i, hring_strerror(r), done);
    if (done == 1) {
      HCHECK(q == NULL, "rank %d: a completed test left the request", rank);
      ops[i].req = NULL;
    }
  }
  for (int i = 8; i < NOPS; i++) MUSTOK(op_issue(&ops[i], comm), "rank %d: issue op %d", rank, i);
  for (int i = NOPS - 1; i >= 0; i--) {
    hring_result_t r = hring_wait(&ops[i].req);
    HCHECK(r == HRING_SUCCESS, "rank %d: wait op %d: %s: %s", rank, i, hring_strerror(r),
           hring_last_error());
    HCHECK(ops[i].req == NULL, "rank %d: wait left request %d", rank, i);
  }
  for (int i = 0; i < NOPS; i++)
    if (i != 5 && i != 6) (void)op_right(&ops[i], i, rank, n);
  for (size_t k = 0; k < 3; k++) {
    /* op 5: sum over r of 6(r+1) + k%13; op 6 sums n copies of that. */
    int32_t want = n * (6 * (n * (n + 1) / 2) + n * (int32_t)k);
    HCHECK(ops[5].in[k] == want, "rank %d: chained in-place allreduces: element %zu is %d, "
           "expected %d (out of order?)", rank, k, ops[5].in[k], want);
  }
  ops[6].in = ops[6].out = NULL;
  for (int i = 0; i < NOPS; i++) op_free(&ops[i]);
}

static void run_order(const char *mode, int tcp, int n) {
  setenv("HRING_PROGRESS", mode, 1);
  if (tcp) setenv("MP_NODES", "2", 1);
  else setenv("HRING_TRANSPORTS", "shm", 1);
  HREQUIRE(mp_run(n, order_body, NULL) == 0, "a rank failed");
}

HTEST(nonblocking_order_thread_shm_2, 60) { run_order("thread", 0, 2); }
HTEST(nonblocking_order_thread_shm_4, 60) { run_order("thread", 0, 4); }
HTEST(nonblocking_order_thread_tcp_2, 60) { run_order("thread", 1, 2); }
HTEST(nonblocking_order_thread_tcp_4, 60) { run_order("thread", 1, 4); }
HTEST(nonblocking_order_caller_shm_2, 60) { run_order("caller", 0, 2); }
HTEST(nonblocking_order_caller_shm_4, 60) { run_order("caller", 0, 4); }
HTEST(nonblocking_order_caller_tcp_2, 60) { run_order("caller", 1, 2); }
HTEST(nonblocking_order_caller_tcp_4, 60) { run_order("caller", 1, 4); }

/* ---- 2. overlap ---- */

#define OV_COUNT (1 << 20) /* 4 MiB of int32 */

static void overlap_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  int32_t *x = malloc(OV_COUNT * sizeof *x);
  HREQUIRE(x, "malloc");
  for (size_t k = 0; k < OV_COUNT; k++) x[k] = in_value(0, rank, k);
  hring_request_t q = NULL;
  MUSTOK(hring_iallreduce(x, x, OV_COUNT, HRING_INT32, HRING_SUM, comm, &q), "rank %d: issue",
         rank);
  usleep(rank == 0 ? 1500000 : 3000000);
  double t0 = res_now();
  int done = 0;
  hring_result_t r = hring_test(&q, &done);
  double took = res_now() - t0;
  HCHECK(r == HRING_SUCCESS, "rank %d: test: %s: %s", rank, hring_strerror(r), hring_last_error());
  HCHECK(done == 1, "rank %d: the 4 MiB iallreduce had not completed after %.1f s of sleep", rank,
         rank == 0 ? 1.5 : 3.0);
  HCHECK(took < 0.5, "rank %d: hring_test took %.3f s: it ran the collective instead of finding "
         "it done", rank, took);
  if (!done) MUSTOK(hring_wait(&q), "rank %d: wait", rank);
  int bad = 0;
  for (size_t k = 0; k < OV_COUNT && !bad; k++) bad = x[k] != sum_value(0, n, k);
  HCHECK(!bad, "rank %d: wrong result", rank);
  printf("  rank %d: hring_test after the sleep: done %d in %.1f us\n", rank, done, took * 1e6);
  free(x);
}

HTEST(nonblocking_thread_overlap, 60) {
  set_mode("thread");
  setenv("HRING_TRANSPORTS", "shm", 1);
  HREQUIRE(mp_run(2, overlap_body, NULL) == 0, "a rank failed");
}

/* ---- 3. the idle thread sleeps ---- */

/* The tid of this process's thread named `name`, -1 when none, -2 when
 * several. */
static int find_thread(const char *name) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int found = -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
    if (strcmp(comm, name) == 0) found = found == -1 ? atoi(e->d_name) : -2;
  }
  closedir(d);
  return found;
}

/* utime + stime of thread tid, in clock ticks; -1 when unreadable. */
static long thread_ticks(int tid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = '\0';
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  /* After the name: state is field 3; utime and stime are 14 and 15. */
  long utime = -1, stime = -1;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2)
    return -1;
  return utime + stime;
}

static void idle_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  HCHECK(find_thread("hring-progress") == -1, "rank %d: a progress thread before any "
         "nonblocking call", rank);
  int32_t x[64];
  for (int k = 0; k < 64; k++) x[k] = in_value(0, rank, (size_t)k);
  hring_request_t q = NULL;
  MUSTOK(hring_iallreduce(x, x, 64, HRING_INT32, HRING_SUM, comm, &q), "rank %d: issue", rank);
  MUSTOK(hring_wait(&q), "rank %d: wait", rank);
  HCHECK(x[5] == sum_value(0, n, 5), "rank %d: wrong result", rank);
  int tid = find_thread("hring-progress");
  HREQUIRE(tid > 0, "rank %d: %s progress thread after the first nonblocking call", rank,
           tid == -1 ? "no" : "more than one");
  long t0 = thread_ticks(tid);
  usleep(500000);
  long t1 = thread_ticks(tid);
  HREQUIRE(t0 >= 0 && t1 >= 0, "rank %d: cannot read the thread's CPU time", rank);
  long hz = sysconf(_SC_CLK_TCK);
  printf("  rank %d: the idle progress thread used %ld ticks (1/%ld s) in 0.5 s\n", rank, t1 - t0,
         hz);
  /* A thread that polled would run most of the 0.5 s. */
  HCHECK((t1 - t0) * 100 <= 4 * hz, "rank %d: the idle progress thread used %.0f ms of CPU in "
         "500 ms", rank, 1e3 * (double)(t1 - t0) / (double)hz);
  MUSTOK(hring_barrier(comm, NULL), "rank %d: barrier", rank);
}

HTEST(nonblocking_thread_idle_sleeps, 30) {
  set_mode("thread");
  setenv("HRING_TRANSPORTS", "shm", 1);
  HREQUIRE(mp_run(2, idle_body, NULL) == 0, "a rank failed");
}

/* ---- 4. bad arguments, NULL requests, nothing to move ---- */

#define SENTINEL ((hring_request_t)(uintptr_t)0x5a5a5a50)

static void expect_refused(hring_result_t r, hring_request_t q, hring_result_t want, int rank,
                           const char *what) {
  HCHECK(r == want, "rank %d: %s: %s (expected %s)", rank, what, hring_strerror(r),
         hring_strerror(want));
  HCHECK(q == SENTINEL, "rank %d: %s: the request was written", rank, what);
}

static void bad_args_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  const hring_result_t INV = HRING_ERR_INVALID_ARGUMENT;
  int32_t a[64], b[64 * 8];
  for (int k = 0; k < 64; k++) a[k] = in_value(2, rank, (size_t)k);
  /* A request outstanding meanwhile must not be disturbed. */
  hring_request_t good = NULL;
  MUSTOK(hring_iallreduce(a, a, 64, HRING_INT32, HRING_SUM, comm, &good), "rank %d: issue", rank);
  hring_request_t q = SENTINEL;
  expect_refused(hring_iallreduce(NULL, b, 4, HRING_INT32, HRING_SUM, comm, &q), q, INV, rank,
                 "NULL sendbuf");
  expect_refused(hring_iallreduce(b, NULL, 4, HRING_INT32, HRING_SUM, comm, &q), q, INV, rank,
                 "NULL recvbuf");
  expect_refused(hring_iallreduce(b, b, 4, (hring_datatype_t)42, HRING_SUM, comm, &q), q, INV,
                 rank, "bad type");
  expect_refused(hring_iallreduce(b, b, 4, HRING_INT32, (hring_redop_t)9, comm, &q), q, INV, rank,
                 "bad op");
  expect_refused(hring_iallreduce(b, b, SIZE_MAX / 2, HRING_INT32, HRING_SUM, comm, &q), q, INV,
                 rank, "count overflow");
  expect_refused(hring_iallreduce(b, b, 4, HRING_INT32, HRING_SUM, NULL, &q), q, INV, rank,
                 "NULL comm");
  expect_refused(hring_ibroadcast(b, b, 4, HRING_INT32, n, comm, &q), q, INV, rank,
                 "broadcast root out of range");
  expect_refused(hring_ireduce(b, b, 4, HRING_INT32, HRING_SUM, -1, comm, &q), q, INV, rank,
                 "reduce root -1");
  expect_refused(hring_iallgather(b + 1, b, 4, HRING_INT32, comm, &q), q, INV, rank,
                 "allgather buffers overlapping out of place");
  expect_refused(hring_ireduce_scatter(b, b + 1, 4, HRING_INT32, HRING_SUM, comm, &q), q, INV,
                 rank, "reduce_scatter buffers overlapping out of place");
  expect_refused(hring_ibarrier(NULL, &q), q, INV, rank, "barrier on NULL comm");
  HCHECK(hring_iallreduce(b, b, 4, HRING_INT32, HRING_SUM, comm, NULL) == INV,
         "rank %d: NULL req pointer accepted", rank);
  HCHECK(hring_ibarrier(comm, NULL) == INV, "rank %d: NULL req pointer accepted (barrier)", rank);

  /* NULL requests. */
  hring_request_t none = NULL;
  int done = -1;
  HCHECK(hring_wait(&none) == HRING_SUCCESS, "rank %d: wait on a NULL request", rank);
  HCHECK(hring_test(&none, &done) == HRING_SUCCESS && done == 1, "rank %d: test on a NULL "
         "request: done %d", rank, done);
  HCHECK(hring_wait(NULL) == INV, "rank %d: hring_wait(NULL) accepted", rank);
  HCHECK(hring_test(&none, NULL) == INV, "rank %d: hring_test without done accepted", rank);
  HCHECK(hring_test(NULL, &done) == INV, "rank %d: hring_test(NULL) accepted", rank);
  hring_request_t two[2] = {NULL, NULL};
  HCHECK(hring_waitall(2, two) == HRING_SUCCESS, "rank %d: waitall of NULL requests", rank);
  HCHECK(hring_waitall(0, NULL) == HRING_SUCCESS, "rank %d: waitall of none", rank);
  HCHECK(hring_waitall(-1, two) == INV, "rank %d: waitall(-1) accepted", rank);
  HCHECK(hring_waitall(1, NULL) == INV, "rank %d: waitall(1, NULL) accepted", rank);

  /* Count 0 completes at once, buffers untouched. */
  q = NULL;
  MUSTOK(hring_iallreduce(NULL, NULL, 0, HRING_INT32, HRING_SUM, comm, &q), "rank %d: count 0",
         rank);
  done = 0;
  HCHECK(hring_test(&q, &done) == HRING_SUCCESS && done == 1 && q == NULL,
         "rank %d: a count-0 request is not complete at once", rank);

  /* Device buffers (the mock plugin's, when loaded) are refused. */
  const hring_cuda_api_t *cu = hring__cuda();
  if (cu) {
    void *d = NULL;
    HREQUIRE(cu->mem_alloc(&d, 256) == 0, "mem_alloc");
    q = SENTINEL;
    expect_refused(hring_iallreduce(d, d, 8, HRING_INT32, HRING_SUM, comm, &q), q,
                   HRING_ERR_UNSUPPORTED, rank, "device buffer (iallreduce)");
    expect_refused(hring_iallgather(b, d, 8, HRING_INT32, comm, &q), q, HRING_ERR_UNSUPPORTED,
                   rank, "device buffer (iallgather)");
    cu->mem_free(d);
  }

  /* The outstanding request, and the communicator, are unharmed. */
  MUSTOK(hring_wait(&good), "rank %d: wait", rank);
  int bad = 0;
  for (int k = 0; k < 64 && !bad; k++) bad = a[k] != sum_value(2, n, (size_t)k);
  HCHECK(!bad, "rank %d: the request outstanding during the refused calls is wrong", rank);
  MUSTOK(hring_barrier(comm, NULL), "rank %d: barrier after refused calls", rank);
}

HTEST(nonblocking_bad_arguments, 60) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/../lib/libhring_cudamock.so", mp_bindir());
  if (access(path, R_OK) == 0) setenv("HRING_CUDA_PLUGIN", path, 1);
  else printf("  %s not built: device buffers not tried\n", path);
  set_mode("thread");
  setenv("HRING_TRANSPORTS", "shm", 1);
  HREQUIRE(mp_run(2, bad_args_body, NULL) == 0, "a rank failed");
}

/* One rank: every call completes at its issue, results in place. */
static void one_rank_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  op_t ops[NOPS];
  for (int i = 0; i < NOPS; i++) {
    if (i == 6) continue;
    op_setup(&ops[i], &order_specs[i], i, rank, n);
    MUSTOK(op_issue(&ops[i], comm), "issue op %d", i);
    int done = 0;
    hring_result_t r = hring_test(&ops[i].req, &done);
    HCHECK(r == HRING_SUCCESS && done == 1, "op %d on one rank: not complete at issue (%s)", i,
           hring_strerror(r));
    if (!done) (void)hring_wait(&ops[i].req);
    if (i != 5) (void)op_right(&ops[i], i, rank, n);
    op_free(&ops[i]);
  }
  HCHECK(find_thread("hring-progress") == -1, "a progress thread on a one-rank communicator");
}

HTEST(nonblocking_one_rank, 30) {
  set_mode("thread");
  HREQUIRE(mp_run(1, one_rank_body, NULL) == 0, "the rank failed");
}

/* ---- ranks started by hand (abort, destroy) ---- */

/* Stores the thread's kernel id. */
static void *noop(void *arg) {
  *(pid_t *)arg = (pid_t)syscall(SYS_gettid);
  return NULL;
}

/* A sanitizer's runtime starts a helper thread at the first
 * pthread_create: make that happen before a count of threads.  The joined
 * thread may still be counted for a moment after pthread_join (the kernel
 * reaps it after it clears its tid; seen under load), which made a later
 * count look short: wait until it is gone from /proc. */
static void warm_threads(void) {
  pthread_t t;
  pid_t tid = 0;
  HREQUIRE(pthread_create(&t, NULL, noop, &tid) == 0, "pthread_create");
  pthread_join(t, NULL);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
  for (double t0 = res_now(); access(path, F_OK) == 0 && res_now() - t0 < 1.0;) usleep(1000);
}

static int run_ranks(int n, res_body_fn body, void *arg, hring_unique_id_t *id, double limit) {
  pid_t root = mp_start_root(id);
  HREQUIRE(root > 0, "bootstrap root");
  pid_t pids[8];
  int failed = n;
  if (res_fork_ranks(n, body, arg, pids) == 0) failed = res_wait_ranks(n, pids, limit);
  kill(root, SIGKILL);
  waitpid(root, NULL, 0);
  return failed;
}

/* ---- 5. abort with outstanding requests ---- */

#define AB_COUNT (1 << 18)
#define AB_NREQ 4

typedef struct {
  hring_unique_id_t id;
  atomic_int rank0_done;
  double t_abort, t_abort_ret, t_done[AB_NREQ];
  int result[AB_NREQ], abort_result;
  char msg[AB_NREQ][160];
  int fds[2], threads[2], shm[2];
  int r1_result;
} nb_abort_t;

typedef struct {
  hring_comm_t comm;
  nb_abort_t *a;
} ab_thread_t;

static void *aborter(void *arg) {
  ab_thread_t *t = arg;
  usleep(300000);
  t->a->t_abort = res_now();
  t->a->abort_result = hring_comm_abort(t->comm);
  t->a->t_abort_ret = res_now();
  return NULL;
}

static void abort_rank0(nb_abort_t *a) {
  warm_threads();
  a->fds[0] = res_fds(0);
  a->threads[0] = res_threads(0);
  a->shm[0] = res_shm_count(getpid());
  hring_comm_t comm;
  MUSTOK(hring_comm_init_rank(&comm, 2, a->id, 0), "rank 0: init");
  float one = 1;
  MUSTOK(hring_allreduce(&one, &one, 1, HRING_FLOAT32, HRING_SUM, comm, NULL), "rank 0: first");
  float *x = malloc(AB_NREQ * (size_t)AB_COUNT * sizeof *x);
  HREQUIRE(x, "malloc");
  for (size_t k = 0; k < AB_NREQ * (size_t)AB_COUNT; k++) x[k] = 1;
  /* Rank 1 never joins: the first blocks (on the thread, or in the wait
   * below in caller mode), the others stay queued. */
  hring_request_t q[AB_NREQ];
  for (int i = 0; i < AB_NREQ; i++) {
    float *p = x + (size_t)i * AB_COUNT;
    hring_result_t r =
        i == 2 ? hring_ibarrier(comm, &q[i])
               : hring_iallreduce(p, p, AB_COUNT, HRING_FLOAT32, HRING_SUM, comm, &q[i]);
    MUSTOK(r, "rank 0: issue %d", i);
  }
  ab_thread_t t = {comm, a};
  pthread_t th;
  HREQUIRE(pthread_create(&th, NULL, aborter, &t) == 0, "pthread_create");
  /* Thread mode: the last first, so a queued one is waited while the
   * first runs; caller mode: the first, which runs here. */
  const char *mode = getenv("HRING_PROGRESS");
  int caller = mode && strcmp(mode, "caller") == 0;
  for (int j = 0; j < AB_NREQ; j++) {
    int i = caller ? j : AB_NREQ - 1 - j;
    a->result[i] = hring_wait(&q[i]);
    a->t_done[i] = res_now();
    snprintf(a->msg[i], sizeof a->msg[i], "%s", hring_last_error());
    HCHECK(q[i] == NULL, "rank 0: wait left request %d", i);
  }
  pthread_join(th, NULL);
  free(x);
  atomic_store(&a->rank0_done, 1);
  HCHECK(a->abort_result == HRING_SUCCESS, "rank 0: abort: %s",
         hring_strerror((hring_result_t)a->abort_result));
  HCHECK(a->t_abort_ret - a->t_abort < 1.0, "rank 0: hring_comm_abort took %.3f s",
         a->t_abort_ret - a->t_abort);
  for (int i = 0; i < AB_NREQ; i++) {
    HCHECK(a->result[i] != HRING_SUCCESS, "rank 0: request %d succeeded without its peer", i);
    HCHECK(a->t_done[i] >= a->t_abort, "rank 0: request %d completed %.0f ms before the abort (%s: "
           "%s)", i, 1e3 * (a->t_abort - a->t_done[i]),
           hring_strerror((hring_result_t)a->result[i]), a->msg[i]);
    HCHECK(a->t_done[i] - a->t_abort < 1.0, "rank 0: request %d completed %.3f s after the abort",
           i, a->t_done[i] - a->t_abort);
    HCHECK(strstr(a->msg[i], "abort") != NULL, "rank 0: request %d: the message does not say it "
           "was aborted: %s", i, a->msg[i]);
  }
  HCHECK(hring_comm_destroy(comm) == HRING_ERR_INVALID_ARGUMENT,
         "rank 0: destroy after abort was not refused");
  (void)res_settle(a->fds[0], a->threads[0], a->shm[0], 2.0);
  a->fds[1] = res_fds(0);
  a->threads[1] = res_threads(0);
  a->shm[1] = res_shm_count(getpid());
  HCHECK(a->fds[1] == a->fds[0], "rank 0: fds %d before init, %d after the abort", a->fds[0],
         a->fds[1]);
  HCHECK(a->threads[1] == a->threads[0], "rank 0: threads %d before init, %d after the abort",
         a->threads[0], a->threads[1]);
  HCHECK(a->shm[1] == a->shm[0], "rank 0: own /dev/shm segments %d before init, %d after",
         a->shm[0], a->shm[1]);
}

static void abort_rank1(nb_abort_t *a) {
  hring_comm_t comm;
  MUSTOK(hring_comm_init_rank(&comm, 2, a->id, 1), "rank 1: init");
  float one = 1;
  MUSTOK(hring_allreduce(&one, &one, 1, HRING_FLOAT32, HRING_SUM, comm, NULL), "rank 1: first");
  double t0 = res_now();
  while (!atomic_load(&a->rank0_done) && res_now() - t0 < 20) usleep(10000);
  hring_result_t r = hring_allreduce(&one, &one, 1, HRING_FLOAT32, HRING_SUM, comm, NULL);
  a->r1_result = r;
  HCHECK(r != HRING_SUCCESS, "rank 1: an allreduce with the aborted rank 0 succeeded");
  HCHECK(hring_comm_destroy(comm) == HRING_SUCCESS, "rank 1: destroy");
}

static void abort_body(int rank, int n, void *arg) {
  (void)n;
  if (rank == 0) abort_rank0(arg);
  else abort_rank1(arg);
}

static void run_abort(const char *mode) {
  setenv("HRING_PROGRESS", mode, 1);
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "60000", 1);
  nb_abort_t *a = res_shared(sizeof *a);
  HREQUIRE(a, "mmap");
  int failed = run_ranks(2, abort_body, a, &a->id, 40);
  for (int i = 0; i < AB_NREQ; i++)
    printf("  request %d: completed %.1f ms after the abort: %s: %s\n", i,
           1e3 * (a->t_done[i] - a->t_abort), hring_strerror((hring_result_t)a->result[i]),
           a->msg[i]);
  printf("  abort returned in %.1f ms; rank 0 fds %d/%d threads %d/%d before init/after abort\n",
         1e3 * (a->t_abort_ret - a->t_abort), a->fds[0], a->fds[1], a->threads[0], a->threads[1]);
  HCHECK(failed == 0, "%d rank(s) failed", failed);
  munmap(a, sizeof *a);
}

HTEST(nonblocking_abort_thread, 60) { run_abort("thread"); }
HTEST(nonblocking_abort_caller, 60) { run_abort("caller"); }

/* ---- 6. destroy with requests never waited ---- */

extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* What the leak check must see (HTEST_INJECT=nb_leak). */
static __attribute__((noinline)) void leak_block(void) {
  void *volatile p = malloc(4096);
  (void)p;
}

typedef struct {
  hring_unique_id_t id;
} nb_destroy_t;

static void destroy_body(int rank, int n, void *arg) {
  nb_destroy_t *a = arg;
  warm_threads();
  int fds = res_fds(0), threads = res_threads(0), shm = res_shm_count(getpid());
  hring_comm_t comm;
  MUSTOK(hring_comm_init_rank(&comm, n, a->id, rank), "rank %d: init", rank);
  op_t ops[8];
  for (int i = 0; i < 8; i++) {
    int s = i == 5 || i == 6 ? i + 6 : i; /* no chain here */
    op_setup(&ops[i], &order_specs[s], i, rank, n);
    MUSTOK(op_issue(&ops[i], comm), "rank %d: issue %d", rank, i);
  }
  double t0 = res_now();
  MUSTOK(hring_comm_destroy(comm), "rank %d: destroy with 8 requests outstanding", rank);
  double took = res_now() - t0;
  for (int i = 0; i < 8; i++) {
    hring_result_t r = i % 2 ? hring_wait(&ops[i].req) : HRING_SUCCESS;
    if (i % 2 == 0) {
      int done = 0;
      r = hring_test(&ops[i].req, &done);
      HCHECK(done == 1, "rank %d: request %d not complete after destroy", rank, i);
    }
    HCHECK(r == HRING_SUCCESS, "rank %d: request %d after destroy: %s: %s", rank, i,
           hring_strerror(r), hring_last_error());
    (void)op_right(&ops[i], i, rank, n);
    op_free(&ops[i]);
  }
  printf("  rank %d: destroy with 8 requests outstanding took %.1f ms\n", rank, 1e3 * took);
  if (res_inject("nb_leak")) leak_block();
  HCHECK(res_settle(fds, threads, shm, 2.0), "rank %d: fds %d -> %d, threads %d -> %d, own "
         "/dev/shm segments %d -> %d", rank, fds, res_fds(0), threads, res_threads(0), shm,
         res_shm_count(getpid()));
  if (__lsan_do_recoverable_leak_check)
    HCHECK(__lsan_do_recoverable_leak_check() == 0, "rank %d: leaks (LeakSanitizer above)", rank);
}

static void run_destroy(const char *mode) {
  setenv("HRING_PROGRESS", mode, 1);
  setenv("HRING_TRANSPORTS", "shm", 1);
  nb_destroy_t *a = res_shared(sizeof *a);
  HREQUIRE(a, "mmap");
  int failed = run_ranks(2, destroy_body, a, &a->id, 40);
  HCHECK(failed == 0, "%d rank(s) failed", failed);
  munmap(a, sizeof *a);
}

HTEST(nonblocking_destroy_outstanding_thread, 60) { run_destroy("thread"); }
HTEST(nonblocking_destroy_outstanding_caller, 60) { run_destroy("caller"); }

/* ---- 7. a peer that dies or skips ---- */

typedef struct {
  int dies;
} peer_t;

static void peer_body(hring_comm_t comm, int rank, int n, void *arg) {
  const peer_t *p = arg;
  (void)n;
  int32_t one = 1;
  MUSTOK(hring_allreduce(&one, &one, 1, HRING_INT32, HRING_SUM, comm, NULL), "rank %d: first",
         rank);
  if (rank == 1) {
    /* No destroy: the connections just close.  After rank 0 has its
     * result: a rank that dies right after its part of a collective may be
     * reported dead by a peer still reading (that race is not this
     * test's subject). */
    if (p->dies) usleep(200000), _exit(0);
    usleep(3500000);       /* past rank 0's timeout */
    return;
  }
  enum { NQ = 4, COUNT = 1 << 16 };
  int32_t *x = calloc((size_t)NQ * COUNT, sizeof *x);
  HREQUIRE(x, "calloc");
  hring_request_t q[NQ];
  for (int i = 0; i < NQ; i++) {
    int32_t *b = x + (size_t)i * COUNT;
    MUSTOK(i == 1 ? hring_ibarrier(comm, &q[i])
                  : hring_iallreduce(b, b, COUNT, HRING_INT32, HRING_SUM, comm, &q[i]),
           "rank 0: issue %d", i);
  }
  double t0 = res_now();
  hring_result_t r = hring_waitall(NQ, q);
  double took = res_now() - t0;
  char msg[256];
  snprintf(msg, sizeof msg, "%s", hring_last_error());
  printf("  rank 0: waitall returned %s after %.2f s: %s\n", hring_strerror(r), took, msg);
  HCHECK(r == (p->dies ? HRING_ERR_REMOTE : HRING_ERR_TIMEOUT), "rank 0: waitall: %s: %s",
         hring_strerror(r), msg);
  HCHECK(strlen(msg) > 0, "rank 0: no message for the failure");
  for (int i = 0; i < NQ; i++) HCHECK(q[i] == NULL, "rank 0: waitall left request %d", i);
  HCHECK(took < (p->dies ? 5.0 : 6.0), "rank 0: the requests took %.2f s to fail", took);
  /* The communicator is failed now: later calls are refused at issue. */
  hring_request_t later = SENTINEL;
  r = hring_iallreduce(x, x, 1, HRING_INT32, HRING_SUM, comm, &later);
  HCHECK(r == HRING_ERR_INVALID_USAGE && later == SENTINEL, "rank 0: issue on a failed "
         "communicator: %s", hring_strerror(r));
  free(x);
}

static void run_peer(const char *mode, int dies) {
  setenv("HRING_PROGRESS", mode, 1);
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "2000", 1);
  peer_t p = {dies};
  HREQUIRE(mp_run(2, peer_body, &p) == 0, "a rank failed");
}

HTEST(nonblocking_peer_dies_thread, 60) { run_peer("thread", 1); }
HTEST(nonblocking_peer_dies_caller, 60) { run_peer("caller", 1); }
HTEST(nonblocking_peer_skips_thread, 60) { run_peer("thread", 0); }
HTEST(nonblocking_peer_skips_caller, 60) { run_peer("caller", 0); }

/* ---- latency (a measurement for docs/nonblocking.md) ---- */

#define LAT_ITERS 2000
#define LAT_BURST 8

static void latency_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  float x[2], y[LAT_BURST][2];
  for (int i = 0; i < 100; i++) {
    x[0] = x[1] = 1;
    MUSTOK(hring_allreduce(x, x, 2, HRING_FLOAT32, HRING_SUM, comm, NULL), "warm-up");
  }
  double t0 = res_now();
  for (int i = 0; i < LAT_ITERS; i++)
    MUSTOK(hring_allreduce(x, x, 2, HRING_FLOAT32, HRING_SUM, comm, NULL), "allreduce");
  double blocking = (res_now() - t0) / LAT_ITERS;
  t0 = res_now();
  for (int i = 0; i < LAT_ITERS; i++) {
    hring_request_t q;
    x[0] = x[1] = 1;
    MUSTOK(hring_iallreduce(x, x, 2, HRING_FLOAT32, HRING_SUM, comm, &q), "iallreduce");
    MUSTOK(hring_wait(&q), "wait");
    if (x[0] != (float)n) HREQUIRE(0, "rank %d: wrong result %g", rank, x[0]);
  }
  double one = (res_now() - t0) / LAT_ITERS;
  t0 = res_now();
  for (int i = 0; i < LAT_ITERS / LAT_BURST; i++) {
    hring_request_t q[LAT_BURST];
    for (int b = 0; b < LAT_BURST; b++) {
      y[b][0] = y[b][1] = 1;
      MUSTOK(hring_iallreduce(y[b], y[b], 2, HRING_FLOAT32, HRING_SUM, comm, &q[b]), "burst");
    }
    MUSTOK(hring_waitall(LAT_BURST, q), "waitall");
    for (int b = 0; b < LAT_BURST; b++)
      if (y[b][1] != (float)n) HREQUIRE(0, "rank %d: wrong result %g", rank, y[b][1]);
  }
  double burst = (res_now() - t0) / LAT_ITERS;
  t0 = res_now();
  for (int i = 0; i < LAT_ITERS; i++)
    MUSTOK(hring_allreduce(x, x, 2, HRING_FLOAT32, HRING_SUM, comm, NULL), "allreduce");
  double after = (res_now() - t0) / LAT_ITERS;
  if (rank == 0)
    printf("  HRING_PROGRESS=%s, %d ranks, 8 B: blocking %.2f us/op (%.2f us once the engine "
           "exists), iallreduce+wait %.2f us, %d iallreduces then waitall %.2f us/op\n",
           getenv("HRING_PROGRESS"), n, 1e6 * blocking, 1e6 * after, 1e6 * one, LAT_BURST,
           1e6 * burst);
}

HTEST(nonblocking_latency, 60) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_PROGRESS", "thread", 1);
  HREQUIRE(mp_run(2, latency_body, NULL) == 0, "a rank failed (thread)");
  setenv("HRING_PROGRESS", "caller", 1);
  HREQUIRE(mp_run(2, latency_body, NULL) == 0, "a rank failed (caller)");
}
