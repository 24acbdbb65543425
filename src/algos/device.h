/*
 * device.h - collectives on device (GPU) buffers, stream-ordered.
 *
 * The call queues the whole collective on the caller's stream and returns
 * (as NCCL does); the communicator's proxy thread coordinates the ranks on
 * the host.  device_impl.h and docs/gpu.md give the design: one node with
 * CUDA IPC reduces and pushes in one kernel (device_ipc.c); otherwise data
 * is staged through pinned host buffers (device_stage.c).
 */
#ifndef HRING_ALGOS_DEVICE_H
#define HRING_ALGOS_DEVICE_H

#include "algos/algo.h"
#include "core/cuda.h"

/* Staged allreduces are cut into chunks of HRING_CUDA_STAGE_CHUNK bytes,
 * at least this many. */
#define HRING_DEV_STAGE_MIN 4096

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
