/*
 * allpairs.c - latency allreduce for small messages: every rank sends its
 * whole vector to every peer, then reduces the n vectors itself.
 *
 * One message step instead of the ring's 2(n-1): on shared memory each rank
 * does its sends as soon as it runs, which matters most when ranks
 * outnumber cores and every step costs a context switch.  The reduction
 * runs in rank order 0, 1, ..., n-1 on every rank, so results are
 * bit-identical everywhere.  Used while count * size fits one slot.
 */
#include <string.h>

#include "algos/algo.h"
#include "algos/reduce.h"
#include "core/error.h"

hring_result_t hring__allreduce_allpairs(struct hring_comm *comm, const hring_coll_args_t *a) {
  const int n = comm->nranks, r = comm->rank;
  const size_t bytes = a->count * a->esize;
  hring_engine_t e;
  hring__engine_init(&e, comm);
  /* Send to r+1, r+2, ... so that the ranks do not all write to rank 0 first. */
  for (int i = 1; i < n; i++) {
    hring_conn_t *c = comm->conns[(r + i) % n];
    hring__engine_use(&e, c);
    HRING_CHECK(hring__engine_send_copy(&e, c, a->sendbuf, bytes));
  }
  /* Every peer's vector, held in its receive slot until the reduction is
   * done; the local one comes from the send buffer, or from a copy when the
   * result overwrites it in place before its turn. */
  char local_copy[HRING_ALLPAIRS_MAX_BYTES] __attribute__((aligned(64)));
  const void *mine = a->sendbuf;
  if (a->sendbuf == a->recvbuf && r >= 2) {
    if (bytes > sizeof local_copy) return hring__err(HRING_ERR_INTERNAL, "allpairs: message too large");
    memcpy(local_copy, a->sendbuf, bytes);
    mine = local_copy;
  }
  return hring__reduce_in_rank_order(&e, mine, bytes, a);
}

/*
 * Two ranks: each sends its whole vector (chunk by chunk) and both reduce
 * the pair in rank order.  The same bytes as the ring, but no step waits
 * for a reduction on the other side, so over tcp both directions stream
 * from the first chunk (the ring sends half, then waits for the peer's
 * half before it can send again).
 */
hring_result_t hring__allreduce_exchange2(struct hring_comm *comm, const hring_coll_args_t *a,
                                          size_t chunk_bytes) {
  const int r = comm->rank;
  hring_conn_t *c = comm->conns[1 - r];
  const char *in = a->sendbuf;
  char *out = a->recvbuf;
  const size_t es = a->esize;
  size_t ce = chunk_bytes / es;
  if (ce == 0) ce = 1;
  const size_t nchunks = (a->count + ce - 1) / ce;
  const int div = a->op == HRING_AVG ? 2 : 1;
  hring_engine_t e;
  hring__engine_init(&e, comm);
  hring__engine_use(&e, c);
  /* Keep up to the FIFO depth in flight before the first reduction. */
  size_t sent = 0;
  for (size_t k = 0; k < nchunks; k++) {
    size_t lim = k + (size_t)c->nslots;
    for (; sent < nchunks && sent < lim; sent++) {
      size_t cnt = sent + 1 < nchunks ? ce : a->count - sent * ce;
      void *sbuf;
      hring_result_t res = hring__send_get(c, &sbuf);
      if (res == HRING_IN_PROGRESS) break;
      HRING_CHECK(res);
      memcpy(sbuf, in + sent * ce * es, cnt * es);
      HRING_CHECK(hring__send_post(c, cnt * es));
    }
    size_t cnt = k + 1 < nchunks ? ce : a->count - k * ce;
    if (sent == k) { /* the FIFO was full: wait for room for chunk k */
      HRING_CHECK(hring__engine_send_copy(&e, c, in + k * ce * es, cnt * es));
      sent++;
    }
    void *rbuf;
    HRING_CHECK(hring__engine_recv_get(&e, c, &rbuf, cnt * es));
    const void *v0 = r == 0 ? (const void *)(in + k * ce * es) : rbuf;
    const void *v1 = r == 0 ? rbuf : (const void *)(in + k * ce * es);
    hring__reduce(out + k * ce * es, NULL, v0, v1, cnt, a->type, a->op, div,
                  a->nt ? HRING_REDUCE_NT : 0);
    HRING_CHECK(hring__recv_release(c));
  }
  return hring__engine_flush(&e);
}

hring_result_t hring__reduce_in_rank_order(hring_engine_t *e, const void *mine, size_t bytes,
                                           const hring_coll_args_t *a) {
  struct hring_comm *comm = e->comm;
  const int n = comm->nranks, r = comm->rank;
  const void *vec[HRING_ENGINE_MAX_ACTIVE + 1];
  for (int p = 0; p < n; p++) {
    if (p == r) {
      vec[p] = mine;
      continue;
    }
    void *rbuf;
    HRING_CHECK(hring__engine_recv_get(e, comm->conns[p], &rbuf, bytes));
    vec[p] = rbuf;
  }
  const int div = a->op == HRING_AVG ? n : 1;
  hring__reduce(a->recvbuf, NULL, vec[0], vec[1], a->count, a->type, a->op, n == 2 ? div : 1, 0);
  for (int p = 2; p < n; p++)
    hring__reduce(a->recvbuf, NULL, a->recvbuf, vec[p], a->count, a->type, a->op,
                  p == n - 1 ? div : 1, 0);
  for (int p = 0; p < n; p++)
    if (p != r) HRING_CHECK(hring__recv_release(comm->conns[p]));
  return hring__engine_flush(e);
}
