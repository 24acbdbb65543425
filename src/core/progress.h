/*
 * progress.h - the queue of a communicator's nonblocking collectives, the
 * requests that follow them, and who runs them (docs/nonblocking.md).
 *
 * A communicator that issued a nonblocking collective has one engine: a
 * FIFO of requests and one executor at a time, so that collectives run in
 * the order they were issued on every rank.  The executor is the progress
 * thread (HRING_PROGRESS=thread), or a thread inside hring_test/hring_wait
 * (caller), or a blocking collective that claimed it once the queue was
 * empty.  An op holds the communicator while it runs (hring__comm_enter),
 * so hring_comm_abort waits for it as for a blocking call.
 *
 * A request is shared by the user and the engine (a count of two), so it
 * outlives the communicator until the user has waited or tested it.
 */
#ifndef HRING_CORE_PROGRESS_H
#define HRING_CORE_PROGRESS_H

#include <stddef.h>

#include "core/comm.h"
#include "hring.h"

/* The collective an op runs, on its executor, with the communicator held.
 * It checks the communicator's state first, and fails the communicator on
 * a failure that leaves the peers out of step. */
typedef hring_result_t (*hring_progress_fn)(struct hring_comm *comm, const void *args);

/* Queues run(comm, args) behind the ops already queued (args_bytes are
 * copied) and returns its request in *req.  Called with the handle held
 * by the issuing thread; the engine and its thread start here the first
 * time.  On failure nothing is queued and *req is unchanged. */
hring_result_t hring__progress_issue(struct hring_comm *comm, hring_progress_fn run,
                                     const void *args, size_t args_bytes, const char *fn,
                                     hring_request_t *req);

/* A request already complete with result r (and, when r fails, the
 * thread's last error as its message): for calls with nothing to queue. */
hring_result_t hring__request_done(hring_result_t r, hring_request_t *req);

/* Takes the executor once every queued op has completed (caller mode:
 * runs them here).  *waited says whether there was anything to wait for,
 * so the caller checks the communicator's state again.  Without an engine
 * it costs one load and holds nothing. */
hring_result_t hring__progress_claim_slow(struct hring_comm *comm, int *waited);
static inline hring_result_t hring__progress_claim(struct hring_comm *comm, int *held,
                                                   int *waited) {
  *waited = 0;
  *held = comm->progress != NULL;
  return *held ? hring__progress_claim_slow(comm, waited) : HRING_SUCCESS;
}
void hring__progress_release(struct hring_comm *comm);
/* Waits for q as hring_wait does, but leaves it to the user, and returns
 * how long its collective ran on its executor (queueing excluded; 0 when
 * it never ran): what the fusion planner learns a bucket's cost from. */
double hring__request_run_time(hring_request_t q);
/* When its executor finished it (hring__now_ns's clock; waits first). */
uint64_t hring__request_end_ns(hring_request_t q);

/* Ends the engine.  drain (destroy; the handle is still registered and
 * held): every queued op runs or fails within its bounds first.  Without
 * drain (abort, after the handle left the registry): the op running now
 * ends at the abort flag and the queued ones complete with
 * HRING_ERR_INVALID_USAGE.  Then the thread is joined and the engine
 * freed; the requests stay until their user frees them. */
void hring__progress_close(struct hring_comm *comm, int drain);

#endif
