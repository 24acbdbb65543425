/*
 * hier2d_pipe.c - hier2d on segments, its phases overlapped.
 *
 * Run whole, hier2d's three phases follow each other: the intra-node
 * reduce-scatter and allgather, bound by memory and the cores, leave the
 * network idle, and the inter-node rings leave the cores idle while they
 * wait for the wire.  On 4 emulated hosts x 2 ranks at 1 Gbit/s a 64 MiB
 * call spent 11 % of its time in the intra-node phases (docs/performance.md).
 *
 * Here the buffer is cut into nseg segments, each a hier2d of its own (the
 * same shard partition within the segment), and one rank drives two lanes
 * at once, stepping whichever can move (group.h's ring tasks):
 *
 *   node lane:  RS(0) RS(1) ... RS(nseg-1) AG(0) AG(1) ... AG(nseg-1)
 *   net lane:   AR(0) AR(1) ... AR(nseg-1)   (AR(g): this rank's shards'
 *                                             rings of segment g, in order)
 *
 * AR(g) starts once RS(g) is done, AG(g) once AR(g) is.  The lanes use
 * disjoint connections (shared memory within the node, the network across
 * it), and each lane takes its tasks in the same order on every rank, so
 * both ends of a connection see its messages in one order; no task waits
 * on a later one, so there is no cycle.  Only RS(0) and AG(nseg-1), 2/nseg
 * of the intra-node work, are not overlapped with the network.
 *
 * The segment count (hring__hier2d_segments, model.h: segments of 1 MiB
 * or more, at most 8, fewer across many nodes) depends on the call and on
 * the agreed layout only, so every rank cuts alike.  Segments whose shards
 * would cross the nodes by halving-doubling (hier.c) are not used: those
 * calls are latency-bound, and the plain schedule runs them.
 */
#include <stdlib.h>

#include "algos/hier.h"
#include "algos/reduce.h"
#include "core/error.h"

/* One lane: its tasks in order, the one in progress, and how many are done. */
typedef struct {
  hring_ring_task_t task;
  int started, done, total;
} lane_t;

typedef struct {
  struct hring_comm *comm;
  const hring_coll_args_t *a;
  const hring_hier_topo_t *t;
  hring_engine_t e;
  int nseg, nmine; /* segments; shards this rank owns */
  int s0;          /* its first shard */
  size_t chunk;    /* within the node */
  size_t *bounds;  /* [nseg][L + 1] local ranks' parts of each segment */
  int *rings;      /* [nmine][nnodes] each own shard's ring across nodes */
} pipe_t;

static size_t seg_lo(const pipe_t *p, int g) { return hring__part_start(p->a->count, p->nseg, g); }

/* Starts the node lane's task i: RS(i), then AG(i - nseg). */
static hring_result_t start_node(pipe_t *p, lane_t *ln) {
  const hring_coll_args_t *a = p->a;
  const int rs = ln->done < p->nseg, g = rs ? ln->done : ln->done - p->nseg;
  const int L = p->t->local.n, l = p->t->local.me;
  const size_t lo = seg_lo(p, g), cnt = seg_lo(p, g + 1) - lo, es = a->esize;
  const size_t *b = p->bounds + (size_t)g * (size_t)(L + 1);
  char *out = (char *)a->recvbuf + lo * es;
  hring_group_xfer_t x = {NULL, out, cnt, es, a->type, a->op, 1, 0, b, p->chunk};
  if (rs) {
    x.in = (const char *)a->sendbuf + lo * es;
    x.out = out + b[l] * es;
  } else {
    x.flags = a->nt ? HRING_REDUCE_NT : 0;
  }
  return hring__ring_task_init(&ln->task, &p->e, &p->t->local, rs ? HRING_GROUP_RS : HRING_GROUP_AG,
                               &x);
}

/* Starts the net lane's task i: segment i / nmine, own shard i % nmine. */
static hring_result_t start_net(pipe_t *p, lane_t *ln) {
  const hring_coll_args_t *a = p->a;
  const int g = ln->done / p->nmine, j = ln->done % p->nmine, S = p->t->smax;
  const size_t base = seg_lo(p, g), cnt = seg_lo(p, g + 1) - base, es = a->esize;
  const size_t lo = base + hring__part_start(cnt, S, p->s0 + j);
  const size_t hi = base + hring__part_start(cnt, S, p->s0 + j + 1);
  const int nn = p->comm->nnodes;
  char *buf = (char *)a->recvbuf + lo * es;
  hring_group_xfer_t x = {buf, buf, hi - lo, es, a->type, a->op,
                          a->op == HRING_AVG ? p->comm->nranks : 1, 0, NULL,
                          hring__hier_inter_chunk(p->comm, (hi - lo) * es, nn)};
  hring_group_t ring = {nn, p->comm->node, p->rings + (size_t)j * (size_t)nn};
  return hring__ring_task_init(&ln->task, &p->e, &ring, HRING_GROUP_AR, &x);
}

