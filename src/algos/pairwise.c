/*
 * pairwise.c - reduce_scatter and allgather of small parts in one step:
 * every rank sends to every peer directly, as allpairs.c does for
 * allreduce.
 *
 * The rings take n-1 steps, each of which waits for a neighbour; when ranks
 * outnumber cores every step may cost a context switch, and for parts of a
 * few KiB that waiting is the whole cost.  Here each rank posts its n-1
 * messages as soon as it runs, then takes what has arrived.  Each
 * connection carries one message per call, so a FIFO of any depth holds it.
 *
 * reduce_scatter: rank r sends part p of its input to rank p and reduces
 * the n contributions to its own part in rank order 0, 1, ..., n-1 (fixed,
 * so repeated calls give the same bits).
 */
#include <string.h>

#include "algos/colls.h"
#include "algos/reduce.h"
#include "core/error.h"
#include "transport/transport.h"

hring_result_t hring__allgather_pairwise(struct hring_comm *comm, const void *sendbuf,
                                         void *recvbuf, size_t part) {
  const int n = comm->nranks, r = comm->rank;
  char *out = recvbuf;
  hring_engine_t e;
  hring__engine_init(&e, comm);
  /* To r+1, r+2, ... so that the ranks do not all write to rank 0 first. */
  for (int i = 1; i < n; i++) {
    hring_conn_t *c = comm->conns[(r + i) % n];
    hring__engine_use(&e, c);
    HRING_CHECK(hring__engine_send_copy(&e, c, sendbuf, part));
  }
  char *mine = out + (size_t)r * part;
  if (mine != (const char *)sendbuf) memcpy(mine, sendbuf, part);
  for (int i = 1; i < n; i++) {
    int p = (r - i + n) % n;
    void *rbuf;
    HRING_CHECK(hring__engine_recv_get(&e, comm->conns[p], &rbuf, part));
    memcpy(out + (size_t)p * part, rbuf, part);
    HRING_CHECK(hring__recv_release(comm->conns[p]));
  }
  return hring__engine_flush(&e);
}

hring_result_t hring__reduce_scatter_pairwise(struct hring_comm *comm,
                                              const hring_coll_args_t *a) {
  const int n = comm->nranks, r = comm->rank;
  const size_t part = a->count * a->esize;
  const char *in = a->sendbuf;
  if (part > HRING_PAIRWISE_MAX_PART)
    return hring__err(HRING_ERR_INTERNAL, "pairwise reduce_scatter: part of %zu bytes", part);
  hring_engine_t e;
  hring__engine_init(&e, comm);
  for (int i = 1; i < n; i++) {
    int p = (r + i) % n;
    hring__engine_use(&e, comm->conns[p]);
    HRING_CHECK(hring__engine_send_copy(&e, comm->conns[p], in + (size_t)p * part, part));
  }
  /* Every contribution stays in its receive slot until the reduction is
   * done.  The own one is read from the input, or from a copy when the
   * output overwrites it (in place) before its turn in the order. */
  char own[HRING_PAIRWISE_MAX_PART] __attribute__((aligned(64)));
  const char *mine = in + (size_t)r * part;
  if ((const void *)mine == a->recvbuf && r >= 2) {
    memcpy(own, mine, part);
    mine = own;
  }
  return hring__reduce_in_rank_order(&e, mine, part, a);
}
