/*
 * hier.c - hierarchical ring allreduce, in the two forms of DESIGN.md
 * ("Algorithms and the cost model"), for any layout of ranks on nodes:
 * one node, one rank per node, and nodes of unequal sizes.
 *
 * Ranks of a node are taken in rank order (local rank 0 first); nodes in
 * the order of comm->node_of.  Both forms send over the inter-node links
 * only what the nodes' rings need, and keep the rest on shared memory.
 *
 * hier (Jia et al. 2018, the paper's form):
 *   1. every node reduces its inputs to its local rank 0, the leader,
 *      along a chain (local rank L-1 -> ... -> 0), pipelined in chunks;
 *   2. the leaders run a ring allreduce (group.c) among themselves, which
 *      divides by nranks for AVG;
 *   3. every leader broadcasts the result along the same chain, pipelined.
 *
 * hier2d (2D ring):
 *   1. every node reduce-scatters its inputs among its ranks;
 *   2. for every shard, the owners of that shard, one per node, run a ring
 *      allreduce of the shard; the shards' rings run at the same time;
 *   3. every node allgathers the shards among its ranks.
 * Calls of 2 MiB and more are cut into segments whose intra-node phases
 * overlap other segments' inter-node rings (hier2d_pipe.c; 64 MiB on 4
 * emulated hosts x 2 ranks: 0.97 -> 0.88 s, docs/performance.md).
 *
 * Across a power-of-two number of nodes (4 or more), an inter-node
 * allreduce of at most HRING_HIER_HD_MAX bytes (hier's step 2, or one shard
 * of hier2d's) runs by recursive halving-doubling (group_hd.c) instead of
 * the ring: 2 log2(N) messages per rank against 2 (N - 1), the same bytes.
 * Where a step costs a message's latency or a rank's turn on a shared
 * core, not its bytes, that is the time (on 4 emulated hosts x 2 ranks at
 * 64 KiB: hier 6.7 -> 2.5 ms, hier2d 7.7 -> 4.7 ms; docs/performance.md).
 * Up to HRING_HIER_RD_MAX bytes, on any power-of-two number of nodes, it
 * runs by recursive doubling: log2(N) messages, each the whole vector.
 *
 * The shard partition of hier2d must be the same on every node and give
 * every shard an owner on every node, whatever the node sizes.  With S the
 * largest node size, the buffer is cut into S shards (hring__partition);
 * on a node of L ranks, local rank l owns the contiguous shards
 * [floor(l*S/L), floor((l+1)*S/L)), at least one since S >= L.  Nodes of
 * the largest size give one shard to each rank; a smaller node gives some
 * ranks several, which run their shards' rings one after the other in
 * shard order.  Every rank takes its rings in increasing shard order, so a
 * ring waits only on rings of smaller shards, and two rings that share a
 * connection use it in the same order on both ends: no cycle, no mix-up.
 *
 * Within a node the caller's chunk size is used: every rank of a node sees
 * the same transports and the same number of cores, so they agree on it.
 * Rings across nodes choose theirs from the call alone (inter_chunk).
 *
 * In both forms every element of the result is computed once, by one rank
 * (a leader, or the shard owner that ends the ring's reduce-scatter), and
 * copied to all others, so every rank holds the same bits; AVG sums
 * everywhere and divides once, by nranks, in that final reduction.
 */
#include <stdint.h>
#include <stdlib.h>

#include "algos/algo.h"
#include "algos/group.h"
#include "algos/hier.h"
#include "algos/model.h"
#include "algos/reduce.h"
#include "core/error.h"

/* A ring across nodes cuts its parts into about this many chunks, so that
 * neighbours overlap (as ring_chunk in allreduce.c), but no chunk is
 * smaller than the floor below, where per-message cost would dominate; the
 * slot size caps it (group.c). */
#define INTER_CHUNKS_PER_PART 4
#define INTER_CHUNK_MIN 4096
#define CHUNK_ALIGN 64 /* a cache line */

