/*
 * group.h - ring schedules over an ordered subset of the communicator's
 * ranks: the building blocks of the hierarchical allreduce (hier.c) and of
 * the public reduce_scatter and allgather.
 *
 * A group lists global ranks in ring order; member i's neighbours are
 * ranks[i-1] and ranks[i+1] (mod n).  Data is cut into g->n parts by
 * hring__partition(count, n, i) (algo.h), part i belonging to member i.
 * Every member of the group calls; ranks outside it do not.  Chains (the
 * end of this file) link the same members in a line from member 0.
 *
 * Every member must pass the same chunk_bytes, since both ends of a link
 * cut the data alike; the schedules lower it to the slot size of the
 * member's links, which members using one transport agree on.  Messages
 * are stamped with the collective the caller started (hring__coll_begin).
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

/* Ring allreduce: reduce-scatter then allgather, fused per chunk (ring.c
 * runs it over the world group); out may be in.  flags: HRING_REDUCE_NT (reduce.h) for the
 * result stores. */
hring_result_t hring__group_allreduce(struct hring_comm *comm, const hring_group_t *g,
                                      const void *in, void *out, size_t count,
                                      hring_datatype_t type, hring_redop_t op, int div, int flags,
                                      size_t chunk_bytes);

/* The general form behind the ring calls above, for schedules that chain
 * several phases: the caller's engine progresses the connections and is
 * not flushed.  Parts are bounds[i] .. bounds[i+1] (n + 1 element offsets,
 * the same on every member) or, when bounds is NULL, hring__partition's.
 * mode HRING_GROUP_RS: out points at this member's part (as out_part
 * above); HRING_GROUP_AG (in unused) and HRING_GROUP_AR: out is the whole
 * buffer. */
enum { HRING_GROUP_RS = 1, HRING_GROUP_AG = 2, HRING_GROUP_AR = 3 };
typedef struct {
  const void *in;
  void *out;
  size_t count, esize;
  hring_datatype_t type;
  hring_redop_t op;
  int div;   /* divide each result by this (AVG), 1 for none */
  int flags; /* HRING_REDUCE_NT or 0, for the result stores */
  const size_t *bounds;
  size_t chunk_bytes;
} hring_group_xfer_t;
hring_result_t hring__group_run(hring_engine_t *e, const hring_group_t *g, int mode,
                                const hring_group_xfer_t *x);

/* The same ring schedule as a task that runs step by step, so that one
 * rank can interleave several schedules on disjoint connections (the
 * pipelined hier2d, hier2d_pipe.c).  A step is one chunk's message: it runs
 * only when its message has come and its send slot is free, and otherwise
 * changes nothing.  init starts the task (a group of one finishes there);
 * step runs at most max_steps steps (< 0: no limit) and returns
 * HRING_SUCCESS once the schedule is done, HRING_IN_PROGRESS when blocked
 * (blocked names the connection and what it waits for) or out of steps
 * (blocked NULL), or an error.  hring__group_run is init, then step and
 * hring__engine_wait until done.  x is copied; its buffers and bounds must
 * outlive the task. */
typedef struct {
  hring_engine_t *e;
  hring_group_xfer_t x;
  int n, m, rs, ag;
  hring_conn_t *next, *prev;
  size_t ce, skew, nchunks;
  size_t k;           /* the chunk in progress */
  int pos, nsteps;    /* the step within it, of nsteps */
  unsigned long steps; /* steps done, so a caller can see progress */
  hring_conn_t *blocked;
  const char *blocked_what;
} hring_ring_task_t;
hring_result_t hring__ring_task_init(hring_ring_task_t *t, hring_engine_t *e,
                                     const hring_group_t *g, int mode,
                                     const hring_group_xfer_t *x);
hring_result_t hring__ring_task_step(hring_ring_task_t *t, long max_steps);

/* Recursive halving-doubling allreduce (mode HRING_GROUP_AR's contract,
 * bounds and chunk_bytes unused: messages are cut at the slot size) for a
 * group of a power-of-two size: fewer, larger messages than the ring for
 * the same bytes (group_hd.c).  The engine is not flushed. */
hring_result_t hring__group_allreduce_hd(hring_engine_t *e, const hring_group_t *g,
                                         const hring_group_xfer_t *x);

/* Recursive doubling over the same groups: log2 n exchanges of the whole
 * vector, half the dependent messages of halving-doubling, for tiny
 * vectors (group_hd.c).  Same contract. */
hring_result_t hring__group_allreduce_rd(hring_engine_t *e, const hring_group_t *g,
                                         const hring_group_xfer_t *x);

/* Chain reduce to member 0: member 0 ends with in reduced over the group
 * in out (op; AVG sums, the caller divides), others only send.  out may be
 * in.  Pipelined in chunks of at most chunk_bytes; the engine is not
 * flushed. */
hring_result_t hring__group_reduce_chain(hring_engine_t *e, const hring_group_t *g,
                                         const void *in, void *out, size_t count,
                                         hring_datatype_t type, hring_redop_t op,
                                         size_t chunk_bytes);

/* Chain broadcast of bytes from member 0's buf to every member's buf;
 * flags as hring__copy's.  The engine is not flushed. */
hring_result_t hring__group_bcast_chain(hring_engine_t *e, const hring_group_t *g, void *buf,
                                        size_t bytes, size_t chunk_bytes, int flags);

#endif
