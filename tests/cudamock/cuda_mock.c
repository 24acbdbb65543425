/*
 * cuda_mock.c - the CUDA plugin table (core/cuda.h) without CUDA, built as
 * libhring_cudamock.so and loaded with HRING_CUDA_PLUGIN=<path>.
 *
 * Why: CI machines have no GPU, but hring reaches the GPU only through
 * hring_cuda_api_t, so a plugin keeping that contract on the CPU lets the
 * whole device path above the table run in the tests.
 * - "Device memory" is a memfd mapped MAP_SHARED, so that ipc_open in
 *   another process can map it too (through /proc/<pid>/fd/<fd>).  A
 *   registry of ranges answers ptr_device and mem_range.
 * - Stream work is done at the call, so queries always say "complete" and
 *   stream_wait_flag blocks the caller until someone writes the flag.
 * Knobs: HRING_MOCK_DEVICES (device count, default 1; 0 makes probe fail),
 * HRING_MOCK_IPC_FAIL=1 (ipc_open fails, to exercise fallbacks).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "algos/reduce.h"
#include "core/cuda.h"
#include "core/visibility.h"

#define STREAM_MAGIC 0x4d535452u /* "MSTR" */
#define EVENT_MAGIC 0x4d45564eu  /* "MEVN" */
#define IPC_MAGIC 0x4d495043u    /* "MIPC" */
#define WAIT_LIMIT_S 600         /* a lost flag write should fail, not hang CI */

/* ---- errors ---- */
static _Thread_local char err_buf[256];

/* Writes "mock: <fn>: <why>" (or "mock: <why>" when fn is NULL); returns -1
 * so that callers can `return fail(...)`. */
