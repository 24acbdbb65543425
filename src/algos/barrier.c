/*
 * barrier.c - dissemination barrier (Hensgen, Finkel and Manber 1988).
 *
 * In round k = 0, 1, ... while 2^k < n, rank r sends one byte to
 * r + 2^k and waits for one from r - 2^k (mod n).  After round k a rank
 * has heard, directly or through others, from the 2^(k+1) - 1 ranks before
 * it, so after ceil(log2 n) rounds from all of them: no rank leaves before
 * every rank has entered.  A peer is the source of at most one round
 * (2^k < n are distinct mod n), so the in-order FIFOs never mix rounds up.
 * Every message carries the barrier's header (wire.h), so a rank that is
 * in another collective is reported, not waited for.
 */
#include "algos/colls.h"
#include "core/error.h"
#include "transport/transport.h"

hring_result_t hring__barrier_run(struct hring_comm *comm) {
  const int n = comm->nranks, r = comm->rank;
  const unsigned char token = 1;
  hring_engine_t e;
  hring__engine_init(&e, comm);
  for (int d = 1; d < n; d *= 2) {
    hring_conn_t *to = comm->conns[(r + d) % n], *from = comm->conns[(r - d + n) % n];
    hring__engine_use(&e, to);
    hring__engine_use(&e, from);
    HRING_CHECK(hring__engine_send_copy(&e, to, &token, sizeof token));
    void *rbuf;
    HRING_CHECK(hring__engine_recv_get(&e, from, &rbuf, sizeof token));
    HRING_CHECK(hring__recv_release(from));
  }
  return hring__engine_flush(&e);
}
