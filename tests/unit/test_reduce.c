/*
 * test_reduce.c - the host reduction kernels (src/algos/reduce*.c, half.c).
 *
 * Results are checked against a reference written here independently of the
 * library: integers in 64-bit arithmetic masked to the element width, floats
 * in double (exact or correctly rounded to fp32, since double rounding from
 * double to float is harmless for + - * /), and float16 / bfloat16 with their
 * own converters built on frexp/ldexp/nearbyint instead of bit tricks.
 * Every kernel family the CPU runs is tested, and each vector family is
 * compared bit for bit with the portable one on random data.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "algos/reduce.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ---- helpers ------------------------------------------------------------- */

static const char *const type_names[HRING_NUM_TYPES] = {
    "int8", "uint8", "int32", "uint32", "int64",
    "uint64", "float16", "float32", "float64", "bfloat16"};
static const char *const op_names[HRING_NUM_OPS] = {"sum", "prod", "max",
                                                    "min", "avg"};
static const char *const isa_list[] = {"generic", "avx2", "avx512"};
#define NISA ((int)(sizeof isa_list / sizeof isa_list[0]))

static size_t tsize(int t) {
  static const size_t s[HRING_NUM_TYPES] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
  return s[t];
}
static int is_float(int t) {
  return t == HRING_FLOAT16 || t == HRING_FLOAT32 || t == HRING_FLOAT64 ||
         t == HRING_BFLOAT16;
}
static int is_signed_int(int t) {
  return t == HRING_INT8 || t == HRING_INT32 || t == HRING_INT64;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t get_el(const void *p, size_t i, size_t sz) {
  uint64_t v = 0;
  memcpy(&v, (const char *)p + i * sz, sz); /* little-endian x86/arm */
  return v;
}
static void put_el(void *p, size_t i, size_t sz, uint64_t v) {
  memcpy((char *)p + i * sz, &v, sz);
}

static float f_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint32_t bits_f(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static double d_of(uint64_t u) {
  double f;
  memcpy(&f, &u, 8);
  return f;
}
static uint64_t bits_d(double f) {
  uint64_t u;
  memcpy(&u, &f, 8);
  return u;
}

/* Failures are counted; only the first few are printed. */
static int nfail;
#define EXPECT(cond, ...)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      if (nfail++ < 12) htest_fail(__FILE__, __LINE__, __VA_ARGS__); \
    }                                                             \
  } while (0)
#define EXPECT_NO_FAILURES() HCHECK(nfail == 0, "%d mismatches in all", nfail)

/* ---- reference 16-bit converters ---------------------------------------- */

