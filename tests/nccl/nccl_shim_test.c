/*
 * nccl_shim_test.c - an NCCL program, compiled against the real nccl.h and
 * linked to hring's NCCL shim (libnccl.so.2 from the build), that checks the
 * shim implements the NCCL ABI and semantics it claims.
 *
 * Run one process per rank (build/bin/hring-run -n N nccl_shim_test): rank
 * and size come from HRING_RANK and HRING_NRANKS (1 rank when unset).  The
 * ncclUniqueId travels through a file: rank 0 writes it to the path named by
 * NCCL_SHIM_TEST_ID (a temporary file, then rename, so a reader never sees
 * half of it) and the other ranks poll for it.  The path must not exist when
 * the job starts (tests/mp/test_nccl_shim.c makes a fresh directory).
 *
 * Every rank: version and error strings; ncclCommInitRank and the comm
 * queries; ncclAllReduce over every type and op, counts 0, 1, 3 and 1001, in
 * and out of place, and 1M+3 elements; a nested group; invalid arguments
 * (nothing written, comm still usable); ncclReduceScatter, ncclAllGather,
 * ncclBroadcast, ncclBcast and ncclReduce over several types, ops and
 * counts, in and out of place, every root, and their refusals;
 * ncclCommSplit (parity colors with reversed keys, inside a group, with
 * NCCL_SPLIT_NOCOLOR, and a bad config on one rank that every rank sees
 * fail); ncclCommInitRankConfig.  Rank 0 then also runs the single-process
 * forms: ncclCommInitAll with 4 ranks, a grouped allreduce over them and a
 * grouped ncclCommSplit of them, and two ncclCommInitRank calls in one
 * group.
 *
 * Inputs are small integers, so every result is exact in any order of
 * summation and is compared exactly.  Prints "nccl_shim_test: rank R OK" and
 * exits 0 when everything matched, 1 otherwise.
 */
#define _GNU_SOURCE /* the build uses -std=c11: ask for POSIX explicitly */
#include <nccl.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h> /* NAN and INFINITY only */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The shim's own copy of these types (src/nccl/nccl_abi.h) asserts the same
 * numbers, so the two agree on the layout a caller and the shim share. */
_Static_assert(sizeof(ncclUniqueId) == 128, "ncclUniqueId size");
_Static_assert(sizeof(ncclResult_t) == sizeof(int), "ncclResult_t size");
_Static_assert(sizeof(ncclRedOp_t) == sizeof(int), "ncclRedOp_t size");
_Static_assert(sizeof(ncclDataType_t) == sizeof(int), "ncclDataType_t size");
_Static_assert(ncclNumResults == 8 && ncclInProgress == 7 && ncclRemoteError == 6,
               "ncclResult_t values");
_Static_assert(ncclBfloat16 == 9 && ncclFloat8e4m3 == 10 && ncclFloat8e5m2 == 11 &&
                   ncclNumTypes == 12,
               "ncclDataType_t values");
_Static_assert(ncclAvg == 4 && ncclNumOps == 5, "ncclRedOp_t values");
_Static_assert(NCCL_SPLIT_NOCOLOR == -1, "NCCL_SPLIT_NOCOLOR");
#if defined(__LP64__)
_Static_assert(offsetof(ncclConfig_t, blocking) == 16, "ncclConfig_t.blocking offset");
_Static_assert(offsetof(ncclConfig_t, netName) == 32, "ncclConfig_t.netName offset");
_Static_assert(offsetof(ncclConfig_t, commName) == 48, "ncclConfig_t.commName offset");
_Static_assert(offsetof(ncclConfig_t, nvlinkCentricSched) == 76,
               "ncclConfig_t.nvlinkCentricSched offset");
_Static_assert(sizeof(ncclConfig_t) == 80, "ncclConfig_t size");
_Static_assert(sizeof(ncclSimInfo_t) == 24, "ncclSimInfo_t size");
#endif

#define ID_WAIT_S 60      /* how long ranks > 0 wait for rank 0's id file */
#define MAX_REPORTS 20    /* mismatches printed before going quiet */
#define LARGE_COUNT (((size_t)1 << 20) + 3)
#define INITALL_RANKS 4

static int my_rank, my_nranks;
static int failures;