__attribute__((format(printf, 2, 3))) static int fail(const char *fn, const char *fmt, ...) {
  int n = snprintf(err_buf, sizeof err_buf, "mock: %s%s", fn ? fn : "", fn ? ": " : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf + n, sizeof err_buf - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *last_error(void) { return err_buf; }

/* ---- devices ---- */
static _Thread_local int cur_dev; /* like the runtime's per-thread device */

static int device_count(void) {
  const char *v = getenv("HRING_MOCK_DEVICES");
  return v && *v ? atoi(v) : 1;
}

static int probe(void) {
  int n = device_count();
  if (n <= 0) return fail(NULL, "HRING_MOCK_DEVICES=%s", getenv("HRING_MOCK_DEVICES"));
  return n;
}

static int check_dev(const char *fn, int dev) {
  int n = device_count();
  return dev >= 0 && dev < n ? 0 : fail(fn, "device %d out of range [0, %d)", dev, n);
}

static int device_name(int dev, char *name, size_t len) {
  if (check_dev(__func__, dev) != 0) return -1;
  if (!name || len == 0) return fail(__func__, "no buffer");
  snprintf(name, len, "hring mock device (host memory)");
  return 0;
}

static int get_device(int *dev) {
  if (!dev) return fail(__func__, "dev is NULL");
  *dev = cur_dev;
  return 0;
}

static int set_device(int dev) {
  if (check_dev(__func__, dev) != 0) return -1;
  cur_dev = dev;
  return 0;
}

/* ---- the registry of device ranges ---- */
typedef struct {
  char *base;
  size_t size;
  uint64_t id;  /* unique for the life of the process */
  int fd;       /* the memfd of an own allocation; -1 when imported */
  int dev;      /* current device when allocated or opened */
  int imported; /* mapped by ipc_open: only ipc_close may unmap it */
} range_t;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static range_t *reg;
static size_t reg_n, reg_cap;
static uint64_t next_id = 1;

/* Adds r with a fresh id; -1 when the array cannot grow. */
static int reg_add(range_t r) {
  pthread_mutex_lock(&reg_mu);
  if (reg_n == reg_cap) {
    size_t cap = reg_cap ? 2 * reg_cap : 64;
    range_t *g = realloc(reg, cap * sizeof *g);
    if (g) {
      reg = g;
      reg_cap = cap;
    }
  }
  int ok = reg_n < reg_cap;
  if (ok) {
    r.id = next_id++;
    reg[reg_n++] = r;
  }
  pthread_mutex_unlock(&reg_mu);
  return ok ? 0 : -1;
}

/* Index of the range holding p (exact base when `exact`), or -1.  Caller
 * holds reg_mu. */
static long reg_find(const void *p, int exact) {
  const char *c = p;
  for (size_t i = 0; i < reg_n; i++) {
    if (exact ? c == reg[i].base : c >= reg[i].base && c < reg[i].base + reg[i].size)
      return (long)i;
  }
  return -1;
}

/* Copy of the range holding p; -1 when none. */
static int reg_get(const void *p, int exact, range_t *out) {
  pthread_mutex_lock(&reg_mu);
  long i = reg_find(p, exact);
  if (i >= 0) *out = reg[i];
  pthread_mutex_unlock(&reg_mu);
  return i >= 0 ? 0 : -1;
}

/* Removes the range based at p and unmaps it, under the lock so that the
 * address cannot be reused and registered by another thread in between.
 * Refuses a range whose `imported` differs from the caller's. */
static int reg_unmap(const char *fn, void *p, int imported) {
  int rc = 0;
  pthread_mutex_lock(&reg_mu);
  long i = reg_find(p, 1);
  if (i < 0) {
    rc = fail(fn, "%p is not the base of a device range", p);
  } else if (reg[i].imported != imported) {
    rc = fail(fn, "%p was %s", p, imported ? "allocated here" : "opened by ipc_open");
  } else {
    munmap(reg[i].base, reg[i].size);
    if (reg[i].fd >= 0) close(reg[i].fd);
    reg[i] = reg[--reg_n];
    if (reg_n == 0) { /* so that a leak checker sees nothing after the last free */
      free(reg);
      reg = NULL;
      reg_cap = 0;
    }
  }
  pthread_mutex_unlock(&reg_mu);
  return rc;
}

static int ptr_device(const void *p) {
  range_t r;
  return p && reg_get(p, 0, &r) == 0 ? r.dev : -1;
}

static int mem_range(const void *p, void **base, size_t *size, uint64_t *id) {
  range_t r;
  if (!p || reg_get(p, 0, &r) != 0) return fail(__func__, "%p is not device memory", p);
  if (base) *base = r.base;
  if (size) *size = r.size;
  if (id) *id = r.id;
  return 0;
}

/* ---- memory ---- */
static int mem_alloc(void **p, size_t bytes) {
  if (!p) return fail(__func__, "p is NULL");
  if (bytes == 0) bytes = 1; /* still a distinct address that mem_range knows */
  int fd = memfd_create("hring-mock-device", MFD_CLOEXEC);
  if (fd < 0) return fail(__func__, "memfd_create: %s", strerror(errno));
  void *m = MAP_FAILED;
  if (ftruncate(fd, (off_t)bytes) == 0)
    m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    close(fd);
    return fail(__func__, "%zu bytes: %s", bytes, strerror(e));
  }
  /* The fd stays open: it is what another process opens in ipc_open. */
  if (reg_add((range_t){.base = m, .size = bytes, .fd = fd, .dev = cur_dev}) != 0) {
    munmap(m, bytes);
    close(fd);
    return fail(__func__, "out of memory for the registry");
  }
  *p = m;
  return 0;
}

static int mem_free(void *p) {
  return p ? reg_unmap(__func__, p, 0) : 0; /* cudaFree(NULL) is a no-op */
}

static int host_alloc(void **p, size_t bytes) {
  if (!p) return fail(__func__, "p is NULL");
  int rc = posix_memalign(p, 4096, bytes ? bytes : 1);
  return rc == 0 ? 0 : fail(__func__, "%zu bytes: %s", bytes, strerror(rc));
}

static int host_free(void *p) {
  free(p);
  return 0;
}

/* ---- streams and events ---- */
/* A handle is a heap word holding its kind's magic number. */
static int new_handle(const char *fn, void **out, uint32_t magic) {
  if (!out) return fail(fn, "handle pointer is NULL");
  uint32_t *h = malloc(sizeof *h);
  if (!h) return fail(fn, "out of memory");
  *h = magic;
  *out = h;
  return 0;
}

/* NULL is the default stream when `null_ok`. */
static int check_handle(const char *fn, void *h, uint32_t magic, int null_ok) {
  if (!h ? null_ok : *(uint32_t *)h == magic) return 0;
  return fail(fn, "invalid %s handle %p", magic == STREAM_MAGIC ? "stream" : "event", h);
}

static int free_handle(const char *fn, void *h, uint32_t magic) {
  if (check_handle(fn, h, magic, 0) != 0) return -1;
  *(uint32_t *)h = 0; /* a stale handle then fails while its memory lasts */
  free(h);
  return 0;
}

static int stream_create(void **s) { return new_handle(__func__, s, STREAM_MAGIC); }
static int stream_destroy(void *s) { return free_handle(__func__, s, STREAM_MAGIC); }
static int stream_query(void *s) { return check_handle(__func__, s, STREAM_MAGIC, 1); }
static int event_create(void **e) { return new_handle(__func__, e, EVENT_MAGIC); }
static int event_destroy(void *e) { return free_handle(__func__, e, EVENT_MAGIC); }
static int event_query(void *e) { return check_handle(__func__, e, EVENT_MAGIC, 0); }

static int event_record(void *e, void *s) {
  if (check_handle(__func__, e, EVENT_MAGIC, 0) != 0) return -1;
  return check_handle(__func__, s, STREAM_MAGIC, 1);
}

/* ---- work on a stream (done at the call) ---- */
static int memcpy_async(void *dst, const void *src, size_t bytes, void *s) {
  if (check_handle(__func__, s, STREAM_MAGIC, 1) != 0) return -1;
  if (bytes && (!dst || !src)) return fail(__func__, "NULL buffer");
  if (bytes) memmove(dst, src, bytes);
  return 0;
}

static int reduce_async(void *dst, const void *const *srcs, int n, size_t count,
                        hring_datatype_t type, hring_redop_t op, int div, void *s) {
  if (check_handle(__func__, s, STREAM_MAGIC, 1) != 0) return -1;
  if (n < 2 || n > HRING_CUDA_MAX_SRCS)
    return fail(__func__, "n = %d outside [2, %d]", n, HRING_CUDA_MAX_SRCS);
  if ((unsigned)type >= HRING_NUM_TYPES) return fail(__func__, "bad type %d", (int)type);
  if ((unsigned)op >= HRING_NUM_OPS) return fail(__func__, "bad op %d", (int)op);
  if (!dst || !srcs) return fail(__func__, "NULL buffer");
  for (int k = 0; k < n; k++) {
    if (!srcs[k]) return fail(__func__, "srcs[%d] is NULL", k);
    /* dst == srcs[k], k >= 1, would be overwritten before step k reads it. */
    if (k >= 1 && srcs[k] == dst) return fail(__func__, "dst aliases srcs[%d]", k);
  }
  if (count == 0) return 0;
  hring__reduce(dst, NULL, srcs[0], srcs[1], count, type, op, n == 2 ? div : 0, 0);
  for (int k = 2; k < n; k++)
    hring__reduce(dst, NULL, dst, srcs[k], count, type, op, k == n - 1 ? div : 0, 0);
  return 0;
}

/* The mock runs it at the call, into a scratch vector and then to every
 * destination, so destinations may alias sources. */
static int reduce_push_async(const hring_cuda_push_t *a, size_t max_count, hring_datatype_t type,
                             hring_redop_t op, void *s) {
  if (check_handle(__func__, s, STREAM_MAGIC, 1) != 0) return -1;
  if (!a) return fail(__func__, "args is NULL");
  if ((unsigned)type >= HRING_NUM_TYPES || (unsigned)op >= HRING_NUM_OPS)
    return fail(__func__, "bad type %d or op %d", (int)type, (int)op);
  if (a->count == 0) return 0;
  if (a->count > max_count) return fail(__func__, "count %llu > max_count %zu",
                                        (unsigned long long)a->count, max_count);
  if (a->n < 2 || a->n > HRING_CUDA_MAX_SRCS || a->ndst > HRING_CUDA_MAX_SRCS)
    return fail(__func__, "n %llu or ndst %llu out of range", (unsigned long long)a->n,
                (unsigned long long)a->ndst);
  static const size_t es[HRING_NUM_TYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  size_t bytes = a->count * es[type];
  void *tmp = malloc(bytes);
  if (!tmp) return fail(__func__, "out of memory");
  const void *srcs[HRING_CUDA_MAX_SRCS];
  for (uint64_t k = 0; k < a->n; k++) srcs[k] = (const void *)(uintptr_t)a->srcs[k];
  int n = (int)a->n, div = (int)a->div;
  hring__reduce(tmp, NULL, srcs[0], srcs[1], a->count, type, op, n == 2 ? div : 0, 0);
  for (int k = 2; k < n; k++)
    hring__reduce(tmp, NULL, tmp, srcs[k], a->count, type, op, k == n - 1 ? div : 0, 0);
  for (uint64_t d = 0; d < a->ndst; d++) memcpy((void *)(uintptr_t)a->dsts[d], tmp, bytes);
  free(tmp);
  return 0;
}

static int stream_write_flag(void *s, uint32_t *flag, uint32_t value, int host_fn) {
  (void)host_fn;
  if (check_handle(__func__, s, STREAM_MAGIC, 1) != 0) return -1;
  if (!flag) return fail(__func__, "flag is NULL");
  __atomic_store_n(flag, value, __ATOMIC_RELEASE);
  return 0;
}

static int flag_reached(uint32_t *flag, uint32_t value) {
  return (int32_t)(__atomic_load_n(flag, __ATOMIC_ACQUIRE) - value) >= 0;
}

/* Spins first (the writer is usually just about to store), then yields,
 * then sleeps with a backoff capped at 200 us so a long wait costs no CPU. */
static int stream_wait_flag(void *s, uint32_t *flag, uint32_t value, int host_fn) {
  (void)host_fn; /* both kinds of wait are the same blocking wait here */
  if (check_handle(__func__, s, STREAM_MAGIC, 1) != 0) return -1;
  if (!flag) return fail(__func__, "flag is NULL");
  struct timespec t0, now, nap = {0, 1000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned i = 0; !flag_reached(flag, value); i++) {
    if (i < 1000) continue;
    if (i < 1100) {
      sched_yield();
      continue;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - t0.tv_sec >= WAIT_LIMIT_S)
      return fail(__func__, "flag %p still %u after %d s waiting for %u", (void *)flag,
                  __atomic_load_n(flag, __ATOMIC_ACQUIRE), WAIT_LIMIT_S, value);
    nanosleep(&nap, NULL);
    nap.tv_nsec = nap.tv_nsec >= 100000 ? 200000 : 2 * nap.tv_nsec;
  }
  return 0;
}

static int delay_async(void *s, unsigned us) {
  if (check_handle(__func__, s, STREAM_MAGIC, 1) != 0) return -1;
  usleep(us);
  return 0;
}

/* ---- inter-process handles ---- */
/* Zero-padded to HRING_CUDA_IPC_BYTES; the fd is open in the owner until
 * mem_free, so a peer can reach the memfd through /proc. */
typedef struct {
  uint32_t magic;
  int32_t pid, fd;
  uint64_t size, id;
} ipc_handle_t;
_Static_assert(sizeof(ipc_handle_t) <= HRING_CUDA_IPC_BYTES, "ipc handle too large");

static int ipc_get(void *base, void *handle) {
  range_t r;
  if (!handle) return fail(__func__, "handle is NULL");
  if (!base || reg_get(base, 1, &r) != 0 || r.imported)
    return fail(__func__, "%p is not the base of an allocation of this process", base);
  ipc_handle_t h = {.magic = IPC_MAGIC, .pid = (int32_t)getpid(), .fd = r.fd,
                    .size = r.size, .id = r.id};
  memset(handle, 0, HRING_CUDA_IPC_BYTES);
  memcpy(handle, &h, sizeof h);
  return 0;
}

/* A handle of this process: its own base, without a second mapping. */
static int open_local(const ipc_handle_t *h, void **base) {
  void *found = NULL;
  pthread_mutex_lock(&reg_mu);
  for (size_t i = 0; i < reg_n && !found; i++) {
    if (!reg[i].imported && reg[i].id == h->id) found = reg[i].base;
  }
  pthread_mutex_unlock(&reg_mu);
  if (!found) return fail("ipc_open", "no allocation with id %llu", (unsigned long long)h->id);
  *base = found;
  return 0;
}

static int open_remote(const ipc_handle_t *h, void **base) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)h->pid, (int)h->fd);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail("ipc_open", "open %s: %s", path, strerror(errno));
  void *m = mmap(NULL, (size_t)h->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd); /* the mapping keeps the memory alive */
  if (m == MAP_FAILED) return fail("ipc_open", "mmap %s: %s", path, strerror(e));
  range_t r = {.base = m, .size = (size_t)h->size, .fd = -1, .dev = cur_dev, .imported = 1};
  if (reg_add(r) != 0) {
    munmap(m, (size_t)h->size);
    return fail("ipc_open", "out of memory for the registry");
  }
  *base = m;
  return 0;
}