static double ref_h2d(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 0x3FF;
  double v;
  if (e == 31) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp(m, -24);
  else v = ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

/* Rounds x (any double) to a format with `mbits` stored mantissa bits,
 * exponent range [emin, emax] and subnormals, to nearest even.  Returns the
 * encoding (exponent bias = emax). */
static uint32_t ref_round(double x, int mbits, int emin, int emax) {
  uint32_t sign = signbit(x) ? 1u : 0u, ebits, out;
  int ewidth = (emax == 15) ? 5 : 8, e;
  double a = fabs(x), q;
  if (isnan(x)) return (sign << (mbits + ewidth)) | (((1u << ewidth) - 1) << mbits) | (1u << (mbits - 1));
  if (isinf(x)) return (sign << (mbits + ewidth)) | (((1u << ewidth) - 1) << mbits);
  if (a < ldexp(1, emin)) { /* subnormal range: units of 2^(emin-mbits) */
    q = nearbyint(ldexp(a, mbits - emin));
    out = (uint32_t)q; /* q == 2^mbits is the smallest normal's encoding */
  } else {
    frexp(a, &e);
    e -= 1; /* a = 1.f * 2^e */
    q = nearbyint(ldexp(a, mbits - e));
    if (q == ldexp(1, mbits + 1)) {
      q /= 2;
      e += 1;
    }
    if (e > emax) {
      out = ((1u << ewidth) - 1) << mbits; /* infinity */
    } else {
      ebits = (uint32_t)(e + emax);
      out = (ebits << mbits) | ((uint32_t)q - (1u << mbits));
    }
  }
  return (sign << (mbits + ewidth)) | out;
}
static uint16_t ref_d2h(double x) { return (uint16_t)ref_round(x, 10, -14, 15); }
static uint16_t ref_d2bf(double x) { return (uint16_t)ref_round(x, 7, -126, 127); }
static double ref_bf2d(uint16_t h) {
  int s = h >> 15, e = (h >> 7) & 255, m = h & 0x7F;
  double v;
  if (e == 255) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp(m, -133);
  else v = ldexp(128 + m, e - 134);
  return s ? -v : v;
}

/* ---- reference reduction -------------------------------------------------- */

static int ref_isnan(int t, uint64_t v) {
  switch (t) {
    case HRING_FLOAT16: return (v & 0x7C00) == 0x7C00 && (v & 0x3FF);
    case HRING_BFLOAT16: return (v & 0x7F80) == 0x7F80 && (v & 0x7F);
    case HRING_FLOAT32: return isnan(f_of((uint32_t)v));
    case HRING_FLOAT64: return isnan(d_of(v));
    default: return 0;
  }
}

/* max/min of doubles holding values of the element type, with the library's
 * documented rules; NaNs are handled by the caller. */
static double ref_fmaxmin(double x, double y, int is_max) {
  if (x == 0 && y == 0) { /* +0 vs -0: max gives +0, min gives -0 */
    int nx = !!signbit(x), ny = !!signbit(y);
    return (is_max ? (nx && ny) : (nx || ny)) ? -0.0 : 0.0;
  }
  return is_max ? (x > y ? x : y) : (x < y ? x : y);
}

static uint64_t ref_reduce(int t, int op, uint64_t x, uint64_t y, int div) {
  if (op == HRING_AVG && div <= 1) op = HRING_SUM;
  if (!is_float(t)) {
    int w = (int)tsize(t) * 8;
    uint64_t mask = w == 64 ? ~0ull : (1ull << w) - 1;
    int64_t sx = (int64_t)(x << (64 - w)) >> (64 - w);
    int64_t sy = (int64_t)(y << (64 - w)) >> (64 - w);
    int sgn = is_signed_int(t);
    uint64_t s = (x + y) & mask;
    switch (op) {
      case HRING_SUM: return s;
      case HRING_PROD: return (x * y) & mask;
      case HRING_MAX: return sgn ? (sx > sy ? x : y) : (x > y ? x : y);
      case HRING_MIN: return sgn ? (sx < sy ? x : y) : (x < y ? x : y);
      default: {
        if (sgn) {
          int64_t ss = (int64_t)(s << (64 - w)) >> (64 - w);
          return (uint64_t)(ss / div) & mask;
        }
        return s / (uint64_t)div;
      }
    }
  }
  /* Floats. */
  if (op == HRING_MAX || op == HRING_MIN) {
    /* NaN: a's if a is one, else b's; 16-bit formats come back quiet. */
    uint64_t nanv = ref_isnan(t, x) ? x : ref_isnan(t, y) ? y : 0;
    int hasnan = ref_isnan(t, x) || ref_isnan(t, y);
    if (hasnan) {
      if (t == HRING_FLOAT16) return nanv | 0x200;
      if (t == HRING_BFLOAT16) return nanv | 0x40;
      return nanv;
    }
  }
  double dx, dy, r;
  switch (t) {
    case HRING_FLOAT16: dx = ref_h2d((uint16_t)x); dy = ref_h2d((uint16_t)y); break;
    case HRING_BFLOAT16: dx = ref_bf2d((uint16_t)x); dy = ref_bf2d((uint16_t)y); break;
    case HRING_FLOAT32: dx = f_of((uint32_t)x); dy = f_of((uint32_t)y); break;
    default: dx = d_of(x); dy = d_of(y); break;
  }
  if (t == HRING_FLOAT64) {
    switch (op) {
      case HRING_SUM: r = dx + dy; break;
      case HRING_PROD: r = dx * dy; break;
      case HRING_MAX: r = ref_fmaxmin(dx, dy, 1); break;
      case HRING_MIN: r = ref_fmaxmin(dx, dy, 0); break;
      default: r = (dx + dy) / (double)div; break;
    }
    return bits_d(r);
  }
  /* fp32 arithmetic, done in double and rounded to float. */
  switch (op) {
    case HRING_SUM: r = (float)(dx + dy); break;
    case HRING_PROD: r = (float)(dx * dy); break;
    case HRING_MAX: r = ref_fmaxmin(dx, dy, 1); break;
    case HRING_MIN: r = ref_fmaxmin(dx, dy, 0); break;
    default: r = (float)((double)(float)(dx + dy) / (double)(float)div); break;
  }
  if (t == HRING_FLOAT16) return ref_d2h(r);
  if (t == HRING_BFLOAT16) return ref_d2bf(r);
  return bits_f((float)r);
}

/* Equal bits, or both NaN where the payload is not specified (sum, prod and
 * avg, whose NaN payload rules are the hardware's). */
static int same_result(int t, int op, uint64_t got, uint64_t want) {
  if (got == want) return 1;
  if (is_float(t) && op != HRING_MAX && op != HRING_MIN)
    return ref_isnan(t, got) && ref_isnan(t, want);
  return 0;
}

/* ---- random inputs --------------------------------------------------------- */

/* Values for type t: integers as random bits (wrap-around shows), floats
 * mostly moderate numbers with a sprinkling of zeros, infinities, NaNs,
 * subnormals and huge values.  canon_nan: every NaN has one bit pattern per
 * type, for bit comparisons of ops whose NaN payload is unspecified. */
static uint64_t rnd_value(int t, int canon_nan) {
  uint64_t r = rnd(), k = r % 64;
  switch (t) {
    case HRING_FLOAT16:
    case HRING_BFLOAT16: {
      uint64_t v = (r >> 8) & 0xFFFF;
      if (canon_nan && ref_isnan(t, v)) v = t == HRING_FLOAT16 ? 0x7E00 : 0x7FC0;
      return v;
    }
    case HRING_FLOAT32: {
      float f;
      if (k == 0) return canon_nan ? 0x7FC00000u : (uint32_t)(0x7F800001u + (r >> 40) % 0x7FFFFF) | (uint32_t)(r & 0x80000000u);
      if (k == 1) return (r & 1) ? 0x7F800000u : 0xFF800000u;
      if (k == 2) return (r & 1) ? 0 : 0x80000000u;
      if (k == 3) return (uint32_t)(r >> 41) | (uint32_t)(r & 0x80000000u); /* subnormal */
      if (k == 4) return 0x7F000000u | (uint32_t)(r >> 41);                   /* huge */
      f = (float)ldexp((double)(int32_t)(r >> 32) / 2147483648.0, (int)(r % 41) - 20);
      return bits_f(f);
    }
    case HRING_FLOAT64: {
      if (k == 0) return canon_nan ? 0x7FF8000000000000ull : 0x7FF0000000000001ull | (r >> 13) | (r & (1ull << 63));
      if (k == 1) return (r & 1) ? 0x7FF0000000000000ull : 0xFFF0000000000000ull;
      if (k == 2) return (r & 1) ? 0 : 0x8000000000000000ull;
      if (k == 3) return (r >> 12) | (r & (1ull << 63));
      if (k == 4) return 0x7FE0000000000000ull | (r >> 12);
      return bits_d(ldexp((double)(int64_t)r / 9223372036854775808.0, (int)(r % 81) - 40));
    }
    default: return tsize(t) == 8 ? r : r & ((1ull << (8 * tsize(t))) - 1);
  }
}

/* ---- one reduction call, checked ----------------------------------------- */

enum { ALIAS_NONE, ALIAS_A, ALIAS_B };

struct rcase {
  int type, op, div, flags, alias, with_dst2, canon_nan;
  size_t count;
  size_t off_a, off_b, off_d; /* byte offsets into the buffers */
};

#define GUARD 40
#define GUARD_BYTE 0xA5

/* Whether buf[0..span) outside [lo, hi) still holds the guard pattern. */
static int untouched(const unsigned char *buf, size_t span, size_t lo, size_t hi) {
  for (size_t k = 0; k < span; k++)
    if ((k < lo || k >= hi) && buf[k] != GUARD_BYTE) return 0;
  return 1;
}

static void run_case(const struct rcase *c, const char *isa) {
  size_t sz = tsize(c->type), n = c->count, span = n * sz + 2 * GUARD + 64;
  unsigned char *ba = malloc(span), *bb = malloc(span), *bd = malloc(span),
                *bd2 = malloc(span);
  uint64_t *xa = malloc((n + 1) * sizeof *xa), *xb = malloc((n + 1) * sizeof *xb);
  if (!ba || !bb || !bd || !bd2 || !xa || !xb) {
    EXPECT(0, "out of memory");
    goto out;
  }
  memset(ba, GUARD_BYTE, span);
  memset(bb, GUARD_BYTE, span);
  memset(bd, GUARD_BYTE, span);
  memset(bd2, GUARD_BYTE, span);
  unsigned char *pa = ba + GUARD + c->off_a, *pb = bb + GUARD + c->off_b;
  unsigned char *pd = bd + GUARD + c->off_d, *pd2 = bd2 + GUARD + c->off_d;
  for (size_t i = 0; i < n; i++) {
    xa[i] = rnd_value(c->type, c->canon_nan);
    xb[i] = rnd_value(c->type, c->canon_nan);
    put_el(pa, i, sz, xa[i]);
    put_el(pb, i, sz, xb[i]);
  }
  unsigned char *dst = c->alias == ALIAS_A ? pa : c->alias == ALIAS_B ? pb : pd;
  unsigned char *dbase = c->alias == ALIAS_A ? ba : c->alias == ALIAS_B ? bb : bd;
  hring__reduce(dst, c->with_dst2 ? pd2 : NULL, pa, pb, n, c->type, c->op,
                c->div, c->flags);
  for (size_t i = 0; i < n; i++) {
    uint64_t want = ref_reduce(c->type, c->op, xa[i], xb[i], c->div);
    uint64_t got = get_el(dst, i, sz);
    EXPECT(same_result(c->type, c->op, got, want),
           "%s %s %s n=%zu i=%zu offs=%zu/%zu/%zu alias=%d dst2=%d flags=%d "
           "div=%d: %#llx op %#llx = %#llx, want %#llx",
           isa, type_names[c->type], op_names[c->op], n, i, c->off_a, c->off_b,
           c->off_d, c->alias, c->with_dst2, c->flags, c->div,
           (unsigned long long)xa[i], (unsigned long long)xb[i],
           (unsigned long long)got, (unsigned long long)want);
    if (c->with_dst2)
      EXPECT(get_el(pd2, i, sz) == got, "%s %s %s n=%zu i=%zu: dst2 differs",
             isa, type_names[c->type], op_names[c->op], n, i);
  }
  /* Nothing outside dst[0..n) and dst2[0..n) is written, and an input that
   * is not dst is not written at all. */
  size_t dlo = (size_t)(dst - dbase), d2lo = (size_t)(pd2 - bd2);
  size_t alo = (size_t)(pa - ba), blo = (size_t)(pb - bb);
  EXPECT(untouched(dbase, span, dlo, dlo + n * sz), "%s %s %s n=%zu: wrote outside dst",
         isa, type_names[c->type], op_names[c->op], n);
  EXPECT(untouched(bd2, span, d2lo, d2lo + (c->with_dst2 ? n * sz : 0)),
         "%s %s %s n=%zu: wrote outside dst2", isa, type_names[c->type], op_names[c->op], n);
  if (dbase != bd) EXPECT(untouched(bd, span, 0, 0), "%s: wrote to the unused dst", isa);
  if (dbase != ba) EXPECT(untouched(ba, span, alo, alo + n * sz), "%s: wrote near a", isa);
  if (dbase != bb) EXPECT(untouched(bb, span, blo, blo + n * sz), "%s: wrote near b", isa);
  for (size_t i = 0; i < n; i++) {
    if (dst != pa) EXPECT(get_el(pa, i, sz) == xa[i], "%s: input a changed", isa);
    if (dst != pb) EXPECT(get_el(pb, i, sz) == xb[i], "%s: input b changed", isa);
  }
out:
  free(ba);
  free(bb);
  free(bd);
  free(bd2);
  free(xa);
  free(xb);
}

/* Every type x op x count x misalignment x aliasing x dst2 x NT, on one
 * kernel family, against the reference. */
static void sweep_family(const char *isa, int type_lo, int type_hi) {
  static const size_t counts[] = {0, 1, 7, 31, 33, 1001, 1031};
  /* Offsets in elements (1..3), and one set in bytes off element
   * alignment. */
  static const size_t eoffs[][3] = {{0, 0, 0}, {1, 2, 3}, {3, 1, 2}, {2, 3, 1}};
  if (hring__reduce_set_isa(isa) != 0) HSKIP("this CPU cannot run the %s kernels", isa);
  HREQUIRE(strcmp(hring__reduce_isa(), isa) == 0, "isa is %s, not %s",
           hring__reduce_isa(), isa);
  for (int t = type_lo; t <= type_hi; t++) {
    size_t sz = tsize(t);
    for (int op = 0; op < HRING_NUM_OPS; op++) {
      for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        for (int oi = 0; oi < 5; oi++) {
          for (int alias = 0; alias < 3; alias++) {
            for (int v = 0; v < 4; v++) { /* dst2 x NT */
              struct rcase c = {0};
              c.type = t;
              c.op = op;
              c.count = counts[ci];
              if (oi < 4) {
                c.off_a = eoffs[oi][0] * sz;
                c.off_b = eoffs[oi][1] * sz;
                c.off_d = eoffs[oi][2] * sz;
              } else {
                c.off_a = 1;
                c.off_b = 3;
                c.off_d = 5;
              }
              c.alias = alias;
              c.with_dst2 = v & 1;
              c.flags = (v & 2) ? HRING_REDUCE_NT : 0;
              /* AVG with div 0, 1 (plain sum) and 3; other ops get a div
               * they must ignore. */
              static const int avg_divs[] = {3, 1, 0, 7};
              c.div = op == HRING_AVG ? avg_divs[ci % 4] : (int)(ci % 2 ? 5 : 0);
              run_case(&c, isa);
            }
          }
        }
      }
    }
  }
  EXPECT_NO_FAILURES();
}

