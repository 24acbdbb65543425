/*
 * cuda_plugin.cu - the CUDA plugin (core/cuda.h's table) on the CUDA
 * runtime, built as libhring_cuda.so with the runtime linked statically.
 *
 * Without a driver the library still loads (the static runtime opens
 * libcuda itself) and probe() says why.  The few driver functions used are
 * resolved through the runtime's entry-point API for the same reason:
 * linking libcuda would make the plugin fail to load.  Errors: -1 after
 * writing "<call>: <CUDA's text>" to a thread-local buffer.  The kernels
 * live in algos/reduce_cuda.cu.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda.h> /* driver types only; the functions come from entry points */
#include <cuda_runtime.h>

#include "algos/reduce_cuda.h"
#include "core/cuda.h"
#include "core/visibility.h"

static_assert(sizeof(cudaIpcMemHandle_t) == HRING_CUDA_IPC_BYTES, "IPC handle size");

#define MAX_DEVICES 64 /* devices whose kernels are tracked as loaded */

/* ---- errors ---------------------------------------------------------- */

static thread_local char err_buf[512];

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
  return -1;
}

/* Also clears the runtime's last error, so that a later check does not
 * see this failure again (sticky errors stay whatever we do). */
static int fail_cuda(const char *call, cudaError_t e) {
  (void)cudaGetLastError();
  return fail("%s: %s", call, cudaGetErrorString(e));
}

static int ck(const char *call, cudaError_t e) { return e == cudaSuccess ? 0 : fail_cuda(call, e); }

/* "<call>(<bytes> bytes): <text>", or 0 on success. */
static int ck_bytes(const char *call, size_t bytes, cudaError_t e) {
  char what[64];
  snprintf(what, sizeof what, "%s(%zu bytes)", call, bytes);
  return ck(what, e);
}

static const char *last_error(void) { return err_buf; }

/* ---- driver entry points --------------------------------------------- */

typedef CUresult (*error_name_fn)(CUresult, const char **);
typedef CUresult (*addr_range_fn)(CUdeviceptr *, size_t *, CUdeviceptr);
typedef CUresult (*ptr_attr_fn)(void *, CUpointer_attribute, CUdeviceptr);
typedef CUresult (*wait32_fn)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);
typedef CUresult (*ctx_current_fn)(CUcontext *);
typedef CUresult (*primary_state_fn)(CUdevice, unsigned int *, int *);

enum { DRV_ERROR_NAME, DRV_ADDR_RANGE, DRV_PTR_ATTR, DRV_WAIT32, DRV_CTX_CURRENT,
       DRV_PRIMARY_STATE, DRV_WRITE32, DRV_N };
static const char *const drv_names[DRV_N] = {
    "cuGetErrorName", "cuMemGetAddressRange", "cuPointerGetAttribute",
    "cuStreamWaitValue32", "cuCtxGetCurrent", "cuDevicePrimaryCtxGetState",
    "cuStreamWriteValue32"};
static void *drv_fn[DRV_N];
static char drv_why[DRV_N][160]; /* why drv_fn[i] is NULL */
static pthread_once_t drv_once = PTHREAD_ONCE_INIT;

/* The CUDA 12.0 ABI of each function (e.g. the _v2 of cuMemGetAddressRange),
 * whatever newer driver answers. */
static void drv_load(void) {
  for (int i = 0; i < DRV_N; i++) {
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    cudaError_t e = cudaGetDriverEntryPointByVersion(drv_names[i], &fn, 12000,
                                                     cudaEnableDefault, &q);
    const char *why = e != cudaSuccess ? cudaGetErrorString(e)
                      : q == cudaDriverEntryPointVersionNotSufficent ? "driver older than CUDA 12.0"
                      : q != cudaDriverEntryPointSuccess || !fn ? "no such driver symbol"
                      : NULL;
    (void)cudaGetLastError();
    if (why)
      snprintf(drv_why[i], sizeof drv_why[i], "cudaGetDriverEntryPointByVersion(%s): %s",
               drv_names[i], why);
    else
      drv_fn[i] = fn;
  }
}

