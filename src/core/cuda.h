/*
 * cuda.h - the CUDA plugin: everything hring asks of a GPU, as one table of
 * functions that libhring loads at run time.
 *
 * Why a plugin: one build must run everywhere.  libhring itself never links
 * CUDA; when a collective first needs it, cuda.c dlopens libhring_cuda.so
 * (built by nvcc next to libhring when the toolkit is found, with the CUDA
 * runtime linked statically, which in turn dlopens the driver).  On a
 * machine without a driver or device the plugin's probe says why, and hring
 * stays a host-memory library.  Tests on such machines load a mock plugin
 * with the same table (tests/cudamock/), whose "device memory" is shared
 * host memory, so that every line of the device path above this table runs
 * in CI.
 *
 * Conventions: functions return 0 on success, or a negative value after
 * writing a message with hring_cuda_api_t.last_error(); "stream" and "event"
 * are the runtime's cudaStream_t / cudaEvent_t passed as void *.  Every
 * function may be called from any thread after set_device().
 */
#ifndef HRING_CORE_CUDA_H
#define HRING_CORE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "hring.h"

#define HRING_CUDA_ABI 2
#define HRING_CUDA_IPC_BYTES 64 /* cudaIpcMemHandle_t */
#define HRING_CUDA_MAX_SRCS 16  /* inputs of one reduce launch */

/* Arguments of reduce_push_async, in memory that the kernel reads when it
 * runs (not when it is queued): the proxy fills them in after the ranks
 * have exchanged their buffers, while the stream waits, and the stream
 * copies them to device memory for the kernel (every block reads them;
 * from host memory that many small reads cost milliseconds).  Only 64-bit
 * fields, so the kernel can copy it word by word. */
typedef struct {
  uint64_t count;  /* elements; 0: the kernel does nothing */
  uint64_t n;      /* sources, reduced in this order (2..HRING_CUDA_MAX_SRCS) */
  uint64_t ndst;   /* destinations, each written the same result */
  int64_t div;     /* AVG's divisor (> 1), applied at the last step */
  uint64_t srcs[HRING_CUDA_MAX_SRCS]; /* device addresses */
  uint64_t dsts[HRING_CUDA_MAX_SRCS];
} hring_cuda_push_t;

typedef struct {
  int abi; /* HRING_CUDA_ABI */
  const char *name; /* "cuda" or "mock" */

  /* Number of devices (> 0), or a negative value when CUDA cannot be used
   * (the message says why, e.g. "cudaGetDeviceCount: insufficient driver").
   * Must not create a context: programs fork after it. */
  int (*probe)(void);
  const char *(*last_error)(void);
  /* Name and memory of device dev, for hring-info and benchmark reports. */
  int (*device_name)(int dev, char *name, size_t len);

  /* Device ordinal of the memory p points into, or -1 for host memory
   * (pageable or pinned) and for pointers CUDA does not know. */
  int (*ptr_device)(const void *p);
  int (*get_device)(int *dev);
  int (*set_device)(int dev);

  /* Memory. */
  int (*mem_alloc)(void **p, size_t bytes);   /* device memory, current device */
  int (*mem_free)(void *p);
  int (*host_alloc)(void **p, size_t bytes);  /* pinned, mapped into the device */
  int (*host_free)(void *p);
  /* Allocation that holds p: base, size and an id unique for the life of
   * the process (so a freed and reallocated range is told apart). */
  int (*mem_range)(const void *p, void **base, size_t *size, uint64_t *id);

  /* Streams and events; query returns 0 when complete, 1 when pending. */
  int (*stream_create)(void **s); /* non-blocking with respect to stream 0 */
  int (*stream_destroy)(void *s);
  int (*stream_query)(void *s);
  int (*event_create)(void **e);  /* timing disabled */
  int (*event_destroy)(void *e);
  int (*event_record)(void *e, void *s);
  int (*event_query)(void *e);

  /* Work on a stream. */
  int (*memcpy_async)(void *dst, const void *src, size_t bytes, void *s);
  /* dst[i] = srcs[0][i] op srcs[1][i] op ... op srcs[n-1][i], applied left
   * to right and rounded to the type after every step, as hring__reduce
   * does (reduce.h), with AVG's division by div (> 1) after the last step.
   * 2 <= n <= HRING_CUDA_MAX_SRCS; dst may equal srcs[0] exactly. */
  int (*reduce_async)(void *dst, const void *const *srcs, int n, size_t count,
                      hring_datatype_t type, hring_redop_t op, int div, void *s);
  /* Later work on s waits until *(volatile uint32_t *)flag - value, as a
   * signed 32-bit number, is >= 0.  flag is host_alloc memory.  host_fn
   * != 0 forces a blocking host function instead of a stream memory
   * operation (the fallback, also used when the device lacks them). */
  int (*stream_wait_flag)(void *s, uint32_t *flag, uint32_t value, int host_fn);
  /* The stream writes value to *flag (host_alloc memory) once the work
   * before it is done and visible; host_fn != 0 as in stream_wait_flag. */
  int (*stream_write_flag)(void *s, uint32_t *flag, uint32_t value, int host_fn);
  /* A reduction whose arguments (device or host_alloc memory) are read
   * from *args when it runs: for i <
   * args->count, every dsts[d][i] = srcs[0][i] op ... op srcs[n-1][i] (the
   * semantics of reduce_async).  Each element is read from every source
   * before any destination is written, so a destination may be one of the
   * sources.  max_count bounds args->count (it sizes the launch); type and
   * op are fixed at launch. */
  int (*reduce_push_async)(const hring_cuda_push_t *args, size_t max_count, hring_datatype_t type,
                           hring_redop_t op, void *s);
  /* Spins the device for about us microseconds (tests of stream order). */
  int (*delay_async)(void *s, unsigned us);

  /* Inter-process handles of device memory.  open returns the peer's base
   * address mapped here; close unmaps it. */
  int (*ipc_get)(void *base, void *handle /* HRING_CUDA_IPC_BYTES */);
  int (*ipc_open)(const void *handle, void **base);
  int (*ipc_close)(void *base);
} hring_cuda_api_t;

/* The symbol a plugin exports: returns its table, or NULL. */
typedef const hring_cuda_api_t *(*hring_cuda_plugin_fn)(void);
#define HRING_CUDA_PLUGIN_SYMBOL "hring_cuda_plugin"

/* ---- libhring's side (cuda.c) ---- */

/* The loaded plugin when CUDA is usable (probe found a device), else NULL.
 * Loaded once per process, lazily: HRING_CUDA=0 disables it, and
 * HRING_CUDA_PLUGIN names the file (default: libhring_cuda.so next to the
 * library or in ../lib from the executable, then the loader's path). */
const hring_cuda_api_t *hring__cuda(void);

/* Why hring__cuda() is NULL ("CUDA unavailable: ..."), or the plugin and
 * device count when it is not. */
const char *hring__cuda_status(void);

/* Device of p (-1: host), 0 cost when CUDA is unavailable. */
static inline int hring__cuda_ptr_device(const void *p) {
  const hring_cuda_api_t *c = hring__cuda();
  return c && p ? c->ptr_device(p) : -1;
}

#endif
