/*
 * test_device.c - collectives on device buffers, stream-ordered.
 *
 * Without a GPU (CI) the ranks load the mock plugin (tests/cudamock), whose
 * device memory is shared host memory, so that the whole device path above
 * the plugin table runs: the proxy queue, the IPC probe and caches, the
 * reduce-and-push kernel's arguments, staging, agreement checks.  With
 * HRING_TEST_DEVICE=real (tests/gpu/run.sh) the same tests use the real
 * plugin on the GPU, every rank on device 0.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cuda.h"
#include "mp.h"
#include "values.h"

static int real_gpu(void) {
  const char *v = getenv("HRING_TEST_DEVICE");
  return v && strcmp(v, "real") == 0;
}

/* Chooses the plugin in the test process, before any rank is forked. */
static void use_plugin(void) {
  if (real_gpu()) return;
  static char path[4200];
  snprintf(path, sizeof path, "%s/../lib/libhring_cudamock.so", mp_bindir());
  setenv("HRING_CUDA_PLUGIN", path, 1);
}

typedef struct {
  const hring_cuda_api_t *cu;
  void *stream;
  unsigned char *hin, *hout, *poison; /* pinned host */
  unsigned char *exp;
  void *din, *dout;
  size_t cap;
} dev_bufs_t;

static void bufs_open(dev_bufs_t *b, int rank, size_t maxc) {
  const hring_cuda_api_t *cu = hring__cuda();
  HREQUIRE(cu, "rank %d: %s", rank, hring__cuda_status());
  HREQUIRE(cu->set_device(0) == 0, "set_device: %s", cu->last_error());
  b->cu = cu;
  b->cap = maxc * 8 + 64;
  HREQUIRE(cu->host_alloc((void **)&b->hin, b->cap) == 0 && cu->host_alloc((void **)&b->hout, b->cap) == 0 &&
               cu->host_alloc((void **)&b->poison, b->cap) == 0,
           "host_alloc: %s", cu->last_error());
  HREQUIRE(cu->mem_alloc(&b->din, b->cap) == 0 && cu->mem_alloc(&b->dout, b->cap) == 0,
           "mem_alloc: %s", cu->last_error());
  HREQUIRE(cu->stream_create(&b->stream) == 0, "stream_create: %s", cu->last_error());
  b->exp = malloc(b->cap);
  HREQUIRE(b->exp, "malloc");
  memset(b->poison, 0xa5, b->cap);
}

static void bufs_close(dev_bufs_t *b) {
  const hring_cuda_api_t *cu = b->cu;
  cu->stream_destroy(b->stream);
  cu->mem_free(b->din);
  cu->mem_free(b->dout);
  cu->host_free(b->hin);
  cu->host_free(b->hout);
  cu->host_free(b->poison);
  free(b->exp);
}

static void stream_wait(dev_bufs_t *b, void *s) {
  for (long i = 0; i < 600L * 100000; i++) {
    int q = b->cu->stream_query(s);
    HREQUIRE(q >= 0, "stream_query: %s", b->cu->last_error());
    if (q == 0) return;
    usleep(10);
  }
  HREQUIRE(0, "stream never completed");
}

/* One case: input copied in after a delay, the collective, the result
 * copied out, all queued on one stream; only then is the stream awaited. */