static void fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(int line, const char *fmt, ...) {
  failures++;
  if (failures > MAX_REPORTS) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nccl_shim_test: rank %d: line %d: ", my_rank, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) fail(__LINE__, __VA_ARGS__); \
  } while (0)

/* A call every rank makes in step: if it fails, the ranks would no longer
 * agree on the sequence of collectives, so the program stops. */
#define NCCL_MUST(call)                                                             \
  do {                                                                              \
    ncclResult_t must_r_ = (call);                                                  \
    if (must_r_ != ncclSuccess) {                                                   \
      fail(__LINE__, "%s -> %d (%s): %s", #call, (int)must_r_,                      \
           ncclGetErrorString(must_r_), ncclGetLastError(NULL));                    \
      fflush(NULL);                                                                 \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* Checks an expected failure code (a local check: no peer is involved). */
#define EXPECT_RESULT(call, want)                                                   \
  do {                                                                              \
    ncclResult_t exp_r_ = (call);                                                   \
    CHECK(exp_r_ == (want), "%s -> %d, want %d (%s)", #call, (int)exp_r_, (int)(want), \
          ncclGetLastError(NULL));                                                  \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Element encoding: small integers, exact in every type                     */
/* ------------------------------------------------------------------------ */

static const ncclDataType_t all_types[] = {ncclInt8,    ncclUint8,   ncclInt32,   ncclUint32,
                                           ncclInt64,   ncclUint64,  ncclFloat16, ncclFloat32,
                                           ncclFloat64, ncclBfloat16};
static const ncclRedOp_t all_ops[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg};

static size_t type_size(ncclDataType_t t) {
  switch (t) {
  case ncclInt8:
  case ncclUint8:
    return 1;
  case ncclFloat16:
  case ncclBfloat16:
    return 2;
  case ncclInt32:
  case ncclUint32:
  case ncclFloat32:
    return 4;
  default:
    return 8;
  }
}

static int type_signed(ncclDataType_t t) { return t != ncclUint8 && t != ncclUint32 && t != ncclUint64; }

static const char *type_name(ncclDataType_t t) {
  static const char *names[] = {"int8",    "uint8",   "int32",   "uint32", "int64",
                                "uint64",  "float16", "float32", "float64", "bfloat16"};
  return (int)t >= 0 && (int)t < 10 ? names[t] : "?";
}

static const char *op_name(ncclRedOp_t op) {
  static const char *names[] = {"sum", "prod", "max", "min", "avg"};
  return (int)op >= 0 && (int)op < 5 ? names[op] : "?";
}

/* IEEE half from an integer of magnitude < 2048 (exactly representable). */
static uint16_t half_from_int(long long v) {
  if (v == 0) return 0;
  uint16_t sign = v < 0 ? 0x8000 : 0;
  unsigned long long m = (unsigned long long)(v < 0 ? -v : v);
  int e = 0;
  while ((m >> (e + 1)) != 0) e++;
  uint16_t mant = (uint16_t)((m << (10 - e)) & 0x3ff);
  return (uint16_t)(sign | (uint16_t)((e + 15) << 10) | mant);
}

/* Any half, for reporting what came back (no libm: the build does not link
 * it into this program). */
static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 0x1f;
  double mant = h & 0x3ff;
  double v;
  if (e == 31) {
    v = mant != 0 ? NAN : INFINITY;
  } else {
    /* value = (implicit 1 + mant / 2^10) * 2^(e - 15), subnormals 2^-14. */
    v = e == 0 ? mant / 1024.0 : 1.0 + mant / 1024.0;
    for (int k = e == 0 ? 1 : e; k < 15; k++) v /= 2.0;
    for (int k = 15; k < e; k++) v *= 2.0;
  }
  return (h & 0x8000) ? -v : v;
}

static void put(ncclDataType_t t, void *buf, size_t i, long long v) {
  char *p = (char *)buf + i * type_size(t);
  switch (t) {
  case ncclInt8: { int8_t x = (int8_t)v; memcpy(p, &x, 1); break; }
  case ncclUint8: { uint8_t x = (uint8_t)v; memcpy(p, &x, 1); break; }
  case ncclInt32: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
  case ncclUint32: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
  case ncclInt64: { int64_t x = (int64_t)v; memcpy(p, &x, 8); break; }
  case ncclUint64: { uint64_t x = (uint64_t)v; memcpy(p, &x, 8); break; }
  case ncclFloat16: { uint16_t x = half_from_int(v); memcpy(p, &x, 2); break; }
  case ncclFloat32: { float x = (float)v; memcpy(p, &x, 4); break; }
  case ncclFloat64: { double x = (double)v; memcpy(p, &x, 8); break; }
  case ncclBfloat16: {
    /* bfloat16 is the top half of a float32; small integers lose nothing. */
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint16_t x = (uint16_t)(bits >> 16);
    memcpy(p, &x, 2);
    break;
  }
  default: break;
  }
}

static double get(ncclDataType_t t, const void *buf, size_t i) {
  const char *p = (const char *)buf + i * type_size(t);
  switch (t) {
  case ncclInt8: { int8_t x; memcpy(&x, p, 1); return x; }
  case ncclUint8: { uint8_t x; memcpy(&x, p, 1); return x; }
  case ncclInt32: { int32_t x; memcpy(&x, p, 4); return x; }
  case ncclUint32: { uint32_t x; memcpy(&x, p, 4); return x; }
  case ncclInt64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
  case ncclUint64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
  case ncclFloat16: { uint16_t x; memcpy(&x, p, 2); return half_to_double(x); }
  case ncclFloat32: { float x; memcpy(&x, p, 4); return x; }
  case ncclFloat64: { double x; memcpy(&x, p, 8); return x; }
  case ncclBfloat16: {
    uint16_t x;
    memcpy(&x, p, 2);
    uint32_t bits = (uint32_t)x << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
  }
  default: return NAN;
  }
}

/* Rank r's input element i for (type, op) among n ranks.  Ranges keep every
 * result within every type (|sum| <= 4 * 10, |prod| <= 3^4) for n <= 4. */
static long long input(ncclDataType_t t, ncclRedOp_t op, int r, int n, size_t i) {
  long long ii = (long long)(i % 1000003);
  int sgn = type_signed(t);
  switch (op) {
  case ncclSum:
    return (ii * 7 + r * 3) % 11 - (sgn ? 5 : 0);
  case ncclProd: {
    static const long long s[3] = {-1, 1, 2}, u[3] = {1, 2, 3};
    return (sgn ? s : u)[(ii + r) % 3];
  }
  case ncclMax:
  case ncclMin:
    return (ii * 5 + r * 13) % 17 - (sgn ? 8 : 0);
  case ncclAvg: {
    /* a + d_r with the d_r summing to 0: the sum is n * a, so the average is
     * exactly a under any rounding or integer division. */
    long long a = 3 + ii % 5;
    long long d = r < n - 1 ? r : -(long long)(n - 1) * (n - 2) / 2;
    return a + d;
  }
  default:
    return 0;
  }
}

static long long expected(ncclDataType_t t, ncclRedOp_t op, int n, size_t i) {
  long long acc = input(t, op, 0, n, i);
  for (int r = 1; r < n; r++) {
    long long v = input(t, op, r, n, i);
    switch (op) {
    case ncclSum: case ncclAvg: acc += v; break;
    case ncclProd: acc *= v; break;
    case ncclMax: acc = v > acc ? v : acc; break;
    case ncclMin: acc = v < acc ? v : acc; break;
    default: break;
    }
  }
  return op == ncclAvg ? acc / n : acc;
}

static void fill(ncclDataType_t t, ncclRedOp_t op, int r, int n, void *buf, size_t count) {
  for (size_t i = 0; i < count; i++) put(t, buf, i, input(t, op, r, n, i));
}

/* Counts (and reports the first few) elements that differ from the result. */
static void verify(const char *what, ncclDataType_t t, ncclRedOp_t op, int n, const void *buf,
                   size_t count) {
  size_t wrong = 0;
  for (size_t i = 0; i < count; i++) {
    double want = (double)expected(t, op, n, i), got = get(t, buf, i);
    if (got != want && wrong++ == 0)
      fail(__LINE__, "%s %s %s count %zu: element %zu = %g, want %g", what, type_name(t),
           op_name(op), count, i, got, want);
  }
  if (wrong > 1) fail(__LINE__, "%s %s %s count %zu: %zu elements wrong", what, type_name(t),
                      op_name(op), count, wrong);
}

/* ------------------------------------------------------------------------ */
/* Unique id exchange through a file                                         */
/* ------------------------------------------------------------------------ */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void id_path(char *path, size_t n, const char *suffix) {
  const char *base = getenv("NCCL_SHIM_TEST_ID");
  if (base == NULL || base[0] == '\0') {
    fprintf(stderr, "nccl_shim_test: rank %d: set NCCL_SHIM_TEST_ID to a fresh file path\n",
            my_rank);
    exit(2);
  }
  int len = snprintf(path, n, "%s%s", base, suffix);
  if (len < 0 || (size_t)len >= n) {
    fprintf(stderr, "nccl_shim_test: NCCL_SHIM_TEST_ID too long\n");
    exit(2);
  }
}

static void id_write(const char *path, const ncclUniqueId *id) {
  char tmp[4096];
  int len = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (len < 0 || (size_t)len >= sizeof tmp) {
    fprintf(stderr, "nccl_shim_test: rank 0: path too long: %s\n", path);
    exit(2);
  }
  FILE *f = fopen(tmp, "wb");
  int ok = f != NULL && fwrite(id, sizeof *id, 1, f) == 1;
  if (f != NULL && fclose(f) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    fprintf(stderr, "nccl_shim_test: rank 0: cannot write %s: %s\n", path, strerror(errno));
    exit(2);
  }
}

static void id_read(const char *path, ncclUniqueId *id) {
  double deadline = now_s() + ID_WAIT_S;
  for (;;) {
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
      size_t got = fread(id, sizeof *id, 1, f);
      fclose(f);
      if (got == 1) return;
    }
    if (now_s() > deadline) {
      fprintf(stderr, "nccl_shim_test: rank %d: no unique id in %s after %d s\n", my_rank, path,
              ID_WAIT_S);
      exit(2);
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Rank 0 makes the id and publishes it; the others wait for it. */
static void id_share(const char *suffix, ncclUniqueId *id) {
  if (my_nranks == 1) {
    NCCL_MUST(ncclGetUniqueId(id));
    return;
  }
  char path[4096];
  id_path(path, sizeof path, suffix);
  if (my_rank == 0) {
    NCCL_MUST(ncclGetUniqueId(id));
    id_write(path, id);
  } else {
    id_read(path, id);
  }
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "nccl_shim_test: out of memory\n");
    exit(2);
  }
  return p;
}

static void test_version_and_strings(void) {
  int version = 0;
  NCCL_MUST(ncclGetVersion(&version));
  CHECK(version == NCCL_VERSION_CODE, "ncclGetVersion = %d, want %d", version, NCCL_VERSION_CODE);
  EXPECT_RESULT(ncclGetVersion(NULL), ncclInvalidArgument);
  for (int r = 0; r <= (int)ncclNumResults; r++) {
    const char *s = ncclGetErrorString((ncclResult_t)r);
    CHECK(s != NULL && s[0] != '\0', "ncclGetErrorString(%d) is empty", r);
  }
  CHECK(strcmp(ncclGetErrorString(ncclInvalidArgument), ncclGetErrorString(ncclSuccess)) != 0,
        "ncclGetErrorString does not tell results apart");
  const char *unknown = ncclGetErrorString((ncclResult_t)99);
  CHECK(unknown != NULL && unknown[0] != '\0', "ncclGetErrorString(99) is empty");
  CHECK(ncclGetLastError(NULL) != NULL, "ncclGetLastError returned NULL");
}

static void test_comm_queries(ncclComm_t comm, int nranks, int rank) {
  int v = -1;
  NCCL_MUST(ncclCommCount(comm, &v));
  CHECK(v == nranks, "ncclCommCount = %d, want %d", v, nranks);
  v = -1;
  NCCL_MUST(ncclCommUserRank(comm, &v));
  CHECK(v == rank, "ncclCommUserRank = %d, want %d", v, rank);
  v = -1;
  NCCL_MUST(ncclCommCuDevice(comm, &v));
  CHECK(v >= 0, "ncclCommCuDevice = %d", v);
  ncclResult_t async = ncclInternalError;
  NCCL_MUST(ncclCommGetAsyncError(comm, &async));
  CHECK(async == ncclSuccess, "ncclCommGetAsyncError = %d", (int)async);
  EXPECT_RESULT(ncclCommCount(comm, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommCount(NULL, &v), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommUserRank(NULL, &v), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommGetAsyncError(comm, NULL), ncclInvalidArgument);
}

/* One allreduce on every rank, checked. */
static void allreduce_case(ncclComm_t comm, ncclDataType_t t, ncclRedOp_t op, size_t count,
                           int in_place, void *send, void *recv) {
  size_t bytes = count * type_size(t);
  fill(t, op, my_rank, my_nranks, send, count);
  if (in_place) {
    NCCL_MUST(ncclAllReduce(send, send, count, t, op, comm, NULL));
    verify("in-place", t, op, my_nranks, send, count);
  } else {
    memset(recv, 0xa5, bytes);
    NCCL_MUST(ncclAllReduce(send, recv, count, t, op, comm, NULL));
    verify("out-of-place", t, op, my_nranks, recv, count);
    /* Out of place leaves the input alone. */
    size_t changed = 0;
    for (size_t i = 0; i < count; i++)
      if (get(t, send, i) != (double)input(t, op, my_rank, my_nranks, i)) changed++;
    CHECK(changed == 0, "out-of-place %s %s count %zu changed %zu input elements", type_name(t),
          op_name(op), count, changed);
  }
}

static void test_allreduce_sweep(ncclComm_t comm) {
  static const size_t counts[] = {0, 1, 3, 1001};
  size_t max_bytes = 1001 * 8;
  void *send = xmalloc(max_bytes), *recv = xmalloc(max_bytes);
  for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++)
    for (size_t oi = 0; oi < sizeof all_ops / sizeof all_ops[0]; oi++)
      for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
        for (int in_place = 0; in_place < 2; in_place++)
          allreduce_case(comm, all_types[ti], all_ops[oi], counts[ci], in_place, send, recv);
  free(send);
  free(recv);

  /* Large: many chunks per rank and a count no rank count divides. */
  size_t n = LARGE_COUNT;
  send = xmalloc(n * 8);
  recv = xmalloc(n * 8);
  allreduce_case(comm, ncclFloat32, ncclSum, n, 0, send, recv);
  allreduce_case(comm, ncclFloat32, ncclSum, n, 1, send, recv);
  allreduce_case(comm, ncclInt64, ncclMin, n, 0, send, recv);
  allreduce_case(comm, ncclBfloat16, ncclAvg, n, 1, send, recv);
  free(send);
  free(recv);
}

/* Fills recv with a pattern and checks that it is still there. */
static void poison(void *buf, size_t bytes) { memset(buf, 0x5c, bytes); }
static int untouched(const void *buf, size_t bytes) {
  const unsigned char *p = buf;
  for (size_t i = 0; i < bytes; i++)
    if (p[i] != 0x5c) return 0;
  return 1;
}

static void test_invalid_arguments(ncclComm_t comm) {
  enum { N = 16 };
  float send[N], recv[N];
  fill(ncclFloat32, ncclSum, my_rank, my_nranks, send, N);

  poison(recv, sizeof recv);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, ncclFloat32, ncclSum, NULL, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, ncclFloat8e4m3, ncclSum, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, ncclFloat8e5m2, ncclMax, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, (ncclDataType_t)ncclNumTypes, ncclSum, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, (ncclDataType_t)-1, ncclSum, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, ncclFloat32, (ncclRedOp_t)ncclNumOps, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, recv, N, ncclFloat32, (ncclRedOp_t)-1, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(NULL, recv, N, ncclFloat32, ncclSum, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(send, NULL, N, ncclFloat32, ncclSum, comm, NULL),
                ncclInvalidArgument);
  /* Streams: tests/gpu/nccl_stream_test.cu on a GPU; without CUDA, a stream
   * is refused (tests/mp/test_device_errors.c). */
  CHECK(untouched(recv, sizeof recv), "a refused ncclAllReduce wrote to recvbuff");

  /* The communicator is still usable, and in step with the other ranks. */
  NCCL_MUST(ncclAllReduce(send, recv, N, ncclFloat32, ncclSum, comm, NULL));
  verify("after refusals", ncclFloat32, ncclSum, my_nranks, recv, N);

  EXPECT_RESULT(ncclGroupEnd(), ncclInvalidUsage);
  EXPECT_RESULT(ncclCommDestroy(NULL), ncclSuccess);
}

/* A nested group of two allreduces, with a refused call in the middle. */
static void test_group(ncclComm_t comm) {
  enum { NA = 1001, NB = 3 };
  int32_t a_send[NA], a_recv[NA];
  double b[NB];
  float bad[4];
  fill(ncclInt32, ncclSum, my_rank, my_nranks, a_send, NA);
  fill(ncclFloat64, ncclMax, my_rank, my_nranks, b, NB);
  poison(bad, sizeof bad);

  NCCL_MUST(ncclGroupStart());
  NCCL_MUST(ncclGroupStart());
  NCCL_MUST(ncclAllReduce(a_send, a_recv, NA, ncclInt32, ncclSum, comm, NULL));
  NCCL_MUST(ncclGroupEnd());
  EXPECT_RESULT(ncclAllReduce(bad, bad, 4, ncclFloat8e4m3, ncclSum, comm, NULL),
                ncclInvalidArgument);
  NCCL_MUST(ncclAllReduce(b, b, NB, ncclFloat64, ncclMax, comm, NULL));
  NCCL_MUST(ncclGroupEnd());

  verify("grouped", ncclInt32, ncclSum, my_nranks, a_recv, NA);
  verify("grouped in-place", ncclFloat64, ncclMax, my_nranks, b, NB);
  CHECK(untouched(bad, sizeof bad), "a refused grouped ncclAllReduce wrote to its buffer");
}

/* ------------------------------------------------------------------------ */
/* The collectives beyond allreduce                                          */
/* ------------------------------------------------------------------------ */

/* Elements of buf that differ from want(i) = input(t, op, who, n, first + i)
 * (who >= 0) or expected(t, op, n, first + i) (who < 0); the first is
 * reported. */
static void verify_part(const char *what, ncclDataType_t t, ncclRedOp_t op, int who,
                        const void *buf, size_t count, size_t first) {
  size_t wrong = 0;
  for (size_t i = 0; i < count; i++) {
    double want = who >= 0 ? (double)input(t, op, who, my_nranks, first + i)
                           : (double)expected(t, op, my_nranks, first + i);
    if (get(t, buf, i) != want && wrong++ == 0)
      fail(__LINE__, "%s %s %s count %zu: element %zu = %g, want %g", what, type_name(t),
           op_name(op), count, i, get(t, buf, i), want);
  }
}

static void colls_case(ncclComm_t comm, ncclDataType_t t, ncclRedOp_t op, size_t c, int ip,
                       char *a, char *b) {
  const int n = my_nranks, me = my_rank;
  const size_t es = type_size(t);
  /* reduce-scatter: in place, the output is this rank's part of the input */
  fill(t, op, me, n, a, c * (size_t)n);
  char *rs_out = ip ? a + (size_t)me * c * es : b;
  NCCL_MUST(ncclReduceScatter(a, rs_out, c, t, op, comm, NULL));
  verify_part("ncclReduceScatter", t, op, -1, rs_out, c, (size_t)me * c);
  /* allgather: in place, the input is this rank's part of the output */
  char *ag_in = ip ? b + (size_t)me * c * es : a;
  fill(t, ncclSum, me, n, ag_in, c);
  NCCL_MUST(ncclAllGather(ag_in, b, c, t, comm, NULL));
  for (int p = 0; p < n; p++)
    verify_part("ncclAllGather", t, ncclSum, p, b + (size_t)p * c * es, c, 0);
  for (int root = 0; root < n; root++) {
    /* broadcast: every rank starts from its own values */
    fill(t, ncclSum, me, n, a, c);
    if (ip) NCCL_MUST(ncclBcast(a, c, t, root, comm, NULL));
    else NCCL_MUST(ncclBroadcast(me == root ? a : NULL, b, c, t, root, comm, NULL));
    verify_part(ip ? "ncclBcast" : "ncclBroadcast", t, ncclSum, root, ip ? a : b, c, 0);
    /* reduce: recvbuff unused (NULL out of place) off root */
    fill(t, op, me, n, a, c);
    char *dst = ip ? a : me == root ? b : NULL;
    NCCL_MUST(ncclReduce(a, dst, c, t, op, root, comm, NULL));
    if (me == root) verify_part("ncclReduce", t, op, -1, dst, c, 0);
    else if (ip) verify_part("ncclReduce (non-root input)", t, op, me, a, c, 0);
  }
}

static void test_colls(ncclComm_t comm) {
  static const ncclDataType_t types[] = {ncclInt8, ncclUint32, ncclFloat16, ncclFloat32,
                                         ncclFloat64, ncclBfloat16};
  static const size_t counts[] = {0, 1, 1001};
  const size_t ntypes = sizeof types / sizeof types[0];
  char *a = xmalloc(1001 * 8 * (size_t)my_nranks), *b = xmalloc(1001 * 8 * (size_t)my_nranks);
  for (size_t ti = 0; ti < ntypes; ti++)
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
      for (int ip = 0; ip < 2; ip++)
        colls_case(comm, types[ti], all_ops[(ti + ci) % 5], counts[ci], ip, a, b);

  /* Refused locally, nothing written, the comm still in step. */
  float send[16], recv[16];
  fill(ncclFloat32, ncclSum, my_rank, my_nranks, send, 16);
  poison(recv, sizeof recv);
  EXPECT_RESULT(ncclBroadcast(send, recv, 4, ncclFloat32, my_nranks, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclReduce(send, recv, 4, ncclFloat32, ncclSum, -1, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclReduceScatter(send, NULL, 4, ncclFloat32, ncclSum, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllGather(send, recv, 4, ncclFloat8e4m3, comm, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclReduce(send, recv, 4, ncclFloat32, (ncclRedOp_t)-1, 0, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclBcast(recv, 4, ncclFloat32, 0, NULL, NULL), ncclInvalidArgument);
  CHECK(untouched(recv, sizeof recv), "a refused collective wrote to recvbuff");
  /* Queued in a group, run at ncclGroupEnd; nothing before it. */
  NCCL_MUST(ncclGroupStart());
  NCCL_MUST(ncclReduceScatter(send, recv, 16 / my_nranks, ncclFloat32, ncclSum, comm, NULL));
  CHECK(untouched(recv, sizeof recv), "a grouped collective ran before ncclGroupEnd");
  NCCL_MUST(ncclGroupEnd());
  verify_part("grouped ncclReduceScatter after refusals", ncclFloat32, ncclSum, -1, recv,
              16 / my_nranks, (size_t)my_rank * (16 / my_nranks));
  free(a);
  free(b);
}

/* ------------------------------------------------------------------------ */
/* ncclCommSplit                                                             */
/* ------------------------------------------------------------------------ */

/* One allreduce on `comm`, where this process is `rank` of `n`. */
static void comm_allreduce(ncclComm_t comm, int rank, int n, ncclDataType_t t, ncclRedOp_t op,
                           size_t count, const char *what) {
  void *buf = xmalloc(count * type_size(t));
  fill(t, op, rank, n, buf, count);
  NCCL_MUST(ncclAllReduce(buf, buf, count, t, op, comm, NULL));
  verify(what, t, op, n, buf, count);
  free(buf);
}

/* Every rank: parity colors with keys in reverse order, a grouped split,
 * no color, and refusals that reach every rank. */
static void test_split(ncclComm_t comm) {
  ncclComm_t child = (ncclComm_t)0x1;
  EXPECT_RESULT(ncclCommSplit(NULL, 0, 0, &child, NULL), ncclInvalidArgument);

  /* Parity, keys reversed: the new rank counts the same-color ranks above. */
  int color = my_rank % 2, size = 0, want_rank = 0;
  for (int r = 0; r < my_nranks; r++)
    if (r % 2 == color) {
      size++;
      if (r > my_rank) want_rank++;
    }
  NCCL_MUST(ncclCommSplit(comm, color, my_nranks - my_rank, &child, NULL));
  CHECK(child != NULL, "ncclCommSplit gave no comm");
  if (child != NULL) {
    test_comm_queries(child, size, want_rank);
    comm_allreduce(child, want_rank, size, ncclInt32, ncclSum, 1001, "split child");
    comm_allreduce(comm, my_rank, my_nranks, ncclFloat64, ncclMax, 1001, "parent with children");
    comm_allreduce(child, want_rank, size, ncclFloat32, ncclAvg, 3, "split child");
    NCCL_MUST(ncclCommDestroy(child));
  }
  comm_allreduce(comm, my_rank, my_nranks, ncclInt64, ncclSum, 1001, "parent after a split");

  /* Inside a group: *newcomm is NULL until ncclGroupEnd. */
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 1;
  config.splitShare = 1; /* accepted, not honoured (docs/nccl-shim.md) */
  child = (ncclComm_t)0x1;
  NCCL_MUST(ncclGroupStart());
  NCCL_MUST(ncclCommSplit(comm, 0, my_rank, &child, &config));
  CHECK(child == NULL, "ncclCommSplit in a group: *newcomm set before ncclGroupEnd");
  NCCL_MUST(ncclGroupEnd());
  CHECK(child != NULL, "ncclCommSplit in a group: no comm after ncclGroupEnd");
  if (child != NULL) {
    test_comm_queries(child, my_nranks, my_rank);
    comm_allreduce(child, my_rank, my_nranks, ncclUint8, ncclMax, 3, "grouped split");
    NCCL_MUST(ncclCommDestroy(child));
  }

  /* Rank 0 in no communicator. */
  child = (ncclComm_t)0x1;
  NCCL_MUST(ncclCommSplit(comm, my_rank == 0 ? NCCL_SPLIT_NOCOLOR : 3, 0, &child, NULL));
  if (my_rank == 0) {
    CHECK(child == NULL, "NCCL_SPLIT_NOCOLOR gave a comm");
  } else {
    CHECK(child != NULL, "ncclCommSplit gave no comm");
    if (child != NULL) {
      test_comm_queries(child, my_nranks - 1, my_rank - 1);
      comm_allreduce(child, my_rank - 1, my_nranks - 1, ncclFloat16, ncclSum, 1001, "no color");
      NCCL_MUST(ncclCommDestroy(child));
    }
  }

  /* The last rank passes a bad config: it gets ncclInvalidArgument, every
   * other rank an error (ncclRemoteError) instead of a hang, nobody a comm. */
  ncclConfig_t bad = NCCL_CONFIG_INITIALIZER;
  bad.magic = 0;
  child = (ncclComm_t)0x1;
  ncclResult_t r = ncclCommSplit(comm, 0, 0, &child, my_rank == my_nranks - 1 ? &bad : NULL);
  CHECK(r == (my_rank == my_nranks - 1 ? ncclInvalidArgument : ncclRemoteError),
        "ncclCommSplit with a bad config on rank %d -> %d (%s)", my_nranks - 1, (int)r,
        ncclGetLastError(NULL));
  CHECK(child == NULL, "a refused ncclCommSplit left *newcomm = %p", (void *)child);
  comm_allreduce(comm, my_rank, my_nranks, ncclInt32, ncclSum, 1001,
                 "parent after a refused split");
}

static void test_init_config(void) {
  ncclConfig_t bad = NCCL_CONFIG_INITIALIZER;
  bad.magic = 0;
  ncclComm_t comm = NULL;
  ncclUniqueId unused;
  memset(&unused, 0, sizeof unused);
  EXPECT_RESULT(ncclCommInitRankConfig(&comm, my_nranks, unused, my_rank, &bad),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitRank(&comm, my_nranks, unused, my_nranks), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitRank(&comm, 0, unused, 0), ncclInvalidArgument);

  ncclUniqueId id;
  id_share(".config", &id);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 1;
  NCCL_MUST(ncclCommInitRankConfig(&comm, my_nranks, id, my_rank, &config));
  test_comm_queries(comm, my_nranks, my_rank);
  int64_t v[5];
  fill(ncclInt64, ncclProd, my_rank, my_nranks, v, 5);
  NCCL_MUST(ncclAllReduce(v, v, 5, ncclInt64, ncclProd, comm, NULL));
  verify("config comm", ncclInt64, ncclProd, my_nranks, v, 5);
  NCCL_MUST(ncclCommFinalize(comm));
  NCCL_MUST(ncclCommDestroy(comm));
}

/* Several ranks in this process, driven by this one thread through groups. */
static void grouped_allreduce_local(ncclComm_t *comms, int n, ncclDataType_t t, ncclRedOp_t op,
                                    size_t count, const char *what) {
  void *send[INITALL_RANKS], *recv[INITALL_RANKS];
  for (int r = 0; r < n; r++) {
    send[r] = xmalloc(count * type_size(t));
    recv[r] = xmalloc(count * type_size(t));
    fill(t, op, r, n, send[r], count);
  }
  NCCL_MUST(ncclGroupStart());
  for (int r = 0; r < n; r++)
    NCCL_MUST(ncclAllReduce(send[r], recv[r], count, t, op, comms[r], NULL));
  NCCL_MUST(ncclGroupEnd());
  for (int r = 0; r < n; r++) {
    verify(what, t, op, n, recv[r], count);
    free(send[r]);
    free(recv[r]);
  }
}

static void test_single_process(void) {
  ncclComm_t comms[INITALL_RANKS];
  EXPECT_RESULT(ncclCommInitAll(comms, 0, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitAll(NULL, INITALL_RANKS, NULL), ncclInvalidArgument);

  NCCL_MUST(ncclCommInitAll(comms, INITALL_RANKS, NULL));
  for (int r = 0; r < INITALL_RANKS; r++) test_comm_queries(comms[r], INITALL_RANKS, r);
  grouped_allreduce_local(comms, INITALL_RANKS, ncclInt32, ncclSum, 1001, "initall");
  grouped_allreduce_local(comms, INITALL_RANKS, ncclFloat16, ncclAvg, 3, "initall");
  grouped_allreduce_local(comms, INITALL_RANKS, ncclUint8, ncclMax, 0, "initall");

  /* One thread splits the 4 ranks in a group, as NCCL programs driving
   * several GPUs do: even and odd ranks, new rank = old rank / 2. */
  ncclComm_t kids[INITALL_RANKS];
  NCCL_MUST(ncclGroupStart());
  for (int r = 0; r < INITALL_RANKS; r++)
    NCCL_MUST(ncclCommSplit(comms[r], r % 2, r, &kids[r], NULL));
  NCCL_MUST(ncclGroupEnd());
  for (int r = 0; r < INITALL_RANKS; r++) test_comm_queries(kids[r], INITALL_RANKS / 2, r / 2);
  for (int c = 0; c < 2; c++) {
    ncclComm_t pair[2] = {kids[c], kids[c + 2]};
    grouped_allreduce_local(pair, 2, ncclInt32, ncclSum, 1001, "grouped split");
  }
  for (int r = 0; r < INITALL_RANKS; r++) NCCL_MUST(ncclCommDestroy(kids[r]));
  grouped_allreduce_local(comms, INITALL_RANKS, ncclInt32, ncclSum, 1001, "initall after split");
  for (int r = 0; r < INITALL_RANKS; r++) NCCL_MUST(ncclCommDestroy(comms[r]));

  /* ncclCommInitRank for two ranks in one group, as one thread per GPU
   * programs do without ncclCommInitAll. */
  ncclUniqueId id;
  NCCL_MUST(ncclGetUniqueId(&id));
  ncclComm_t pair[2] = {NULL, NULL};
  NCCL_MUST(ncclGroupStart());
  for (int r = 0; r < 2; r++) NCCL_MUST(ncclCommInitRank(&pair[r], 2, id, r));
  NCCL_MUST(ncclGroupEnd());
  for (int r = 0; r < 2; r++) test_comm_queries(pair[r], 2, r);
  grouped_allreduce_local(pair, 2, ncclFloat64, ncclProd, 1001, "group-init");
  for (int r = 0; r < 2; r++) NCCL_MUST(ncclCommDestroy(pair[r]));
}

static int env_int(const char *name, int fallback) {
  const char *s = getenv(name);
  if (s == NULL || s[0] == '\0') return fallback;
  char *end;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v < 0 || v > 1 << 20) {
    fprintf(stderr, "nccl_shim_test: bad %s=%s\n", name, s);
    exit(2);
  }
  return (int)v;
}

int main(void) {
  my_rank = env_int("HRING_RANK", 0);
  my_nranks = env_int("HRING_NRANKS", 1);
  if (my_nranks < 1 || my_rank >= my_nranks) {
    fprintf(stderr, "nccl_shim_test: rank %d of %d makes no sense\n", my_rank, my_nranks);
    return 2;
  }

  test_version_and_strings();

  ncclUniqueId id;
  id_share("", &id);
  ncclComm_t comm = NULL;
  NCCL_MUST(ncclCommInitRank(&comm, my_nranks, id, my_rank));
  test_comm_queries(comm, my_nranks, my_rank);
  test_allreduce_sweep(comm);
  test_invalid_arguments(comm);
  test_group(comm);
  test_colls(comm);
  test_split(comm);
  ncclResult_t async = ncclInternalError;
  NCCL_MUST(ncclCommGetAsyncError(comm, &async));
  CHECK(async == ncclSuccess, "ncclCommGetAsyncError after the collectives = %d", (int)async);
  NCCL_MUST(ncclCommDestroy(comm));

  test_init_config();
  if (my_rank == 0) test_single_process();

  if (failures != 0) {
    fprintf(stderr, "nccl_shim_test: rank %d: %d check(s) failed\n", my_rank, failures);
    return 1;
  }
  printf("nccl_shim_test: rank %d OK\n", my_rank);
  return 0;
}