/* Chunk bytes of a ring across nodes over `bytes` cut into n parts.  The
 * chunk the caller passes may differ between nodes (it depends on each
 * rank's transports and on whether its node has more ranks than cores),
 * and a ring's members must cut alike: this depends on the call only. */
size_t hring__hier_inter_chunk(const struct hring_comm *comm, size_t bytes, int n) {
  if (comm->chunk_size > 0) return (size_t)comm->chunk_size;
  /* Some machine has more ranks than cores (agreed, so the same everywhere):
   * every message may wait for a rank to be scheduled, and that wait, not
   * the wire, bounds a step.  Whole parts (the slot caps them) then halve
   * the steps of a 64 KiB call on 4 nodes of 2 ranks on 2 cores, as
   * hring__ring_chunk does for the flat ring. */
  if (comm->oversub_any) return SIZE_MAX;
  size_t c = bytes / (size_t)n / INTER_CHUNKS_PER_PART;
  if (c < INTER_CHUNK_MIN) c = INTER_CHUNK_MIN;
  return (c + CHUNK_ALIGN - 1) & ~(size_t)(CHUNK_ALIGN - 1);
}

hring_result_t hring__hier_topo_init(struct hring_comm *comm, hring_hier_topo_t *t) {
  const int n = comm->nranks, nn = comm->nnodes;
  t->mem = malloc(sizeof(int) * ((size_t)n + 4 * (size_t)nn));
  if (!t->mem) return hring__err(HRING_ERR_NO_MEMORY, "hierarchical allreduce: node layout");
  t->members = t->mem;
  t->first = t->members + n;
  t->size = t->first + nn;
  t->ring = t->size + nn;
  int *fill = t->ring + nn;
  for (int v = 0; v < nn; v++) t->size[v] = 0;
  for (int r = 0; r < n; r++) t->size[comm->node_of[r]]++;
  for (int v = 0, at = 0; v < nn; v++) {
    t->first[v] = at;
    fill[v] = at;
    at += t->size[v];
  }
  for (int r = 0; r < n; r++) t->members[fill[comm->node_of[r]]++] = r;
  /* Leaders reuse fill (now spent) as their storage. */
  for (int v = 0; v < nn; v++) fill[v] = t->members[t->first[v]];
  t->local = (hring_group_t){t->size[comm->node], comm->local_rank,
                             t->members + t->first[comm->node]};
  t->leaders = (hring_group_t){nn, comm->local_rank == 0 ? comm->node : -1, fill};
  t->smax = 0;
  for (int v = 0; v < nn; v++)
    if (t->size[v] > t->smax) t->smax = t->size[v];
  return HRING_SUCCESS;
}

/* The inter-node allreduce of a group of one rank per node (model.h's
 * rules: the same on every rank of the call). */
static hring_result_t inter_allreduce(hring_engine_t *e, const hring_group_t *g,
                                      const hring_group_xfer_t *x, size_t bytes) {
  if (hring__hier_uses_rd(g->n, bytes)) return hring__group_allreduce_rd(e, g, x);
  if (hring__hier_uses_hd(g->n, bytes)) return hring__group_allreduce_hd(e, g, x);
  return hring__group_run(e, g, HRING_GROUP_AR, x);
}