HTEST(reduce_sweep_generic_int, 30) { sweep_family("generic", HRING_INT8, HRING_UINT64); }
HTEST(reduce_sweep_generic_float, 30) { sweep_family("generic", HRING_FLOAT16, HRING_BFLOAT16); }
HTEST(reduce_sweep_avx2_int, 30) { sweep_family("avx2", HRING_INT8, HRING_UINT64); }
HTEST(reduce_sweep_avx2_float, 30) { sweep_family("avx2", HRING_FLOAT16, HRING_BFLOAT16); }
HTEST(reduce_sweep_avx512_int, 30) { sweep_family("avx512", HRING_INT8, HRING_UINT64); }
HTEST(reduce_sweep_avx512_float, 30) { sweep_family("avx512", HRING_FLOAT16, HRING_BFLOAT16); }

/* ---- vector families == portable family, bit for bit ---------------------- */

HTEST(reduce_vector_matches_generic, 30) {
  int nvec = 0;
  for (int f = 1; f < NISA; f++) {
    if (hring__reduce_set_isa(isa_list[f]) != 0) continue;
    nvec++;
    for (int iter = 0; iter < 2000; iter++) {
      int t = (int)(rnd() % HRING_NUM_TYPES), op = (int)(rnd() % HRING_NUM_OPS);
      size_t sz = tsize(t), n = (size_t)(rnd() % 3000);
      size_t oa = rnd() % 40, ob = rnd() % 40, od = rnd() % 40;
      int div = (int)(rnd() % 10), flags = (rnd() & 1) ? HRING_REDUCE_NT : 0;
      int alias = (int)(rnd() % 3), two = (int)(rnd() & 1);
      /* Arbitrary NaN payloads only where the payload rule is specified. */
      int canon = !(op == HRING_MAX || op == HRING_MIN);
      size_t span = n * sz + 64;
      unsigned char *a = malloc(span), *b = malloc(span), *d1 = malloc(span),
                    *d2 = malloc(span), *e1 = malloc(span), *e2 = malloc(span),
                    *a2 = malloc(span), *b2 = malloc(span);
      HREQUIRE(a && b && d1 && d2 && e1 && e2 && a2 && b2, "out of memory");
      for (size_t i = 0; i < n; i++) {
        put_el(a + oa, i, sz, rnd_value(t, canon));
        put_el(b + ob, i, sz, rnd_value(t, canon));
      }
      memcpy(a2, a, span);
      memcpy(b2, b, span);
      memset(d1, 0, span);
      memset(e1, 0, span);
      /* Vector family into (d1 | a | b, d2), generic into (e1 | a2 | b2, e2). */
      unsigned char *dv = alias == 1 ? a + oa : alias == 2 ? b + ob : d1 + od;
      unsigned char *dg = alias == 1 ? a2 + oa : alias == 2 ? b2 + ob : e1 + od;
      hring__reduce_set_isa(isa_list[f]);
      hring__reduce(dv, two ? d2 + od : NULL, a + oa, b + ob, n, t, op, div, flags);
      hring__reduce_set_isa("generic");
      hring__reduce(dg, two ? e2 + od : NULL, a2 + oa, b2 + ob, n, t, op, div, flags);
      EXPECT(memcmp(dv, dg, n * sz) == 0, "%s %s %s n=%zu div=%d alias=%d: differs from generic",
             isa_list[f], type_names[t], op_names[op], n, div, alias);
      if (two)
        EXPECT(memcmp(d2 + od, e2 + od, n * sz) == 0, "%s %s %s: dst2 differs from generic",
               isa_list[f], type_names[t], op_names[op]);
      free(a), free(b), free(d1), free(d2), free(e1), free(e2), free(a2), free(b2);
    }
  }
  EXPECT_NO_FAILURES();
  if (nvec == 0) HSKIP("no vector kernel family on this CPU");
}

