/*
 * test_hier.c - the hierarchical allreduces (HRING_ALGO=hier and hier2d)
 * over emulated nodes: the correctness matrix of test_allreduce.c on
 * layouts with one node, one rank per node, equal nodes whose ranks
 * interleave, and nodes of unequal sizes; shared memory within a node, tcp
 * between.  Inexact float sums check that every rank gets the same bits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "bodies.h"

/* One emulated cluster: how many ranks, and each one's node (NULL: all on
 * one node). */
typedef struct {
  int n;
  const char *map;
} layout_t;

static const layout_t layouts[] = {
    {2, NULL},              /* one node: only the intra-node phases run */
    {3, "0,1,2"},           /* one rank per node: only the inter-node ring */
    {4, "0,0,0,1"},         /* 3 + 1 */
    {6, "0,1,0,2,1,0"},     /* 3 + 2 + 1, ranks of a node not adjacent */
    {8, "0,1,0,1,0,1,0,1"}, /* 4 + 4, interleaved */
};
#define NLAYOUTS (sizeof layouts / sizeof layouts[0])

static void use_layout(const layout_t *l) {
  if (l->map) setenv("MP_NODE_MAP", l->map, 1);
  else unsetenv("MP_NODE_MAP");
  unsetenv("MP_NODES");
}

/* Counts 0, 1, fewer than the ranks, odd, and several chunks per shard,
 * every type and op, in and out of place; then a few MiB (sum only). */
static void run_matrix(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  for (size_t k = 0; k < NLAYOUTS; k++) {
    const layout_t *l = &layouts[k];
    use_layout(l);
    size_t counts[] = {0, 1, (size_t)l->n - 1, 1001, 65536 + 7};
    mp_matrix_t m = {counts, 5, 1};
    HCHECK(mp_run(l->n, mp_allreduce_matrix, &m) == 0, "%s n=%d nodes %s: a rank failed", algo,
           l->n, l->map ? l->map : "one");
  }
  const layout_t *big = &layouts[3];
  use_layout(big);
  size_t bigc[] = {(1u << 20) + 3};
  mp_matrix_t m = {bigc, 1, 0};
  HCHECK(mp_run(big->n, mp_allreduce_matrix, &m) == 0, "%s n=%d (1M+3): a rank failed", algo,
         big->n);
}

HTEST(hier_matrix, 90) { run_matrix("hier"); }
HTEST(hier2d_matrix, 90) { run_matrix("hier2d"); }

/* Floats whose sum depends on the order of the additions: if two ranks
 * computed an element each in its own order, their bits would differ.
 * Every rank hashes its result; the max and the min of the hashes over
 * the ranks must agree. */
static uint64_t fnv1a(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 14695981039346656037ull; /* FNV-1a 64-bit offset basis */
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull; /* FNV prime */
  return h;
}

static void identical_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n, (void)arg;
  const size_t count = 100003;
  const hring_redop_t ops[] = {HRING_SUM, HRING_AVG};
  float *buf = malloc(count * sizeof *buf);
  HREQUIRE(buf, "malloc");
  for (int o = 0; o < 2; o++) {
    uint32_t x = 2463534242u + (uint32_t)rank * 7919u; /* xorshift32 seed */
    for (size_t i = 0; i < count; i++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      buf[i] = (float)x / 4294967296.0f * (i % 2 ? 1e6f : 1e-3f);
    }
    hring_result_t r = hring_allreduce(buf, buf, count, HRING_FLOAT32, ops[o], comm, NULL);
    HREQUIRE(r == HRING_SUCCESS, "rank %d: allreduce: %s: %s", rank, hring_strerror(r),
             hring_last_error());
    uint64_t h = fnv1a(buf, count * sizeof *buf), hmax, hmin;
    HREQUIRE(hring_allreduce(&h, &hmax, 1, HRING_UINT64, HRING_MAX, comm, NULL) == HRING_SUCCESS &&
                 hring_allreduce(&h, &hmin, 1, HRING_UINT64, HRING_MIN, comm, NULL) == HRING_SUCCESS,
             "rank %d: hash allreduce failed", rank);
    HCHECK(hmax == hmin, "rank %d: op %d: ranks hold different results", rank, (int)ops[o]);
  }
  free(buf);
}

static void run_identical(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  for (size_t k = 2; k < NLAYOUTS; k++) {
    use_layout(&layouts[k]);
    HCHECK(mp_run(layouts[k].n, identical_body, NULL) == 0, "%s n=%d: a rank failed", algo,
           layouts[k].n);
  }
}

HTEST(hier_bit_identical, 60) { run_identical("hier"); }
HTEST(hier2d_bit_identical, 60) { run_identical("hier2d"); }

/* Tiny FIFOs: many chunks per shard and full queues on both transports,
 * where a wrong order of messages between rings would deadlock or mix. */
static void run_small_slots(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  setenv("HRING_SHM_SLOT_SIZE", "4K", 1);
  setenv("HRING_SHM_SLOTS", "2", 1);
  setenv("HRING_TCP_SLOT_SIZE", "4K", 1);
  setenv("HRING_TCP_SLOTS", "2", 1);
  use_layout(&layouts[3]);
  size_t counts[] = {100003};
  mp_matrix_t m = {counts, 1, 0};
  HCHECK(mp_run(layouts[3].n, mp_allreduce_matrix, &m) == 0, "%s small slots: a rank failed",
         algo);
}

HTEST(hier_small_slots, 60) { run_small_slots("hier"); }
HTEST(hier2d_small_slots, 60) { run_small_slots("hier2d"); }
