/*
 * rooted.c - broadcast and reduce: pipelined chains from and to the root.
 *
 * The chain is the ranks in the order root, root+1, ..., root-1 (mod n):
 * member i talks to members i-1 and i+1 only (the reduce runs group.c's
 * chain, the broadcast the one below), so every rank sends and receives
 * each byte at most once and, once the pipeline is full, all links carry
 * chunks at the same time.  For
 * large messages that is the best a rooted collective can do (the root's
 * link carries the data once); for small ones it costs n-1 hops where a
 * binary tree would cost log2(n), a trade worth revisiting when small
 * rooted collectives matter (docs/collectives.md).
 *
 * Reduce order: member n-1 sends its input, every member before it applies
 * op to its own input and what it received, so root holds
 * in[root] op (in[root+1] op (... op in[root-1])).  The order depends only
 * on n and root: repeated calls give the same bits.
 */
#include <stdlib.h>

#include "algos/colls.h"
#include "algos/group.h"
#include "algos/reduce.h"
#include "core/error.h"

/* The chain from root, in storage (comm->nranks ints). */
static void chain_from(struct hring_comm *comm, int root, hring_group_t *g, int *storage) {
  const int n = comm->nranks;
  for (int i = 0; i < n; i++) storage[i] = (root + i) % n;
  g->n = n;
  g->me = (comm->rank - root + n) % n;
  g->ranks = storage;
}

/* The broadcast chain.  The root copies each chunk into its slot and, out
 * of place, into its own receive buffer in the same pass (hring__copy's
 * second destination), so its copy costs no extra read and overlaps with
 * the chain; every other member stores what it receives and forwards it
 * in one pass too. */
static hring_result_t bcast_chain(hring_engine_t *e, const hring_group_t *g, const char *src,
                                  char *dst, size_t bytes, size_t chunk) {
  const int n = g->n, m = g->me;
  hring_conn_t *up = m > 0 ? e->comm->conns[g->ranks[m - 1]] : NULL;
  hring_conn_t *down = m < n - 1 ? e->comm->conns[g->ranks[m + 1]] : NULL;
  if (up) hring__engine_use(e, up);
  if (down) hring__engine_use(e, down);
  for (size_t lo = 0; lo < bytes; lo += chunk) {
    size_t len = bytes - lo < chunk ? bytes - lo : chunk;
    void *sbuf = NULL, *rbuf;
    if (down) HRING_CHECK(hring__engine_send_get(e, down, &sbuf));
    if (!up) {
      hring__copy(sbuf, dst != src ? dst + lo : NULL, src + lo, len, 0);
    } else {
      HRING_CHECK(hring__engine_recv_get(e, up, &rbuf, len));
      hring__copy(dst + lo, sbuf, rbuf, len, 0);
      HRING_CHECK(hring__recv_release(up));
    }
    if (down) HRING_CHECK(hring__send_post(down, len));
  }
  return HRING_SUCCESS;
}

hring_result_t hring__bcast_rooted(struct hring_comm *comm, const void *sendbuf, void *recvbuf,
                                   size_t bytes, int root, size_t chunk_bytes) {
  int *storage = malloc(sizeof(int) * (size_t)comm->nranks);
  if (!storage) return hring__err(HRING_ERR_NO_MEMORY, "hring_broadcast: chain of %d ranks",
                                  comm->nranks);
  hring_group_t g;
  chain_from(comm, root, &g, storage);
  hring_engine_t e;
  hring__engine_init(&e, comm);
  hring_result_t r =
      bcast_chain(&e, &g, sendbuf, recvbuf, bytes, chunk_bytes > 0 ? chunk_bytes : 1);
  if (r == HRING_SUCCESS) r = hring__engine_flush(&e);
  free(storage);
  return r;
}

hring_result_t hring__reduce_rooted(struct hring_comm *comm, const hring_coll_args_t *a, int root,
                                    size_t chunk_bytes) {
  int *storage = malloc(sizeof(int) * (size_t)comm->nranks);
  if (!storage) return hring__err(HRING_ERR_NO_MEMORY, "hring_reduce: chain of %d ranks",
                                  comm->nranks);
  hring_group_t g;
  chain_from(comm, root, &g, storage);
  hring_engine_t e;
  hring__engine_init(&e, comm);
  /* The chain sums for AVG; the root divides once at the end, so every
   * partial result is the plain sum, as in every other schedule. */
  hring_result_t r = hring__group_reduce_chain(&e, &g, a->sendbuf, a->recvbuf, a->count, a->type,
                                               a->op, chunk_bytes);
  if (r == HRING_SUCCESS && g.me == 0 && a->op == HRING_AVG)
    hring__divide(a->recvbuf, a->recvbuf, a->count, a->type, comm->nranks);
  if (r == HRING_SUCCESS) r = hring__engine_flush(&e);
  free(storage);
  return r;
}
