/* device.c - device buffers of the perf binaries (device.h). */
#include "device.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/cuda.h"

struct perf_dev {
  const hring_cuda_api_t *cu;
  void *buf[2];
  void *stream;
};

perf_dev_t *perf_dev_open(size_t bytes, int local_rank, char *desc, size_t desclen) {
  const hring_cuda_api_t *cu = hring__cuda();
  if (!cu) {
    snprintf(desc, desclen, "host memory (%s)", hring__cuda_status());
    return NULL;
  }
  int ndev = cu->probe();
  int dev = ndev > 0 ? local_rank % ndev : 0;
  perf_dev_t *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->cu = cu;
  char name[200] = "?";
  cu->device_name(dev, name, sizeof name);
  if (cu->set_device(dev) != 0 || cu->mem_alloc(&d->buf[0], bytes) != 0 ||
      cu->mem_alloc(&d->buf[1], bytes) != 0 || cu->stream_create(&d->stream) != 0) {
    snprintf(desc, desclen, "host memory (device %d failed: %s)", dev, cu->last_error());
    perf_dev_close(d);
    return NULL;
  }
  snprintf(desc, desclen, "device %d, %s", dev, name);
  return d;
}

void perf_dev_close(perf_dev_t *d) {
  if (!d) return;
  for (int i = 0; i < 2; i++)
    if (d->buf[i]) d->cu->mem_free(d->buf[i]);
  if (d->stream) d->cu->stream_destroy(d->stream);
  free(d);
}

void *perf_dev_stream(perf_dev_t *d) { return d ? d->stream : NULL; }

void *perf_dev_ptr(perf_dev_t *d, int which, size_t off) { return (char *)d->buf[which] + off; }

int perf_dev_sync(perf_dev_t *d) {
  for (;;) {
    int q = d->cu->stream_query(d->stream);
    if (q == 0) return 0;
    if (q < 0) {
      fprintf(stderr, "device stream: %s\n", d->cu->last_error());
      return -1;
    }
    sched_yield();
  }
}

int perf_dev_up(perf_dev_t *d, int which, size_t off, const void *host, size_t n) {
  if (d->cu->memcpy_async(perf_dev_ptr(d, which, off), host, n, d->stream) != 0) {
    fprintf(stderr, "copy to device: %s\n", d->cu->last_error());
    return -1;
  }
  return perf_dev_sync(d);
}

int perf_dev_down(perf_dev_t *d, int which, size_t off, void *host, size_t n) {
  if (d->cu->memcpy_async(host, perf_dev_ptr(d, which, off), n, d->stream) != 0) {
    fprintf(stderr, "copy from device: %s\n", d->cu->last_error());
    return -1;
  }
  return perf_dev_sync(d);
}
