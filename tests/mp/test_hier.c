/*
 * test_hier.c - the hierarchical allreduces (HRING_ALGO=hier and hier2d)
 * over emulated nodes: the correctness matrix of test_allreduce.c on
 * layouts with one node, one rank per node, equal nodes whose ranks
 * interleave, and nodes of unequal sizes; shared memory within a node, tcp
 * between.  Inexact float sums check that every rank gets the same bits.
 * The group schedules they are built on run here on a subset of ranks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "values.h"
#include "bodies.h"
#include "algos/group.h"
#include "core/comm.h"

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
    {7, "0,1,2,3,0,1,0"},   /* 3 + 2 + 1 + 1: halving-doubling across the nodes */
};
#define NLAYOUTS (sizeof layouts / sizeof layouts[0])
#define FIRST_MIXED_LAYOUT 2 /* from here on, nodes of several ranks talk over tcp */

static void use_layout(const layout_t *l) {
  if (l->map) setenv("MP_NODE_MAP", l->map, 1);
  else unsetenv("MP_NODE_MAP");
  unsetenv("MP_NODES");
}

/* Counts 0, 1, fewer than the ranks, odd, and (where both phases run on
 * several ranks, to keep the run short) several chunks per shard, every
 * type and op, in and out of place; then a few MiB (sum only). */
static void run_matrix(const char *algo) {
  setenv("HRING_ALGO", algo, 1);
  for (size_t k = 0; k < NLAYOUTS; k++) {
    const layout_t *l = &layouts[k];
    use_layout(l);
    size_t counts[] = {0, 1, (size_t)l->n - 1, 1001, 65536 + 7};
    mp_matrix_t m = {counts, k < FIRST_MIXED_LAYOUT ? 4 : 5, 1};
    HCHECK(mp_run(l->n, mp_allreduce_matrix, &m) == 0, "%s n=%d nodes %s: a rank failed", algo,
           l->n, l->map ? l->map : "one");
  }
  const layout_t *big = &layouts[FIRST_MIXED_LAYOUT]; /* 3 + 1: both phases, fewest ranks */
  use_layout(big);
  size_t bigc[] = {(1u << 20) + 3};
  mp_matrix_t m = {bigc, 1, 0};
  HCHECK(mp_run(big->n, mp_allreduce_matrix, &m) == 0, "%s n=%d (1M+3): a rank failed", algo,
         big->n);
}

HTEST(hier_matrix, 90) { run_matrix("hier"); }
/* The flat schedules and the automatic choice on the same layouts: a rank
 * alone on its node has other slot sizes than its peers, and every rank
 * must still cut messages the same way (allreduce.c, agree_layout). */
HTEST(ring_uneven_nodes_matrix, 90) { run_matrix("ring"); }
HTEST(direct_uneven_nodes_matrix, 90) { run_matrix("direct"); }
HTEST(auto_uneven_nodes_matrix, 90) { run_matrix("auto"); }
HTEST(hier2d_matrix, 90) { run_matrix("hier2d"); }

/* Floats whose sum depends on the order of the additions: if two ranks
 * computed an element each in its own order, their bits would differ.
 * Every rank hashes its result; the max and the min of the hashes over
 * the ranks must agree. */

static void identical_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n, (void)arg;
  /* 1000 floats cross the nodes by recursive doubling where their number
   * is a power of two (model.h, HRING_HIER_RD_MAX); 100003 do not. */
  const size_t counts[] = {1000, 100003};
  const hring_redop_t ops[] = {HRING_SUM, HRING_AVG};
  float *buf = malloc(counts[1] * sizeof *buf);
  HREQUIRE(buf, "malloc");
  for (int o = 0; o < 4; o++) {
    const size_t count = counts[o / 2];
    uint32_t x = 2463534242u + (uint32_t)rank * 7919u; /* xorshift32 seed */
    for (size_t i = 0; i < count; i++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      buf[i] = (float)x / 4294967296.0f * (i % 2 ? 1e6f : 1e-3f);
    }
    hring_result_t r = hring_allreduce(buf, buf, count, HRING_FLOAT32, ops[o % 2], comm, NULL);
    HREQUIRE(r == HRING_SUCCESS, "rank %d: allreduce: %s: %s", rank, hring_strerror(r),
             hring_last_error());
    uint64_t h = values_hash(buf, count * sizeof *buf), hmax, hmin;
    hring_result_t rmax = hring_allreduce(&h, &hmax, 1, HRING_UINT64, HRING_MAX, comm, NULL);
    hring_result_t rmin = hring_allreduce(&h, &hmin, 1, HRING_UINT64, HRING_MIN, comm, NULL);
    HREQUIRE(rmax == HRING_SUCCESS && rmin == HRING_SUCCESS, "rank %d: hash allreduce failed",
             rank);
    HCHECK(hmax == hmin, "rank %d: count %zu op %d: ranks hold different results", rank, count,
           (int)ops[o % 2]);
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
  /* 3 nodes: rings across them; 4 nodes and at most 256 KiB per
   * inter-node allreduce: halving-doubling (both forms). */
  /* Then 3 nodes again with 3 MiB: hier2d runs on segments whose phases
   * overlap (hier2d_pipe.c), and ranks of the smaller nodes own several
   * shards of each. */
  const size_t which[] = {3, NLAYOUTS - 1, 3};
  size_t counts[][1] = {{100003}, {50003}, {(3u << 18) + 5}};
  for (size_t i = 0; i < 3; i++) {
    const size_t k = which[i];
    mp_matrix_t m = {counts[i], 1, 0};
    use_layout(&layouts[k]);
    HCHECK(mp_run(layouts[k].n, mp_allreduce_matrix, &m) == 0, "%s small slots n=%d: a rank failed",
           algo, layouts[k].n);
  }
}

