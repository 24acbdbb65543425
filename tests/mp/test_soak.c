/*
 * test_soak.c - many allreduces in a row stay exact and do not make the
 * process grow.
 *
 * 4 ranks run a long pseudo-random sequence of allreduces (10,000 over shm,
 * 2,000 over tcp): counts mostly 0..64 KiB, some up to 4 KiB only, some up
 * to 1 MiB; every type and op of hring.h; in and out of place; buffers at
 * varying alignments.  Every rank draws from the same seed, so all make the
 * same calls.  Each result is compared bit for bit with values.h's
 * expected values (small integers: exact in any order of reduction), the
 * send buffer of an out-of-place call must be unchanged, and nothing may be
 * written in front of or past the result.  VmRSS after a warm-up of 500
 * calls and at the end may differ by at most 2 MiB.
 *
 * HTEST_SEED=N replays another sequence; HTEST_INJECT=soak_leak (leak 512
 * bytes per call) or soak_wrong (spoil one result on rank 2) show that the
 * test fails when the guarantee breaks (resources.h).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "resources.h"
#include "values.h"

#define SOAK_MAX_BYTES (1u << 20)
#define SOAK_PAD 64           /* guard bytes in front of and past every result */
#define SOAK_RSS_SLACK_KB 2048
#define SOAK_WARMUP 500

typedef struct {
  int nops;
  /* filled by rank 0 for the report */
  double seconds;
  long rss_warm_kb, rss_end_kb, anon_warm_kb, anon_end_kb, shmem_warm_kb, shmem_end_kb;
  uint64_t bytes;
  int calls[3]; /* small, medium, large */
} soak_t;

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Inputs and results of values.c repeat with a period dividing 5*7*9*n
 * (the moduli of its formulas): one period per type and op ("tile") is
 * copied over the buffers, which keeps 10,000 checked calls fast.  The
 * period is checked over 4 periods: a change of values.c that breaks it
 * fails the test with a message rather than checking wrong values. */
typedef struct {
  size_t period; /* elements; 0: values.c is not periodic any more */
  unsigned char *in, *exp; /* one period each */
} tile_t;

static void make_tile(tile_t *t, hring_datatype_t type, hring_redop_t op, int rank, int n) {
  size_t es = hring_type_size(type);
  size_t p = 5 * 7 * 9 * (size_t)n, check = 4 * p;
  t->period = p;
  t->in = malloc(p * es);
  t->exp = malloc(p * es);
  unsigned char *v = malloc(check * es), *e = malloc(check * es);
  HREQUIRE(t->in && t->exp && v && e, "malloc");
  for (size_t i = 0; i < check; i++) {
    mp_value(v, i, type, op, rank, n);
    mp_expected(e, i, type, op, n);
  }
  memcpy(t->in, v, p * es);
  memcpy(t->exp, e, p * es);
  /* a longer stretch must repeat the first period */
  for (size_t i = p; i < check && t->period; i++)
    if (memcmp(v + i * es, v + (i % p) * es, es) != 0 || memcmp(e + i * es, e + (i % p) * es, es) != 0)
      t->period = 0;
  free(v);
  free(e);
}

/* dst[j] = tile element (off + j) for j < count. */
static void fill(unsigned char *dst, const tile_t *t, const unsigned char *src, size_t off,
                 size_t count, size_t es) {
  size_t p = t->period, j = 0;
  off %= p;
  while (j < count) {
    size_t k = count - j < p - off ? count - j : p - off;
    memcpy(dst + j * es, src + off * es, k * es);
    j += k;
    off = 0;
  }
}

/* First element where buf differs from the tile, or count. */
static size_t first_diff(const unsigned char *buf, const tile_t *t, const unsigned char *src,
                         size_t off, size_t count, size_t es) {
  size_t p = t->period, j = 0;
  off %= p;
  while (j < count) {
    size_t k = count - j < p - off ? count - j : p - off;
    if (memcmp(buf + j * es, src + off * es, k * es) != 0) {
      for (size_t q = 0; q < k; q++)
        if (memcmp(buf + (j + q) * es, src + (off + q) * es, es) != 0) return j + q;
    }
    j += k;
    off = 0;
  }
  return count;
}

static int guard_ok(const unsigned char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != 0xa5) return 0;
  return 1;
}

static const char *tname[] = {"int8", "uint8", "int32", "uint32", "int64",
                              "uint64", "float16", "float32", "float64", "bfloat16"};
static const char *oname[] = {"sum", "prod", "max", "min", "avg"};

