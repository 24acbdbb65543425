/*
 * copy_bw.cu - device-to-device copy bandwidth of GPU 0 with cudaMemcpyAsync,
 * the ceiling hring's device reductions and copies are measured against.
 *
 * Usage: copy_bw [MiB]  (buffer size, default 256)
 * Prints one line per repetition, then
 *   d2d_copy_GBps <best> <median> <device name>
 * where GB/s counts the bytes copied once (not read plus write), in 1e9
 * bytes per second.  Exits 2, with CUDA's message, when there is no usable
 * device.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#define COPIES 20 /* per timed repetition */
#define REPS 5
#define WARMUP 3

static void check(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return;
  fprintf(stderr, "copy_bw: %s: %s\n", what, cudaGetErrorString(e));
  exit(2);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 256;
  if (mib <= 0) {
    fprintf(stderr, "usage: copy_bw [MiB > 0]\n");
    return 1;
  }
  size_t bytes = (size_t)mib << 20;

  int ndev = 0;
  check(cudaGetDeviceCount(&ndev), "cudaGetDeviceCount");
  if (ndev <= 0) {
    fprintf(stderr, "copy_bw: no CUDA device\n");
    return 2;
  }
  check(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");

  void *src, *dst;
  cudaStream_t s;
  cudaEvent_t start, stop;
  check(cudaMalloc(&src, bytes), "cudaMalloc");
  check(cudaMalloc(&dst, bytes), "cudaMalloc");
  check(cudaMemset(src, 1, bytes), "cudaMemset");
  check(cudaMemset(dst, 0, bytes), "cudaMemset");
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");

  for (int i = 0; i < WARMUP; i++)
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");

  double gbps[REPS];
  for (int r = 0; r < REPS; r++) {
    check(cudaEventRecord(start, s), "cudaEventRecord");
    for (int i = 0; i < COPIES; i++)
      check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync");
    check(cudaEventRecord(stop, s), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    gbps[r] = (double)bytes * COPIES / (ms / 1e3) / 1e9;
    printf("rep %d: %d x %ld MiB in %.3f ms: %.1f GB/s\n", r, COPIES, mib, ms, gbps[r]);
  }

  qsort(gbps, REPS, sizeof *gbps, cmp_double);
  printf("d2d_copy_GBps %.1f %.1f %s\n", gbps[REPS - 1], gbps[REPS / 2], prop.name);

  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(s);
  cudaFree(src);
  cudaFree(dst);
  return 0;
}