hring_result_t hring__allreduce_hier(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes) {
  hring_hier_topo_t t;
  HRING_CHECK(hring__hier_topo_init(comm, &t));
  hring_result_t r = HRING_SUCCESS;
  const int nt = a->nt ? HRING_REDUCE_NT : 0;
  const int alone = t.local.n == 1;
  hring_engine_t e;
  hring__engine_init(&e, comm);

  if (!alone) {
    r = hring__group_reduce_chain(&e, &t.local, a->sendbuf, a->recvbuf, a->count, a->type, a->op,
                                  chunk_bytes);
    if (r != HRING_SUCCESS) goto out;
  }
  if (t.leaders.me >= 0) {
    /* The leader's partial sum is in recvbuf unless it is alone on its
     * node; the ring's result is read again by the broadcast unless it is. */
    hring_group_xfer_t x = {alone ? a->sendbuf : a->recvbuf, a->recvbuf, a->count, a->esize,
                            a->type, a->op, a->op == HRING_AVG ? comm->nranks : 1,
                            alone ? nt : 0, NULL,
                            hring__hier_inter_chunk(comm, a->count * a->esize, t.leaders.n)};
    r = inter_allreduce(&e, &t.leaders, &x, a->count * a->esize);
    if (r != HRING_SUCCESS) goto out;
  }
  if (!alone) {
    r = hring__group_bcast_chain(&e, &t.local, a->recvbuf, a->count * a->esize, chunk_bytes, nt);
    if (r != HRING_SUCCESS) goto out;
  }
  r = hring__engine_flush(&e);
out:
  free(t.mem);
  return r;
}

/* The local rank that owns shard s (of S) on a node of L ranks. */
int hring__hier_shard_owner(int s, int S, int L) {
  int i = L - 1;
  while ((long)i * S / L > s) i--;
  return i;
}

hring_result_t hring__allreduce_hier2d(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes) {
  hring_hier_topo_t t;
  HRING_CHECK(hring__hier_topo_init(comm, &t));
  hring_result_t r = HRING_SUCCESS;
  const int L = t.local.n, l = t.local.me, S = t.smax;
  const int nseg = hring__hier2d_segments(comm->nnodes, S, a->count * a->esize);
  if (nseg > 1) {
    r = hring__hier2d_pipelined(comm, a, chunk_bytes, &t, nseg);
    free(t.mem);
    return r;
  }
  size_t *bounds = malloc(sizeof(size_t) * ((size_t)L + 1));
  if (!bounds) {
    free(t.mem);
    return hring__err(HRING_ERR_NO_MEMORY, "hier2d allreduce: shard bounds");
  }
  /* Local rank i's part is its shards, [floor(i*S/L), floor((i+1)*S/L)). */
  for (int i = 0; i <= L; i++) bounds[i] = hring__part_start(a->count, S, (int)((long)i * S / L));
  char *out = a->recvbuf;
  const size_t es = a->esize;
  hring_engine_t e;
  hring__engine_init(&e, comm);

  hring_group_xfer_t rs = {a->sendbuf, out + bounds[l] * es, a->count, es, a->type, a->op, 1, 0,
                           bounds, chunk_bytes};
  r = hring__group_run(&e, &t.local, HRING_GROUP_RS, &rs);
  if (r != HRING_SUCCESS) goto out;

  /* The largest shard decides, so that every ring of the call agrees. */
  const size_t shard_max = hring__part_start(a->count, S, 1) * es;
  for (int s = (int)((long)l * S / L); s < (int)((long)(l + 1) * S / L); s++) {
    for (int v = 0; v < comm->nnodes; v++)
      t.ring[v] = t.members[t.first[v] + hring__hier_shard_owner(s, S, t.size[v])];
    hring_group_t ring = {comm->nnodes, comm->node, t.ring};
    size_t lo = hring__part_start(a->count, S, s), hi = hring__part_start(a->count, S, s + 1);
    hring_group_xfer_t x = {out + lo * es, out + lo * es, hi - lo, es, a->type, a->op,
                            a->op == HRING_AVG ? comm->nranks : 1, 0, NULL,
                            hring__hier_inter_chunk(comm, (hi - lo) * es, ring.n)};
    r = inter_allreduce(&e, &ring, &x, shard_max);
    if (r != HRING_SUCCESS) goto out;
  }

  hring_group_xfer_t ag = {NULL, out, a->count, es, a->type, a->op, 1, a->nt ? HRING_REDUCE_NT : 0,
                           bounds, chunk_bytes};
  r = hring__group_run(&e, &t.local, HRING_GROUP_AG, &ag);
  if (r != HRING_SUCCESS) goto out;
  r = hring__engine_flush(&e);
out:
  free(bounds);
  free(t.mem);
  return r;
}
