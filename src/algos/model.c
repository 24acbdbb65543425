/*
 * model.c - predicted allreduce times of every algorithm, and the choice.
 *
 * Every formula charges what the schedule of algo.h's algorithm does, step
 * by step (docs/model.md writes them out):
 * - a message of m bytes at level l costs alpha_l + beta_l * m, and
 *   reducing m bytes costs gamma_l * m;
 * - a message larger than the chunk (the slot) is cut into chunks, each
 *   paying alpha again;
 * - steps that depend on each other add up; a flat schedule's step lasts as
 *   long as its slowest link, so one inter-node link makes the whole step an
 *   inter-node step;
 * - when every rank of a node sends to other nodes in the same step, the
 *   node's one network link carries k times the bytes (the NIC is shared);
 * - a chain of stages pipelined in chunks: the first chunk fills every
 *   stage, each later chunk adds the slowest stage's time (the tree and
 *   the hierarchical rings, model_pipelined.c).
 */
#include <math.h>
#include <stdint.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "algos/model_impl.h"

/*
 * Built-in parameters: the development machine (2-vCPU KVM guest, AMD EPYC,
 * AVX2; docs/performance.md), measured with hring-tune on 2026-11-27
 * between 02:50 and 03:00 UTC, while other work kept the load average at
 * 8-15 (docs/model.md lists the runs; the middle of each spread is taken):
 *   intra: `hring-run -n 4 hring-tune`: alpha 3.8-6.3 us (token round the 4
 *          ranks, oversubscribed), beta 5.5-31 GB/s (64 KiB shm ping-pong);
 *   inter: emulated nodes (HRING_NODE_ID), tcp over loopback: alpha
 *          97-188 us, beta 0.31-1.46 GB/s (256 KiB ping-pong);
 *   gamma: float32 sum by hring__reduce (AVX2) over 1 MiB: 4-16 GB/s.
 * A quiet machine is faster (docs/performance.md: 0.26 us for an 8-byte
 * allreduce on 2 ranks); a real cluster should run hring-tune.
 */
/* Rule 6 on the same machine, 2026-11-27, `hring-tune -f` with 2, 4 and 8
 * ranks from 64 KiB to 32 MiB, three runs each (docs/performance.md): the
 * cache fitted at 1.8-17 MiB of the machine's vectors, the cost from
 * memory at 0.04-0.15 ns/B; the middle of each is taken. */
#define MEM_CACHE_DEFAULT (4.0 * 1024 * 1024)
#define MEM_BETA_DEFAULT 1.0e-10
void hring__model_defaults(hring_model_params_t *p) {
  p->intra = (hring_model_level_t){.alpha = 4.5e-6, .beta = 1.0e-10, .gamma = 7.5e-11};
  p->inter = (hring_model_level_t){.alpha = 1.3e-4, .beta = 8.0e-10, .gamma = 7.5e-11};
  p->mem = (hring_model_mem_t){.cache = MEM_CACHE_DEFAULT, .beta = MEM_BETA_DEFAULT};
}

hring_model_shape_t hring__model_shape(int nranks, int nnodes, size_t chunk) {
  if (nnodes < 1) nnodes = 1;
  if (nnodes > nranks) nnodes = nranks;
  int k = nranks / nnodes;
  return (hring_model_shape_t){nranks, nnodes, k + (nranks % nnodes ? 1 : 0), k, chunk, 0, 0};
}

/* ---- helpers ---- */

/* The step of a flat schedule: as slow as its slowest link. */
static hring_model_level_t flat_level(const hring_model_params_t *p, const hring_model_shape_t *s) {
  if (s->nnodes <= 1) return p->intra;
  if (s->kmax <= 1) return p->inter;
  return (hring_model_level_t){maxd(p->intra.alpha, p->inter.alpha),
                               maxd(p->intra.beta, p->inter.beta),
                               maxd(p->intra.gamma, p->inter.gamma)};
}

/* Steps of the power-of-two algorithms that stay inside a node: partners at
 * distance 1, 2, 4, ... share a node while the distance is below k. */
static int intra_steps(const hring_model_shape_t *s, int steps) {
  int i = 0;
  while (i < steps && (1 << i) < s->kmin) i++;
  return s->nnodes <= 1 ? steps : i;
}

/* The fold of ranks beyond the largest power of two (latency.h): rank 2i
 * sends its vector to 2i+1 and gets the result back, two steps between
 * neighbours, so on the same node unless nodes hold one rank each. */
static double fold(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const hring_model_level_t *l = s->kmin > 1 || s->nnodes <= 1 ? &p->intra : &p->inter;
  double c = nchunks(n, s->chunk);
  return 2.0 * (c * l->alpha + n * l->beta) + n * l->gamma;
}

/* ---- the algorithms ---- */

