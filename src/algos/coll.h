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

/* A host-buffer collective runs at the call: after the stream's earlier
 * work (stream may be NULL) and after the device collectives queued on
 * this communicator. */
hring_result_t hring__coll_host_prelude(struct hring_comm *comm, void *stream);

#endif
