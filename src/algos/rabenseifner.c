/*
 * rabenseifner.c - recursive halving-doubling allreduce (Rabenseifner's
 * algorithm): a reduce-scatter by recursive halving, then an allgather by
 * recursive doubling, over the power-of-two core of the fold (latency.h).
 *
 * The vector is cut into pof2 blocks (block partition, so any count works,
 * also count < pof2 where some blocks are empty).  Every new rank i starts
 * with the window of all blocks; at distance d = pof2/2, pof2/4, ..., 1 it
 * keeps the half of its window that holds block i, sends the other half to
 * i ^ d and reduces the half it keeps with what i ^ d sends (lower rank's
 * data on the left).  At the end rank i holds block i reduced over all
 * ranks, each element computed by exactly one rank, so every rank ends up
 * with the same bits; AVG divides at d = 1, the one reduction of each
 * element that is final.  The allgather walks the distances back up,
 * swapping windows.
 *
 * Cost, with p = pof2, f = 1 when P is not a power of two (else 0), m
 * bytes, S the slot: the step at distance d moves m d / p bytes each way in
 * ceil(m d / (p S)) messages, twice (halving and doubling), so
 *   T = 2 sum_k ceil(m / (2^k S)) alpha + 2 (p-1)/p m beta + (p-1)/p m gamma
 *       + f (2 ceil(m/S) alpha + 2 m beta + m gamma)
 * (k = 1 .. log2 p; 2 log2 p alpha for a message of one slot): twice
 * recursive doubling's steps, the ring's volume.
 */
#include <string.h>

#include "algos/latency.h"
#include "algos/reduce.h"
#include "core/error.h"

hring_result_t hring__allreduce_rabenseifner(struct hring_comm *comm, const hring_coll_args_t *a,
                                             size_t chunk_bytes) {
  const int n = comm->nranks, r = comm->rank;
  /* Messages are cut at the slot size of each connection, which both ends
   * agree on; chunk_bytes (comm->min_slot) may differ between ranks. */
  (void)chunk_bytes;
  if (n == 1 || a->count == 0) {
    if (a->sendbuf != a->recvbuf) memmove(a->recvbuf, a->sendbuf, a->count * a->esize);
    return HRING_SUCCESS;
  }
  hring_fold_t f;
  hring__fold_init(&f, n, r);
  hring_engine_t e;
  hring__engine_init(&e, comm);
  const char *cur;
  HRING_CHECK(hring__lat_fold_in(&e, comm, &f, a, &cur));
  if (f.newrank >= 0) {
    const int me = f.newrank;
    const size_t count = a->count;
    int lo = 0, hi = f.pof2; /* this rank's window of blocks */
    for (int d = f.pof2 / 2; d >= 1; d /= 2) {
      int mid = lo + d, peer = hring__fold_real(&f, me ^ d);
      int klo = (me & d) ? mid : lo, khi = (me & d) ? hi : mid; /* kept */
      int slo = (me & d) ? lo : mid, shi = (me & d) ? mid : hi; /* sent */
      size_t ko = hring__part_start(count, f.pof2, klo), kn = hring__part_start(count, f.pof2, khi) - ko;
      size_t so = hring__part_start(count, f.pof2, slo), sn = hring__part_start(count, f.pof2, shi) - so;
      hring_conn_t *c = comm->conns[peer];
      int div = d == 1 && a->op == HRING_AVG ? n : 1;
      HRING_CHECK(hring__lat_exchange(&e, c, a, hring__lat_chunk(c, a->esize), cur, so, sn, cur,
                                      ko, kn,
                                      r < peer ? HRING_LAT_MINE_LEFT : HRING_LAT_MINE_RIGHT, div));
      cur = a->recvbuf;
      lo = klo, hi = khi;
    }
    for (int d = 1; d < f.pof2; d *= 2) {
      int peer = hring__fold_real(&f, me ^ d);
      int plo = (me & d) ? lo - d : hi, phi = plo + d; /* the peer's window */
      size_t mo = hring__part_start(count, f.pof2, lo), mn = hring__part_start(count, f.pof2, hi) - mo;
      size_t po = hring__part_start(count, f.pof2, plo), pn = hring__part_start(count, f.pof2, phi) - po;
      hring_conn_t *c = comm->conns[peer];
      HRING_CHECK(hring__lat_exchange(&e, c, a, hring__lat_chunk(c, a->esize), a->recvbuf, mo, mn,
                                      NULL, po, pn, HRING_LAT_COPY, 1));
      if (plo < lo) lo = plo; else hi = phi;
    }
  }
  HRING_CHECK(hring__lat_fold_out(&e, comm, &f, a));
  return hring__engine_flush(&e);
}
