/*
 * model_pipelined.c - the cost model of the schedules with stages: the
 * pipelined tree, and the two hierarchical rings (chains and rings inside
 * nodes, rings across them).  The rules are model.c's.
 */
#include <math.h>

#include "algos/model.h"
#include "algos/model_impl.h"

/* A pipeline's cost for m-byte chunks: the fill (one chunk through every
 * stage) and the period (one more chunk through the slowest stage). */
typedef void (*stage_fn)(const hring_model_params_t *p, const hring_model_shape_t *s, double m,
                         double *fill, double *period);

/* n bytes through the pipeline in chunks of s->chunk (the last one short):
 * the first chunk fills it, every later chunk adds a period. */
static double pipelined(const hring_model_params_t *p, const hring_model_shape_t *s, double n,
                        stage_fn f) {
  double fill, period, unused;
  double c = nchunks(n, s->chunk);
  if (c <= 1) {
    f(p, s, n, &fill, &unused);
    return fill;
  }
  double m = (double)s->chunk, last = n - (c - 1) * m, plast;
  f(p, s, m, &fill, &period);
  f(p, s, last, &unused, &plast);
  return fill + (c - 2) * period + plast;
}

/* Heaviest inter-node load of one tree level (edges from the parents at
 * depth d): the most edges that leave or enter one node, 0 if none does.
 * Ranks sit on nodes in blocks of k, so both ends of a level are runs of
 * consecutive ranks and the count per node is a running count. */
static int tree_level_load(int P, int k, int d) {
  int first = (1 << d) - 1, last = (2 << d) - 2 < P - 1 ? (2 << d) - 2 : P - 1;
  int worst = 0, node = -1, cnt = 0;
  for (int r = first; r <= last; r++) { /* into the parents' nodes */
    if (r / k != node) node = r / k, cnt = 0;
    for (int ch = 2 * r + 1; ch <= 2 * r + 2 && ch < P; ch++)
      if (ch / k != node && ++cnt > worst) worst = cnt;
  }
  node = -1, cnt = 0;
  for (int ch = 2 * first + 1; ch <= 2 * last + 2 && ch < P; ch++) { /* out of the children's */
    if (ch / k != node) node = ch / k, cnt = 0;
    if ((ch - 1) / 2 / k != node && ++cnt > worst) worst = cnt;
  }
  return worst;
}

/* Children of the busiest parent at depth d of the heap of P ranks. */
static int tree_children(int P, int d) {
  int first = (1 << d) - 1; /* the level's first parent has the most */
  return (2 * first + 2 < P) + (2 * first + 1 < P);
}

/* Ranks busy in level d of the heap of P ranks: the parents at depth d
 * that have a child, and those children. */
static int level_ranks(int P, int d) {
  int busy = 0;
  for (int r = (1 << d) - 1; r < (2 << d) - 1 && 2 * r + 1 < P; r++)
    busy += 1 + (2 * r + 2 < P ? 2 : 1);
  return busy;
}

/* Tree (tree.c): the heap over all ranks rooted at rank 0 (children of r:
 * 2r+1 and 2r+2, depth floor(log2 P)), chunks reduced up and broadcast down
 * at once.  A message of level d (between a parent at depth d and a child)
 * costs alpha plus its bytes, across nodes at the pace of a node link that
 * L_d such messages share.  The first chunk's trip up (each parent also
 * reduces its c_d children's chunks) and down is the fill.  After it,
 * every chunk costs the busiest rank's work, its up and down streams
 * sharing one progress loop: c_d + 1 messages each way (its children's and
 * its parent's, tree.c's header; c_0 at the root, which has no parent) and
 * c_d reductions; across nodes the link
 * carries L_d chunks each way. */
static void tree_stages(const hring_model_params_t *p, const hring_model_shape_t *s, double m,
                        double *fill, double *period) {
  const int P = s->nranks, k = s->nnodes > 1 ? s->kmax : P, depth = log2_floor(P);
  const double f = hring__model_cpu_share(s, s->kmax);
  *fill = *period = 0;
  for (int d = 0; d < depth; d++) {
    const int load = tree_level_load(P, k, d), c = tree_children(P, d);
    const hring_model_level_t *l = load > 0 ? &p->inter : &p->intra;
    const double bytes = load > 0 ? load * m : m; /* through the busiest link */
    double one = 2 * (l->alpha + bytes * l->beta) + c * m * l->gamma;
    /* The fill moves one level at a time: on one node only that level's
     * parents and children are busy, so rule 5's factor is theirs. */
    if (load == 0 && f > 1 && s->nnodes <= 1) one *= hring__model_cpu_share(s, level_ranks(P, d)) / f;
    *fill += one;
    /* Messages each way: the children's, and the parent's but at the root
     * (as in the ring, a message in and one out count once). */
    const int msgs = d == 0 ? c : c + 1;
    double work = msgs * l->alpha + c * m * l->gamma +
                  (load > 0 ? bytes * l->beta : msgs * m * l->beta);
    /* Rule 5 scaled p as if every rank did this rank's work.  Ranks that
     * take turns on fewer cores do the machine's work together: each
     * chunk costs the busiest rank's own work (work / f), or the average
     * rank's times f (2 (P-1)/P messages each way, (P-1)/P reductions),
     * whichever is more. */
    if (load == 0 && f > 1)
      work = maxd(work / f, (2.0 * (P - 1) * line(l, m) + (P - 1.0) * m * l->gamma) / P);
    *period = maxd(*period, work);
  }
}

