/*
 * plugin_check.c - checks a CUDA plugin (real or mock) through its table
 * only: the kernels against the host's generic reduction for every type,
 * op, input count, alignment and in place; stream waits; memory, IPC and
 * pointer queries.  Built by make as build/bin/plugin_check; the first step
 * of tests/gpu/run.sh, so that a failure there is told apart from one in
 * the collectives above the plugin.
 *
 * Run:  plugin_check path/to/libhring_cuda.so [quick]
 * Prints one line per check and "plugin_check: N failures" at the end; exit 0 when all pass.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "algos/reduce_isa.h"
#include "core/cuda.h"

static const hring_cuda_api_t *cu;
static int failures;
static void *stream;

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      failures++;                                                         \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                         \
      printf(__VA_ARGS__);                                                \
      printf(" [last_error: %s]\n", cu->last_error());                    \
    }                                                                     \
  } while (0)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Polls until the stream is idle; returns the last query value. */
static int sync_stream(void *s) {
  int q;
  double t0 = now_s();
  while ((q = cu->stream_query(s)) == 1 && now_s() - t0 < 30) usleep(50);
  return q;
}

static const size_t esize[HRING_NUM_TYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Mostly ordinary values, some zeros of both signs, subnormals and random bits (NaN, inf). */
static void fill(unsigned char *b, size_t count, int type) {
  size_t es = esize[type];
  for (size_t i = 0; i < count; i++) {
    unsigned char *e = b + i * es;
    uint64_t r = rnd();
    int kind = (int)(rnd() % 16);
    if (type == HRING_FLOAT32) {
      float f = (float)((int64_t)(r % 2000001) - 1000000) / 997.0f;
      if (kind == 0) f = 0.0f;
      else if (kind == 1) f = -0.0f;
      else if (kind == 2) f = 1e-40f * (float)(r % 100);
      else if (kind == 3) memcpy(&f, &r, 4);
      memcpy(e, &f, 4);
    } else if (type == HRING_FLOAT64) {
      double f = (double)((int64_t)(r % 2000001) - 1000000) / 997.0;
      if (kind == 0) f = 0.0;
      else if (kind == 1) f = -0.0;
      else if (kind == 2) memcpy(&f, &r, 8);
      memcpy(e, &f, 8);
    } else if (type == HRING_FLOAT16 || type == HRING_BFLOAT16) {
      uint16_t h = (uint16_t)r;
      if (kind < 8) h = (uint16_t)(type == HRING_FLOAT16 ? 0x3c00 : 0x3f80) + (uint16_t)(r % 0x0800) - 0x400;
      else if (kind == 8) h = 0;
      else if (kind == 9) h = 0x8000;
      else if (kind == 10) h = (uint16_t)(r % 0x400); /* subnormal */
      memcpy(e, &h, 2);
    } else {
      memcpy(e, &r, es);
    }
  }
}

static int is_nan(const unsigned char *e, int type) {
  uint16_t h;
  float f;
  double d;
  switch (type) {
    case HRING_FLOAT16: memcpy(&h, e, 2); return (h & 0x7fff) > 0x7c00;
    case HRING_BFLOAT16: memcpy(&h, e, 2); return (h & 0x7fff) > 0x7f80;
    case HRING_FLOAT32: memcpy(&f, e, 4); return f != f;
    case HRING_FLOAT64: memcpy(&d, e, 8); return d != d;
    default: return 0;
  }
}

/* Index of the first element that differs (NaN vs NaN allowed for sum/prod/avg), or -1. */
static long first_diff(const unsigned char *a, const unsigned char *b, size_t count, int type, int op) {
  size_t es = esize[type];
  for (size_t i = 0; i < count; i++) {
    if (!memcmp(a + i * es, b + i * es, es)) continue;
    if (op != HRING_MAX && op != HRING_MIN && is_nan(a + i * es, type) && is_nan(b + i * es, type))
      continue;
    return (long)i;
  }
  return -1;
}

static void ref_reduce(void *dst, const void *const *s, int n, size_t count, int type, int op, int div) {
  if (op == HRING_AVG && div <= 1) op = HRING_SUM;
  for (int k = 1; k < n; k++) {
    int kop = op == HRING_AVG && k < n - 1 ? HRING_SUM : op;
    hring__reduce_generic_table[type][kop](dst, NULL, k == 1 ? s[0] : dst, s[k], count, div, 0);
  }
}

#define MAX_COUNT ((1 << 20) + 16)
static unsigned char *hbuf[HRING_CUDA_MAX_SRCS], *want, *got;
static void *dbuf[HRING_CUDA_MAX_SRCS], *ddst;

/* One case: n sources of count elements at element offset `off`, in place when inplace. */
static void reduce_case(int type, int op, int n, size_t count, int div, int off, int inplace) {
  size_t es = esize[type], bytes = (count + 4) * es;
  const void *hs[HRING_CUDA_MAX_SRCS], *ds[HRING_CUDA_MAX_SRCS];
  int ok = 1;
  for (int k = 0; k < n; k++) {
    fill(hbuf[k], count + 4, type);
    hs[k] = hbuf[k] + off * es;
    ok &= cu->memcpy_async(dbuf[k], hbuf[k], bytes, stream) == 0;
    ds[k] = (char *)dbuf[k] + off * es;
  }
  ok &= sync_stream(stream) == 0;
  CHECK(ok, "setup type %d op %d", type, op);
  void *dst = inplace ? (void *)ds[0] : (char *)ddst + off * es;
  ref_reduce(want, hs, n, count, type, op, div);
  int rc = cu->reduce_async(dst, ds, n, count, type, op, div, stream);
  CHECK(rc == 0, "reduce_async type %d op %d n %d count %zu", type, op, n, count);
  CHECK(cu->memcpy_async(got, dst, count * es, stream) == 0, "copy back");
  CHECK(sync_stream(stream) == 0, "sync after reduce type %d op %d n %d count %zu", type, op, n, count);
  long i = first_diff(got, want, count, type, op);
  CHECK(i < 0, "reduce type %d op %d n %d count %zu div %d off %d inplace %d: element %ld differs",
        type, op, n, count, div, off, inplace, i);
}

static void check_reductions(int quick) {
  static const size_t counts[] = {1, 3, 16, 17, 1000, 4099, 1 << 20, (1 << 20) + 5};
  static const int ns[] = {2, 3, 16};
  int before = failures;
  for (int k = 0; k < HRING_CUDA_MAX_SRCS; k++) {
    hbuf[k] = malloc(MAX_COUNT * 8);
    CHECK(cu->mem_alloc(&dbuf[k], MAX_COUNT * 8) == 0, "mem_alloc");
  }
  want = malloc(MAX_COUNT * 8);
  got = malloc(MAX_COUNT * 8);
  CHECK(cu->mem_alloc(&ddst, MAX_COUNT * 8) == 0, "mem_alloc");
  for (int type = 0; type < HRING_NUM_TYPES; type++)
    for (int op = 0; op < HRING_NUM_OPS; op++)
      for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
        for (int ni = 0; ni < 3; ni++) {
          if (quick && (c % 2 || ni == 1)) continue;
          int div = op == HRING_AVG ? (ni == 0 ? 1 : 3) : 0;
          reduce_case(type, op, ns[ni], counts[c], div, 0, 0);
          reduce_case(type, op, ns[ni], counts[c], div, 1, 0); /* scalar path */
          reduce_case(type, op, ns[ni], counts[c], div, 0, 1); /* dst == srcs[0] */
        }
  printf("%s reductions (%d failures)\n", failures == before ? "ok  " : "FAIL", failures - before);
}

struct flag_arg {
  uint32_t *flag;
  uint32_t value;
  int delay_ms;
};
static void *write_flag(void *p) {
  struct flag_arg *a = p;
  usleep(a->delay_ms * 1000);
  __atomic_store_n(a->flag, a->value, __ATOMIC_RELEASE);
  return NULL;
}

/* The stream must not pass the wait until the flag is written (from another thread). */
static void check_wait(int host_fn, uint32_t start, uint32_t value) {
  uint32_t *flag;
  void *dev;
  uint32_t marker = 0xabcd1234, seen = 0;
  CHECK(cu->host_alloc((void **)&flag, 64) == 0 && cu->mem_alloc(&dev, 64) == 0, "alloc");
  *flag = start;
  CHECK(cu->memcpy_async(dev, &seen, 4, stream) == 0 && sync_stream(stream) == 0, "clear");
  struct flag_arg a = {flag, value, 200};
  pthread_t t;
  pthread_create(&t, NULL, write_flag, &a);
  double t0 = now_s();
  CHECK(cu->stream_wait_flag(stream, flag, value, host_fn) == 0, "stream_wait_flag host_fn %d", host_fn);
  CHECK(cu->memcpy_async(dev, &marker, 4, stream) == 0, "marker");
  if (now_s() - t0 < 0.1) /* the real plugin returns at once; the mock blocks */
    CHECK(cu->stream_query(stream) == 1, "stream passed the wait early (host_fn %d)", host_fn);
  CHECK(sync_stream(stream) == 0, "sync after flag");
  double waited = now_s() - t0;
  CHECK(cu->memcpy_async(&seen, dev, 4, stream) == 0 && sync_stream(stream) == 0, "read back");
  CHECK(seen == marker, "marker not copied after the wait");
  CHECK(waited > 0.15, "wait lasted only %.3f s", waited);
  printf("ok?  stream_wait_flag host_fn %d from %#x to %#x: %.3f s\n", host_fn, start, value, waited);
  pthread_join(t, NULL);
  cu->host_free(flag);
  cu->mem_free(dev);
}

static void check_basics(void) {
  char name[256] = "";
  CHECK(cu->device_name(0, name, sizeof name) == 0, "device_name");
  printf("device: %s\n", name);
  CHECK(cu->set_device(0) == 0, "set_device");
  int dev = -1;
  CHECK(cu->get_device(&dev) == 0 && dev == 0, "get_device %d", dev);
  CHECK(cu->stream_create(&stream) == 0, "stream_create");
  void *d = NULL, *h = NULL, *b = NULL;
  size_t size = 0;
  uint64_t id1 = 0, id2 = 0;
  int local = 0;
  CHECK(cu->mem_alloc(&d, 1 << 20) == 0, "mem_alloc");
  CHECK(cu->host_alloc(&h, 4096) == 0, "host_alloc");
  CHECK(cu->ptr_device(d) == 0 && cu->ptr_device((char *)d + 1000) == 0, "ptr_device(device)");
  CHECK(cu->ptr_device(h) == -1, "ptr_device(pinned) = %d", cu->ptr_device(h));
  CHECK(cu->ptr_device(&local) == -1, "ptr_device(stack)");
  CHECK(cu->mem_range((char *)d + 12345, &b, &size, &id1) == 0, "mem_range");
  CHECK(b == d && size >= (1 << 20), "mem_range base %p (want %p) size %zu", b, d, size);
  unsigned char handle[HRING_CUDA_IPC_BYTES];
  CHECK(cu->ipc_get(d, handle) == 0, "ipc_get");
  cu->mem_free(d);
  CHECK(cu->mem_alloc(&d, 1 << 20) == 0 && cu->mem_range(d, &b, &size, &id2) == 0, "realloc");
  CHECK(id1 != id2, "mem_range ids equal after free + alloc (%llu)", (unsigned long long)id1);
  cu->mem_free(d);
  cu->host_free(h);
  /* delay and events */
  void *ev;
  CHECK(cu->event_create(&ev) == 0, "event_create");
  double t0 = now_s();
  CHECK(cu->delay_async(stream, 50000) == 0, "delay_async");
  CHECK(cu->event_record(ev, stream) == 0, "event_record");
  int q0 = cu->event_query(ev);
  while (cu->event_query(ev) == 1 && now_s() - t0 < 10) usleep(100);
  double dt = now_s() - t0;
  CHECK(cu->event_query(ev) == 0, "event never completed");
  CHECK(dt > 0.045, "delay of 50 ms took %.3f s (first query %d)", dt, q0);
  printf("ok?  delay 50 ms: %.3f s, first event query %d\n", dt, q0);
  cu->event_destroy(ev);
  CHECK(cu->reduce_async(NULL, NULL, 1, 1, HRING_FLOAT32, HRING_SUM, 0, stream) != 0, "n = 1 accepted");
  printf("     (n = 1 refused with: %s)\n", cu->last_error());
}

static void bench(int type, int n) {
  size_t count = (256u << 20) / esize[type];
  void *d[HRING_CUDA_MAX_SRCS];
  for (int k = 0; k < n; k++) {
    if (cu->mem_alloc(&d[k], count * esize[type]) != 0) return;
  }
  const void *s[HRING_CUDA_MAX_SRCS];
  for (int k = 0; k < n; k++) s[k] = d[k];
  for (int k = 0; k < 3; k++) cu->reduce_async(d[0], s, n, count, type, HRING_SUM, 0, stream);
  sync_stream(stream);
  double t0 = now_s();
  for (int k = 0; k < 20; k++) cu->reduce_async(d[0], s, n, count, type, HRING_SUM, 0, stream);
  sync_stream(stream);
  double dt = (now_s() - t0) / 20;
  printf("bench type %d n %d: %.3f ms per 256 MiB, %.1f GB/s of traffic (%d reads + 1 write)\n", type, n,
         dt * 1e3, (n + 1) * 256.0 * (1 << 20) / dt / 1e9, n);
  for (int k = 0; k < n; k++) cu->mem_free(d[k]);
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "./libhring_cuda.so";
  int quick = argc > 2 && strcmp(argv[2], "quick") == 0;
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    printf("dlopen: %s\n", dlerror());
    return 2;
  }
  hring_cuda_plugin_fn fn = (hring_cuda_plugin_fn)dlsym(lib, HRING_CUDA_PLUGIN_SYMBOL);
  cu = fn ? fn() : NULL;
  if (!cu || cu->abi != HRING_CUDA_ABI) {
    printf("no plugin table\n");
    return 2;
  }
  int n = cu->probe();
  printf("plugin %s: probe %d %s\n", cu->name, n, n < 0 ? cu->last_error() : "");
  if (n <= 0) return 2;
  check_basics();
  check_wait(0, 0, 5);
  check_wait(1, 0, 5);
  check_wait(0, 0xfffffff0u, 0x10); /* wraps: 0xfffffff0 - 0x10 < 0 as int32 */
  check_wait(1, 0xfffffff0u, 0x10);
  check_reductions(quick);
  if (!quick) {
    bench(HRING_FLOAT32, 2);
    bench(HRING_BFLOAT16, 2);
    bench(HRING_FLOAT32, 8);
  }
  cu->stream_destroy(stream);
  printf("plugin_check: %d failures\n", failures);
  return failures != 0;
}
