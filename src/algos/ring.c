/*
 * ring.c - pipelined ring allreduce: reduce-scatter then allgather.
 *
 * The buffer is cut into nranks segments (block partition, so any count
 * works) and every segment into chunks of at most one FIFO slot.  Chunk k of
 * all segments travels round the ring before chunk k+1, and the FIFO depth
 * lets neighbours work on different chunks at once, so transfer and
 * reduction overlap.  With r the rank, n the size, seg(x) = x mod n:
 *
 *   reduce-scatter, step j = 0 .. n-1 (for chunk k):
 *     j = 0      send  in[seg(r)]
 *     0 < j < n-1 recv  m of seg(r-j);  send in[seg(r-j)] op m
 *     j = n-1    recv  m of seg(r+1);   out[seg(r+1)] = in op m, and send it
 *                (rank r now holds the final chunk of segment r+1)
 *   allgather, i = 0 .. n-2:
 *     recv m of seg(r-i); out[seg(r-i)] = m; send it on unless i = n-2
 *
 * Every reduction reads the incoming slot and writes the outgoing slot in
 * one pass (no staging copy), and each element of the result is computed
 * once, by one rank, so all ranks hold bit-identical results.  In place is
 * safe: a segment's input is read (in reduce-scatter) before its output is
 * written, within each chunk.
 */
#include <string.h>

#include "algos/algo.h"
#include "algos/reduce.h"
#include "core/error.h"

static inline int seg_of(int x, int n) { return ((x % n) + n) % n; }

hring_result_t hring__allreduce_ring(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes) {
  const int n = comm->nranks, r = comm->rank;
  hring_conn_t *next = comm->conns[seg_of(r + 1, n)], *prev = comm->conns[seg_of(r - 1, n)];
  const char *in = a->sendbuf;
  char *out = a->recvbuf;
  const size_t es = a->esize;
  size_t ce = chunk_bytes / es; /* elements per chunk */
  if (ce == 0) ce = 1;
  size_t seg_max = a->count / (size_t)n + (a->count % (size_t)n ? 1 : 0);
  size_t nchunks = (seg_max + ce - 1) / ce;
  const int div = a->op == HRING_AVG ? n : 1;
  const int nt = a->nt ? HRING_REDUCE_NT : 0;

  hring_engine_t e;
  hring__engine_init(&e, comm);
  hring__engine_use(&e, next);
  hring__engine_use(&e, prev);

  for (size_t k = 0; k < nchunks; k++) {
    size_t off, cnt;
    void *sbuf, *rbuf;

    /* reduce-scatter */
    hring__chunk(a->count, n, seg_of(r, n), k, ce, es, &off, &cnt);
    HRING_CHECK(hring__engine_send_copy(&e, next, in + off, cnt * es));
    for (int j = 1; j < n; j++) {
      hring__chunk(a->count, n, seg_of(r - j, n), k, ce, es, &off, &cnt);
      HRING_CHECK(hring__engine_recv_get(&e, prev, &rbuf, cnt * es));
      HRING_CHECK(hring__engine_send_get(&e, next, &sbuf));
      if (j < n - 1) {
        hring__reduce(sbuf, NULL, in + off, rbuf, cnt, a->type, a->op, 1, 0);
      } else {
        hring__reduce(out + off, sbuf, in + off, rbuf, cnt, a->type, a->op, div, nt);
      }
      HRING_CHECK(hring__recv_release(prev));
      HRING_CHECK(hring__send_post(next, cnt * es));
    }
    /* allgather */
    for (int i = 0; i < n - 1; i++) {
      hring__chunk(a->count, n, seg_of(r - i, n), k, ce, es, &off, &cnt);
      HRING_CHECK(hring__engine_recv_get(&e, prev, &rbuf, cnt * es));
      if (i < n - 2) {
        HRING_CHECK(hring__engine_send_get(&e, next, &sbuf));
        hring__copy(out + off, sbuf, rbuf, cnt * es, nt);
        HRING_CHECK(hring__send_post(next, cnt * es));
      } else {
        hring__copy(out + off, NULL, rbuf, cnt * es, nt);
      }
      HRING_CHECK(hring__recv_release(prev));
    }
  }
  return hring__engine_flush(&e);
}