HTEST(hier_small_slots, 60) { run_small_slots("hier"); }
HTEST(hier2d_small_slots, 60) { run_small_slots("hier2d"); }

/* Segmented hier2d (hier2d_pipe.c) with every type and op, in and out of
 * place, on 3 + 1 ranks: 1M + 3 elements are 2 to 8 segments by type size,
 * and AVG divides in the rings across the nodes. */
HTEST(hier2d_segmented_all_ops, 120) {
  setenv("HRING_ALGO", "hier2d", 1);
  use_layout(&layouts[FIRST_MIXED_LAYOUT]);
  size_t c[] = {(1u << 20) + 3};
  mp_matrix_t m = {c, 1, 1};
  HCHECK(mp_run(layouts[FIRST_MIXED_LAYOUT].n, mp_allreduce_matrix, &m) == 0, "a rank failed");
}

/* A rank killed during segmented hier2d calls (4 MiB on 2 nodes of 2:
 * 4 segments, both lanes busy) is reported by every survivor, naming it,
 * within 5 s (test_reliability.c's check). */
HTEST(hier2d_segmented_peer_death, 60) {
  setenv("HRING_ALGO", "hier2d", 1);
  const layout_t two = {4, "0,0,1,1"};
  use_layout(&two);
  mp_run_death_sized(NULL, two.n, 1u << 20);
}

/* The group schedules on a subset of the ranks in a scrambled order
 * (rank 0 stays out), across two emulated nodes: reduce-scatter out of
 * place and in place, then allgather, for counts below, at and above the
 * group's size, and with parts of several chunks. */
#define GROUP_NCOUNTS 5
#define GROUP_OPS_PER_COUNT 3 /* reduce-scatter out of place and in place, allgather */

static int32_t group_value(int rank, size_t i) { return (int32_t)(rank * 1000 + (int)(i % 997)); }

static void group_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  int ranks[8], m = 0, me = -1;
  for (int r = n - 1; r >= 1; r -= 2) ranks[m++] = r; /* odd positions first ... */
  for (int r = n - 2; r >= 1; r -= 2) ranks[m++] = r; /* ... then the even ones */
  for (int i = 0; i < m; i++)
    if (ranks[i] == rank) me = i;
  /* Rank 0 only keeps the sequence of collectives in step, then meets the
   * others in the closing allreduce. */
  if (me < 0) {
    comm->seq += GROUP_NCOUNTS * GROUP_OPS_PER_COUNT;
    goto done;
  }
  hring_group_t g = {m, me, ranks};
  const size_t counts[GROUP_NCOUNTS] = {0, 1, (size_t)m - 1, (size_t)m + 1, 100003};
  const size_t chunk = 4096; /* several chunks per part for the largest count */
  for (size_t c = 0; c < GROUP_NCOUNTS; c++) {
    const size_t count = counts[c];
    int32_t *in = malloc((count + 1) * sizeof *in), *part = malloc((count + 1) * sizeof *part);
    HREQUIRE(in && part, "malloc");
    size_t off, cnt;
    hring__partition(count, m, me, &off, &cnt);
    for (int inplace = 0; inplace < 2; inplace++) {
      for (size_t i = 0; i < count; i++) in[i] = group_value(rank, i);
      int32_t *dst = inplace ? in + off : part;
      hring__coll_begin(comm, HRING_COLL_REDUCE_SCATTER, ++comm->seq, count, HRING_INT32,
                        HRING_SUM, -1);
      hring_result_t r = hring__group_reduce_scatter(comm, &g, in, dst, count, HRING_INT32,
                                                     HRING_SUM, 1, chunk);
      HREQUIRE(r == HRING_SUCCESS, "rank %d: group reduce-scatter: %s", rank, hring_last_error());
      size_t bad = 0;
      for (size_t i = 0; i < cnt; i++) {
        int32_t want = 0;
        for (int k = 0; k < m; k++) want += group_value(ranks[k], off + i);
        bad += dst[i] != want;
      }
      HCHECK(bad == 0, "rank %d: count %zu inplace %d: %zu wrong after reduce-scatter", rank,
             count, inplace, bad);
    }
    /* Allgather: member k's part holds -(its rank) on entry, everywhere on return. */
    for (size_t i = 0; i < count; i++) in[i] = i >= off && i < off + cnt ? -rank : 12345;
    hring__coll_begin(comm, HRING_COLL_ALLGATHER, ++comm->seq, count, HRING_INT32, 0, -1);
    hring_result_t r = hring__group_allgather(comm, &g, in, count, sizeof *in, chunk);
    HREQUIRE(r == HRING_SUCCESS, "rank %d: group allgather: %s", rank, hring_last_error());
    size_t bad = 0;
    for (int k = 0; k < m; k++) {
      size_t o, cn;
      hring__partition(count, m, k, &o, &cn);
      for (size_t i = o; i < o + cn; i++) bad += in[i] != -ranks[k];
    }
    HCHECK(bad == 0, "rank %d: count %zu: %zu wrong after allgather", rank, count, bad);
    free(in);
    free(part);
  }
done:;
  int32_t one = 1, all = 0;
  hring_result_t r = hring_allreduce(&one, &all, 1, HRING_INT32, HRING_SUM, comm, NULL);
  HCHECK(r == HRING_SUCCESS && all == n, "rank %d: closing allreduce: %s", rank,
         hring_last_error());
}

HTEST(group_subset, 60) {
  setenv("MP_NODE_MAP", "0,0,1,1,0,1", 1);
  HCHECK(mp_run(6, group_body, NULL) == 0, "group schedules on a subset: a rank failed");
}
