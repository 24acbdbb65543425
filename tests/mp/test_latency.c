/*
 * test_latency.c - the latency allreduces (HRING_ALGO=rdouble,
 * rabenseifner, tree) forced over 1..8 ranks on shared memory and on tcp:
 * the correctness matrix of test_allreduce.c (every type and op, in and
 * out of place, counts 0, 1, 7, a small odd one and about 1 MiB), tiny
 * FIFOs that force many chunks and full queues, emulated nodes of unequal
 * sizes, and inexact float sums whose bits must agree on every rank.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "values.h"
#include "bodies.h"

/* Every n of 1..8 covers powers of two, the fold of 1, 2 and 3 extra ranks,
 * and tree shapes with one and two children. */
static void run_matrix(const char *algo, const char *transport) {
  setenv("HRING_ALGO", algo, 1);
  setenv("HRING_TRANSPORTS", transport, 1);
  for (int n = 1; n <= 8; n++) {
    size_t counts[] = {0, 1, 7, 1001};
    mp_matrix_t m = {counts, 4, 1};
    HCHECK(mp_run(n, mp_allreduce_matrix, &m) == 0, "%s %s n=%d: a rank failed", algo, transport,
           n);
  }
  /* About 1 MiB of float32, odd so that no block partition is even: sum
   * only, every type (the ops are the small counts' job), on a fold of one
   * rank and on the deepest power of two. */
  static const int big_n[] = {3, 8};
  for (size_t k = 0; k < sizeof big_n / sizeof big_n[0]; k++) {
    size_t bigc[] = {(1u << 18) + 3};
    mp_matrix_t m = {bigc, 1, 0};
    HCHECK(mp_run(big_n[k], mp_allreduce_matrix, &m) == 0, "%s %s n=%d (256K+3): a rank failed",
           algo, transport, big_n[k]);
  }
}

HTEST(latency_rdouble_shm, 90) { run_matrix("rdouble", "shm"); }
HTEST(latency_rdouble_tcp, 90) { run_matrix("rdouble", "tcp"); }
HTEST(latency_rabenseifner_shm, 90) { run_matrix("rabenseifner", "shm"); }
HTEST(latency_rabenseifner_tcp, 90) { run_matrix("rabenseifner", "tcp"); }
HTEST(latency_tree_shm, 90) { run_matrix("tree", "shm"); }
HTEST(latency_tree_tcp, 90) { run_matrix("tree", "tcp"); }

/* Tiny FIFOs (4 KiB slots, depth 2): every step is many chunks, queues run
 * full, the fold moves several chunks, and the tree's phases overlap. */
static void run_small_slots(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  setenv("HRING_SHM_SLOT_SIZE", "4K", 1);
  setenv("HRING_SHM_SLOTS", "2", 1);
  setenv("HRING_TCP_SLOT_SIZE", "4K", 1);
  setenv("HRING_TCP_SLOTS", "2", 1);
  size_t counts[] = {100003};
  mp_matrix_t m = {counts, 1, 0};
  static const char *const tr[] = {"shm", "tcp"};
  for (int t = 0; t < 2; t++) {
    setenv("HRING_TRANSPORTS", tr[t], 1);
    HCHECK(mp_run(t ? 5 : 7, mp_allreduce_matrix, &m) == 0, "%s %s small slots: a rank failed",
           algo, tr[t]);
  }
}

HTEST(latency_rdouble_small_slots, 60) { run_small_slots("rdouble"); }
HTEST(latency_rabenseifner_small_slots, 60) { run_small_slots("rabenseifner"); }
HTEST(latency_tree_small_slots, 60) { run_small_slots("tree"); }

/* Emulated nodes of unequal sizes: shared memory within a node, tcp
 * between, so the ranks see different slot sizes (comm->min_slot) and only
 * some are oversubscribed.  The pairwise steps cut messages at each
 * connection's slot and the tree accepts any cut, so both must work. */
static void run_mixed(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  static const struct {
    int n;
    const char *map;
  } layouts[] = {{4, "0,0,0,1"}, {6, "0,1,0,2,1,0"}};
  size_t counts[] = {7, 100003}; /* the second spans slots of both sizes */
  mp_matrix_t m = {counts, 2, 0};
  for (int k = 0; k < 2; k++) {
    setenv("MP_NODE_MAP", layouts[k].map, 1);
    HCHECK(mp_run(layouts[k].n, mp_allreduce_matrix, &m) == 0, "%s nodes %s: a rank failed", algo,
           layouts[k].map);
  }
}

