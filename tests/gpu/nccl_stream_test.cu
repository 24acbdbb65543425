/*
 * nccl_stream_test.cu - an ordinary NCCL program, compiled against the
 * toolkit's nccl.h and run on hring's libnccl.so.2: kernels fill the send
 * buffers on a stream, ncclAllReduce is queued on the same stream, and a
 * kernel after it checks the result, so only stream order makes it pass.
 *
 *   nccl_stream_test [nranks (2)] [count (1048579)]
 *
 * Ranks are forked processes sharing GPU 0 (NCCL itself refuses that;
 * hring allows it).  The unique id is made before the fork, before any
 * CUDA call.  Exit status 0 when every rank passed.
 */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CK(x)                                                                      \
  do {                                                                             \
    cudaError_t e_ = (x);                                                          \
    if (e_ != cudaSuccess) {                                                       \
      fprintf(stderr, "rank %d: %s: %s\n", rank, #x, cudaGetErrorString(e_));      \
      return 1;                                                                    \
    }                                                                              \
  } while (0)
#define NK(x)                                                                      \
  do {                                                                             \
    ncclResult_t r_ = (x);                                                         \
    if (r_ != ncclSuccess) {                                                       \
      fprintf(stderr, "rank %d: %s: %s (%s)\n", rank, #x, ncclGetErrorString(r_),  \
              ncclGetLastError(NULL));                                             \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

/* Slow on purpose (many rounds), so that a collective that did not wait
 * for the stream would read the buffer before it is filled. */
__global__ void fill(float *x, __nv_bfloat16 *y, size_t n, int rank) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    float v = 0;
    for (int k = 0; k < 64; k++) v += (float)((i + k) % 3 == 0);
    x[i] = (float)((i + rank) % 7) + v * 0.0f;
    y[i] = __float2bfloat16((float)((i * 3 + rank) % 5));
  }
}

__global__ void check(const float *x, const __nv_bfloat16 *y, size_t n, int nranks,
                      unsigned long long *bad) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    float ex = 0, ey = 0;
    for (int r = 0; r < nranks; r++) {
      ex += (float)((i + r) % 7);
      ey += (float)((i * 3 + r) % 5);
    }
    if (x[i] != ex || __bfloat162float(y[i]) != ey) atomicAdd(bad, 1ull);
  }
}

static int run_rank(int rank, int nranks, size_t count, ncclUniqueId id) {
  CK(cudaSetDevice(0));
  ncclComm_t comm;
  NK(ncclCommInitRank(&comm, nranks, id, rank));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  float *x;
  __nv_bfloat16 *y;
  unsigned long long *bad, hbad_pageable = 0, *hbad_pinned = NULL;
  /* HBAD=pinned reads the verdict into pinned memory instead of the stack. */
  const char *hb = getenv("HBAD");
  if (hb && strcmp(hb, "pinned") == 0) CK(cudaMallocHost(&hbad_pinned, sizeof *hbad_pinned));
  unsigned long long &hbad = hbad_pinned ? *hbad_pinned : hbad_pageable;
  hbad = 0;
  NK(ncclMemAlloc((void **)&x, count * sizeof *x));
  CK(cudaMalloc(&y, count * sizeof *y));
  CK(cudaMalloc(&bad, sizeof *bad));
  void *reg;
  NK(ncclCommRegister(comm, x, count * sizeof *x, &reg));
  for (int iter = 0; iter < 3; iter++) {
    CK(cudaMemsetAsync(bad, 0, sizeof *bad, s));
    fill<<<64, 256, 0, s>>>(x, y, count, rank);
    NK(ncclGroupStart());
    NK(ncclAllReduce(x, x, count, ncclFloat32, ncclSum, comm, s));
    NK(ncclAllReduce(y, y, count, ncclBfloat16, ncclSum, comm, s));
    NK(ncclGroupEnd());
    if (getenv("TRACE")) fprintf(stderr, "rank %d iter %d: collectives queued\n", rank, iter);
    check<<<64, 256, 0, s>>>(x, y, count, nranks, bad);
    if (getenv("TRACE")) fprintf(stderr, "rank %d iter %d: check queued\n", rank, iter);
    CK(cudaMemcpyAsync(&hbad, bad, sizeof hbad, cudaMemcpyDeviceToHost, s));
    if (getenv("TRACE")) fprintf(stderr, "rank %d iter %d: copy queued\n", rank, iter);
    CK(cudaStreamSynchronize(s));
    ncclResult_t async;
    NK(ncclCommGetAsyncError(comm, &async));
    if (async != ncclSuccess || hbad) {
      fprintf(stderr, "rank %d iter %d: %llu wrong elements, async %s\n", rank, iter, hbad,
              ncclGetErrorString(async));
      return 1;
    }
  }
  NK(ncclCommDeregister(comm, reg));
  NK(ncclMemFree(x));
  CK(cudaFree(y));
  CK(cudaFree(bad));
  NK(ncclCommDestroy(comm));
  printf("rank %d: ok (%d ranks, %zu float32 + bfloat16 elements, stream-ordered)\n", rank, nranks,
         count);
  return 0;
}

int main(int argc, char **argv) {
  int nranks = argc > 1 ? atoi(argv[1]) : 2, rank = -1;
  size_t count = argc > 2 ? strtoull(argv[2], NULL, 10) : 1048579;
  int version = 0;
  ncclGetVersion(&version);
  ncclUniqueId id;
  NK(ncclGetUniqueId(&id));
  printf("NCCL version %d, %d ranks on GPU 0\n", version, nranks);
  fflush(stdout);
  for (int r = 0; r < nranks; r++)
    if (fork() == 0) _exit(run_rank(r, nranks, count, id));
  int failed = 0, st;
  while (wait(&st) > 0) failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("%s\n", failed ? "FAILED" : "PASSED");
  return failed ? 1 : 0;
}
