/*
 * test_colls.c - reduce_scatter, allgather, broadcast, reduce and barrier
 * over forked ranks: nranks 1..8 x shm/tcp x counts {0, 1, odd, large} x
 * types x ops x in/out of place x every root; then bad arguments, device
 * buffers (the mock plugin), ranks that disagree, and an abort.
 *
 * Inputs and expected values come from values.h (small integers, exact in
 * any order), so results are compared bit for bit; outputs are poisoned
 * first and followed by guard bytes that must survive.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/cuda.h"
#include "mp.h"
#include "bodies.h"
#include "values.h"

#define GUARD 8
#define POISON 0xa5

typedef struct {
  hring_comm_t comm;
  int rank, n;
  unsigned char *in, *out, *exp; /* each holds cap bytes */
  size_t cap;
} ctx_t;

static const hring_datatype_t some_types[] = {HRING_INT8, HRING_UINT8, HRING_INT32,
                                              HRING_UINT64, HRING_FLOAT16, HRING_FLOAT32,
                                              HRING_FLOAT64, HRING_BFLOAT16};
#define NTYPES ((int)(sizeof some_types / sizeof some_types[0]))

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Elements [0, count) of rank's input (or, rank < 0, of the result). */
static void values(void *buf, size_t count, hring_datatype_t t, hring_redop_t op, int rank, int n) {
  for (size_t i = 0; i < count; i++) {
    if (rank < 0) mp_expected(buf, i, t, op, n);
    else mp_value(buf, i, t, op, rank, n);
  }
}

static int guard_ok(const unsigned char *p) {
  for (int i = 0; i < GUARD; i++)
    if (p[i] != POISON) return 0;
  return 1;
}

/* Reports the first wrong element of got against want; 1 when all match. */
static int same(const ctx_t *c, const char *what, const void *got, const void *want,
                size_t count, size_t es) {
  for (size_t i = 0; i < count; i++)
    if (memcmp((const char *)got + i * es, (const char *)want + i * es, es) != 0) {
      htest_fail(__FILE__, __LINE__, "rank %d/%d: %s: element %zu of %zu wrong", c->rank, c->n,
                 what, i, count);
      return 0;
    }
  return 1;
}

/* A call every rank makes in step: a failure ends the body (the ranks are
 * then out of step).  The arguments after the call describe it, printf
 * style. */
#define MUST(call, ...)                                                                  \
  do {                                                                                   \
    hring_result_t must_r_ = (call);                                                     \
    if (must_r_ != HRING_SUCCESS) {                                                      \
      char must_what_[160];                                                              \
      snprintf(must_what_, sizeof must_what_, __VA_ARGS__);                              \
      HREQUIRE(0, "rank %d/%d: %s: %s: %s", c->rank, c->n, must_what_,                   \
               hring_strerror(must_r_), hring_last_error());                             \
    }                                                                                    \
  } while (0)

static void reduce_scatter_case(ctx_t *c, size_t rc, hring_datatype_t t, hring_redop_t op,
                                int inplace) {
  size_t es = hring_type_size(t), all = rc * (size_t)c->n;
  values(c->in, all, t, op, c->rank, c->n);
  values(c->exp, all, t, op, -1, c->n);
  memset(inplace ? c->in + all * es : c->out, POISON, (inplace ? 0 : rc * es) + GUARD);
  unsigned char *dst = inplace ? c->in + (size_t)c->rank * rc * es : c->out;
  MUST(hring_reduce_scatter(c->in, dst, rc, t, op, c->comm, NULL),
       "reduce_scatter %zu t%d op%d ip%d", rc, t, op, inplace);
  same(c, "reduce_scatter result", dst, c->exp + (size_t)c->rank * rc * es, rc, es);
  HCHECK(guard_ok(inplace ? c->in + all * es : c->out + rc * es),
         "reduce_scatter wrote past the end");
  if (!inplace) {
    values(c->exp, all, t, op, c->rank, c->n);
    same(c, "reduce_scatter changed its input", c->in, c->exp, all, es);
  }
}