HTEST(latency_rdouble_mixed_nodes, 60) { run_mixed("rdouble"); }
HTEST(latency_rabenseifner_mixed_nodes, 60) { run_mixed("rabenseifner"); }
HTEST(latency_tree_mixed_nodes, 60) { run_mixed("tree"); }

/* Floats whose sum depends on the order of the additions: if two ranks
 * computed an element each in its own order, their bits would differ.
 * Every rank hashes its result; the max and the min of the hashes over the
 * ranks must agree (max and min of integers are exact in any order, and
 * the matrix checks them).  The result must also be near the sum computed
 * here in double, so that agreeing garbage fails too. */

static float input(uint32_t *x, size_t i) {
  *x ^= *x << 13, *x ^= *x >> 17, *x ^= *x << 5; /* xorshift32 */
  return (float)*x / 4294967296.0f * (i % 2 ? 1e6f : 1e-3f);
}

static void identical_body(hring_comm_t comm, int rank, int n, void *arg) {
  const size_t count = *(const size_t *)arg;
  const hring_redop_t ops[] = {HRING_SUM, HRING_AVG};
  float *buf = malloc(count * sizeof *buf);
  double *ref = malloc(count * sizeof *ref);
  HREQUIRE(buf && ref, "malloc");
  for (int o = 0; o < 2; o++) {
    for (size_t i = 0; i < count; i++) ref[i] = 0;
    for (int p = 0; p < n; p++) {
      uint32_t x = 2463534242u + (uint32_t)p * 7919u;
      for (size_t i = 0; i < count; i++) {
        float v = input(&x, i);
        ref[i] += v;
        if (p == rank) buf[i] = v;
      }
    }
    hring_result_t r = hring_allreduce(buf, buf, count, HRING_FLOAT32, ops[o], comm, NULL);
    HREQUIRE(r == HRING_SUCCESS, "rank %d: allreduce: %s: %s", rank, hring_strerror(r),
             hring_last_error());
    size_t far = 0;
    for (size_t i = 0; i < count; i++) {
      double want = ops[o] == HRING_AVG ? ref[i] / n : ref[i];
      double d = (double)buf[i] - want;
      if (d < 0) d = -d;
      if (d > 1e-5 * (want < 0 ? -want : want) + 1e-9) far++;
    }
    HCHECK(far == 0, "rank %d n %d count %zu op %d: %zu results far from the sum", rank, n, count,
           (int)ops[o], far);
    uint64_t h = values_hash(buf, count * sizeof *buf), hmax, hmin;
    HREQUIRE(hring_allreduce(&h, &hmax, 1, HRING_UINT64, HRING_MAX, comm, NULL) == HRING_SUCCESS &&
                 hring_allreduce(&h, &hmin, 1, HRING_UINT64, HRING_MIN, comm, NULL) == HRING_SUCCESS,
             "rank %d: hash allreduce failed", rank);
    HCHECK(hmax == hmin, "rank %d n %d count %zu op %d: ranks hold different results", rank, n,
           count, (int)ops[o]);
  }
  free(buf);
  free(ref);
}

/* 5 elements (fewer than the ranks: empty blocks) and 100003 (several
 * slots per message), on 3, 6 and 8 ranks (fold of 1 and 2, none). */
static void run_identical(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  setenv("HRING_TRANSPORTS", "shm", 1);
  static const int ns[] = {3, 6, 8};
  size_t counts[] = {5, 100003};
  for (size_t k = 0; k < 3; k++)
    for (size_t c = 0; c < 2; c++)
      HCHECK(mp_run(ns[k], identical_body, &counts[c]) == 0, "%s n=%d count %zu: a rank failed",
             algo, ns[k], counts[c]);
}

HTEST(latency_rdouble_bit_identical, 60) { run_identical("rdouble"); }
HTEST(latency_rabenseifner_bit_identical, 60) { run_identical("rabenseifner"); }
HTEST(latency_tree_bit_identical, 60) { run_identical("tree"); }