/* Exhaustive over all float16 pairs for a few ops would take long; all
 * 65536 values against a fixed set of partners covers every input pattern
 * of the narrowing and widening, in body and tail positions. */
/* Index of the first element where two results differ, or n.  The one
 * tolerance is the one the interface leaves open: when both operands of
 * sum, prod or avg are NaNs, which payload survives. */
static size_t same_16(int t, int op, const uint16_t *a, const uint16_t *b,
                      const uint16_t *r1, const uint16_t *r2, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (r1[i] == r2[i]) continue;
    if (op != HRING_MAX && op != HRING_MIN && ref_isnan(t, a[i]) && ref_isnan(t, b[i]) &&
        ref_isnan(t, r1[i]) && ref_isnan(t, r2[i]))
      continue;
    return i;
  }
  return n;
}

HTEST(reduce_vector_matches_generic_16bit_all_inputs, 30) {
  static const uint16_t partners_h[] = {0x0000, 0x8000, 0x3C00, 0xBC00, 0x0001, 0x7BFF,
                                        0x7C00, 0xFC00, 0x7E00, 0x3555, 0x0400, 0x83FF};
  static const uint16_t partners_b[] = {0x0000, 0x8000, 0x3F80, 0xBF80, 0x0001, 0x7F7F,
                                        0x7F80, 0xFF80, 0x7FC0, 0x3EAB, 0x0080, 0x807F};
  const size_t n = 65536 + 5;
  uint16_t *a = malloc(n * 2), *b = malloc(n * 2), *dv = malloc(n * 2), *dg = malloc(n * 2);
  int nvec = 0;
  HREQUIRE(a && b && dv && dg, "out of memory");
  for (int f = 1; f < NISA; f++) {
    if (hring__reduce_set_isa(isa_list[f]) != 0) continue;
    nvec++;
    for (int t = HRING_FLOAT16; t <= HRING_BFLOAT16; t += HRING_BFLOAT16 - HRING_FLOAT16) {
      const uint16_t *pt = t == HRING_FLOAT16 ? partners_h : partners_b;
      for (size_t p = 0; p < 12; p++) {
        for (size_t i = 0; i < n; i++) {
          a[i] = (uint16_t)i;
          b[i] = pt[p];
        }
        for (int op = 0; op < HRING_NUM_OPS; op++) {
          int div = op == HRING_AVG ? 3 : 0;
          hring__reduce_set_isa(isa_list[f]);
          hring__reduce(dv, NULL, a, b, n, t, op, div, 0);
          hring__reduce_set_isa("generic");
          hring__reduce(dg, NULL, a, b, n, t, op, div, 0);
          EXPECT(same_16(t, op, a, b, dv, dg, n) == n, "%s %s %s partner %#x: differs from generic at %zu",
                 isa_list[f], type_names[t], op_names[op], pt[p], same_16(t, op, a, b, dv, dg, n));
          hring__reduce_set_isa(isa_list[f]);
          hring__reduce(dv, NULL, b, a, n, t, op, div, 0);
          hring__reduce_set_isa("generic");
          hring__reduce(dg, NULL, b, a, n, t, op, div, 0);
          EXPECT(same_16(t, op, b, a, dv, dg, n) == n, "%s %s %s partner %#x first: differs from generic at %zu",
                 isa_list[f], type_names[t], op_names[op], pt[p], same_16(t, op, b, a, dv, dg, n));
        }
      }
    }
  }
  free(a), free(b), free(dv), free(dg);
  EXPECT_NO_FAILURES();
  if (nvec == 0) HSKIP("no vector kernel family on this CPU");
}

/* ---- converters ------------------------------------------------------------ */

