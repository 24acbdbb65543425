/*
 * ctx_bench.cu - what sharing one GPU between processes costs, the floor
 * under any multi-process device collective on one GPU.
 *
 *   ctx_bench procs N     N processes, each timing tiny kernel + sync and
 *                         8-byte D2H + H2D copies + sync, concurrently
 *   ctx_bench inproc N    N ranks in one process (ncclCommInitAll on the
 *                         drop-in), timing an 8-byte ncclAllReduce on every
 *                         rank's stream, then sync: no context switches
 *
 * Without MPS, contexts of different processes time-share the GPU, so
 * per-step latency grows with the number of busy processes.
 */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__global__ void tiny(int *p) { p[0] += 1; }

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static int procs_child(int id, int n) {
  cudaSetDevice(0);
  cudaStream_t s;
  int *d, *h;
  cudaStreamCreate(&s);
  cudaMalloc(&d, 64);
  cudaMallocHost(&h, 64);
  for (int pass = 0; pass < 2; pass++) {
    const int iters = 2000;
    double t0 = now_us();
    for (int i = 0; i < iters; i++) {
      if (pass == 0) tiny<<<1, 1, 0, s>>>(d);
      else {
        cudaMemcpyAsync(h, d, 8, cudaMemcpyDeviceToHost, s);
        cudaMemcpyAsync(d, h, 8, cudaMemcpyHostToDevice, s);
      }
      cudaStreamSynchronize(s);
    }
    printf("procs %d id %d: %s + sync: %.1f us per iteration\n", n, id,
           pass == 0 ? "kernel" : "8 B D2H + H2D", (now_us() - t0) / iters);
    fflush(stdout);
  }
  return cudaGetLastError() != cudaSuccess;
}

static int inproc(int n) {
  ncclComm_t comms[8];
  cudaStream_t st[8];
  float *buf[8];
  int devs[8] = {0};
  if (n > 8) n = 8;
  cudaSetDevice(0);
  if (ncclCommInitAll(comms, n, devs) != ncclSuccess) {
    fprintf(stderr, "ncclCommInitAll: %s\n", ncclGetLastError(NULL));
    return 1;
  }
  for (int r = 0; r < n; r++) {
    cudaStreamCreate(&st[r]);
    cudaMalloc(&buf[r], 64);
    cudaMemset(buf[r], 0, 64);
  }
  for (int pass = 0; pass < 2; pass++) {
    const int iters = pass ? 2000 : 50;
    double t0 = now_us();
    for (int i = 0; i < iters; i++) {
      ncclGroupStart();
      for (int r = 0; r < n; r++) ncclAllReduce(buf[r], buf[r], 2, ncclFloat32, ncclSum, comms[r], st[r]);
      if (ncclGroupEnd() != ncclSuccess) {
        fprintf(stderr, "ncclGroupEnd: %s\n", ncclGetLastError(NULL));
        return 1;
      }
    }
    for (int r = 0; r < n; r++) cudaStreamSynchronize(st[r]);
    if (pass) printf("inproc %d ranks: 8 B ncclAllReduce, queued back to back: %.1f us per op\n", n,
                     (now_us() - t0) / iters);
  }
  for (int r = 0; r < n; r++) ncclCommDestroy(comms[r]);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "procs";
  int n = argc > 2 ? atoi(argv[2]) : 2;
  if (strcmp(mode, "inproc") == 0) return inproc(n);
  for (int i = 0; i < n; i++)
    if (fork() == 0) _exit(procs_child(i, n));
  int st, bad = 0;
  while (wait(&st) > 0) bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return bad != 0;
}