/* Entry point i, or NULL (drv_why[i] says why). */
static void *drv(int i) {
  pthread_once(&drv_once, drv_load);
  return drv_fn[i];
}

static int fail_drv(const char *call, CUresult r) {
  const char *name = NULL;
  error_name_fn f = (error_name_fn)drv(DRV_ERROR_NAME);
  if (!f || f(r, &name) != CUDA_SUCCESS || !name) name = "unknown error";
  return fail("%s: %s (%d)", call, name, (int)r);
}

/* ---- devices --------------------------------------------------------- */

static int ndevices; /* probe's count */

/* cudaGetDeviceCount initializes the driver but creates no context. */
static int probe(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return fail_cuda("cudaGetDeviceCount", e);
  if (n <= 0) return fail("cudaGetDeviceCount: no CUDA device");
  __atomic_store_n(&ndevices, n, __ATOMIC_RELAXED);
  return n;
}

static int device_name(int dev, char *name, size_t len) {
  if (!name || len == 0) return fail("device_name: no buffer");
  cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, dev);
  if (e != cudaSuccess) return fail_cuda("cudaGetDeviceProperties", e);
  snprintf(name, len, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
           (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  return 0;
}

/* Whether any context exists.  cudaPointerGetAttributes creates the
 * calling thread's context when it has none, and a host-only program
 * must not pay a context on device 0 for asking about its buffers; with no
 * context anywhere, no device memory exists.  (Contexts made with the
 * driver's cuCtxCreate on another thread are not seen: nobody does that.) */
static int any_context(void) {
  ctx_current_fn cur = (ctx_current_fn)drv(DRV_CTX_CURRENT);
  primary_state_fn state = (primary_state_fn)drv(DRV_PRIMARY_STATE);
  if (!cur || !state) return 1; /* cannot tell: ask the runtime */
  CUcontext c = NULL;
  if (cur(&c) != CUDA_SUCCESS || c) return 1;
  int n = __atomic_load_n(&ndevices, __ATOMIC_RELAXED);
  for (int d = 0; d < n; d++) {
    unsigned int flags = 0;
    int active = 0;
    /* A CUdevice is its ordinal. */
    if (state((CUdevice)d, &flags, &active) != CUDA_SUCCESS || active) return 1;
  }
  return 0;
}

/* Host memory, pinned or not, managed memory and unknown pointers: -1. */
static int ptr_device(const void *p) {
  if (!p || !any_context()) return -1;
  cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError(); /* an unknown pointer: not an error here */
    return -1;
  }
  return a.type == cudaMemoryTypeDevice ? a.device : -1;
}

static int get_device(int *dev) { return ck("cudaGetDevice", cudaGetDevice(dev)); }

static unsigned char kernels_loaded[MAX_DEVICES];

/* Loads hring's kernels into dev's context now, not at their first launch
 * (reduce_cuda.h says why: lazy loading can deadlock a stream wait). */
static int load_kernels(int dev) {
  if (dev < 0 || dev >= MAX_DEVICES || __atomic_load_n(&kernels_loaded[dev], __ATOMIC_ACQUIRE))
    return 0;
  cudaError_t e = hring__cuda_kernels_load();
  if (e != cudaSuccess) return fail_cuda("cudaFuncGetAttributes (loading hring's kernels)", e);
  __atomic_store_n(&kernels_loaded[dev], 1, __ATOMIC_RELEASE);
  return 0;
}

static int set_device(int dev) {
  cudaError_t e = cudaSetDevice(dev);
  if (e != cudaSuccess) return fail_cuda("cudaSetDevice", e);
  return load_kernels(dev);
}

/* ---- memory ---------------------------------------------------------- */

/* Size 0 still gets an address of its own, as the mock plugin gives. */
static int mem_alloc(void **p, size_t bytes) {
  return ck_bytes("cudaMalloc", bytes, cudaMalloc(p, bytes ? bytes : 1));
}

static int mem_free(void *p) { return ck("cudaFree", cudaFree(p)); }

static int host_alloc(void **p, size_t bytes) {
  cudaError_t e = cudaHostAlloc(p, bytes ? bytes : 1, cudaHostAllocMapped | cudaHostAllocPortable);
  return ck_bytes("cudaHostAlloc", bytes, e);
}

