/*
 * group.h - ring schedules over an ordered subset of the communicator's
 * ranks: the building blocks of the hierarchical allreduce (hier.c) and of
 * the public reduce_scatter and allgather.
 *
 * A group lists global ranks in ring order; member i's neighbours are
 * ranks[i-1] and ranks[i+1] (mod n).  Data is cut into g->n parts by
 * hring__partition(count, n, i) (algo.h), part i belonging to member i.
 * Every member of the group calls; ranks outside it do not.
 */
#ifndef HRING_GROUP_H
#define HRING_GROUP_H

#include <stddef.h>
#include "algos/algo.h"

typedef struct {
  int n;            /* members */
  int me;           /* this rank's index in ranks[], or -1 when not a member */
  const int *ranks; /* [n] global ranks in ring order */
} hring_group_t;

/* The whole communicator in rank order; storage holds comm->nranks ints. */
void hring__group_world(struct hring_comm *comm, hring_group_t *g, int *storage);

/* Ring reduce-scatter: in holds count elements on every member; member i
 * ends with part i reduced over all members (op; the result divided by
 * div, 1 for none) in out_part (that part's elements only).  out_part may
 * alias in + (part i's offset).  Chunks of at most chunk_bytes are
 * pipelined. */
hring_result_t hring__group_reduce_scatter(struct hring_comm *comm, const hring_group_t *g,
                                           const void *in, void *out_part, size_t count,
                                           hring_datatype_t type, hring_redop_t op, int div,
                                           size_t chunk_bytes);

/* Ring allgather in place: buf holds count elements; part i is valid on
 * member i on entry, every part on every member on return. */
hring_result_t hring__group_allgather(struct hring_comm *comm, const hring_group_t *g, void *buf,
                                      size_t count, size_t esize, size_t chunk_bytes);

#endif
