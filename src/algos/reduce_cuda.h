/*
 * reduce_cuda.h - the CUDA plugin's device kernels (reduce_cuda.cu: the
 * reductions, and the delay of delay_async) as core/cuda_plugin.cu calls
 * them.  Internal to the plugin: both files are C++ compiled by nvcc, and
 * nothing here is exported.
 */
#ifndef HRING_ALGOS_REDUCE_CUDA_H
#define HRING_ALGOS_REDUCE_CUDA_H

#include <stddef.h>

#include <cuda_runtime.h>

#include "core/cuda.h"
#include "hring.h"

/* Size of one element of type t, 0 for a type out of range.  The plugin
 * does not link libhring, so it cannot use hring_type_size(). */
static inline size_t hring__cuda_esize(int t) {
  static const unsigned char size[HRING_NUM_TYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return t >= 0 && t < HRING_NUM_TYPES ? size[t] : 0;
}

/* Enqueues dst[i] = srcs[0][i] op ... op srcs[n-1][i] on stream s, with the
 * semantics of cuda.h's reduce_async.  The caller has checked the arguments:
 * 2 <= n <= HRING_CUDA_MAX_SRCS, type and op in range, count > 0, no NULL
 * pointer, every pointer aligned to the element size.  Returns the launch's
 * status. */
cudaError_t hring__cuda_reduce_launch(void *dst, const void *const *srcs, int n, size_t count,
                                      hring_datatype_t type, hring_redop_t op, int div,
                                      cudaStream_t s);

/* Enqueues the kernel of reduce_push_async (cuda.h); args is host_alloc
 * memory, type and op in range. */
cudaError_t hring__cuda_push_launch(const hring_cuda_push_t *args, size_t max_count,
                                    hring_datatype_t type, hring_redop_t op, cudaStream_t s);

/* Enqueues a one-thread kernel that spins for `us` microseconds of the
 * device's global timer. */
cudaError_t hring__cuda_delay_launch(unsigned us, cudaStream_t s);

/* Loads every kernel above into the current device's context now.  Why:
 * with lazy module loading (the default since CUDA 12.2) the first launch
 * of a kernel may wait for the whole device, and a stream parked on
 * stream_wait_flag until this very thread writes the flag never finishes:
 * a deadlock.  Call it once per device, before any stream wait. */
cudaError_t hring__cuda_kernels_load(void);

#endif