static void allgather_case(ctx_t *c, size_t sc, hring_datatype_t t, int inplace) {
  size_t es = hring_type_size(t), part = sc * es, all = part * (size_t)c->n;
  for (int p = 0; p < c->n; p++) values(c->exp + (size_t)p * part, sc, t, HRING_SUM, p, c->n);
  memset(c->out, POISON, all + GUARD);
  unsigned char *src = inplace ? c->out + (size_t)c->rank * part : c->in;
  values(src, sc, t, HRING_SUM, c->rank, c->n);
  MUST(hring_allgather(src, c->out, sc, t, c->comm, NULL), "allgather %zu t%d ip%d", sc, t,
       inplace);
  same(c, "allgather result", c->out, c->exp, sc * (size_t)c->n, es);
  HCHECK(guard_ok(c->out + all), "allgather wrote past the end");
  if (!inplace)
    same(c, "allgather changed its input", c->in, c->exp + (size_t)c->rank * part, sc, es);
}

/* Out of place, ranks other than root pass a NULL send buffer (unused). */
static void broadcast_case(ctx_t *c, size_t count, hring_datatype_t t, int root, int inplace) {
  size_t es = hring_type_size(t);
  values(c->exp, count, t, HRING_SUM, root, c->n);
  /* In place, every rank starts from its own values: only root's may stay. */
  values(c->in, count, t, HRING_SUM, c->rank, c->n);
  memset(c->in + count * es, POISON, GUARD);
  memset(c->out, POISON, count * es + GUARD);
  const void *src = inplace ? c->in : c->rank == root ? c->in : NULL;
  unsigned char *dst = inplace ? c->in : c->out;
  MUST(hring_broadcast(src, dst, count, t, root, c->comm, NULL), "broadcast %zu t%d root %d ip%d",
       count, t, root, inplace);
  same(c, "broadcast result", dst, c->exp, count, es);
  HCHECK(guard_ok(dst + count * es), "broadcast wrote past the end");
  if (!inplace && c->rank == root)
    same(c, "broadcast changed root's input", c->in, c->exp, count, es);
}

/* Out of place, ranks other than root pass a NULL receive buffer; in place
 * their buffer must keep their input. */
static void reduce_case(ctx_t *c, size_t count, hring_datatype_t t, hring_redop_t op, int root,
                        int inplace) {
  size_t es = hring_type_size(t);
  int is_root = c->rank == root;
  values(c->in, count, t, op, c->rank, c->n);
  memset(c->in + count * es, POISON, GUARD);
  memset(c->out, POISON, count * es + GUARD);
  unsigned char *dst = inplace ? c->in : is_root ? c->out : NULL;
  MUST(hring_reduce(c->in, dst, count, t, op, root, c->comm, NULL),
       "reduce %zu t%d op%d root %d ip%d", count, t, op, root, inplace);
  if (is_root) {
    values(c->exp, count, t, op, -1, c->n);
    unsigned char *res = inplace ? c->in : c->out;
    same(c, "reduce result", res, c->exp, count, es);
    HCHECK(guard_ok(res + count * es), "reduce wrote past the end");
  }
  if (!is_root || !inplace) {
    values(c->exp, count, t, op, c->rank, c->n);
    same(c, inplace ? "reduce wrote on a non-root" : "reduce changed its input", c->in, c->exp,
         count, es);
    HCHECK(guard_ok(c->in + count * es), "reduce wrote past the input");
  }
}

/* The last rank enters late: every other rank must wait for it. */
static void barrier_case(ctx_t *c) {
  if (c->n == 1) {
    MUST(hring_barrier(c->comm, NULL), "barrier");
    return;
  }
  MUST(hring_barrier(c->comm, NULL), "barrier");
  if (c->rank == c->n - 1) usleep(200 * 1000);
  double t0 = now_s();
  MUST(hring_barrier(c->comm, NULL), "barrier after a late rank");
  if (c->rank != c->n - 1)
    HCHECK(now_s() - t0 > 0.15, "rank %d left the barrier %.3f s after entering, before the "
           "late rank entered", c->rank, now_s() - t0);
}