static int host_free(void *p) { return ck("cudaFreeHost", cudaFreeHost(p)); }

static int mem_range(const void *p, void **base, size_t *size, uint64_t *id) {
  addr_range_fn range = (addr_range_fn)drv(DRV_ADDR_RANGE);
  ptr_attr_fn attr = (ptr_attr_fn)drv(DRV_PTR_ATTR);
  if (!range) return fail("%s", drv_why[DRV_ADDR_RANGE]);
  if (!attr) return fail("%s", drv_why[DRV_PTR_ATTR]);
  CUdeviceptr b = 0, ptr = (CUdeviceptr)(uintptr_t)p;
  size_t sz = 0;
  unsigned long long buffer_id = 0;
  /* The driver calls need a current context, which a thread that made no
   * runtime call yet lacks (seen with ranks driven from fresh threads):
   * one runtime call on the pointer's device binds it. */
  ctx_current_fn cur = (ctx_current_fn)drv(DRV_CTX_CURRENT);
  CUcontext c = NULL;
  if (cur && cur(&c) == CUDA_SUCCESS && !c) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) == cudaSuccess && a.type == cudaMemoryTypeDevice)
      (void)cudaSetDevice(a.device);
    (void)cudaGetLastError();
  }
  CUresult r = range(&b, &sz, ptr);
  if (r != CUDA_SUCCESS) return fail_drv("cuMemGetAddressRange", r);
  r = attr(&buffer_id, CU_POINTER_ATTRIBUTE_BUFFER_ID, ptr);
  if (r != CUDA_SUCCESS) return fail_drv("cuPointerGetAttribute(BUFFER_ID)", r);
  if (base) *base = (void *)(uintptr_t)b;
  if (size) *size = sz;
  if (id) *id = (uint64_t)buffer_id;
  return 0;
}

/* ---- streams and events ---------------------------------------------- */

/* cudaSuccess: 0 (complete); cudaErrorNotReady: 1 (pending); else -1. */
static int query(const char *call, cudaError_t e) {
  if (e == cudaSuccess) return 0;
  if (e == cudaErrorNotReady) return 1;
  return fail_cuda(call, e);
}

static int stream_create(void **s) {
  cudaError_t e = cudaStreamCreateWithFlags((cudaStream_t *)s, cudaStreamNonBlocking);
  return ck("cudaStreamCreateWithFlags", e);
}
static int stream_destroy(void *s) { return ck("cudaStreamDestroy", cudaStreamDestroy((cudaStream_t)s)); }
static int stream_query(void *s) { return query("cudaStreamQuery", cudaStreamQuery((cudaStream_t)s)); }
static int event_create(void **e) {
  cudaError_t r = cudaEventCreateWithFlags((cudaEvent_t *)e, cudaEventDisableTiming);
  return ck("cudaEventCreateWithFlags", r);
}
static int event_destroy(void *e) { return ck("cudaEventDestroy", cudaEventDestroy((cudaEvent_t)e)); }
static int event_record(void *e, void *s) {
  return ck("cudaEventRecord", cudaEventRecord((cudaEvent_t)e, (cudaStream_t)s));
}
static int event_query(void *e) { return query("cudaEventQuery", cudaEventQuery((cudaEvent_t)e)); }

/* ---- work on a stream ------------------------------------------------ */

static int memcpy_async(void *dst, const void *src, size_t bytes, void *s) {
  if (bytes == 0) return 0;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)s);
  return ck_bytes("cudaMemcpyAsync", bytes, e);
}