HTEST(reduce_half_convert, 20) {
  /* Widening: all 65536 values; NaNs come out quiet with the payload kept. */
  for (uint32_t h = 0; h < 65536; h++) {
    float f = hring__half_to_float((uint16_t)h);
    double want = ref_h2d((uint16_t)h);
    if (isnan(want)) {
      uint32_t wb = ((h & 0x8000u) << 16) | 0x7FC00000u | ((h & 0x3FFu) << 13);
      EXPECT(bits_f(f) == wb, "h2f(%#x) = %#x, want quiet NaN %#x", h, bits_f(f), wb);
    } else {
      EXPECT(bits_f(f) == bits_f((float)want), "h2f(%#x) = %a, want %a", h, f, want);
    }
  }
  /* Narrowing: a stride through all floats plus every float near the
   * overflow, normal/subnormal and underflow boundaries. */
  static const uint32_t edges[] = {0x477FF000u, 0x477FE000u, 0x38800000u, 0x38000000u,
                                   0x33000000u, 0x33800000u, 0x3F800000u, 0x7F800000u};
  for (int pass = 0; pass < 2; pass++) {
    for (uint64_t k = 0; k < (pass ? 16 * 8193u : 1u << 20); k++) {
      uint32_t u = pass ? edges[k / 8193 % 8] - 4096 + (uint32_t)(k % 8193) : (uint32_t)(k * 4093u);
      if (pass && (k / 8193) >= 8) u |= 0x80000000u;
      float f = f_of(u);
      uint16_t got = hring__float_to_half(f);
      if (isnan(f)) {
        uint16_t want = (uint16_t)(((u >> 16) & 0x8000u) | 0x7E00u | ((u >> 13) & 0x3FFu));
        EXPECT(got == want, "f2h(%#x) = %#x, want NaN %#x", u, got, want);
      } else {
        uint16_t want = ref_d2h(f);
        EXPECT(got == want, "f2h(%a [%#x]) = %#x, want %#x", f, u, got, want);
      }
    }
  }
  /* Every tie: the midpoint between each pair of adjacent float16 values
   * (exact in fp32), and the floats just either side of it. */
  for (uint32_t h = 0; h < 0x7C00; h++) {
    for (int sgn = 0; sgn < 2; sgn++) {
      double mid = (ref_h2d((uint16_t)h) + ref_h2d((uint16_t)(h + 1))) / 2;
      float fm = (float)(sgn ? -mid : mid);
      for (int d = -1; d <= 1; d++) {
        float f = f_of(bits_f(fm) + (uint32_t)d);
        if (mid == 0 && d < 0) continue;
        uint16_t want = ref_d2h(f), got = hring__float_to_half(f);
        EXPECT(got == want, "f2h(%a) = %#x, want %#x", f, got, want);
      }
    }
  }
  /* Named cases. */
  EXPECT(hring__float_to_half(1.0f + 0x1p-11f) == 0x3C00, "tie 1+2^-11 to even 1.0");
  EXPECT(hring__float_to_half(1.0f + 3 * 0x1p-11f) == 0x3C02, "tie 1+3*2^-11 to even");
  EXPECT(hring__float_to_half(65504.0f) == 0x7BFF, "65504 is the largest");
  EXPECT(hring__float_to_half(65519.0f) == 0x7BFF, "65519 rounds down");
  EXPECT(hring__float_to_half(65520.0f) == 0x7C00, "65520 overflows to inf");
  EXPECT(hring__float_to_half(-1e10f) == 0xFC00, "-1e10 overflows to -inf");
  EXPECT(hring__float_to_half(0x1p-24f) == 0x0001, "smallest subnormal");
  EXPECT(hring__float_to_half(0x1p-25f) == 0x0000, "2^-25 ties to 0");
  EXPECT(hring__float_to_half(0x1.8p-24f) == 0x0002, "1.5*2^-24 ties to 2");
  EXPECT(hring__float_to_half(0x1.000002p-25f) == 0x0001, "just above 2^-25");
  EXPECT(hring__float_to_half(0x1.ffcp-15f) == 0x0400, "rounds up to smallest normal");
  EXPECT(hring__float_to_half(-0.0f) == 0x8000, "-0");
  EXPECT(hring__float_to_half(INFINITY) == 0x7C00, "inf");
  EXPECT((hring__float_to_half(NAN) & 0x7E00) == 0x7E00, "NaN stays NaN");
  EXPECT(hring__float_to_half(f_of(0x7F800001u)) == 0x7E00, "sNaN with low payload stays NaN");
  EXPECT(bits_f(hring__half_to_float(0x7C01)) == 0x7FC02000u, "sNaN widened quiet");
  EXPECT(hring__half_to_float(0x0001) == 0x1p-24f, "subnormal widened");
  EXPECT_NO_FAILURES();
}

HTEST(reduce_bf16_convert, 20) {
  for (uint32_t h = 0; h < 65536; h++) {
    float f = hring__bf16_to_float((uint16_t)h);
    double want = ref_bf2d((uint16_t)h);
    if (isnan(want))
      EXPECT(bits_f(f) == h << 16, "bf2f(%#x) = %#x", h, bits_f(f));
    else
      EXPECT(bits_f(f) == bits_f((float)want), "bf2f(%#x) = %a, want %a", h, f, want);
  }
  for (uint64_t k = 0; k < (1u << 20); k++) {
    uint32_t u = (uint32_t)(k * 4093u) ^ (uint32_t)(k & 0xFFFF);
    float f = f_of(u);
    uint16_t got = hring__float_to_bf16(f);
    if (isnan(f)) {
      EXPECT(got == (uint16_t)((u >> 16) | 0x40), "f2bf(%#x) = %#x: NaN not kept quiet", u, got);
    } else {
      uint16_t want = ref_d2bf(f);
      EXPECT(got == want, "f2bf(%a [%#x]) = %#x, want %#x", f, u, got, want);
    }
  }
  for (uint32_t h = 0; h < 0x7F80; h++) { /* every tie, as for float16 */
    for (int sgn = 0; sgn < 2; sgn++) {
      double mid = (ref_bf2d((uint16_t)h) + ref_bf2d((uint16_t)(h + 1))) / 2;
      float fm = (float)(sgn ? -mid : mid);
      for (int d = -1; d <= 1; d++) {
        float f = f_of(bits_f(fm) + (uint32_t)d);
        if (mid == 0 && d < 0) continue;
        uint16_t want = ref_d2bf(f), got = hring__float_to_bf16(f);
        EXPECT(got == want, "f2bf(%a) = %#x, want %#x", f, got, want);
      }
    }
  }
  EXPECT(hring__float_to_bf16(1.0f + 0x1p-8f) == 0x3F80, "tie to even 1.0");
  EXPECT(hring__float_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82, "tie to even up");
  EXPECT(hring__float_to_bf16(f_of(0x7F7FFFFFu)) == 0x7F80, "FLT_MAX rounds to inf");
  EXPECT(hring__float_to_bf16(f_of(0x7F7F7FFFu)) == 0x7F7F, "just below the tie");
  EXPECT(hring__float_to_bf16(f_of(0x7FFFFFFFu)) == 0x7FFF, "NaN all ones stays NaN");
  EXPECT(hring__float_to_bf16(f_of(0x7F800001u)) == 0x7FC0, "sNaN low payload stays NaN");
  EXPECT(hring__float_to_bf16(f_of(0xFF800001u)) == 0xFFC0, "negative sNaN");
  EXPECT(hring__float_to_bf16(f_of(0x00008000u)) == 0x0000, "subnormal tie to even 0");
  EXPECT(hring__float_to_bf16(f_of(0x00018000u)) == 0x0002, "subnormal tie to even 2");
  EXPECT_NO_FAILURES();
}

/* ---- named cases through hring__reduce, on every family -------------------- */

struct pair16 {
  int op, div;
  uint16_t a, b, want; /* want 0xFFFF: any NaN */
};