void mp_colls_matrix(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  const size_t big = (1u << 16) + 3, counts[] = {0, 1, (size_t)n + 2, 1001};
  ctx_t cx = {comm, rank, n, NULL, NULL, NULL, big * 16 * 8 + 64}, *c = &cx;
  c->in = malloc(c->cap);
  c->out = malloc(c->cap);
  c->exp = malloc(c->cap);
  HREQUIRE(c->in && c->out && c->exp, "malloc");
  for (int k = 0; k < 4; k++) {
    size_t cnt = counts[k];
    for (int ip = 0; ip < 2; ip++) {
      for (int ti = 0; ti < NTYPES; ti++) {
        hring_datatype_t t = some_types[ti];
        /* Sum for every type, and the ops rotating over the types. */
        reduce_scatter_case(c, cnt, t, HRING_SUM, ip);
        reduce_scatter_case(c, cnt, t, (hring_redop_t)(1 + (ti + k) % (HRING_NUM_OPS - 1)), ip);
        allgather_case(c, cnt, t, ip);
      }
      /* Every root, with types and ops rotating over the roots. */
      for (int root = 0; root < n; root++) {
        broadcast_case(c, cnt, some_types[(root + k) % NTYPES], root, ip);
        for (int op = 0; op < HRING_NUM_OPS; op++)
          reduce_case(c, cnt, some_types[(root + op + k) % NTYPES], op, root, ip);
      }
    }
  }
  /* Large: many chunks per part, and counts that no chunk divides. */
  for (int ip = 0; ip < 2; ip++) {
    reduce_scatter_case(c, big, HRING_FLOAT32, HRING_SUM, ip);
    reduce_scatter_case(c, big, HRING_BFLOAT16, HRING_AVG, ip);
    allgather_case(c, big, HRING_INT64, ip);
    broadcast_case(c, big * 8 + 1, HRING_FLOAT32, n - 1, ip);
    reduce_case(c, big * 8 + 1, HRING_FLOAT32, HRING_SUM, n / 2, ip);
    reduce_case(c, big * 4 + 1, HRING_FLOAT16, HRING_MAX, 0, ip);
  }
  barrier_case(c);
  free(c->in);
  free(c->out);
  free(c->exp);
}

static void run_matrix(const char *transport, int n) {
  setenv("HRING_TRANSPORTS", transport, 1);
  HREQUIRE(mp_run(n, mp_colls_matrix, NULL) == 0, "%s, %d ranks: a rank failed", transport, n);
}

