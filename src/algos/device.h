/*
 * device.h - collectives on device (GPU) buffers, stream-ordered.
 *
 * The call enqueues and returns (as NCCL does): it records an event on the
 * caller's stream, hands the operation to the communicator's proxy thread,
 * and makes the stream wait for a host flag that the proxy raises when the
 * result is in place.  The proxy waits for the event (the inputs are
 * ready), runs the collective with copies and reduction kernels on its own
 * stream, and raises the flag.  docs/gpu.md gives the design and its costs.
 *
 * Paths, chosen the same way on every rank:
 *   - one node, CUDA IPC usable (agreed by a probe at the first call):
 *     up to HRING_CUDA_ONESHOT_MAX every rank copies its input into a
 *     scratch buffer that the others have mapped, and reduces all of them
 *     (one step); above, each rank reduces its shard of the peers' buffers
 *     (mapped by IPC handle, cached) and then gathers the others' shards;
 *   - otherwise the data is staged through pinned host buffers in chunks,
 *     device copies overlapping the host collective of the previous chunk.
 */
#ifndef HRING_ALGOS_DEVICE_H
#define HRING_ALGOS_DEVICE_H

#include "algos/algo.h"
#include "core/cuda.h"

/* Enqueues an allreduce of device buffers on `stream` (NULL: the default
 * stream).  dev is the device of the buffers. */
hring_result_t hring__dev_allreduce(struct hring_comm *comm, const hring_coll_args_t *a,
                                    void *stream, int dev);

/* Waits (bounded) until every enqueued device collective of comm has
 * completed: host collectives on the same comm call it first, so that the
 * two never share the connections at once. */
hring_result_t hring__dev_drain(struct hring_comm *comm);

/* Stops the proxy (after draining when `drain`), releases every stream
 * still waiting on comm, and frees the device state. */
void hring__dev_close(struct hring_comm *comm, int drain);

/* Makes the caller wait until the work queued on stream so far is done
 * (host buffers passed with a stream: the collective then runs at once). */
hring_result_t hring__dev_stream_sync(struct hring_comm *comm, void *stream);

/* ---- shared by the device files ---- */

/* Every rank's copy of a small record: all[p * bytes] holds rank p's;
 * also the barrier of the device paths. */
hring_result_t hring__exchange_small(struct hring_comm *comm, const void *mine, void *all,
                                     size_t bytes);

/* The host collective itself (count > 0, nranks > 1, arguments checked). */
hring_result_t hring__allreduce_run(struct hring_comm *comm, const hring_coll_args_t *a);

#endif