double hring__model_tree(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  return pipelined(p, s, n, tree_stages);
}

typedef double (*half_fn)(const hring_model_level_t *l, double g, double n, size_t chunk,
                         double share, int reduce);

/* Ring reduce-scatter (or allgather: gamma 0) among g members of one level,
 * on a vector of n bytes, with `share` rings sharing each link. */
static double ring_half(const hring_model_level_t *l, double g, double n, size_t chunk,
                        double share, int reduce) {
  if (g <= 1) return 0;
  double c = nchunks(n / g, chunk);
  return (g - 1) * c * l->alpha + (g - 1) / g * n * (l->beta * share + (reduce ? l->gamma : 0));
}

/* Recursive halving (or doubling: gamma 0) among g members (a power of two)
 * on n bytes: log2 g steps, of n/2, n/4, ... n/g bytes; the ring's volume. */
static double hd_half(const hring_model_level_t *l, double g, double n, size_t chunk,
                      double share, int reduce) {
  if (g <= 1) return 0;
  double t = 0, part = n;
  for (int i = 0; i < log2_floor((int)g); i++) t += nchunks(part /= 2, chunk) * l->alpha;
  return t + (g - 1) / g * n * (l->beta * share + (reduce ? l->gamma : 0));
}

/* The inter-node allreduce among g nodes of n bytes (hier.c's rules):
 * recursive doubling (log2 g exchanges of the whole vector, each reduced),
 * halving-doubling, or the ring. */
static double inter_allreduce(const hring_model_level_t *l, double g, double n, size_t chunk,
                              double share) {
  const size_t b = (size_t)ceil(n); /* hier2d: the largest shard decides */
  if (hring__hier_uses_rd((int)g, b)) {
    double steps = log2_floor((int)g);
    return steps * (nchunks(n, chunk) * l->alpha + n * (l->beta * share + l->gamma));
  }
  half_fn half = hring__hier_uses_hd((int)g, b) ? hd_half : ring_half;
  return half(l, g, n, chunk, share, 1) + half(l, g, n, chunk, share, 0);
}

/* The paper's form (hier.c): each node reduces to its leader along a chain
 * of its k ranks, pipelined in chunks; the N leaders run a ring allreduce;
 * each leader broadcasts down the same chain, pipelined. */

/* Rule 5 for a chain's fill: p carries the factor of all k ranks of a node
 * busy, which is what the chain's period is, every stage working on its
 * own chunk.  The first chunk goes down the chain one hop at a time, and a
 * hop is a copy in and then a copy out, so a node has one rank at work:
 * the fill pays the factor of one busy rank per node.  Before, fits on 4
 * emulated hosts x 2 ranks ran hier at 64 KiB (one chunk: all fill)
 * 0.78-0.82x its prediction in every run (docs/performance.md, tenth
 * section). */
static double chain_fill(const hring_model_shape_t *s, double stage) {
  return (s->kmax - 1) * stage * hring__model_cpu_share(s, 1) / hring__model_cpu_share(s, s->kmax);
}

static void chain_reduce(const hring_model_params_t *p, const hring_model_shape_t *s, double m,
                         double *fill, double *period) {
  *period = line(&p->intra, m) + m * p->intra.gamma;
  *fill = chain_fill(s, *period);
}

static void chain_bcast(const hring_model_params_t *p, const hring_model_shape_t *s, double m,
                        double *fill, double *period) {
  *period = line(&p->intra, m);
  *fill = chain_fill(s, *period);
}

double hring__model_hier(const hring_model_params_t *p, const hring_model_params_t *pl,
                         const hring_model_shape_t *s, double n) {
  double leaders = inter_allreduce(&pl->inter, s->nnodes, n, s->chunk, 1);
  if (s->kmax <= 1) return leaders;
  return pipelined(p, s, n, chain_reduce) + leaders + pipelined(p, s, n, chain_bcast);
}

/* The 2D form: intra-node reduce-scatter, k inter-node rings (one per local
 * rank, on its shard of n/k) sharing the node's link, intra-node allgather.
 * In both forms a small inter-node allreduce on a power-of-two number of
 * nodes is halving-doubling instead of the ring (hier.c). */
static void hier2d_phases(const hring_model_params_t *p, const hring_model_shape_t *s, double n,
                          double *intra, double *inter) {
  const double k = s->kmax, N = s->nnodes;
  *intra = ring_half(&p->intra, k, n, s->chunk, 1, 1) + ring_half(&p->intra, k, n, s->chunk, 1, 0);
  /* On a node of kmin < kmax ranks, a rank owns several shards and runs
   * their rings one after the other. */
  double serial = ceil(k / (s->kmin > 0 ? s->kmin : 1));
  *inter = serial * inter_allreduce(&p->inter, N, n / k, s->chunk, k);
}

/* Large calls run on K segments (hier2d_pipe.c): the node's work I and the
 * network's X of all segments overlap but for the first segment's
 * reduce-scatter and the last one's allgather, I/K between them. */
double hring__model_hier2d(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const int K = hring__hier2d_segments(s->nnodes, s->kmax, (size_t)n);
  double intra, inter;
  hier2d_phases(p, s, K > 1 ? n / K : n, &intra, &inter);
  if (K <= 1) return intra + inter;
  const double I = K * intra, X = K * inter;
  return I / K + fmax(X, I * (K - 1) / K);
}
