/*
 * model_calib.c - measuring the cost model's parameters on a live
 * communicator, and the shape of a communicator.
 *
 * alpha and beta of a level come from ping-pong between rank 0 and one
 * peer at that level: half the round trip of a small message is alpha, and
 * the slope between the small and a one-slot message is beta (Hockney's
 * two-parameter fit).  The receiver copies every message out of its slot,
 * as the algorithms do.  The intra-node alpha is raised to the per-hop time
 * of a token passed round all ranks of the node when that is slower (see
 * token_ring).  gamma is the time per byte of the local
 * reduction kernel (float32 sum, the gradient case) on a buffer that fits
 * the last-level cache, as the chunks of a pipelined schedule do.
 *
 * Every figure is the lower quartile of its repetitions: the minimum is a
 * lucky call that the model would then promise every time, and on a
 * machine shared with other work (or ranks outnumbering cores) the median
 * measures the scheduler more than the link.
 */
#include <stdlib.h>
#include <string.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "algos/reduce.h"
#include "core/error.h"
#include "core/stats.h"
#include "core/wait.h"

/* Round trips per size: enough for a stable quartile on a noisy 2-vCPU guest,
 * few enough that the whole calibration stays near 0.1 s on tcp. */
#define PING_SMALL_REPS 201
#define PING_LARGE_REPS 41
#define PING_WARMUP 5
#define PING_SMALL_BYTES 8
/* The large message: one slot, at most this (tcp slots are 256 KiB). */
#define PING_LARGE_MAX (256 * 1024)
#define GAMMA_BYTES (1024 * 1024)
#define GAMMA_REPS 15

void hring__model_shape_of(const struct hring_comm *comm, hring_model_shape_t *s) {
  const int nn = comm->nnodes > 0 ? comm->nnodes : 1;
  int kmax = comm->nranks / nn, kmin = kmax; /* equal nodes, if counting fails */
  int *counts = calloc((size_t)nn, sizeof *counts);
  if (counts) {
    for (int r = 0; r < comm->nranks; r++) counts[comm->node_of[r]]++;
    kmax = 0, kmin = comm->nranks;
    for (int v = 0; v < nn; v++) {
      if (counts[v] > kmax) kmax = counts[v];
      if (counts[v] < kmin) kmin = counts[v];
    }
    free(counts);
  }
  s->nranks = comm->nranks;
  s->nnodes = nn;
  s->kmax = kmax;
  s->kmin = kmin;
  s->chunk = comm->min_slot == SIZE_MAX ? 0 : comm->min_slot;
  s->mranks = comm->mranks_max;
  s->cores = comm->cores_min;
}

static double lower_quartile(double *v, int n) {
  hring__sort_doubles(v, n);
  return v[n / 4];
}

/* Half round trips of `reps` ping-pongs of m bytes with `peer`; their lower
 * quartile in *half_rtt on the initiator. */
static hring_result_t pingpong(struct hring_comm *comm, int peer, int initiator, char *buf,
                               size_t m, int reps, double *half_rtt) {
  hring_conn_t *c = comm->conns[peer];
  hring_engine_t e;
  hring__engine_init(&e, comm);
  hring__engine_use(&e, c);
  double t[PING_SMALL_REPS > PING_LARGE_REPS ? PING_SMALL_REPS : PING_LARGE_REPS];
  int kept = 0;
  for (int i = 0; i < reps + PING_WARMUP; i++) {
    void *rbuf;
    uint64_t t0 = hring__now_ns();
    if (initiator) HRING_CHECK(hring__engine_send_copy(&e, c, buf, m));
    HRING_CHECK(hring__engine_recv_get(&e, c, &rbuf, m));
    memcpy(buf, rbuf, m);
    HRING_CHECK(hring__recv_release(c));
    if (!initiator) HRING_CHECK(hring__engine_send_copy(&e, c, buf, m));
    if (initiator && i >= PING_WARMUP) t[kept++] = (double)(hring__now_ns() - t0) * 1e-9 / 2;
  }
  HRING_CHECK(hring__engine_flush(&e));
  if (initiator) *half_rtt = lower_quartile(t, kept);
  return HRING_SUCCESS;
}

/* alpha and beta of the link between rank 0 and `peer` (rank 0 and the
 * peer call; the result lands on rank 0). */
static hring_result_t measure_link(struct hring_comm *comm, int peer, double *alpha,
                                   double *beta) {
  size_t large = comm->conns[comm->rank == 0 ? peer : 0]->slot_size;
  if (large > PING_LARGE_MAX) large = PING_LARGE_MAX;
  char *buf = calloc(1, large);
  if (!buf) return hring__err(HRING_ERR_NO_MEMORY, "model calibration: out of memory");
  int init = comm->rank == 0, other = init ? peer : 0;
  double ts = 0, tl = 0;
  hring_result_t r = pingpong(comm, other, init, buf, PING_SMALL_BYTES, PING_SMALL_REPS, &ts);
  if (r == HRING_SUCCESS) r = pingpong(comm, other, init, buf, large, PING_LARGE_REPS, &tl);
  free(buf);
  HRING_CHECK(r);
  if (init) {
    *alpha = ts;
    /* On a loaded machine the large ping-pong can come out no slower than
     * the small one (the small one's quartile caught a descheduled peer):
     * then the whole large time is charged to the bytes, an upper bound for
     * beta, rather than a beta of 0 that would make the wire free. */
    *beta = tl > ts ? (tl - ts) / (double)(large - PING_SMALL_BYTES) : tl / (double)large;
  }
  return HRING_SUCCESS;
}

