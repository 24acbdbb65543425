/*
 * ring.c - pipelined ring allreduce over the whole communicator:
 * reduce-scatter then allgather, fused per chunk.
 *
 * The schedule is the group ring of group.c over every rank in rank order
 * (its header comment walks through the steps): the buffer is cut into
 * nranks segments (block partition, so any count works) and every segment
 * into chunks of at most one FIFO slot; chunk k of all segments travels
 * round the ring before chunk k+1, and the FIFO depth lets neighbours work
 * on different chunks at once, so transfer and reduction overlap.  Every
 * reduction reads the incoming slot and writes the outgoing slot in one
 * pass, and each element of the result is computed once, by one rank, so
 * all ranks hold bit-identical results.  In place is safe.
 */
#include <stdlib.h>

#include "algos/algo.h"
#include "algos/group.h"
#include "algos/reduce.h"
#include "core/error.h"

/* Communicators up to this size list their ranks on the stack. */
#define RING_STACK_RANKS 64

hring_result_t hring__allreduce_ring(struct hring_comm *comm, const hring_coll_args_t *a,
                                     size_t chunk_bytes) {
  int stack[RING_STACK_RANKS];
  int *ranks =
      comm->nranks <= RING_STACK_RANKS ? stack : malloc(sizeof(int) * (size_t)comm->nranks);
  if (!ranks) return hring__err(HRING_ERR_NO_MEMORY, "ring allreduce: %d ranks", comm->nranks);
  hring_group_t world;
  hring__group_world(comm, &world, ranks);
  hring_result_t r = hring__group_allreduce(comm, &world, a->sendbuf, a->recvbuf, a->count,
                                            a->type, a->op, a->op == HRING_AVG ? comm->nranks : 1,
                                            a->nt ? HRING_REDUCE_NT : 0, chunk_bytes);
  if (ranks != stack) free(ranks);
  return r;
}