static int run_case(dev_bufs_t *b, hring_comm_t comm, int rank, int n, size_t count,
                    hring_datatype_t t, hring_redop_t op, int inplace, void *s) {
  const hring_cuda_api_t *cu = b->cu;
  size_t es = hring_type_size(t), bytes = count * es;
  for (size_t i = 0; i < count; i++) {
    mp_value(b->hin, i, t, op, rank, n);
    mp_expected(b->exp, i, t, op, n);
  }
  memset(b->hin + bytes, 0xa5, 8);
  memset(b->hout, 0x5a, bytes + 8);
  void *dst = inplace ? b->din : b->dout;
  HREQUIRE(cu->memcpy_async(b->dout, b->poison, bytes + 8, s) == 0 && cu->delay_async(s, 200) == 0 &&
               cu->memcpy_async(b->din, b->hin, bytes + 8, s) == 0,
           "queueing the input: %s", cu->last_error());
  hring_result_t r = hring_allreduce(b->din, dst, count, t, op, comm, s);
  HREQUIRE(r == HRING_SUCCESS, "rank %d: device allreduce count %zu type %d op %d: %s: %s", rank,
           count, t, op, hring_strerror(r), hring_last_error());
  HREQUIRE(cu->memcpy_async(b->hout, dst, bytes + 8, s) == 0, "copy out: %s", cu->last_error());
  stream_wait(b, s);
  hring_result_t async = HRING_SUCCESS;
  hring_comm_get_async_error(comm, &async);
  HREQUIRE(async == HRING_SUCCESS, "rank %d: async error %s: %s", rank, hring_strerror(async),
           hring_last_error());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < count; i++)
    if (memcmp(b->hout + i * es, b->exp + i * es, es) != 0 && bad++ == 0) first = i;
  HCHECK(bad == 0, "rank %d n %d: count %zu type %d op %d inplace %d: %zu wrong, first at %zu", rank,
         n, count, t, op, inplace, bad, first);
  HCHECK(memcmp(b->hout + bytes, b->poison, 8) == 0, "rank %d: wrote past the end (count %zu type %d)",
         rank, count, t);
  return bad == 0;
}

typedef struct {
  const size_t *counts;
  int ncounts;
  int all_types;
} dev_matrix_t;

static void matrix_body(hring_comm_t comm, int rank, int n, void *arg) {
  const dev_matrix_t *m = arg;
  size_t maxc = 0;
  for (int k = 0; k < m->ncounts; k++) maxc = m->counts[k] > maxc ? m->counts[k] : maxc;
  dev_bufs_t b;
  bufs_open(&b, rank, maxc);
  for (int k = 0; k < m->ncounts; k++) {
    for (int t = 0; t < HRING_NUM_TYPES; t++) {
      if (!m->all_types && t != HRING_FLOAT32 && t != HRING_BFLOAT16) continue;
      for (int op = 0; op < HRING_NUM_OPS; op++)
        for (int inplace = 0; inplace < 2; inplace++)
          if (!run_case(&b, comm, rank, n, m->counts[k], (hring_datatype_t)t, (hring_redop_t)op,
                        inplace, (k + t) % 3 == 2 ? NULL : b.stream))
            goto done;
    }
    /* A host collective between device ones on the same communicator. */
    int x = rank + 1, sum = 0;
    HREQUIRE(hring_allreduce(&x, &sum, 1, HRING_INT32, HRING_SUM, comm, NULL) == HRING_SUCCESS,
             "host allreduce between device ones: %s", hring_last_error());
    HCHECK(sum == n * (n + 1) / 2, "host allreduce between device ones: %d", sum);
  }
done:
  bufs_close(&b);
}

static void run_matrix(int n, int all_types) {
  use_plugin();
  /* Shards smaller than a 64-byte group (some ranks get none), odd counts,
   * and several staging chunks at 64 KiB. */
  static const size_t counts[] = {1, 7, 1001, 65543, 300001};
  dev_matrix_t m = {counts, 5, all_types};
  HREQUIRE(mp_run(n, matrix_body, &m) == 0, "device matrix on %d ranks failed", n);
}

HTEST(device_matrix_np1, 120) { run_matrix(1, 1); }
HTEST(device_matrix_np2, 180) { run_matrix(2, 1); }
HTEST(device_matrix_np4, 300) { run_matrix(4, 1); }

/* Ranks that cannot map each other's memory stage through the host. */
HTEST(device_staged_no_ipc, 180) {
  setenv("HRING_CUDA_IPC", "0", 1);
  setenv("HRING_CUDA_STAGE_CHUNK", "64K", 1); /* many chunks: the pipeline */
  run_matrix(3, 0);
}

HTEST(device_staged_two_nodes, 180) {
  setenv("MP_NODES", "2", 1);
  run_matrix(4, 0);
}

/* The stream waits through a blocking host function instead. */
HTEST(device_hostfn_wait, 180) {
  setenv("HRING_CUDA_WAIT", "hostfn", 1);
  run_matrix(2, 0);
}

HTEST(device_ipc_open_fails, 120) {
  if (real_gpu()) htest_skip("the mock's failure injection only");
  setenv("HRING_MOCK_IPC_FAIL", "1", 1);
  run_matrix(2, 0);
}
