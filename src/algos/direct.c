/*
 * direct.c - allreduce by direct (pairwise) reduce-scatter and allgather.
 *
 * Rank r owns segment r.  For each chunk: r sends its piece of segment p to
 * every p, receives every peer's piece of segment r, reduces them (own input
 * first, then peers in rank order) into out and sends the result to every
 * peer, then copies the peers' results into out.  The data volume is the
 * ring's, but there are 2 message steps instead of 2(n-1), and a rank does
 * all its sends of a step whenever it runs.  That is what matters when
 * ranks outnumber cores: in a ring every step waits for one particular
 * neighbour to be scheduled.  Each element is reduced by one rank only, so
 * all ranks get bit-identical results.
 */
#include <string.h>

#include "algos/algo.h"
#include "algos/reduce.h"
#include "core/error.h"

hring_result_t hring__allreduce_direct(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes) {
  const int n = comm->nranks, r = comm->rank;
  const char *in = a->sendbuf;
  char *out = a->recvbuf;
  const size_t es = a->esize;
  size_t ce = chunk_bytes / es;
  if (ce == 0) ce = 1;
  size_t seg_max = a->count / (size_t)n + (a->count % (size_t)n ? 1 : 0);
  size_t nchunks = (seg_max + ce - 1) / ce;
  const int div = a->op == HRING_AVG ? n : 1;
  if (!hring__engine_reaches_all(n))
    return hring__err(HRING_ERR_INTERNAL, "direct allreduce: too many ranks");

  hring_engine_t e;
  hring__engine_init(&e, comm);
  for (int i = 1; i < n; i++) hring__engine_use(&e, comm->conns[(r + i) % n]);

  for (size_t k = 0; k < nchunks; k++) {
    size_t off[HRING_ENGINE_MAX_ACTIVE + 1], cnt[HRING_ENGINE_MAX_ACTIVE + 1];
    for (int s = 0; s < n; s++) hring__chunk(a->count, n, s, k, ce, es, &off[s], &cnt[s]);
    /* 1. my input's piece of every peer's segment */
    for (int i = 1; i < n; i++) {
      int p = (r + i) % n;
      HRING_CHECK(hring__engine_send_copy(&e, comm->conns[p], in + off[p], cnt[p] * es));
    }
    /* 2. reduce my segment: own input, then peers in rank order */
    const void *acc = in + off[r];
    int left = n - 1;
    for (int p = 0; p < n; p++) {
      if (p == r) continue;
      void *rbuf;
      HRING_CHECK(hring__engine_recv_get(&e, comm->conns[p], &rbuf, cnt[r] * es));
      left--;
      hring__reduce(out + off[r], NULL, acc, rbuf, cnt[r], a->type, a->op, left == 0 ? div : 1, 0);
      acc = out + off[r];
      HRING_CHECK(hring__recv_release(comm->conns[p]));
    }
    /* 3. my reduced segment to everyone */
    for (int i = 1; i < n; i++)
      HRING_CHECK(hring__engine_send_copy(&e, comm->conns[(r + i) % n], out + off[r], cnt[r] * es));
    /* 4. everyone's reduced segment into out */
    for (int p = 0; p < n; p++) {
      if (p == r) continue;
      void *rbuf;
      HRING_CHECK(hring__engine_recv_get(&e, comm->conns[p], &rbuf, cnt[p] * es));
      memcpy(out + off[p], rbuf, cnt[p] * es);
      HRING_CHECK(hring__recv_release(comm->conns[p]));
    }
  }
  return hring__engine_flush(&e);
}
