/*
 * coll.h - what every public collective shares: the argument checks, and
 * the ordering of a host-buffer call after the caller's stream.
 */
#ifndef HRING_COLL_H
#define HRING_COLL_H

#include <stddef.h>
#include "core/comm.h"
#include "hring.h"

/* Checks a call that holds the handle (hring__comm_enter): its state, the
 * type, the op (when uses_op), that count elements times nranks fit in a
 * size_t, and that neither buffer is NULL when count > 0 (a collective
 * whose buffer is unused on some ranks passes a non-NULL one there).
 * Nothing is written when they fail. */
hring_result_t hring__coll_check(const char *fn, const void *sendbuf, const void *recvbuf,
                                 size_t count, hring_datatype_t type, int uses_op,
                                 hring_redop_t op, struct hring_comm *comm);
/* The type and count part of hring__coll_check (for calls that take no
 * buffers: hring_allreduce_algorithm). */
hring_result_t hring__coll_check_count(const char *fn, size_t count, hring_datatype_t type,
                                       struct hring_comm *comm);

/* The state part of hring__coll_check: refuses an aborted or failed
 * communicator (HRING_ERR_INVALID_USAGE). */
hring_result_t hring__coll_state_check(const char *fn, struct hring_comm *comm);

/* A host-buffer collective runs at the call: after the stream's earlier
 * work (stream may be NULL) and after the device collectives queued on
 * this communicator. */
hring_result_t hring__coll_host_prelude(struct hring_comm *comm, void *stream);

/* A blocking collective takes the communicator's executor before it
 * sends anything: the nonblocking collectives queued before it run first
 * (core/progress.h), then the state is checked again, since one of them
 * may have failed the communicator.  *held says whether hring__coll_release
 * must give the executor back (nothing to give back, and nothing was
 * waited for, when no nonblocking collective was ever issued). */
hring_result_t hring__coll_claim(const char *fn, struct hring_comm *comm, int *held);
void hring__coll_release(struct hring_comm *comm, int held);

/* ---- one collective call, blocking or not ---- */

typedef enum {
  HRING_CALL_ALLREDUCE,
  HRING_CALL_REDUCE_SCATTER,
  HRING_CALL_ALLGATHER,
  HRING_CALL_BROADCAST,
  HRING_CALL_REDUCE,
  HRING_CALL_BARRIER
} hring_call_kind_t;

/* The arguments of a public collective, less the stream.  count is the
 * per-call count of hring.h (recvcount for reduce_scatter, sendcount for
 * allgather); op and root are unused where the call has none. */
typedef struct {
  hring_call_kind_t kind;
  const char *fn; /* the public name, for messages */
  const void *sendbuf;
  void *recvbuf;
  size_t count;
  hring_datatype_t type;
  hring_redop_t op;
  int root;
} hring_call_t;

/* The argument checks of the call on host buffers (the handle is held):
 * as hring__coll_check, plus root, overlap, and HRING_ERR_UNSUPPORTED for
 * a device buffer.  Nothing is written. */
hring_result_t hring__call_check(const hring_call_t *c, struct hring_comm *comm);
/* Whether a checked call moves nothing (count 0; a barrier always runs). */
static inline int hring__call_empty(const hring_call_t *c) {
  return c->count == 0 && c->kind != HRING_CALL_BARRIER;
}
/* Runs a checked, non-empty host call once the prelude is done; a failure
 * after the first message fails the communicator (colls.c). */
hring_result_t hring__call_run(struct hring_comm *comm, const hring_call_t *c);
/* Its allreduce part (allreduce.c). */
hring_result_t hring__allreduce_host(struct hring_comm *comm, const hring_call_t *c);

#endif