#define COLLS_TEST(tr, n, timeout) \
  HTEST(colls_##tr##_np##n, timeout) { run_matrix(#tr, n); }

COLLS_TEST(shm, 1, 30)
COLLS_TEST(shm, 2, 30)
COLLS_TEST(shm, 3, 30)
COLLS_TEST(shm, 4, 40)
COLLS_TEST(shm, 5, 40)
COLLS_TEST(shm, 6, 40)
COLLS_TEST(shm, 7, 60)
COLLS_TEST(shm, 8, 60)
COLLS_TEST(tcp, 1, 30)
COLLS_TEST(tcp, 2, 30)
COLLS_TEST(tcp, 3, 30)
COLLS_TEST(tcp, 4, 40)
COLLS_TEST(tcp, 5, 40)
COLLS_TEST(tcp, 6, 40)
COLLS_TEST(tcp, 7, 60)
COLLS_TEST(tcp, 8, 60)

/* The rings at every size (small parts otherwise go in one step). */
HTEST(colls_forced_ring, 30) {
  setenv("HRING_ALGO", "ring", 1);
  run_matrix("shm", 3);
}

/* Emulated nodes of unequal sizes: ranks 0 and 1 share memory, rank 2
 * reaches them over tcp, so the ranks' smallest slots differ (shm's and
 * tcp's) and the chunks must still agree. */
HTEST(colls_uneven_nodes, 40) {
  unsetenv("HRING_TRANSPORTS");
  setenv("MP_NODE_MAP", "0,0,1", 1);
  HREQUIRE(mp_run(3, mp_colls_matrix, NULL) == 0, "nodes {0, 1} and {2}: a rank failed");
}

/* Tiny slots: many chunks per call and a full FIFO in every schedule. */
HTEST(colls_small_slots, 60) {
  setenv("HRING_SHM_SLOT_SIZE", "4K", 1);
  setenv("HRING_SHM_SLOTS", "2", 1);
  run_matrix("shm", 4);
}

/* ---- errors ---- */

#define EN 4 /* elements per rank in the error cases */

static void bad_args_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  ctx_t cx = {comm, rank, n, NULL, NULL, NULL, 0}, *c = &cx;
  float in[EN * 8], out[EN * 8], poisoned[EN * 8];
  for (int i = 0; i < EN * 8; i++) in[i] = (float)i;
  memset(out, POISON, sizeof out);
  memcpy(poisoned, out, sizeof out);
  const hring_datatype_t F = HRING_FLOAT32, BADT = (hring_datatype_t)HRING_NUM_TYPES;
  const hring_redop_t S = HRING_SUM, BADO = (hring_redop_t)HRING_NUM_OPS;
  const size_t HUGE_COUNT = SIZE_MAX / 2;
  struct {
    const char *what;
    hring_result_t got;
  } cases[] = {
      {"reduce_scatter NULL comm", hring_reduce_scatter(in, out, EN, F, S, NULL, NULL)},
      {"reduce_scatter NULL sendbuf", hring_reduce_scatter(NULL, out, EN, F, S, comm, NULL)},
      {"reduce_scatter NULL recvbuf", hring_reduce_scatter(in, NULL, EN, F, S, comm, NULL)},
      {"reduce_scatter bad type", hring_reduce_scatter(in, out, EN, BADT, S, comm, NULL)},
      {"reduce_scatter bad op", hring_reduce_scatter(in, out, EN, F, BADO, comm, NULL)},
      {"reduce_scatter overflow", hring_reduce_scatter(in, out, HUGE_COUNT, F, S, comm, NULL)},
      {"reduce_scatter overlap",
       hring_reduce_scatter(out, out + rank * EN + 1, EN, F, S, comm, NULL)},
      {"allgather NULL comm", hring_allgather(in, out, EN, F, NULL, NULL)},
      {"allgather NULL sendbuf", hring_allgather(NULL, out, EN, F, comm, NULL)},
      {"allgather bad type", hring_allgather(in, out, EN, BADT, comm, NULL)},
      {"allgather overlap", hring_allgather(out + rank * EN + 1, out, EN, F, comm, NULL)},
      {"broadcast root -1", hring_broadcast(in, out, EN, F, -1, comm, NULL)},
      {"broadcast root n", hring_broadcast(in, out, EN, F, n, comm, NULL)},
      {"broadcast NULL recvbuf", hring_broadcast(in, NULL, EN, F, 0, comm, NULL)},
      {"broadcast bad type", hring_broadcast(in, out, EN, BADT, 0, comm, NULL)},
      {"reduce root n", hring_reduce(in, out, EN, F, S, n, comm, NULL)},
      {"reduce root -1", hring_reduce(in, out, EN, F, S, -1, comm, NULL)},
      {"reduce NULL sendbuf", hring_reduce(NULL, out, EN, F, S, 0, comm, NULL)},
      {"reduce bad op", hring_reduce(in, out, EN, F, BADO, 0, comm, NULL)},
      {"barrier NULL comm", hring_barrier(NULL, NULL)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    HCHECK(cases[i].got == HRING_ERR_INVALID_ARGUMENT, "rank %d: %s: got %s", rank,
           cases[i].what, hring_strerror(cases[i].got));
  /* Errors only root sees: the other ranks do not call (they would wait). */
  if (rank == 0) {
    hring_result_t r = hring_broadcast(NULL, out, EN, F, 0, comm, NULL);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "broadcast, NULL sendbuf on root: %s",
           hring_strerror(r));
    r = hring_reduce(in, NULL, EN, F, S, 0, comm, NULL);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT && strstr(hring_last_error(), "hring_reduce"),
           "reduce, NULL recvbuf on root: %s: %s", hring_strerror(r), hring_last_error());
    r = hring_broadcast(out + 1, out, EN, F, 0, comm, NULL);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "broadcast, overlapping buffers on root: %s",
           hring_strerror(r));
  }
  /* A stream without CUDA is refused by every call, as by allreduce. */
  void *stream = (void *)0x1;
  HCHECK(hring_reduce_scatter(in, out, EN, F, S, comm, stream) == HRING_ERR_UNSUPPORTED &&
             hring_allgather(in, out, EN, F, comm, stream) == HRING_ERR_UNSUPPORTED &&
             hring_broadcast(in, out, EN, F, 0, comm, stream) == HRING_ERR_UNSUPPORTED &&
             hring_reduce(in, out, EN, F, S, 0, comm, stream) == HRING_ERR_UNSUPPORTED &&
             hring_barrier(comm, stream) == HRING_ERR_UNSUPPORTED,
         "a CUDA stream without CUDA was not refused");
  HCHECK(memcmp(out, poisoned, sizeof out) == 0, "rank %d: a refused call wrote", rank);
  /* Zero counts need no buffer; the communicator is still usable. */
  MUST(hring_reduce_scatter(NULL, NULL, 0, F, S, comm, NULL), "reduce_scatter of 0");
  MUST(hring_broadcast(NULL, NULL, 0, F, 0, comm, NULL), "broadcast of 0");
  MUST(hring_reduce_scatter(in, out, EN, F, S, comm, NULL), "reduce_scatter after refusals");
  for (int i = 0; i < EN; i++)
    HCHECK(out[i] == in[rank * EN + i] * (float)n, "rank %d: element %d = %g", rank, i, out[i]);
  hring_result_t async = HRING_ERR_INTERNAL;
  HCHECK(hring_comm_get_async_error(comm, &async) == HRING_SUCCESS && async == HRING_SUCCESS,
         "async error after argument errors: %s", hring_strerror(async));
}

