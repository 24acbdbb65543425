/*
 * rdouble.c - recursive-doubling allreduce, and the pairwise step and
 * non-power-of-two fold that the latency algorithms share (latency.h).
 *
 * In step s (s = 0 .. log2(pof2) - 1) new rank i exchanges its whole
 * partial vector with new rank i ^ 2^s and both reduce the pair, the lower
 * rank's vector as the left operand.  Both partners thus compute the same
 * bits, and by induction after step s all ranks of an aligned group of
 * 2^(s+1) hold identical partial results; after the last step every rank
 * holds the same result.  AVG divides on the last step only.
 *
 * Cost, with p = pof2, f = 1 when P is not a power of two (else 0), m bytes
 * and c = ceil(m / slot) messages per step:
 *   T = (log2 p + 2f) c alpha + (log2 p + 2f) m beta + (log2 p + f) m gamma
 * (both directions of a step overlap; the fold is one-way twice).  The
 * fewest dependent steps, but the whole vector each time: for short
 * messages only.
 */
#include <string.h>

#include "algos/latency.h"
#include "algos/reduce.h"
#include "core/error.h"
#include "transport/transport.h"

hring_result_t hring__lat_exchange(hring_engine_t *e, hring_conn_t *c, const hring_coll_args_t *a,
                                   size_t ce, const char *src, size_t so, size_t sn,
                                   const char *mine, size_t ro, size_t rn, int mode, int div) {
  const size_t es = a->esize;
  char *out = a->recvbuf;
  const size_t ns = (sn + ce - 1) / ce, nr = (rn + ce - 1) / ce;
  const size_t steps = ns > nr ? ns : nr;
  hring__engine_use(e, c);
  /* Lock step: chunk k leaves before chunk k arrives.  The peer runs the
   * same loop, so each side waits at most for the peer's chunk k, and the
   * FIFO depth lets either side run ahead; no cycle of waits can form. */
  for (size_t k = 0; k < steps; k++) {
    if (k < ns) {
      size_t cnt = k + 1 < ns ? ce : sn - k * ce;
      HRING_CHECK(hring__engine_send_copy(e, c, src + (so + k * ce) * es, cnt * es));
    }
    if (k < nr) {
      size_t cnt = k + 1 < nr ? ce : rn - k * ce;
      size_t off = (ro + k * ce) * es;
      void *rbuf;
      HRING_CHECK(hring__engine_recv_get(e, c, &rbuf, cnt * es));
      if (mode == HRING_LAT_COPY)
        memcpy(out + off, rbuf, cnt * es);
      else if (mode == HRING_LAT_MINE_LEFT)
        hring__reduce(out + off, NULL, mine + off, rbuf, cnt, a->type, a->op, div, 0);
      else
        hring__reduce(out + off, NULL, rbuf, mine + off, cnt, a->type, a->op, div, 0);
      HRING_CHECK(hring__recv_release(c));
    }
  }
  return HRING_SUCCESS;
}

hring_result_t hring__lat_fold_in(hring_engine_t *e, struct hring_comm *comm,
                                  const hring_fold_t *f, const hring_coll_args_t *a,
                                  const char **cur) {
  const int r = comm->rank;
  *cur = a->sendbuf;
  if (r >= 2 * f->rem) return HRING_SUCCESS;
  if (r % 2 == 0) { /* folded out: the whole vector to the odd partner */
    hring_conn_t *c = comm->conns[r + 1];
    return hring__lat_exchange(e, c, a, hring__lat_chunk(c, a->esize), a->sendbuf, 0, a->count,
                               NULL, 0, 0, HRING_LAT_COPY, 1);
  }
  hring_conn_t *c = comm->conns[r - 1];
  HRING_CHECK(hring__lat_exchange(e, c, a, hring__lat_chunk(c, a->esize), NULL, 0, 0, a->sendbuf,
                                  0, a->count, HRING_LAT_MINE_RIGHT, 1));
  *cur = a->recvbuf;
  return HRING_SUCCESS;
}

hring_result_t hring__lat_fold_out(hring_engine_t *e, struct hring_comm *comm,
                                   const hring_fold_t *f, const hring_coll_args_t *a) {
  const int r = comm->rank;
  if (r >= 2 * f->rem) return HRING_SUCCESS;
  hring_conn_t *c = comm->conns[r % 2 ? r - 1 : r + 1];
  size_t ce = hring__lat_chunk(c, a->esize);
  if (r % 2) return hring__lat_exchange(e, c, a, ce, a->recvbuf, 0, a->count, NULL, 0, 0, 0, 1);
  return hring__lat_exchange(e, c, a, ce, NULL, 0, 0, NULL, 0, a->count, HRING_LAT_COPY, 1);
}

hring_result_t hring__allreduce_rdouble(struct hring_comm *comm, const hring_coll_args_t *a) {
  const int n = comm->nranks, r = comm->rank;
  if (n == 1 || a->count == 0) {
    if (a->sendbuf != a->recvbuf) memmove(a->recvbuf, a->sendbuf, a->count * a->esize);
    return HRING_SUCCESS; /* AVG over one rank divides by 1 */
  }
  hring_fold_t f;
  hring__fold_init(&f, n, r);
  hring_engine_t e;
  hring__engine_init(&e, comm);
  const char *cur;
  HRING_CHECK(hring__lat_fold_in(&e, comm, &f, a, &cur));
  if (f.newrank >= 0) {
    for (int m = 1; m < f.pof2; m <<= 1) {
      int peer = hring__fold_real(&f, f.newrank ^ m);
      hring_conn_t *c = comm->conns[peer];
      int div = (m << 1) == f.pof2 && a->op == HRING_AVG ? n : 1;
      HRING_CHECK(hring__lat_exchange(&e, c, a, hring__lat_chunk(c, a->esize), cur, 0, a->count,
                                      cur, 0, a->count,
                                      r < peer ? HRING_LAT_MINE_LEFT : HRING_LAT_MINE_RIGHT, div));
      cur = a->recvbuf;
    }
  }
  HRING_CHECK(hring__lat_fold_out(&e, comm, &f, a));
  return hring__engine_flush(&e);
}