static void soak_body(hring_comm_t comm, int rank, int n, void *arg) {
  soak_t *s = arg;
  tile_t tiles[HRING_NUM_TYPES][HRING_NUM_OPS];
  for (int t = 0; t < HRING_NUM_TYPES; t++)
    for (int op = 0; op < HRING_NUM_OPS; op++) {
      make_tile(&tiles[t][op], (hring_datatype_t)t, (hring_redop_t)op, rank, n);
      HREQUIRE(tiles[t][op].period, "values.c is no longer periodic (type %d op %d): update "
               "test_soak.c's tiles", t, op);
    }
  size_t span = SOAK_PAD + SOAK_MAX_BYTES + 8 * 8 + SOAK_PAD;
  unsigned char *sbuf = malloc(span), *rbuf = malloc(span);
  HREQUIRE(sbuf && rbuf, "malloc");
  /* Touch every page now: the first calls need not be the largest. */
  memset(sbuf, 0xa5, span);
  memset(rbuf, 0xa5, span);

  uint64_t seed = 0x50a4c0ffee5eedull;
  const char *env = getenv("HTEST_SEED");
  if (env && *env) seed = strtoull(env, NULL, 0);
  if (rank == 0) printf("  seed %#" PRIx64 " (HTEST_SEED replays it)\n", seed);
  uint64_t rng = seed;
  int leak = res_inject("soak_leak"), wrong = res_inject("soak_wrong");
  long rss_warm = 0, anon_warm = 0, shmem_warm = 0;
  double t0 = res_now();
  uint64_t bytes_total = 0;
  int calls[3] = {0, 0, 0};
  int combos[HRING_NUM_TYPES][HRING_NUM_OPS][2];
  memset(combos, 0, sizeof combos);

  for (int k = 0; k < s->nops; k++) {
    if (k == SOAK_WARMUP) {
      rss_warm = res_status_kb("VmRSS");
      anon_warm = res_status_kb("RssAnon");
      shmem_warm = res_status_kb("RssShmem");
    }
    uint64_t r = splitmix(&rng);
    hring_datatype_t type = (hring_datatype_t)(r % HRING_NUM_TYPES);
    hring_redop_t op = (hring_redop_t)((r >> 8) % HRING_NUM_OPS);
    int inplace = (int)((r >> 16) & 1);
    size_t es = hring_type_size(type);
    unsigned cls = (unsigned)((r >> 17) % 100);
    uint64_t r2 = splitmix(&rng);
    size_t maxb;
    int c;
    /* The warm-up starts with the largest size of every algorithm's range
     * (docs/design.md: allpairs up to 4 KiB, direct up to 256 KiB when
     * ranks outnumber cores, then the ring), 8 calls each so that every
     * FIFO slot and staging buffer has been filled once before RSS is
     * measured; later calls reuse that memory. */
    static const size_t warm_sizes[] = {SOAK_MAX_BYTES, 256 * 1024, 128 * 1024, 64 * 1024, 4096};
    size_t count;
    if (k < 8 * 5) {
      maxb = warm_sizes[k / 8], c = maxb > 64 * 1024 ? 2 : maxb > 4096;
      count = maxb / es;
    } else {
      if (cls < 5) maxb = SOAK_MAX_BYTES, c = 2;
      else if (cls < 20) maxb = 4096, c = 0;
      else maxb = 64 * 1024, c = 1;
      count = (size_t)(r2 % (maxb / es + 1));
      if ((r2 >> 32) % 100 == 0) count = 0;
    }
    size_t off = (size_t)((r2 >> 40) % 4096); /* where in the tile the data starts */
    size_t salign = es * (size_t)((r2 >> 52) % 8), ralign = es * (size_t)((r2 >> 56) % 8);
    calls[c]++;
    combos[type][op][inplace]++;
    bytes_total += count * es;

    const tile_t *tl = &tiles[type][op];
    unsigned char *send = sbuf + SOAK_PAD + salign;
    unsigned char *recv = inplace ? send : rbuf + SOAK_PAD + ralign;
    fill(send, tl, tl->in, off, count, es);
    memset(recv - SOAK_PAD, 0xa5, SOAK_PAD);
    if (!inplace) memset(recv, 0xa5, count * es);
    memset(recv + count * es, 0xa5, SOAK_PAD);

    hring_result_t res = hring_allreduce(send, recv, count, type, op, comm, NULL);
    HREQUIRE(res == HRING_SUCCESS, "rank %d call %d (%zu x %s %s %s): %s: %s", rank, k, count,
             tname[type], oname[op], inplace ? "in place" : "out of place", hring_strerror(res),
             hring_last_error());
    if (wrong && rank == 2 && k == s->nops - 100 && count > 0) recv[(count / 2) * es] ^= 0x40;
    if (leak) {
      char *p = malloc(512);
      HREQUIRE(p, "malloc");
      memset(p, k, 512); /* leaked on purpose */
    }

    size_t bad = first_diff(recv, tl, tl->exp, off, count, es);
    HREQUIRE(bad == count, "rank %d call %d (%zu x %s %s %s, tile offset %zu): wrong result at "
             "element %zu", rank, k, count, tname[type], oname[op],
             inplace ? "in place" : "out of place", off, bad);
    HREQUIRE(guard_ok(recv - SOAK_PAD, SOAK_PAD) && guard_ok(recv + count * es, SOAK_PAD),
             "rank %d call %d (%zu x %s %s): written outside the result", rank, k, count,
             tname[type], oname[op]);
    if (!inplace) {
      size_t sb = first_diff(send, tl, tl->in, off, count, es);
      HREQUIRE(sb == count, "rank %d call %d (%zu x %s %s): the send buffer changed at %zu",
               rank, k, count, tname[type], oname[op], sb);
    }
  }
  double dt = res_now() - t0;
  for (int t = 0; t < HRING_NUM_TYPES; t++)
    for (int op = 0; op < HRING_NUM_OPS; op++)
      for (int ip = 0; ip < 2; ip++)
        HCHECK(combos[t][op][ip] > 0, "the sequence never ran %s %s %s", tname[t], oname[op],
               ip ? "in place" : "out of place");
  long rss_end = res_status_kb("VmRSS");
  long anon_end = res_status_kb("RssAnon"), shmem_end = res_status_kb("RssShmem");
  HCHECK(rss_warm > 0 && rss_end > 0, "VmRSS unreadable");
  HCHECK(rss_end - rss_warm <= SOAK_RSS_SLACK_KB,
         "rank %d: VmRSS grew from %ld kB after %d calls to %ld kB after %d (+%ld kB; RssAnon "
         "%ld -> %ld, RssShmem %ld -> %ld)",
         rank, rss_warm, SOAK_WARMUP, rss_end, s->nops, rss_end - rss_warm, anon_warm, anon_end,
         shmem_warm, shmem_end);
  if (rank == 0) {
    s->seconds = dt;
    s->rss_warm_kb = rss_warm;
    s->rss_end_kb = rss_end;
    s->anon_warm_kb = anon_warm;
    s->anon_end_kb = anon_end;
    s->shmem_warm_kb = shmem_warm;
    s->shmem_end_kb = shmem_end;
    s->bytes = bytes_total;
    memcpy(s->calls, calls, sizeof calls);
  }
  for (int t = 0; t < HRING_NUM_TYPES; t++)
    for (int op = 0; op < HRING_NUM_OPS; op++) {
      free(tiles[t][op].in);
      free(tiles[t][op].exp);
    }
  free(sbuf);
  free(rbuf);
}