HTEST(colls_bad_arguments_shm, 30) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  HREQUIRE(mp_run(3, bad_args_body, NULL) == 0, "a rank failed");
}

HTEST(colls_bad_arguments_tcp, 30) {
  setenv("HRING_TRANSPORTS", "tcp", 1);
  HREQUIRE(mp_run(2, bad_args_body, NULL) == 0, "a rank failed");
}

/* Device buffers (the mock plugin's) are refused by name, nothing written. */
static void device_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  ctx_t cx = {comm, rank, n, NULL, NULL, NULL, 0}, *c = &cx;
  const hring_cuda_api_t *cu = hring__cuda();
  HREQUIRE(cu, "%s", hring__cuda_status());
  float *d = NULL, host[EN * 8];
  HREQUIRE(cu->mem_alloc((void **)&d, sizeof host) == 0, "mem_alloc");
  memset(host, POISON, sizeof host);
  hring_result_t r[] = {
      hring_reduce_scatter(d, host, EN, HRING_FLOAT32, HRING_SUM, comm, NULL),
      hring_allgather(host, d, EN, HRING_FLOAT32, comm, NULL),
      hring_broadcast(d, d, EN, HRING_FLOAT32, 0, comm, NULL),
      hring_reduce(d, rank == 0 ? host : NULL, EN, HRING_FLOAT32, HRING_MAX, 0, comm, NULL)};
  for (int i = 0; i < 4; i++)
    HCHECK(r[i] == HRING_ERR_UNSUPPORTED, "rank %d: call %d with a device buffer: %s", rank, i,
           hring_strerror(r[i]));
  HCHECK(strstr(hring_last_error(), "device buffers are not supported"), "message: %s",
         hring_last_error());
  for (int i = 0; i < EN * 8; i++) {
    unsigned char b[sizeof(float)];
    memcpy(b, &host[i], sizeof b);
    HCHECK(b[0] == POISON, "a refused call wrote its host buffer");
  }
  MUST(hring_barrier(comm, NULL), "barrier after refused device calls");
}

HTEST(colls_device_buffers_refused, 60) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/../lib/libhring_cudamock.so", mp_bindir());
  if (access(path, R_OK) != 0) htest_skip("%s not built", path);
  setenv("HRING_CUDA_PLUGIN", path, 1);
  HREQUIRE(mp_run(2, device_body, NULL) == 0, "a rank failed");
}

/* Ranks that call different collectives all get an error, within a
 * bounded time: at once for reduce_scatter and allgather (every rank
 * receives), at the next
 * collective at the latest for the chains (a chain's root receives
 * nothing, so it may only notice the stray message later).  The failed
 * communicator then refuses further calls. */
