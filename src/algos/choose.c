/*
 * choose.c - which allreduce algorithm runs a call (choose.h).
 *
 * Across nodes the cost model decides: every applicable algorithm's time is
 * predicted for the communicator's layout and the fastest runs.  On one
 * node the rules measured on this kind of machine decide (docs/model.md
 * says why): the model's alpha cannot see that ranks outnumbering cores
 * wait for one another to be scheduled, which is what makes the one-step
 * schedules win there.  The choice for a size is cached (a direct-mapped
 * table), so the model costs nothing on repeated sizes, and printed at
 * INFO the first time with its predicted time.
 */
#include "algos/choose.h"

#include <stdint.h>
#include <stdlib.h>

#include "algos/algo.h"
#include "algos/model.h"
#include "algos/tune.h"
#include "core/config.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "transport/transport.h"

#define CACHE_SLOTS 64 /* 2^6: the hash keeps the top 6 bits */

struct hring_choice {
  hring_model_params_t params;
  hring_model_shape_t shape;
  struct {
    size_t bytes;
    int algo; /* 0: empty */
  } cache[CACHE_SLOTS];
};

hring_result_t hring__choice_init(struct hring_comm *comm) {
  struct hring_choice *c = calloc(1, sizeof *c);
  if (!c) return hring__err(HRING_ERR_NO_MEMORY, "comm init");
  hring__model_defaults(&c->params);
  const char *path = hring__cfg_str(HRING_CFG_MODEL_FILE);
  if (path && *path) {
    hring_result_t r = hring__model_load(path, &c->params);
    if (r != HRING_SUCCESS) {
      free(c);
      return r;
    }
  }
  hring__model_shape_of(comm, &c->shape);
  comm->choice = c;
  return HRING_SUCCESS;
}

uint64_t hring__choice_digest(const struct hring_comm *comm) {
  const hring_model_params_t *p = &comm->choice->params;
  return hring__fnv(HRING_FNV_SEED, p, sizeof *p);
}

void hring__choice_free(struct hring_comm *comm) {
  hring__tune_free(comm); /* the tuner refines this choice: it goes with it */
  free(comm->choice);
  comm->choice = NULL;
}

/* The measured rules of one node (docs/performance.md, 2026-11-27 fourth
 * section: hring-choice, every algorithm timed in one process in a new
 * order every round, 2, 4 and 8 ranks on 2 cores, six runs). */
static int one_node_rule(const struct hring_comm *comm, size_t bytes) {
  int64_t small = comm->small_max < 0 ? HRING_ALLPAIRS_MAX_BYTES : comm->small_max;
  const int n = comm->nranks;
  const int allpairs = bytes <= HRING_ALLPAIRS_MAX_BYTES && bytes <= comm->min_slot &&
                       hring__engine_reaches_all(n) && (int64_t)bytes <= small;
  if (comm->small_max >= 0 && allpairs) return HRING_ALGO_ALLPAIRS; /* HRING_SMALL_MAX set */
  /* Two ranks over tcp: the one-step exchange keeps both directions
   * streaming; measured 1.2-1.7 GB/s against the ring's 0.9-1.1 at 1-64 MiB. */
  if (n == 2 && comm->conns[1 - comm->rank]->ops == &hring__tcp_ops)
    return allpairs ? HRING_ALGO_ALLPAIRS : HRING_ALGO_EXCHANGE;
  /* More ranks of the node reaching each other by tcp (HRING_TRANSPORTS=tcp,
   * or no shared memory; agreed): each message costs system calls and a
   * trip through the kernel, so up to 128 KiB the fewest messages in a row
   * win: recursive doubling (log2 n exchanges, the fold around them) with
   * 3 to 6 ranks, the pipelined tree with 8; then the ring.  The rules
   * below, measured over shm, picked allpairs and the direct exchange
   * there, 1.2-3.4x slower than the best (docs/performance.md, eighth
   * section). */
  if (comm->tcp_within_any) {
    if (bytes > 131072) return HRING_ALGO_RING;
    return n < 8 ? HRING_ALGO_RDOUBLE : HRING_ALGO_TREE;
  }
  /* Up to 2 KiB every rank sends its vector to every other at once: as
   * fast as recursive doubling or faster in 34 of 36 comparisons.  At 4
   * KiB with ranks outnumbering cores the two traded places with the
   * machine's mode (allpairs ahead in 11 of 20 comparisons, by up to 1.4x;
   * recursive doubling by up to 1.6x: docs/performance.md, sixth section),
   * so the bound stays.  Where ranks outnumber cores, recursive doubling
   * was ahead at 2 KiB with 6 and 8 ranks in the machine's slow mode and
   * allpairs in its fast one: bounding allpairs at 8 KiB copied in per rank
   * left as many rows more than 1.11x behind the best, 6 of 32 against 6
   * (docs/performance.md, fifteenth section), so the bound stays there too. */
  if (allpairs && bytes <= 2048) return HRING_ALGO_ALLPAIRS;
  /* Ranks outnumbering cores: every step waits for a rank to be scheduled,
   * so up to 128 KiB the schedules with the fewest dependent steps win:
   * recursive doubling (log2 n rounds) up to 16 KiB with 4 ranks and 4
   * KiB with more, then the direct exchange (every rank sends all its
   * pieces whenever it runs).  With 8 ranks at 4 KiB the two trade places
   * with the machine's mode: the direct exchange was ahead by 1.08-1.17x in
   * 3 of 5 runs one hour and behind the best by 1.18-1.27x in 4 of 4 the
   * next (docs/performance.md, fifteenth section).  From 48 to
   * 128 KiB the ring was 1.2-3.4x behind the direct exchange (3 to 8
   * ranks, both modes of the machine; thirteenth section).  Beyond, the
   * ring and the pipelined tree trade places from run to run; from 192 KiB
   * the ring was the fastest in the machine's fast mode.  Where the direct
   * exchange cannot run (more ranks than the engine drives at once),
   * halving-doubling (2 log2 n steps, the ring's volume) stands in. */
  if (comm->oversub_any) {
    if (bytes <= (n <= 4 ? 16384u : 4096u)) return HRING_ALGO_RDOUBLE;
    if (bytes <= 131072)
      return hring__model_applicable(&comm->choice->shape, HRING_ALGO_DIRECT, bytes)
                 ? HRING_ALGO_DIRECT
                 : HRING_ALGO_RABENSEIFNER;
    return HRING_ALGO_RING;
  }
  /* Two ranks with a core each: one exchange of the whole vector
   * (recursive doubling's single step) beat the ring by 1.1-1.5x from 8 to
   * 384 KiB, in both modes of the machine, and tied with it at 512 KiB.
   * Beyond, hring-choice favoured it by 1.05-1.14x up to 4 MiB while
   * all_reduce_perf favoured the ring by up to 1.25x (docs/performance.md,
   * thirteenth section), so the ring stays there. */
  if (n == 2 && bytes <= 524288) return HRING_ALGO_RDOUBLE;
  return allpairs ? HRING_ALGO_ALLPAIRS : HRING_ALGO_RING;
}

