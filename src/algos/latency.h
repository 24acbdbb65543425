/*
 * latency.h - pieces shared by the latency allreduces: recursive doubling
 * (rdouble.c), recursive halving-doubling (rabenseifner.c) and the tree
 * (tree.c).
 *
 * Recursive doubling and halving need a power-of-two number of ranks.  With
 * n ranks, pof2 the largest power of two <= n and rem = n - pof2, the
 * standard fix-up (Thakur, Rabenseifner, Gropp 2005) folds the first 2*rem
 * ranks pairwise: even rank 2i sends its vector to 2i+1, which reduces the
 * pair and takes part in the power-of-two core as new rank i; ranks from
 * 2*rem on take part as new rank r - rem.  At the end every odd rank below
 * 2*rem sends the result back to its even partner.  The new numbering
 * keeps the order of the real ranks, so "the lower rank's data is the left
 * operand" means the same in both numberings.
 */
#ifndef HRING_ALGOS_LATENCY_H
#define HRING_ALGOS_LATENCY_H

#include <stddef.h>
#include "algos/algo.h"

typedef struct {
  int pof2;    /* largest power of two <= nranks */
  int rem;     /* nranks - pof2: the ranks that fold into a partner */
  int newrank; /* this rank in the power-of-two core, -1 when folded out */
} hring_fold_t;

static inline void hring__fold_init(hring_fold_t *f, int n, int r) {
  int p = 1;
  while (p * 2 <= n) p *= 2;
  f->pof2 = p;
  f->rem = n - p;
  if (r < 2 * f->rem)
    f->newrank = (r % 2) ? r / 2 : -1;
  else
    f->newrank = r - f->rem;
}

/* The real rank of new rank nr. */
static inline int hring__fold_real(const hring_fold_t *f, int nr) {
  return nr < f->rem ? nr * 2 + 1 : nr + f->rem;
}

/* What a pairwise step does with the elements it receives. */
enum {
  HRING_LAT_COPY = 0,       /* out[ro..] = received */
  HRING_LAT_MINE_LEFT = 1,  /* out[ro..] = mine op received (this rank is the lower) */
  HRING_LAT_MINE_RIGHT = 2, /* out[ro..] = received op mine (the peer is the lower) */
};

/* One pairwise step with the peer behind c: sends elements [so, so + sn) of
 * src while receiving rn elements for [ro, ro + rn) of a->recvbuf, which
 * are copied or reduced with mine[ro..] as mode says (div: AVG's divisor on
 * this step, 1 for none).  Messages carry at most ce elements.  The two
 * directions advance chunk by chunk, and chunk k is sent before chunk k is
 * written, so src may be a->recvbuf even where the ranges overlap. */
hring_result_t hring__lat_exchange(hring_engine_t *e, hring_conn_t *c, const hring_coll_args_t *a,
                                   size_t ce, const char *src, size_t so, size_t sn,
                                   const char *mine, size_t ro, size_t rn, int mode, int div);

/* The fold of the first 2*rem ranks (see above): *cur is where this rank's
 * partial result is after it (a->sendbuf, or a->recvbuf once reduced). */
hring_result_t hring__lat_fold_in(hring_engine_t *e, struct hring_comm *comm,
                                  const hring_fold_t *f, const hring_coll_args_t *a,
                                  const char **cur);
/* The result back to the folded ranks. */
hring_result_t hring__lat_fold_out(hring_engine_t *e, struct hring_comm *comm,
                                   const hring_fold_t *f, const hring_coll_args_t *a);

/* Elements per message between this rank and the peer of c: one slot.  Both
 * ends must cut a range the same way, and the slot size of a connection is
 * the one number both know (comm->min_slot may differ between ranks that
 * see different transports). */
static inline size_t hring__lat_chunk(const hring_conn_t *c, size_t es) {
  size_t ce = c->slot_size / es;
  return ce ? ce : 1;
}

#endif