/* Moves a lane by one step if it can: starts its next task where that
 * task's input is ready (ready), steps it, and counts it done at its end.
 * *moved is set when anything happened. */
static hring_result_t step_lane(pipe_t *p, lane_t *ln, int ready,
                                hring_result_t (*start)(pipe_t *, lane_t *), int *moved) {
  if (ln->done == ln->total) return HRING_SUCCESS;
  if (!ln->started) {
    if (!ready) return HRING_SUCCESS;
    HRING_CHECK(start(p, ln));
    ln->started = 1;
    *moved = 1;
  }
  unsigned long before = ln->task.steps;
  hring_result_t r = hring__ring_task_step(&ln->task, 1);
  if (ln->task.steps != before) *moved = 1;
  if (r == HRING_IN_PROGRESS) return HRING_SUCCESS;
  HRING_CHECK(r);
  ln->started = 0;
  ln->done++;
  *moved = 1;
  return HRING_SUCCESS;
}

static hring_result_t run(pipe_t *p) {
  lane_t node = {.total = 2 * p->nseg}, net = {.total = p->nseg * p->nmine};
  while (node.done < node.total || net.done < net.total) {
    int moved = 0;
    const int rs_done = node.done < p->nseg ? node.done : p->nseg;
    const int ar_done = net.done / p->nmine; /* segments whose rings all ended */
    HRING_CHECK(step_lane(p, &net, rs_done > net.done / p->nmine, start_net, &moved));
    HRING_CHECK(step_lane(p, &node, node.done < p->nseg || ar_done > node.done - p->nseg,
                          start_node, &moved));
    if (moved) continue;
    /* Neither lane can move.  While the node lane waits on shared memory,
     * which has no descriptor, the wait only yields or sleeps briefly; once
     * only the network is awaited it blocks in poll() on the sockets. */
    const hring_ring_task_t *w = net.started && net.task.blocked ? &net.task : &node.task;
    hring_conn_t *c = w->blocked && !(node.started && node.task.blocked) ? w->blocked : NULL;
    HRING_CHECK(hring__engine_wait(&p->e, c, w->blocked_what ? w->blocked_what : "data",
                                   w->blocked ? w->blocked->peer : -1));
  }
  return hring__engine_flush(&p->e);
}

hring_result_t hring__hier2d_pipelined(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes, const hring_hier_topo_t *t, int nseg) {
  const int L = t->local.n, l = t->local.me, S = t->smax, nn = comm->nnodes;
  pipe_t p = {.comm = comm, .a = a, .t = t, .nseg = nseg, .chunk = chunk_bytes,
              .s0 = (int)((long)l * S / L)};
  p.nmine = (int)((long)(l + 1) * S / L) - p.s0;
  p.bounds = malloc(sizeof(size_t) * (size_t)nseg * (size_t)(L + 1));
  p.rings = malloc(sizeof(int) * (size_t)p.nmine * (size_t)nn);
  hring_result_t r = HRING_SUCCESS;
  if (!p.bounds || !p.rings) {
    r = hring__err(HRING_ERR_NO_MEMORY, "hier2d allreduce: segment bounds");
    goto out;
  }
  for (int g = 0; g < nseg; g++) {
    size_t cnt = seg_lo(&p, g + 1) - seg_lo(&p, g);
    for (int i = 0; i <= L; i++)
      p.bounds[(size_t)g * (size_t)(L + 1) + (size_t)i] =
          hring__part_start(cnt, S, (int)((long)i * S / L));
  }
  for (int j = 0; j < p.nmine; j++)
    for (int v = 0; v < nn; v++)
      p.rings[(size_t)j * (size_t)nn + (size_t)v] =
          t->members[t->first[v] + hring__hier_shard_owner(p.s0 + j, S, t->size[v])];
  hring__engine_init(&p.e, comm);
  r = run(&p);
out:
  free(p.bounds);
  free(p.rings);
  return r;
}