static double ring(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const double P = s->nranks;
  const hring_model_level_t l = flat_level(p, s);
  double c = nchunks(n / P, s->chunk), m = n / P / c;
  /* reduce-scatter: P-1 steps of c chunks, each sent and reduced; then the
   * allgather's P-1 steps. */
  return 2.0 * (P - 1) * c * line(&l, m) + (P - 1) * c * l.gamma * m;
}

static double allpairs(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const double P = s->nranks, k = s->kmax;
  const hring_model_level_t l = flat_level(p, s);
  /* P-1 messages, one after the other, each paying alpha as in Thakur et
   * al.'s pairwise exchange (the sends do not wait for each other, but a
   * rank posts them in turn); the node's link carries every local rank's
   * copies for other nodes.  Then P-1 local reductions of n bytes. */
  double wire = (k - 1) * n * p->intra.beta;
  if (s->nnodes > 1) wire += k * (P - k) * n * p->inter.beta;
  return (P - 1) * l.alpha + wire + (P - 1) * n * l.gamma;
}

static double direct(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const double P = s->nranks, k = s->kmax;
  const hring_model_level_t l = flat_level(p, s);
  double c = nchunks(n / P, s->chunk);
  /* Per chunk, two pairwise exchanges (scatter the pieces, gather the
   * results) of P-1 messages each, alpha per message as for allpairs; a
   * rank sends 2(P-1) pieces of n/P, k ranks per node through the link.
   * The ring's volume and message count: what direct gains when ranks
   * outnumber cores (a rank sends all its pieces whenever it runs, instead
   * of waiting on one neighbour per step) is scheduling, outside the model. */
  double wire = 2.0 * (k - 1) / P * n * p->intra.beta;
  if (s->nnodes > 1) wire += 2.0 * k * (P - k) / P * n * p->inter.beta;
  return 2.0 * (P - 1) * c * l.alpha + wire + (P - 1) / P * n * l.gamma;
}

static double exchange(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const hring_model_level_t l = flat_level(p, s);
  double m = s->chunk && n > (double)s->chunk ? (double)s->chunk : n;
  /* Both directions stream the whole vector while the chunks already
   * received are reduced: transfer and reduction overlap but for the first
   * chunk (of one slot). */
  return l.alpha + n * maxd(l.beta, l.gamma) + m * mind(l.beta, l.gamma);
}

/* Recursive doubling (distance 1, 2, 4, ...): every step exchanges and
 * reduces the whole vector; ranks beyond the largest power of two fold in
 * first and get the result last (latency.h). */
static double rdouble(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  const int P = s->nranks, steps = log2_floor(P), in = intra_steps(s, steps);
  double c = nchunks(n, s->chunk);
  double t = 0;
  for (int i = 0; i < steps; i++) {
    const hring_model_level_t *l = i < in ? &p->intra : &p->inter;
    double share = i < in ? 1.0 : s->kmin; /* every local rank crosses the link */
    t += c * l->alpha + n * l->beta * share + n * l->gamma;
  }
  if (P != (1 << steps)) t += fold(p, s, n);
  return t;
}

/* Rabenseifner (rabenseifner.c): recursive-halving reduce-scatter from
 * distance pof2/2 down to 1, each step sending half the remaining window,
 * and the recursive-doubling allgather back up.  The first, largest halves
 * go to the farthest partners: across nodes, with every local rank on the
 * node's link at once.
 * mem (rule 6, as the cores pay it): passes over memory per rank, counted
 * in the code.  Rabenseifner sends every half from where it lies (the
 * input, then the output), 2 passes per byte sent, reduces into the output
 * (3: two reads, one write), and copies each half it gathers out of the
 * slot (2): 5 per byte of the reduce-scatter, 4 of the allgather,
 * 9 (1 - 1/P') n.  The ring (group.c) reduces straight into its send slot
 * and writes the result and the forwarded copy in the pass that makes them:
 * 2 for its first send, 3 per middle step, 4 for its last reduction, 3 per
 * forward and 2 for the last copy, (6 - 4/P) n.  So Rabenseifner makes
 * (3 - 5/P') n passes more: 0.5 n on 2 ranks (one step each way: the same
 * work but for the ring's fused write), 1.75 n on 4, 2.375 n on 8.  Each
 * costs `mem`, in the cache too (held-out samples on 4 ranks ran 1.4-1.9x
 * its prediction from 128 KiB to 1 MiB when only misses were charged;
 * charged 3 (1 - 1/P') n, 2 ranks' fits ran the ring 1.1-1.4x its
 * prediction, the fit pulled between the two). */
static double rabenseifner(const hring_model_params_t *p, const hring_model_shape_t *s, double n,
                           double mem) {
  const int P = s->nranks, steps = log2_floor(P);
  double t = 0, piece = n;
  for (int i = 0; i < steps; i++) {
    piece /= 2;
    int intra = s->nnodes <= 1 || ((1 << steps) >> (i + 1)) < s->kmin;
    const hring_model_level_t *l = intra ? &p->intra : &p->inter;
    double share = intra ? 1.0 : s->kmin;
    double c = nchunks(piece, s->chunk);
    t += 2.0 * (c * l->alpha + piece * l->beta * share) + piece * l->gamma;
  }
  t += (3.0 * n - 5.0 * piece) * mem; /* piece = n / P' */
  if (P != (1 << steps)) t += fold(p, s, n);
  return t;
}