static int ipc_open(const void *handle, void **base) {
  const char *off = getenv("HRING_MOCK_IPC_FAIL");
  if (off && strcmp(off, "1") == 0) return fail(NULL, "ipc_open disabled by HRING_MOCK_IPC_FAIL");
  if (!handle || !base) return fail(__func__, "NULL argument");
  ipc_handle_t h;
  memcpy(&h, handle, sizeof h);
  if (h.magic != IPC_MAGIC || h.size == 0 || h.size > SIZE_MAX)
    return fail(__func__, "not a mock ipc handle");
  return h.pid == (int32_t)getpid() ? open_local(&h, base) : open_remote(&h, base);
}

static int ipc_close(void *base) {
  range_t r;
  if (base && reg_get(base, 1, &r) == 0 && !r.imported) return 0; /* opened locally */
  return reg_unmap(__func__, base, 1);
}

/* ---- the table ---- */
static const hring_cuda_api_t table = {
    .abi = HRING_CUDA_ABI, .name = "mock",
    .probe = probe, .last_error = last_error, .device_name = device_name,
    .ptr_device = ptr_device, .get_device = get_device, .set_device = set_device,
    .mem_alloc = mem_alloc, .mem_free = mem_free, .host_alloc = host_alloc,
    .host_free = host_free, .mem_range = mem_range,
    .stream_create = stream_create, .stream_destroy = stream_destroy,
    .stream_query = stream_query, .event_create = event_create,
    .event_destroy = event_destroy, .event_record = event_record, .event_query = event_query,
    .memcpy_async = memcpy_async, .reduce_async = reduce_async,
    .stream_wait_flag = stream_wait_flag, .stream_write_flag = stream_write_flag,
    .reduce_push_async = reduce_push_async, .delay_async = delay_async,
    .ipc_get = ipc_get, .ipc_open = ipc_open, .ipc_close = ipc_close,
};

HRING_API const hring_cuda_api_t *hring_cuda_plugin(void) { return &table; }