static void run_soak(const char *transport, int nops) {
  setenv("HRING_TRANSPORTS", transport, 1);
  setenv("HRING_TIMEOUT_MS", "30000", 1); /* a stuck call fails the test, not its timeout */
  soak_t *s = res_shared(sizeof *s);
  HREQUIRE(s, "mmap");
  s->nops = nops;
  int failed = mp_run(4, soak_body, s);
  printf("  %s, 4 ranks: %d allreduces (%d up to 4 KiB, %d up to 64 KiB, %d up to 1 MiB; "
         "%.1f MiB per rank) in %.2f s\n",
         transport, nops, s->calls[0], s->calls[1], s->calls[2], (double)s->bytes / (1 << 20),
         s->seconds);
  printf("  rank 0 VmRSS after %d calls %ld kB, at the end %ld kB (%+ld kB; RssAnon %+ld, "
         "RssShmem %+ld)\n",
         SOAK_WARMUP, s->rss_warm_kb, s->rss_end_kb, s->rss_end_kb - s->rss_warm_kb,
         s->anon_end_kb - s->anon_warm_kb, s->shmem_end_kb - s->shmem_warm_kb);
  HREQUIRE(failed == 0, "%s: %d rank(s) failed", transport, failed);
}

HTEST(soak_shm_np4, 60) { run_soak("shm", 10000); }
HTEST(soak_tcp_np4, 60) { run_soak("tcp", 2000); }