/* ---- the interface ---- */

int hring__model_applicable(const hring_model_shape_t *s, int algo, size_t bytes) {
  switch (algo) {
    case HRING_ALGO_RING:
    case HRING_ALGO_RDOUBLE:
    case HRING_ALGO_RABENSEIFNER:
    case HRING_ALGO_TREE:
    case HRING_ALGO_HIER:
    case HRING_ALGO_HIER2D: return 1;
    case HRING_ALGO_ALLPAIRS:
      return hring__engine_reaches_all(s->nranks) && bytes <= HRING_ALLPAIRS_MAX_BYTES &&
             (s->chunk == 0 || bytes <= s->chunk);
    case HRING_ALGO_DIRECT: return hring__engine_reaches_all(s->nranks);
    case HRING_ALGO_EXCHANGE: return s->nranks == 2;
    default: return 0;
  }
}

/* Rule 6: seconds per byte added to copies within a node and to
 * reductions when the vectors of the machine's ranks (input and output of
 * each) exceed the cache; the share of bytes that miss grows smoothly
 * from 0 at the cache's size towards 1. */
static double mem_penalty(const hring_model_params_t *p, const hring_model_shape_t *s, double n) {
  double ranks = s->mranks > 0 ? s->mranks : s->kmax > 0 ? s->kmax : 1;
  double ws = 2.0 * ranks * n;
  if (p->mem.beta <= 0 || ws <= p->mem.cache) return 0;
  return p->mem.beta * (1.0 - p->mem.cache / ws);
}

double hring__model_predict(const hring_model_params_t *p0, const hring_model_shape_t *s, int algo,
                            size_t bytes) {
  const double n = (double)bytes;
  if (s->nranks <= 1 && algo > HRING_ALGO_AUTO && algo < HRING_ALGO_COUNT) return 0;
  /* Rule 6: bytes from memory. */
  hring_model_params_t all = *p0;
  const double mem = mem_penalty(p0, s, n);
  all.intra.beta += mem, all.intra.gamma += mem, all.inter.gamma += mem;
  /* Rule 5: every schedule keeps all ranks busy but hier's leaders' phase,
   * which keeps one per node busy.  What the cores do grows by the factor:
   * a step's hand-offs (alpha), copies within a node (intra beta) and
   * reductions (gamma); the network's beta does not, the link moves the
   * bytes whatever the cores do. */
  hring_model_params_t lead = all;
  const hring_model_params_t *p = &all;
  double fa = hring__model_cpu_share(s, s->kmax), f1 = hring__model_cpu_share(s, 1);
  all.intra.alpha *= fa, all.intra.beta *= fa, all.intra.gamma *= fa;
  all.inter.alpha *= fa, all.inter.gamma *= fa;
  lead.intra = all.intra;
  lead.inter.alpha *= f1, lead.inter.gamma *= f1;
  switch (algo) {
    case HRING_ALGO_RING: return ring(p, s, n);
    case HRING_ALGO_ALLPAIRS: return allpairs(p, s, n);
    case HRING_ALGO_DIRECT: return direct(p, s, n);
    case HRING_ALGO_EXCHANGE: return exchange(p, s, n);
    case HRING_ALGO_RDOUBLE: return rdouble(p, s, n);
    /* Rabenseifner's extra passes over memory (above): a pass within the
     * cache costs half a byte through a shm slot (copied in and out), from
     * memory rule 6's penalty on top. */
    case HRING_ALGO_RABENSEIFNER: return rabenseifner(p, s, n, (0.5 * p0->intra.beta + mem) * fa);
    case HRING_ALGO_TREE: return hring__model_tree(p, s, n);
    case HRING_ALGO_HIER: return hring__model_hier(p, &lead, s, n);
    case HRING_ALGO_HIER2D: return hring__model_hier2d(p, s, n);
    default: return -1;
  }
}

int hring__model_choose(const hring_model_params_t *p, const hring_model_shape_t *s, size_t bytes,
                        unsigned allowed, double *predicted) {
  int best = -1;
  double best_t = INFINITY;
  /* Lowest id first, and only a strictly faster one replaces it: ties go to
   * the ring, the best-tested schedule. */
  for (int a = HRING_ALGO_RING; a < HRING_ALGO_COUNT; a++) {
    if (!(allowed & (1u << a)) || !hring__model_applicable(s, a, bytes)) continue;
    double t = hring__model_predict(p, s, a, bytes);
    if (t < best_t) best_t = t, best = a;
  }
  if (best < 0) best = HRING_ALGO_RING, best_t = hring__model_predict(p, s, best, bytes);
  if (predicted) *predicted = best_t;
  return best;
}