static void check_pairs16(const char *isa, int t, const struct pair16 *p, size_t np) {
  /* Each pair at position 0, in a body vector (position 40) and in the
   * tail (position 45 of 47), so all code paths see it. */
  static const size_t pos[] = {0, 40, 45};
  for (size_t k = 0; k < np; k++) {
    for (size_t q = 0; q < 3; q++) {
      uint16_t a[47], b[47], d[47];
      for (int i = 0; i < 47; i++) a[i] = b[i] = d[i] = 0;
      a[pos[q]] = p[k].a;
      b[pos[q]] = p[k].b;
      hring__reduce(d, NULL, a, b, 47, t, p[k].op, p[k].div, 0);
      uint16_t got = d[pos[q]];
      if (p[k].want == 0xFFFF)
        EXPECT(ref_isnan(t, got), "%s %s %s(%#x, %#x) = %#x, want NaN", isa,
               type_names[t], op_names[p[k].op], p[k].a, p[k].b, got);
      else
        EXPECT(got == p[k].want, "%s %s %s(%#x, %#x) div %d = %#x, want %#x", isa,
               type_names[t], op_names[p[k].op], p[k].a, p[k].b, p[k].div, got, p[k].want);
    }
  }
}

HTEST(reduce_16bit_rounding_cases, 10) {
  static const struct pair16 h[] = {
      {HRING_SUM, 0, 0x3C00, 0x1000, 0x3C00},  /* 1 + 2^-11: tie to even 1 */
      {HRING_SUM, 0, 0x3C01, 0x1000, 0x3C02},  /* tie to even, up */
      {HRING_SUM, 0, 0x7BFF, 0x7BFF, 0x7C00},  /* overflow to inf */
      {HRING_SUM, 0, 0x7BFF, 0x4C00, 0x7C00},  /* 65504 + 16: tie to inf */
      {HRING_SUM, 0, 0x7BFF, 0x4800, 0x7BFF},  /* 65504 + 8 stays */
      {HRING_SUM, 0, 0x0001, 0x0001, 0x0002},  /* subnormals */
      {HRING_SUM, 0, 0x03FF, 0x0001, 0x0400},  /* into the normals */
      {HRING_PROD, 0, 0x0001, 0x3800, 0x0000}, /* 2^-25: tie to 0 */
      {HRING_PROD, 0, 0x0003, 0x3800, 0x0002}, /* 1.5*2^-24: tie to 2 */
      {HRING_PROD, 0, 0x7C00, 0x0000, 0xFFFF}, /* inf * 0 */
      {HRING_SUM, 0, 0x7C00, 0xFC00, 0xFFFF},  /* inf - inf */
      {HRING_SUM, 0, 0x7C00, 0x3C00, 0x7C00},  /* inf + 1 */
      {HRING_SUM, 0, 0x7E00, 0x3C00, 0xFFFF},
      {HRING_SUM, 0, 0x3C00, 0x7E00, 0xFFFF},
      {HRING_MAX, 0, 0x7E00, 0x3C00, 0x7E00},
      {HRING_MAX, 0, 0x3C00, 0x7D00, 0x7F00},  /* sNaN comes out quiet */
      {HRING_MIN, 0, 0xFC00, 0x7E01, 0x7E01},
      {HRING_MAX, 0, 0x0000, 0x8000, 0x0000},
      {HRING_MAX, 0, 0x8000, 0x0000, 0x0000},
      {HRING_MIN, 0, 0x0000, 0x8000, 0x8000},
      {HRING_MIN, 0, 0x8000, 0x0000, 0x8000},
      {HRING_AVG, 2, 0x3C00, 0x0000, 0x3800},  /* (1 + 0) / 2 */
      {HRING_AVG, 3, 0x3C00, 0x3C00, 0x3955},  /* fp32(2/3) -> 0.66650390625 */
      {HRING_AVG, 2, 0x7BFF, 0x7BFF, 0x7BFF},  /* the sum is computed in fp32 */
      {HRING_AVG, 1, 0x3C00, 0x3C00, 0x4000},  /* div 1: plain sum */
  };
  static const struct pair16 bf[] = {
      {HRING_SUM, 0, 0x3F80, 0x3B80, 0x3F80},  /* 1 + 2^-8: tie to even 1 */
      {HRING_SUM, 0, 0x3F81, 0x3B80, 0x3F82},
      {HRING_SUM, 0, 0x7F7F, 0x7F7F, 0x7F80},  /* overflow to inf */
      {HRING_SUM, 0, 0x0001, 0x0001, 0x0002},  /* subnormals */
      {HRING_SUM, 0, 0x7F80, 0xFF80, 0xFFFF},
      {HRING_SUM, 0, 0x7FC0, 0x3F80, 0xFFFF},
      {HRING_MAX, 0, 0x7F81, 0x3F80, 0x7FC1},  /* sNaN comes out quiet */
      {HRING_MIN, 0, 0x3F80, 0xFFC5, 0xFFC5},
      {HRING_MAX, 0, 0x8000, 0x0000, 0x0000},
      {HRING_MIN, 0, 0x0000, 0x8000, 0x8000},
      {HRING_PROD, 0, 0x3FC0, 0x3FC0, 0x4010}, /* 1.5 * 1.5 = 2.25 */
      {HRING_AVG, 3, 0x3F80, 0x3F80, 0x3F2B},  /* 2/3 in fp32 -> 0.66796875 */
      {HRING_AVG, 2, 0x7F7F, 0x7F7F, 0x7F80},  /* the fp32 sum overflows */
      {HRING_AVG, 2, 0x7E80, 0x7E80, 0x7E80},
  };
  for (int f = 0; f < NISA; f++) {
    if (hring__reduce_set_isa(isa_list[f]) != 0) continue;
    check_pairs16(isa_list[f], HRING_FLOAT16, h, sizeof h / sizeof h[0]);
    check_pairs16(isa_list[f], HRING_BFLOAT16, bf, sizeof bf / sizeof bf[0]);
  }
  EXPECT_NO_FAILURES();
}

