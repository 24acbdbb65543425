/*
 * test_device_errors.c - loading CUDA at run time and falling back without
 * it, and the errors of the device path: mixed buffers, ranks that
 * disagree, a comm used after such a failure.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cuda.h"
#include "mp.h"

static void use_mock(void) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/../lib/libhring_cudamock.so", mp_bindir());
  setenv("HRING_CUDA_PLUGIN", path, 1);
}

/* Without CUDA, host collectives work and a stream is refused clearly. */
static void no_cuda_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  int x = rank + 1, sum = 0;
  HREQUIRE(hring_allreduce(&x, &sum, 1, HRING_INT32, HRING_SUM, comm, NULL) == HRING_SUCCESS,
           "host allreduce without CUDA: %s", hring_last_error());
  HCHECK(sum == n * (n + 1) / 2, "sum %d", sum);
  int dummy_stream;
  hring_result_t r = hring_allreduce(&x, &sum, 1, HRING_INT32, HRING_SUM, comm, &dummy_stream);
  HCHECK(r == HRING_ERR_UNSUPPORTED && strstr(hring_last_error(), "CUDA unavailable"),
         "a stream without CUDA gave %s: %s", hring_strerror(r), hring_last_error());
}

HTEST(cuda_plugin_missing, 60) {
  setenv("HRING_CUDA_PLUGIN", "/nonexistent/libhring_cuda.so", 1);
  HCHECK(hring__cuda() == NULL, "a missing plugin loaded");
  HCHECK(strstr(hring__cuda_status(), "CUDA unavailable: no plugin"), "status: %s",
         hring__cuda_status());
  HREQUIRE(mp_run(2, no_cuda_body, NULL) == 0, "host collectives without a plugin failed");
}

HTEST(cuda_disabled, 60) {
  use_mock();
  setenv("HRING_CUDA", "0", 1);
  HCHECK(hring__cuda() == NULL, "HRING_CUDA=0 loaded the plugin");
  HCHECK(strstr(hring__cuda_status(), "disabled by HRING_CUDA=0"), "status: %s", hring__cuda_status());
}

/* The real plugin, where it was built: on a machine without a driver it
 * loads and its probe says why CUDA cannot be used. */
HTEST(cuda_real_plugin_probe, 60) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/../lib/libhring_cuda.so", mp_bindir());
  struct stat sb;
  if (stat(path, &sb) != 0) htest_skip("libhring_cuda.so not built (no nvcc)");
  setenv("HRING_CUDA_PLUGIN", path, 1);
  if (hring__cuda()) htest_skip("a GPU is present: %s", hring__cuda_status());
  HCHECK(strstr(hring__cuda_status(), "CUDA unavailable: cudaGetDeviceCount"), "status: %s",
         hring__cuda_status());
  HREQUIRE(mp_run(2, no_cuda_body, NULL) == 0, "host collectives beside a GPU-less plugin failed");
}

static void mixed_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)arg;
  const hring_cuda_api_t *cu = hring__cuda();
  HREQUIRE(cu, "%s", hring__cuda_status());
  float *d = NULL, host[4] = {7, 7, 7, 7};
  HREQUIRE(cu->mem_alloc((void **)&d, sizeof host) == 0, "mem_alloc");
  hring_result_t r = hring_allreduce(d, host, 4, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HCHECK(r == HRING_ERR_INVALID_ARGUMENT && strstr(hring_last_error(), "both must be"),
         "mixed buffers gave %s: %s", hring_strerror(r), hring_last_error());
  HCHECK(host[0] == 7 && host[3] == 7, "a refused call wrote its output");
  /* The communicator is still good. */
  float one[4] = {1, 1, 1, 1};
  HREQUIRE(cu->memcpy_async(d, one, sizeof one, NULL) == 0, "copy");
  r = hring_allreduce(d, d, 4, HRING_FLOAT32, HRING_SUM, comm, NULL);
  HREQUIRE(r == HRING_SUCCESS, "device allreduce after a refused call: %s", hring_last_error());
  HREQUIRE(cu->memcpy_async(host, d, sizeof host, NULL) == 0, "copy");
  HREQUIRE(hring_comm_get_async_error(comm, &r) == HRING_SUCCESS && r == HRING_SUCCESS,
           "async error %s", hring_strerror(r));
  HCHECK(host[0] == (float)n && host[3] == (float)n, "result %g", host[0]);
  cu->mem_free(d);
  (void)rank;
}

HTEST(device_mixed_buffers, 60) {
  use_mock();
  HREQUIRE(mp_run(2, mixed_body, NULL) == 0, "mixed buffers");
}

/* Ranks passing different counts all get an error naming both, at the
 * communicator (the call itself only enqueued), and later calls are refused. */
static void disagree_body(hring_comm_t comm, int rank, int n, void *arg) {
  (void)n;
  size_t base = *(size_t *)arg, count = base + (size_t)rank;
  const hring_cuda_api_t *cu = hring__cuda();
  HREQUIRE(cu, "%s", hring__cuda_status());
  void *d = NULL;
  HREQUIRE(cu->mem_alloc(&d, (base + 8) * 4) == 0, "mem_alloc");
  void *s = NULL;
  HREQUIRE(cu->stream_create(&s) == 0, "stream");
  hring_result_t r = hring_allreduce(d, d, count, HRING_FLOAT32, HRING_SUM, comm, s);
  /* A slow rank may learn of the disagreement (a peer's notice) before it
   * enqueues: the call is then refused at once, which is as good. */
  HREQUIRE(r == HRING_SUCCESS ||
               ((r == HRING_ERR_REMOTE || r == HRING_ERR_INVALID_USAGE) &&
                strstr(hring_last_error(), "count")),
           "enqueue: %s: %s", hring_strerror(r), hring_last_error());
  for (int i = 0; i < 100000 && r == HRING_SUCCESS && cu->stream_query(s) == 1; i++) usleep(100);
  hring_result_t async = HRING_SUCCESS;
  for (int i = 0; i < 1000 && async == HRING_SUCCESS; i++) {
    hring_comm_get_async_error(comm, &async);
    if (async == HRING_SUCCESS) usleep(1000);
  }
  /* The rank that sees the disagreement: invalid usage; the others may
   * learn it from its failure notice first: a remote error. */
  HCHECK(async == HRING_ERR_INVALID_USAGE || async == HRING_ERR_REMOTE,
         "rank %d: disagreeing counts gave %s", rank, hring_strerror(async));
  r = hring_allreduce(d, d, count, HRING_FLOAT32, HRING_SUM, comm, s);
  HCHECK(r == HRING_ERR_INVALID_USAGE && strstr(hring_last_error(), "count"),
         "rank %d: the failed comm gave %s: %s", rank, hring_strerror(r), hring_last_error());
  cu->stream_destroy(s);
  cu->mem_free(d);
}

HTEST(device_counts_disagree, 60) {
  use_mock();
  setenv("HRING_TIMEOUT_MS", "5000", 1);
  size_t small = 10, large = 100000;
  HREQUIRE(mp_run(2, disagree_body, &small) == 0, "small count");
  HREQUIRE(mp_run(3, disagree_body, &large) == 0, "large count");
}
