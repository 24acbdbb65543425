/*
 * group_hd.c - recursive halving-doubling and recursive doubling allreduces
 * over a group whose size is a power of two: the inter-node phase of hier
 * and hier2d for small vectors (hier.c).  There the number of dependent
 * messages, not the bytes, sets the time.  Halving-doubling sends 2 log2(n)
 * messages per member against the ring's 2 (n - 1), for the same bytes on
 * every link.  Its schedule is rabenseifner.c's, on group indices: at
 * distance d = n/2, ..., 1 a member keeps the half of its window that holds
 * its block and reduces it with what member me ^ d sends (the lower
 * member's data on the left), then the windows are swapped back up.  Every
 * element is reduced to its final value by one member and copied to the
 * others, so all members hold the same bits.  Recursive doubling sends
 * log2(n) messages of the whole vector: fewer steps for more bytes.
 */
#include <string.h>

#include "algos/group.h"
#include "algos/latency.h"
#include "core/error.h"

/* A group of one, or no elements: the input is the result. */
static int nothing_to_exchange(const hring_group_t *g, const hring_group_xfer_t *x) {
  if (g->n > 1 && x->count > 0) return 0;
  if (x->in != x->out) memmove(x->out, x->in, x->count * x->esize);
  return 1;
}

hring_result_t hring__group_allreduce_hd(hring_engine_t *e, const hring_group_t *g,
                                         const hring_group_xfer_t *x) {
  const int n = g->n, me = g->me;
  const size_t count = x->count, es = x->esize;
  if (nothing_to_exchange(g, x)) return HRING_SUCCESS;
  const hring_coll_args_t a = {x->in, x->out, count, es, x->type, x->op, 0};
  const char *cur = x->in;
  int lo = 0, hi = n; /* this member's window of blocks */
  for (int d = n / 2; d >= 1; d /= 2) {
    int mid = lo + d, peer = me ^ d;
    int klo = (me & d) ? mid : lo, khi = (me & d) ? hi : mid; /* kept */
    int slo = (me & d) ? lo : mid, shi = (me & d) ? mid : hi; /* sent */
    size_t ko = hring__part_start(count, n, klo), kn = hring__part_start(count, n, khi) - ko;
    size_t so = hring__part_start(count, n, slo), sn = hring__part_start(count, n, shi) - so;
    hring_conn_t *c = e->comm->conns[g->ranks[peer]];
    HRING_CHECK(hring__lat_exchange(e, c, &a, hring__lat_chunk(c, es), cur, so, sn, cur, ko, kn,
                                    me < peer ? HRING_LAT_MINE_LEFT : HRING_LAT_MINE_RIGHT,
                                    d == 1 ? x->div : 1));
    cur = x->out;
    lo = klo, hi = khi;
  }
  for (int d = 1; d < n; d *= 2) {
    int plo = (me & d) ? lo - d : hi, phi = plo + d; /* the peer's window */
    size_t mo = hring__part_start(count, n, lo), mn = hring__part_start(count, n, hi) - mo;
    size_t po = hring__part_start(count, n, plo), pn = hring__part_start(count, n, phi) - po;
    hring_conn_t *c = e->comm->conns[g->ranks[me ^ d]];
    HRING_CHECK(hring__lat_exchange(e, c, &a, hring__lat_chunk(c, es), x->out, mo, mn, NULL, po,
                                    pn, HRING_LAT_COPY, 1));
    if (plo < lo) lo = plo; else hi = phi;
  }
  return HRING_SUCCESS;
}

/* Recursive doubling: at distance d = 1, 2, ..., n/2 a member exchanges its
 * whole partial result with member me ^ d and reduces the two, the lower
 * member's on the left.  Both members of a pair reduce the same two
 * operands in the same order, so all end with the same bits. */
hring_result_t hring__group_allreduce_rd(hring_engine_t *e, const hring_group_t *g,
                                         const hring_group_xfer_t *x) {
  if (nothing_to_exchange(g, x)) return HRING_SUCCESS;
  const hring_coll_args_t a = {x->in, x->out, x->count, x->esize, x->type, x->op, 0};
  for (int d = 1; d < g->n; d *= 2) {
    const int peer = g->me ^ d, mode = g->me < peer ? HRING_LAT_MINE_LEFT : HRING_LAT_MINE_RIGHT;
    const char *cur = d == 1 ? x->in : x->out; /* this member's partial result */
    hring_conn_t *c = e->comm->conns[g->ranks[peer]];
    HRING_CHECK(hring__lat_exchange(e, c, &a, hring__lat_chunk(c, x->esize), cur, 0, x->count,
                                    cur, 0, x->count, mode, 2 * d == g->n ? x->div : 1));
  }
  return HRING_SUCCESS;
}