HTEST(reduce_float_nan_inf_cases, 10) {
  const float nan = NAN, inf = INFINITY;
  struct {
    int op;
    float a, b;
    int want_nan;
    float want;
    int want_neg; /* sign of a zero result */
  } c[] = {
      {HRING_SUM, nan, 1, 1, 0, 0},   {HRING_SUM, 1, nan, 1, 0, 0},
      {HRING_PROD, inf, 0, 1, 0, 0},  {HRING_SUM, inf, -inf, 1, 0, 0},
      {HRING_SUM, inf, 1, 0, inf, 0}, {HRING_PROD, -inf, 2, 0, -inf, 0},
      {HRING_MAX, nan, 5, 1, 0, 0},   {HRING_MAX, 5, nan, 1, 0, 0},
      {HRING_MIN, nan, 5, 1, 0, 0},   {HRING_MIN, 5, nan, 1, 0, 0},
      {HRING_MAX, -inf, 3, 0, 3, 0},  {HRING_MIN, inf, 3, 0, 3, 0},
      {HRING_MAX, inf, nan, 1, 0, 0}, {HRING_AVG, inf, 1, 0, inf, 0},
      {HRING_MAX, 0.0f, -0.0f, 0, 0, 0}, {HRING_MAX, -0.0f, 0.0f, 0, 0, 0},
      {HRING_MIN, 0.0f, -0.0f, 0, 0, 1}, {HRING_MIN, -0.0f, 0.0f, 0, 0, 1},
      {HRING_MAX, -0.0f, -0.0f, 0, 0, 1}, {HRING_SUM, -0.0f, -0.0f, 0, 0, 1},
      {HRING_SUM, 0.0f, -0.0f, 0, 0, 0},
  };
  for (int f = 0; f < NISA; f++) {
    if (hring__reduce_set_isa(isa_list[f]) != 0) continue;
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
      for (size_t pos = 0; pos < 19; pos += 9) { /* body and tail */
        float a[19] = {0}, b[19] = {0}, d[19];
        double da[19] = {0}, db[19] = {0}, dd[19];
        a[pos] = c[k].a;
        b[pos] = c[k].b;
        da[pos] = c[k].a;
        db[pos] = c[k].b;
        int div = c[k].op == HRING_AVG ? 2 : 0;
        hring__reduce(d, NULL, a, b, 19, HRING_FLOAT32, c[k].op, div, 0);
        hring__reduce(dd, NULL, da, db, 19, HRING_FLOAT64, c[k].op, div, 0);
        float want = c[k].op == HRING_AVG ? c[k].want / 2 : c[k].want;
        if (c[k].want_nan) {
          EXPECT(isnan(d[pos]), "%s float32 case %zu: %g, want NaN", isa_list[f], k, d[pos]);
          EXPECT(isnan(dd[pos]), "%s float64 case %zu: %g, want NaN", isa_list[f], k, dd[pos]);
        } else {
          EXPECT(d[pos] == want && !!signbit(d[pos]) == (c[k].want_neg || want < 0),
                 "%s float32 case %zu: %g, want %g", isa_list[f], k, d[pos], want);
          EXPECT(dd[pos] == want && !!signbit(dd[pos]) == (c[k].want_neg || want < 0),
                 "%s float64 case %zu: %g, want %g", isa_list[f], k, dd[pos], want);
        }
      }
    }
    /* max/min keep a's NaN payload when a is a NaN, else b's. */
    float a[9], b[9], d[9];
    for (int i = 0; i < 9; i++) a[i] = b[i] = 1;
    a[8] = f_of(0x7FC12345u);
    b[8] = f_of(0xFFC54321u);
    a[3] = f_of(0x7F812345u); /* signalling: passed through as is */
    b[2] = f_of(0xFFC54321u);
    hring__reduce(d, NULL, a, b, 9, HRING_FLOAT32, HRING_MAX, 0, 0);
    EXPECT(bits_f(d[8]) == 0x7FC12345u && bits_f(d[3]) == 0x7F812345u &&
               bits_f(d[2]) == 0xFFC54321u,
           "%s: max NaN payloads %#x %#x %#x", isa_list[f], bits_f(d[8]), bits_f(d[3]),
           bits_f(d[2]));
  }
  EXPECT_NO_FAILURES();
}

HTEST(reduce_integer_cases, 10) {
  for (int f = 0; f < NISA; f++) {
    if (hring__reduce_set_isa(isa_list[f]) != 0) continue;
    int8_t a8[35] = {0}, b8[35] = {0}, d8[35];
    a8[0] = 127, b8[0] = 1;    /* wraps to -128 */
    a8[33] = -7, b8[33] = 0;   /* avg: truncation toward zero */
    a8[34] = -100, b8[34] = -100; /* wraps to 56 */
    hring__reduce(d8, NULL, a8, b8, 35, HRING_INT8, HRING_SUM, 0, 0);
    EXPECT(d8[0] == -128 && d8[34] == 56, "%s int8 sum wrap %d %d", isa_list[f], d8[0], d8[34]);
    hring__reduce(d8, NULL, a8, b8, 35, HRING_INT8, HRING_AVG, 2, 0);
    EXPECT(d8[33] == -3 && d8[0] == -64 && d8[34] == 28, "%s int8 avg %d %d %d", isa_list[f],
           d8[33], d8[0], d8[34]);
    uint8_t u8a[33] = {0}, u8b[33] = {0}, u8d[33];
    u8a[32] = 200, u8b[32] = 100; /* 300 wraps to 44 */
    u8a[1] = 16, u8b[1] = 17;     /* product 272 wraps to 16 */
    hring__reduce(u8d, NULL, u8a, u8b, 33, HRING_UINT8, HRING_AVG, 2, 0);
    EXPECT(u8d[32] == 22, "%s uint8 avg %d", isa_list[f], u8d[32]);
    hring__reduce(u8d, NULL, u8a, u8b, 33, HRING_UINT8, HRING_PROD, 0, 0);
    EXPECT(u8d[1] == 16, "%s uint8 prod %d", isa_list[f], u8d[1]);
    int32_t i32a[9] = {INT32_MIN, -5, 7}, i32b[9] = {-1, 2, -9}, i32d[9];
    hring__reduce(i32d, NULL, i32a, i32b, 9, HRING_INT32, HRING_SUM, 0, 0);
    EXPECT(i32d[0] == INT32_MAX, "%s int32 wrap %d", isa_list[f], i32d[0]);
    hring__reduce(i32d, NULL, i32a, i32b, 9, HRING_INT32, HRING_AVG, 2, 0);
    EXPECT(i32d[1] == -1 && i32d[2] == -1, "%s int32 avg %d %d", isa_list[f], i32d[1], i32d[2]);
    hring__reduce(i32d, NULL, i32a, i32b, 9, HRING_INT32, HRING_MIN, 0, 0);
    EXPECT(i32d[0] == INT32_MIN && i32d[2] == -9, "%s int32 min", isa_list[f]);
    uint32_t u32a[9] = {0x80000000u, 3}, u32b[9] = {1, 0xFFFFFFFFu}, u32d[9];
    hring__reduce(u32d, NULL, u32a, u32b, 9, HRING_UINT32, HRING_MAX, 0, 0);
    EXPECT(u32d[0] == 0x80000000u && u32d[1] == 0xFFFFFFFFu, "%s uint32 max", isa_list[f]);
    int64_t i64a[5] = {-1, INT64_MAX, 0x100000001ll}, i64b[5] = {1, 2, 0x100000001ll}, i64d[5];
    hring__reduce(i64d, NULL, i64a, i64b, 5, HRING_INT64, HRING_MAX, 0, 0);
    EXPECT(i64d[0] == 1 && i64d[1] == INT64_MAX, "%s int64 max", isa_list[f]);
    hring__reduce(i64d, NULL, i64a, i64b, 5, HRING_INT64, HRING_PROD, 0, 0);
    EXPECT(i64d[0] == -1 && i64d[1] == -2 && i64d[2] == 0x200000001ll, "%s int64 prod %lld %lld",
           isa_list[f], (long long)i64d[1], (long long)i64d[2]);
    uint64_t u64a[5] = {0x8000000000000000ull, 5}, u64b[5] = {1, 0xFFFFFFFFFFFFFFFFull}, u64d[5];
    hring__reduce(u64d, NULL, u64a, u64b, 5, HRING_UINT64, HRING_MAX, 0, 0);
    EXPECT(u64d[0] == 0x8000000000000000ull && u64d[1] == 0xFFFFFFFFFFFFFFFFull, "%s uint64 max",
           isa_list[f]);
    hring__reduce(u64d, NULL, u64a, u64b, 5, HRING_UINT64, HRING_MIN, 0, 0);
    EXPECT(u64d[0] == 1 && u64d[1] == 5, "%s uint64 min", isa_list[f]);
  }
  EXPECT_NO_FAILURES();
}