static int decide(struct hring_comm *comm, size_t bytes, double *pred) {
  struct hring_choice *c = comm->choice;
  c->shape.chunk = hring__ring_chunk(comm, bytes);
  if (comm->nnodes == 1) {
    int a = one_node_rule(comm, bytes);
    *pred = hring__model_predict(&c->params, &c->shape, a, bytes);
    return a;
  }
  unsigned allowed = 0;
  for (int a = HRING_ALGO_RING; a < HRING_ALGO_COUNT; a++) allowed |= 1u << a;
  /* allpairs and direct open a FIFO to every rank: beyond the engine's
   * limit they cannot run. */
  if (!hring__engine_reaches_all(comm->nranks))
    allowed &= ~((1u << HRING_ALGO_ALLPAIRS) | (1u << HRING_ALGO_DIRECT));
  if (bytes > comm->min_slot) allowed &= ~(1u << HRING_ALGO_ALLPAIRS);
  return hring__model_choose(&c->params, &c->shape, bytes, allowed, pred);
}

int hring__choice_ranked(struct hring_comm *comm, size_t bytes, int out[HRING_ALGO_COUNT]) {
  struct hring_choice *c = comm->choice;
  double t[HRING_ALGO_COUNT];
  int n = 0;
  c->shape.chunk = hring__ring_chunk(comm, bytes);
  for (int a = HRING_ALGO_RING; a < HRING_ALGO_COUNT; a++) {
    if (!hring__model_applicable(&c->shape, a, bytes)) continue;
    if (a == HRING_ALGO_ALLPAIRS && bytes > comm->min_slot) continue;
    if ((a == HRING_ALGO_HIER || a == HRING_ALGO_HIER2D) && comm->nnodes == 1) continue;
    double ta = hring__model_predict(&c->params, &c->shape, a, bytes);
    int i = n++; /* insertion: ties keep the lower id first, as the model's choice does */
    for (; i > 0 && t[i - 1] > ta; i--) t[i] = t[i - 1], out[i] = out[i - 1];
    t[i] = ta, out[i] = a;
  }
  return n;
}

int hring__choose(struct hring_comm *comm, size_t bytes) {
  struct hring_choice *c = comm->choice;
  /* Fibonacci hashing: sizes that differ only in high bits (powers of
   * two) still land in different slots. */
  size_t slot = (size_t)(((uint64_t)bytes * 0x9e3779b97f4a7c15ull) >> 58);
  if (c->cache[slot].algo && c->cache[slot].bytes == bytes) return c->cache[slot].algo;
  double pred = 0;
  int a = decide(comm, bytes, &pred);
  double ring = hring__model_predict(&c->params, &c->shape, HRING_ALGO_RING, bytes);
  HRING_INFO(HRING_SUB_COLL,
             "allreduce of %zu bytes on %d ranks, %d node(s): %s, predicted %.1f us (ring %.1f us)%s",
             bytes, comm->nranks, comm->nnodes, hring__algo_names[a], pred * 1e6, ring * 1e6,
             comm->nnodes == 1 ? " [one-node rule]" : "");
  c->cache[slot].bytes = bytes;
  c->cache[slot].algo = a;
  return a;
}
