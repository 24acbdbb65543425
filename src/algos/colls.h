/*
 * colls.h - the schedules behind the public collectives beyond allreduce
 * (colls.c): the rooted chains (rooted.c), the one-step reduce_scatter
 * and allgather of small parts (pairwise.c) and the barrier (barrier.c).
 * Larger reduce_scatters and allgathers are the group rings of group.h
 * over the whole communicator.
 *
 * Each is called after hring__coll_begin, on a communicator of two ranks
 * or more, and returns once its sends have left this rank.
 */
#ifndef HRING_COLLS_H
#define HRING_COLLS_H

#include <stddef.h>
#include "algos/algo.h"

/* Broadcast of bytes from root: every rank but root receives them into
 * recvbuf; root reads them from sendbuf and copies them to recvbuf unless
 * the two are the same.  Pipelined down a chain in chunks of at most
 * chunk_bytes. */
hring_result_t hring__bcast_rooted(struct hring_comm *comm, const void *sendbuf, void *recvbuf,
                                   size_t bytes, int root, size_t chunk_bytes);

/* Reduce to root: root's a->recvbuf receives op over ranks of a->sendbuf
 * (AVG divided by nranks); a->recvbuf is not touched elsewhere.  Pipelined
 * up a chain in chunks of at most chunk_bytes. */
hring_result_t hring__reduce_rooted(struct hring_comm *comm, const hring_coll_args_t *a, int root,
                                    size_t chunk_bytes);

/* One-step forms for small parts (pairwise.c): every rank sends to every
 * peer at once.  For parts of at most HRING_PAIRWISE_MAX_PART bytes that
 * fit a slot, with at most HRING_ENGINE_MAX_ACTIVE peers (the messages of
 * all peers are held at once).  The rings of group.h serve the rest. */
#define HRING_PAIRWISE_MAX_PART 4096 /* as allpairs.c, measured there */
hring_result_t hring__allgather_pairwise(struct hring_comm *comm, const void *sendbuf,
                                         void *recvbuf, size_t part);
hring_result_t hring__reduce_scatter_pairwise(struct hring_comm *comm,
                                              const hring_coll_args_t *a);

/* Dissemination barrier: ceil(log2 n) rounds of one-byte messages. */
hring_result_t hring__barrier_run(struct hring_comm *comm);

#endif
