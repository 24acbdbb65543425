/*
 * device.h - device buffers for the perf binaries: the benchmark keeps host
 * mirrors for filling and checking, and these calls move them to and from
 * the device and wait for the stream.  Without CUDA (or with --host) the
 * benchmark runs on host memory and none of this is used.
 */
#ifndef HRING_PERF_DEVICE_H
#define HRING_PERF_DEVICE_H

#include <stddef.h>

typedef struct perf_dev perf_dev_t;

/* Two device buffers of `bytes` each and a stream, on the device of this
 * local rank; NULL when CUDA is unavailable (desc then says why). */
perf_dev_t *perf_dev_open(size_t bytes, int local_rank, char *desc, size_t desclen);
void perf_dev_close(perf_dev_t *d);
void *perf_dev_stream(perf_dev_t *d);
/* Device address of byte `off` of buffer which (0 send, 1 recv). */
void *perf_dev_ptr(perf_dev_t *d, int which, size_t off);
/* Copies n bytes host -> device buffer (up) or back (down), and waits. */
int perf_dev_up(perf_dev_t *d, int which, size_t off, const void *host, size_t n);
int perf_dev_down(perf_dev_t *d, int which, size_t off, void *host, size_t n);
/* Waits until the stream's work is done; 0 or -1 (message on stderr). */
int perf_dev_sync(perf_dev_t *d);

#endif
