/*
 * hier.h - what the two files of the hierarchical allreduce share: the
 * node layout as groups, the shard owners of hier2d, and the chunk of a
 * ring across nodes (hier.c explains the schedules; hier2d_pipe.c runs
 * hier2d's phases on segments, overlapped).
 */
#ifndef HRING_HIER_H
#define HRING_HIER_H

#include <stddef.h>
#include "algos/group.h"

/* The node layout of comm, as groups. */
typedef struct {
  int *mem;         /* one allocation holding the arrays below */
  int *members;     /* [nranks] ranks sorted by node, then by rank */
  int *first;       /* [nnodes] index of each node's first rank in members */
  int *size;        /* [nnodes] ranks on each node */
  int *ring;        /* [nnodes] scratch for a ring across the nodes */
  hring_group_t local;   /* this node's ranks, by local rank */
  hring_group_t leaders; /* local rank 0 of every node, by node */
  int smax;              /* the largest node's size: hier2d's shard count */
} hring_hier_topo_t;

hring_result_t hring__hier_topo_init(struct hring_comm *comm, hring_hier_topo_t *t);

/* The local rank that owns shard s (of S) on a node of L ranks. */
int hring__hier_shard_owner(int s, int S, int L);

/* Chunk bytes of a ring across nodes over `bytes` cut into n parts. */
size_t hring__hier_inter_chunk(const struct hring_comm *comm, size_t bytes, int n);

/* hier2d on nseg > 1 segments of the buffer (hring__hier2d_segments,
 * model.h), each segment's intra-node phases overlapping other segments'
 * inter-node rings (hier2d_pipe.c). */
hring_result_t hring__hier2d_pipelined(struct hring_comm *comm, const hring_coll_args_t *a,
                                       size_t chunk_bytes, const hring_hier_topo_t *t, int nseg);

#endif