/* ---- divide, copy, family selection ------------------------------------- */

/* x / div in the reference's own terms. */
static uint64_t ref_divide(int t, uint64_t x, int div) {
  int w = (int)tsize(t) * 8;
  uint64_t mask = w == 64 ? ~0ull : (1ull << w) - 1;
  switch (t) {
    case HRING_FLOAT16: return ref_d2h((float)(ref_h2d((uint16_t)x) / (double)(float)div));
    case HRING_BFLOAT16: return ref_d2bf((float)(ref_bf2d((uint16_t)x) / (double)(float)div));
    case HRING_FLOAT32: return bits_f((float)(f_of((uint32_t)x) / (double)(float)div));
    case HRING_FLOAT64: return bits_d(d_of(x) / div);
    default:
      if (is_signed_int(t)) return (uint64_t)(((int64_t)(x << (64 - w)) >> (64 - w)) / div) & mask;
      return x / (uint64_t)div;
  }
}

HTEST(reduce_divide, 10) {
  for (int t = 0; t < HRING_NUM_TYPES; t++) {
    size_t sz = tsize(t), n = 77;
    unsigned char src[77 * 8 + 1], dst[77 * 8 + 1];
    uint64_t x[77];
    for (int div = 0; div <= 6; div += 3) {
      for (size_t i = 0; i < n; i++) {
        x[i] = rnd_value(t, 0);
        put_el(src + 1, i, sz, x[i]); /* misaligned on purpose */
      }
      hring__divide(dst + 1, src + 1, n, t, div);
      hring__divide(src + 1, src + 1, n, t, div); /* in place */
      for (size_t i = 0; i < n; i++) {
        uint64_t want = div > 1 ? ref_divide(t, x[i], div) : x[i];
        uint64_t got = get_el(dst + 1, i, sz);
        EXPECT(same_result(t, HRING_SUM, got, want), "divide %s %#llx / %d = %#llx, want %#llx",
               type_names[t], (unsigned long long)x[i], div, (unsigned long long)got,
               (unsigned long long)want);
        EXPECT(get_el(src + 1, i, sz) == got, "divide %s in place differs", type_names[t]);
      }
    }
  }
  EXPECT_NO_FAILURES();
}

HTEST(reduce_copy, 10) {
  static const size_t sizes[] = {0, 1, 31, 32, 255, 256, 1000, 65537};
  for (int f = 0; f < NISA; f++) {
    if (hring__reduce_set_isa(isa_list[f]) != 0) continue;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      for (int v = 0; v < 4; v++) {
        for (size_t off = 0; off < 3; off++) {
          size_t n = sizes[si], span = n + 2 * GUARD + 8;
          unsigned char *s = malloc(span), *d = malloc(span), *d2 = malloc(span);
          HREQUIRE(s && d && d2, "out of memory");
          for (size_t i = 0; i < span; i++) s[i] = (unsigned char)rnd();
          memset(d, GUARD_BYTE, span);
          memset(d2, GUARD_BYTE, span);
          hring__copy(d + GUARD + off, (v & 1) ? d2 + GUARD + 2 * off : NULL, s + GUARD + 7 - off,
                      n, (v & 2) ? HRING_REDUCE_NT : 0);
          EXPECT(memcmp(d + GUARD + off, s + GUARD + 7 - off, n) == 0, "%s copy n=%zu v=%d",
                 isa_list[f], n, v);
          if (v & 1)
            EXPECT(memcmp(d2 + GUARD + 2 * off, s + GUARD + 7 - off, n) == 0,
                   "%s copy dst2 n=%zu", isa_list[f], n);
          for (size_t k = 0; k < span; k++) {
            if (k < GUARD + off || k >= GUARD + off + n)
              EXPECT(d[k] == GUARD_BYTE, "%s copy n=%zu wrote outside dst", isa_list[f], n);
            if (!(v & 1) || k < GUARD + 2 * off || k >= GUARD + 2 * off + n)
              EXPECT(d2[k] == GUARD_BYTE, "%s copy n=%zu wrote outside dst2", isa_list[f], n);
          }
          free(s), free(d), free(d2);
        }
      }
    }
  }
  EXPECT_NO_FAILURES();
}

HTEST(reduce_isa_selection, 5) {
  const char *isa = hring__reduce_isa();
  int known = 0;
  for (int f = 0; f < NISA; f++) known |= strcmp(isa, isa_list[f]) == 0;
  HCHECK(known, "unknown kernel family %s", isa);
  HCHECK(hring__reduce_set_isa("no-such-isa") == -1, "unknown name accepted");
  HCHECK(strcmp(hring__reduce_isa(), isa) == 0, "a refused name changed the family");
  hring__reduce_force_generic(1);
  HCHECK(strcmp(hring__reduce_isa(), "generic") == 0, "force_generic: %s", hring__reduce_isa());
  hring__reduce_force_generic(0);
  HCHECK(strcmp(hring__reduce_isa(), isa) == 0, "default not restored: %s", hring__reduce_isa());
#if defined(__x86_64__)
  unsigned eax, ebx, ecx = 0, edx;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) && !getenv("HRING_CPU_KERNELS"))
    HCHECK(strcmp(isa, "generic") != 0, "AVX2 CPU but the generic kernels were chosen");
#endif
}

/* HRING_CPU_KERNELS is read on first use; this test runs in a fresh
 * process in which nothing has reduced yet. */
HTEST(reduce_env_forces_generic, 5) {
  float a[40], b[40], d[40];
  for (int i = 0; i < 40; i++) a[i] = (float)i, b[i] = 0.5f;
  setenv("HRING_CPU_KERNELS", "generic", 1);
  hring__reduce(d, NULL, a, b, 40, HRING_FLOAT32, HRING_SUM, 0, 0);
  HCHECK(strcmp(hring__reduce_isa(), "generic") == 0, "HRING_CPU_KERNELS=generic gave %s",
         hring__reduce_isa());
  HCHECK(d[39] == 39.5f, "sum under forced generic: %g", d[39]);
  hring__reduce_set_isa(NULL);
  HCHECK(strcmp(hring__reduce_isa(), "generic") == 0, "default does not keep the env's choice");
}