static int reduce_async(void *dst, const void *const *srcs, int n, size_t count,
                        hring_datatype_t type, hring_redop_t op, int div, void *s) {
  if (n < 2 || n > HRING_CUDA_MAX_SRCS)
    return fail("reduce_async: n = %d outside [2, %d]", n, HRING_CUDA_MAX_SRCS);
  if ((unsigned)type >= HRING_NUM_TYPES) return fail("reduce_async: bad type %d", (int)type);
  if ((unsigned)op >= HRING_NUM_OPS) return fail("reduce_async: bad op %d", (int)op);
  if (count == 0) return 0;
  if (!dst || !srcs) return fail("reduce_async: NULL buffer");
  /* A misaligned element would be a device fault, which kills the context:
   * refuse it here instead. */
  uintptr_t mask = hring__cuda_esize(type) - 1;
  if ((uintptr_t)dst & mask) return fail("reduce_async: dst %p not aligned to its type", dst);
  for (int k = 0; k < n; k++) {
    if (!srcs[k]) return fail("reduce_async: srcs[%d] is NULL", k);
    if ((uintptr_t)srcs[k] & mask)
      return fail("reduce_async: srcs[%d] %p not aligned to its type", k, srcs[k]);
    /* cuda.h allows dst == srcs[0] only; refusing the rest, as the mock
     * plugin does, keeps both plugins accepting the same calls. */
    if (k >= 1 && srcs[k] == dst) return fail("reduce_async: dst aliases srcs[%d]", k);
  }
  cudaError_t e = hring__cuda_reduce_launch(dst, srcs, n, count, type, op, div, (cudaStream_t)s);
  return e == cudaSuccess ? 0 : fail_cuda("cudaLaunchKernel (reduction)", e);
}

/* -- stream_wait_flag -- */

struct flag_wait {
  const uint32_t *flag;
  uint32_t value;
};

static int flag_reached(const uint32_t *flag, uint32_t value) {
  return (int32_t)(__atomic_load_n(flag, __ATOMIC_ACQUIRE) - value) >= 0;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__("pause");
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Runs on the runtime's callback thread and holds the stream until the
 * flag is reached.  Spins first (the writer is usually about to store),
 * then yields, then sleeps with a backoff capped at 100 us, so that a long
 * wait costs no CPU.  It calls no CUDA function, as host functions must
 * not.  It has no timeout: whoever gives up on the flag writes it. */
static void CUDART_CB wait_flag_fn(void *arg) {
  struct flag_wait *w = (struct flag_wait *)arg;
  const int64_t t0 = now_ns();
  long nap_ns = 1000;
  while (!flag_reached(w->flag, w->value)) {
    int64_t waited = now_ns() - t0;
    if (waited < 20000) {
      cpu_relax();
    } else if (waited < 200000) {
      sched_yield();
    } else {
      struct timespec ts = {0, nap_ns};
      nanosleep(&ts, NULL);
      nap_ns = nap_ns < 50000 ? 2 * nap_ns : 100000;
    }
  }
  free(w);
}

static int wait_host_fn(void *s, uint32_t *flag, uint32_t value) {
  struct flag_wait *w = (struct flag_wait *)malloc(sizeof *w);
  if (!w) return fail("stream_wait_flag: out of memory");
  w->flag = flag;
  w->value = value;
  cudaError_t e = cudaLaunchHostFunc((cudaStream_t)s, wait_flag_fn, w);
  if (e == cudaSuccess) return 0;
  free(w);
  return fail_cuda("cudaLaunchHostFunc", e);
}

static int memops_off; /* 1 once the driver refused a stream memory wait */

/* The driver's stream wait on the flag's device address; -1 (no message)
 * when it cannot be used, and the caller falls back to a host function. */
static int wait_value(void *s, uint32_t *flag, uint32_t value) {
  void *dev_flag = NULL;
  if (cudaHostGetDevicePointer(&dev_flag, flag, 0) != cudaSuccess) {
    (void)cudaGetLastError(); /* not mapped memory: this one wait on the host */
    return -1;
  }
  wait32_fn wait = (wait32_fn)drv(DRV_WAIT32);
  CUresult r = CUDA_ERROR_NOT_FOUND;
  if (wait) r = wait((CUstream)s, (CUdeviceptr)(uintptr_t)dev_flag, value, CU_STREAM_WAIT_VALUE_GEQ);
  if (r != CUDA_SUCCESS) {
    __atomic_store_n(&memops_off, 1, __ATOMIC_RELAXED);
    return -1;
  }
  return 0;
}

static int stream_wait_flag(void *s, uint32_t *flag, uint32_t value, int host_fn) {
  if (!flag) return fail("stream_wait_flag: flag is NULL");
  if (!host_fn && !__atomic_load_n(&memops_off, __ATOMIC_RELAXED) &&
      wait_value(s, flag, value) == 0)
    return 0;
  return wait_host_fn(s, flag, value);
}

/* ---- writing a flag from a stream ------------------------------------- */

static void CUDART_CB write_flag_fn(void *arg) {
  struct flag_wait *w = (struct flag_wait *)arg;
  __atomic_store_n((uint32_t *)w->flag, w->value, __ATOMIC_RELEASE); /* ours: written by this fn */
  free(w);
}

static int write_host_fn(void *s, uint32_t *flag, uint32_t value) {
  struct flag_wait *w = (struct flag_wait *)malloc(sizeof *w);
  if (!w) return fail("stream_write_flag: out of memory");
  w->flag = flag;
  w->value = value;
  cudaError_t e = cudaLaunchHostFunc((cudaStream_t)s, write_flag_fn, w);
  if (e == cudaSuccess) return 0;
  free(w);
  return fail_cuda("cudaLaunchHostFunc", e);
}

/* The default flags of cuStreamWriteValue32 fence the work before the
 * write: what the stream did is visible once the flag is. */
static int stream_write_flag(void *s, uint32_t *flag, uint32_t value, int host_fn) {
  if (!flag) return fail("stream_write_flag: flag is NULL");
  void *dev_flag = NULL;
  typedef CUresult (*write32_fn)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);
  write32_fn write = (write32_fn)drv(DRV_WRITE32);
  if (!host_fn && !__atomic_load_n(&memops_off, __ATOMIC_RELAXED) && write &&
      cudaHostGetDevicePointer(&dev_flag, flag, 0) == cudaSuccess &&
      write((CUstream)s, (CUdeviceptr)(uintptr_t)dev_flag, value, CU_STREAM_WRITE_VALUE_DEFAULT) ==
          CUDA_SUCCESS)
    return 0;
  (void)cudaGetLastError();
  return write_host_fn(s, flag, value);
}