static void disagree_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n;
  const int rooted = *(const int *)arg;
  float buf[EN * 8], out[EN * 8], poisoned[EN * 8];
  for (int i = 0; i < EN * 8; i++) buf[i] = (float)i;
  double t0 = now_s();
  hring_result_t r;
  if (!rooted) {
    r = rank == 0 ? hring_reduce_scatter(buf, out, EN, HRING_FLOAT32, HRING_SUM, comm, NULL)
                  : hring_allgather(buf, out, EN, HRING_FLOAT32, comm, NULL);
  } else {
    r = rank == 0 ? hring_broadcast(buf, out, EN, HRING_FLOAT32, 0, comm, NULL)
                  : hring_reduce(buf, out, EN, HRING_FLOAT32, HRING_SUM, 0, comm, NULL);
    for (int k = 0; k < 3 && r == HRING_SUCCESS; k++) r = hring_barrier(comm, NULL);
  }
  double dt = now_s() - t0;
  HCHECK(r != HRING_SUCCESS, "rank %d: disagreeing ranks (%s) got no error", rank,
         rooted ? "broadcast against reduce" : "reduce_scatter against allgather");
  HCHECK(dt < 5.0, "rank %d: the error took %.1f s", rank, dt);
  memset(out, POISON, sizeof out);
  memcpy(poisoned, out, sizeof out);
  r = hring_allgather(buf, out, EN, HRING_FLOAT32, comm, NULL);
  HCHECK(r == HRING_ERR_INVALID_USAGE, "rank %d: a failed communicator gave %s", rank,
         hring_strerror(r));
  HCHECK(memcmp(out, poisoned, sizeof out) == 0, "a refused call wrote its output");
}

static void run_disagree(const char *transport, int rooted) {
  setenv("HRING_TRANSPORTS", transport, 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(3, disagree_body, &rooted) == 0, "a rank failed");
}

HTEST(colls_disagree_ring_shm, 30) { run_disagree("shm", 0); }
HTEST(colls_disagree_ring_tcp, 30) { run_disagree("tcp", 0); }
HTEST(colls_disagree_rooted_shm, 30) { run_disagree("shm", 1); }
HTEST(colls_disagree_rooted_tcp, 30) { run_disagree("tcp", 1); }

/* hring_comm_abort from another thread ends a blocked broadcast promptly.
 * The aborted communicator is a second one, created in the body with its
 * id broadcast over the first, so the harness's communicator stays whole. */
typedef struct {
  hring_comm_t comm;
  hring_result_t result;
} abort_arg_t;

static void *aborter(void *p) {
  abort_arg_t *a = p;
  usleep(200 * 1000);
  a->result = hring_comm_abort(a->comm);
  return NULL;
}

static void abort_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  ctx_t cx = {comm, rank, n, NULL, NULL, NULL, 0}, *c = &cx;
  hring_unique_id_t id;
  memset(&id, 0, sizeof id);
  if (rank == 0) MUST(hring_get_unique_id(&id), "unique id");
  MUST(hring_broadcast(&id, &id, sizeof id, HRING_UINT8, 0, comm, NULL), "broadcast of the id");
  hring_comm_t c2;
  MUST(hring_comm_init_rank(&c2, n, id, rank), "second communicator");
  if (rank == 0) {
    float buf[1024] = {0};
    abort_arg_t a = {c2, HRING_ERR_INTERNAL};
    pthread_t th;
    HREQUIRE(pthread_create(&th, NULL, aborter, &a) == 0, "thread");
    double t0 = now_s();
    /* Root 1 never calls: this waits until the abort. */
    hring_result_t r = hring_broadcast(buf, buf, 1024, HRING_FLOAT32, 1, c2, NULL);
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    HCHECK(r == HRING_ERR_INVALID_USAGE, "blocked broadcast after abort: %s", hring_strerror(r));
    HCHECK(dt < 1.5, "the blocked broadcast returned %.2f s after it began", dt);
    HCHECK(a.result == HRING_SUCCESS, "abort: %s", hring_strerror(a.result));
    r = hring_barrier(c2, NULL);
    HCHECK(r == HRING_ERR_INVALID_ARGUMENT, "barrier on an aborted communicator: %s",
           hring_strerror(r));
  }
  MUST(hring_barrier(comm, NULL), "barrier once rank 0 is done");
  if (rank != 0) HCHECK(hring_comm_destroy(c2) == HRING_SUCCESS, "destroy: %s", hring_last_error());
}

HTEST(colls_abort_blocked_broadcast, 30) {
  setenv("HRING_TRANSPORTS", "shm", 1);
  setenv("HRING_TIMEOUT_MS", "20000", 1);
  HREQUIRE(mp_run(2, abort_body, NULL) == 0, "a rank failed");
}