/* Seconds per hop of a small token passed round the ranks of rank 0's node
 * (all `members`, in rank order): the lower quartile over the rounds, on
 * member 0.  With every rank of the node active at once this is
 * what one step of a ring costs, scheduling included: where ranks outnumber
 * cores each hop waits for the next rank to be run, which a ping-pong
 * between two ranks, with the others idle, does not see. */
static hring_result_t token_ring(struct hring_comm *comm, const int *members, int L,
                                 double *per_hop) {
  int me = -1;
  for (int i = 0; i < L; i++)
    if (members[i] == comm->rank) me = i;
  if (me < 0 || L < 2) return HRING_SUCCESS;
  hring_conn_t *next = comm->conns[members[(me + 1) % L]];
  hring_conn_t *prev = comm->conns[members[(me + L - 1) % L]];
  hring_engine_t e;
  hring__engine_init(&e, comm);
  hring__engine_use(&e, next);
  hring__engine_use(&e, prev);
  double t[PING_LARGE_REPS];
  char tok[PING_SMALL_BYTES] = {0};
  for (int i = 0; i < PING_LARGE_REPS + PING_WARMUP; i++) {
    void *rbuf;
    uint64_t t0 = hring__now_ns();
    if (me == 0) HRING_CHECK(hring__engine_send_copy(&e, next, tok, sizeof tok));
    HRING_CHECK(hring__engine_recv_get(&e, prev, &rbuf, sizeof tok));
    memcpy(tok, rbuf, sizeof tok);
    HRING_CHECK(hring__recv_release(prev));
    if (me != 0) HRING_CHECK(hring__engine_send_copy(&e, next, tok, sizeof tok));
    if (me == 0 && i >= PING_WARMUP)
      t[i - PING_WARMUP] = (double)(hring__now_ns() - t0) * 1e-9 / L;
  }
  HRING_CHECK(hring__engine_flush(&e));
  if (me == 0) *per_hop = lower_quartile(t, PING_LARGE_REPS);
  return HRING_SUCCESS;
}

/* Seconds per byte of a float32 sum dst = a + b on cache-resident data. */
static double measure_gamma(void) {
  size_t count = GAMMA_BYTES / sizeof(float);
  float *v = malloc(3 * GAMMA_BYTES);
  if (!v) return 0;
  for (size_t i = 0; i < 3 * count; i++) v[i] = (float)(i & 1023);
  double t[GAMMA_REPS];
  for (int i = 0; i < GAMMA_REPS; i++) {
    uint64_t t0 = hring__now_ns();
    hring__reduce(v, NULL, v + count, v + 2 * count, count, HRING_FLOAT32, HRING_SUM, 1, 0);
    t[i] = (double)(hring__now_ns() - t0) * 1e-9 / (double)GAMMA_BYTES;
  }
  free(v);
  return lower_quartile(t, GAMMA_REPS);
}

hring_result_t hring__model_calibrate(struct hring_comm *comm, hring_model_params_t *p) {
  int intra = -1, inter = -1;
  for (int q = 1; q < comm->nranks; q++) {
    if (comm->node_of[q] == comm->node_of[0] && intra < 0) intra = q;
    if (comm->node_of[q] != comm->node_of[0] && inter < 0) inter = q;
  }
  /* Every rank starts the same checked exchange, so the sequence numbers
   * stay in step even on ranks that only wait. */
  hring__coll_begin(comm, HRING_COLL_BARRIER, ++comm->seq, 0, 0, 0, -1);
  /* res: intra alpha, beta, inter alpha, beta, gamma, measured flags. */
  double res[7] = {0};
  if (intra > 0 && (comm->rank == 0 || comm->rank == intra)) {
    HRING_CHECK(measure_link(comm, intra, &res[0], &res[1]));
    res[5] = comm->rank == 0;
  }
  if (inter > 0 && (comm->rank == 0 || comm->rank == inter)) {
    HRING_CHECK(measure_link(comm, inter, &res[2], &res[3]));
    res[6] = comm->rank == 0;
  }
  /* intra alpha: the slower of the ping-pong and a step with every local
   * rank active. */
  int *local = malloc(sizeof(int) * (size_t)comm->nranks), L = 0;
  if (!local) return hring__err(HRING_ERR_NO_MEMORY, "model calibration: out of memory");
  for (int q = 0; q < comm->nranks; q++)
    if (comm->node_of[q] == comm->node_of[0]) local[L++] = q;
  double hop = 0;
  hring_result_t r = token_ring(comm, local, L, &hop);
  free(local);
  HRING_CHECK(r);
  if (hop > res[0] && res[5] > 0) res[0] = hop;
  if (comm->rank == 0) res[4] = measure_gamma();
  /* Rank 0's figures to everyone: the others add zeros, which is exact. */
  if (comm->nranks > 1)
    HRING_CHECK(hring_allreduce(res, res, 7, HRING_FLOAT64, HRING_SUM, comm, NULL));
  if (res[5] > 0) p->intra.alpha = res[0], p->intra.beta = res[1];
  if (res[6] > 0) p->inter.alpha = res[2], p->inter.beta = res[3];
  if (res[4] > 0) p->intra.gamma = p->inter.gamma = res[4];
  return HRING_SUCCESS;
}