static int reduce_push_async(const hring_cuda_push_t *args, size_t max_count,
                             hring_datatype_t type, hring_redop_t op, void *s) {
  if (!args) return fail("reduce_push_async: args is NULL");
  if ((unsigned)type >= HRING_NUM_TYPES || (unsigned)op >= HRING_NUM_OPS)
    return fail("reduce_push_async: type %d or op %d out of range", (int)type, (int)op);
  return ck("cudaLaunchKernel (push)", hring__cuda_push_launch(args, max_count, type, op,
                                                             (cudaStream_t)s));
}

static int delay_async(void *s, unsigned us) {
  return ck("cudaLaunchKernel (delay)", hring__cuda_delay_launch(us, (cudaStream_t)s));
}

/* ---- inter-process handles ------------------------------------------- */

static int ipc_get(void *base, void *handle) {
  cudaIpcMemHandle_t h;
  cudaError_t e = cudaIpcGetMemHandle(&h, base);
  if (e != cudaSuccess) return fail_cuda("cudaIpcGetMemHandle", e);
  memcpy(handle, &h, sizeof h);
  return 0;
}

static int ipc_open(const void *handle, void **base) {
  cudaIpcMemHandle_t h;
  memcpy(&h, handle, sizeof h);
  return ck("cudaIpcOpenMemHandle",
            cudaIpcOpenMemHandle(base, h, cudaIpcMemLazyEnablePeerAccess));
}

static int ipc_close(void *base) { return ck("cudaIpcCloseMemHandle", cudaIpcCloseMemHandle(base)); }

/* ---- the table ------------------------------------------------------- */

static const hring_cuda_api_t table = {
    HRING_CUDA_ABI, "cuda",
    probe, last_error, device_name,
    ptr_device, get_device, set_device,
    mem_alloc, mem_free, host_alloc, host_free, mem_range,
    stream_create, stream_destroy, stream_query,
    event_create, event_destroy, event_record, event_query,
    memcpy_async, reduce_async, stream_wait_flag, stream_write_flag, reduce_push_async,
    delay_async,
    ipc_get, ipc_open, ipc_close,
};

extern "C" HRING_API const hring_cuda_api_t *hring_cuda_plugin(void) { return &table; }
