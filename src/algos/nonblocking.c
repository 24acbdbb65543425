/*
 * nonblocking.c - hring_iallreduce and its siblings (hring.h,
 * docs/nonblocking.md): the blocking calls' checks at issue, their run
 * parts later on the communicator's executor (core/progress.h).
 */
#include <stddef.h>

#include "algos/coll.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/visibility.h"

/* An op on its executor, the handle held.  The communicator may have
 * failed or been aborted since the issue: then the op does not run.  A
 * failure before the first message still fails the communicator, since
 * the peers ran this collective and would wait for this rank in the
 * next. */
static hring_result_t op_run(struct hring_comm *comm, const void *args) {
  const hring_call_t *c = args;
  HRING_CHECK(hring__coll_state_check(c->fn, comm));
  hring_result_t r = hring__coll_host_prelude(comm, NULL);
  if (r != HRING_SUCCESS) {
    hring__comm_fail(comm, r);
    return r;
  }
  return hring__call_run(comm, c);
}

/* Checks now; queues what must move, completes at once what need not
 * (count 0, or one rank: a local copy). */
static hring_result_t issue(const hring_call_t *c, hring_comm_t comm, hring_request_t *req) {
  if (!req) return hring__err(HRING_ERR_INVALID_ARGUMENT, "%s: req is NULL", c->fn);
  HRING_CHECK(hring__comm_enter(comm, c->fn));
  hring_result_t r = hring__call_check(c, comm);
  if (r == HRING_SUCCESS) {
    if (hring__call_empty(c)) r = hring__request_done(HRING_SUCCESS, req);
    else if (comm->nranks == 1) r = hring__request_done(hring__call_run(comm, c), req);
    else r = hring__progress_issue(comm, op_run, c, sizeof *c, c->fn, req);
  }
  hring__comm_leave(comm);
  return r;
}

HRING_API hring_result_t hring_iallreduce(const void *sendbuf, void *recvbuf, size_t count,
                                          hring_datatype_t type, hring_redop_t op,
                                          hring_comm_t comm, hring_request_t *req) {
  hring_call_t c = {HRING_CALL_ALLREDUCE, "hring_iallreduce", sendbuf, recvbuf, count, type, op,
                    -1};
  return issue(&c, comm, req);
}

HRING_API hring_result_t hring_ireduce_scatter(const void *sendbuf, void *recvbuf,
                                               size_t recvcount, hring_datatype_t type,
                                               hring_redop_t op, hring_comm_t comm,
                                               hring_request_t *req) {
  hring_call_t c = {HRING_CALL_REDUCE_SCATTER, "hring_ireduce_scatter", sendbuf, recvbuf,
                    recvcount, type, op, -1};
  return issue(&c, comm, req);
}

HRING_API hring_result_t hring_iallgather(const void *sendbuf, void *recvbuf, size_t sendcount,
                                          hring_datatype_t type, hring_comm_t comm,
                                          hring_request_t *req) {
  hring_call_t c = {HRING_CALL_ALLGATHER, "hring_iallgather", sendbuf, recvbuf, sendcount, type,
                    HRING_SUM, -1};
  return issue(&c, comm, req);
}

HRING_API hring_result_t hring_ibroadcast(const void *sendbuf, void *recvbuf, size_t count,
                                          hring_datatype_t type, int root, hring_comm_t comm,
                                          hring_request_t *req) {
  hring_call_t c = {HRING_CALL_BROADCAST, "hring_ibroadcast", sendbuf, recvbuf, count, type,
                    HRING_SUM, root};
  return issue(&c, comm, req);
}

HRING_API hring_result_t hring_ireduce(const void *sendbuf, void *recvbuf, size_t count,
                                       hring_datatype_t type, hring_redop_t op, int root,
                                       hring_comm_t comm, hring_request_t *req) {
  hring_call_t c = {HRING_CALL_REDUCE, "hring_ireduce", sendbuf, recvbuf, count, type, op, root};
  return issue(&c, comm, req);
}

HRING_API hring_result_t hring_ibarrier(hring_comm_t comm, hring_request_t *req) {
  hring_call_t c = {HRING_CALL_BARRIER, "hring_ibarrier", NULL, NULL, 0, HRING_UINT8, HRING_SUM,
                    -1};
  return issue(&c, comm, req);
}
