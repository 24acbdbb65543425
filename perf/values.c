/*
 * values.c - what the benchmarks send and check: nccl-tests' names of
 * types and ops, integer values encoded in every type, the per-rank input
 * patterns and their reductions in closed form, and buffers filled and
 * compared with runs of a pattern.
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encoded pattern runs are at least this long, so copies and compares work
 * on large pieces. */
#define PERF_TABLE_MIN_BYTES 16384

/* ---------------------------------------------------------------------- */
/* Types and ops, with nccl-tests' names.                                  */

static const char *const perf_type_names[HRING_NUM_TYPES] = {
    "int8", "uint8", "int32", "uint32", "int64",
    "uint64", "half", "float", "double", "bfloat16"};

/* The benchmark keeps its own sizes rather than asking the library it
 * measures. */
static const size_t perf_type_sizes[HRING_NUM_TYPES] = {1, 1, 4, 4, 8,
                                                        8, 2, 4, 8, 2};

static const char *const perf_op_names[HRING_NUM_OPS] = {"sum", "prod", "max",
                                                         "min", "avg"};

/* Other spellings people use for the same types. */
static const struct {
  const char *name;
  hring_datatype_t type;
} perf_type_aliases[] = {
    {"char", HRING_INT8},     {"int", HRING_INT32},       {"fp16", HRING_FLOAT16},
    {"float16", HRING_FLOAT16}, {"fp32", HRING_FLOAT32}, {"float32", HRING_FLOAT32},
    {"fp64", HRING_FLOAT64},  {"float64", HRING_FLOAT64}, {"bf16", HRING_BFLOAT16},
};

static int perf_type_is_unsigned(hring_datatype_t t) {
  return t == HRING_UINT8 || t == HRING_UINT32 || t == HRING_UINT64;
}

/* ---------------------------------------------------------------------- */
/* Value encoding.                                                         */

static uint16_t perf_float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN */
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to inf */
  if (ax < 0x38800000u) {
    /* Below the smallest normal half: subnormal or zero.  The values of the
     * patterns are integers and never land here except 0, but the encoder
     * stays correct for any float. */
    if (ax < 0x33000000u) return sign;
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    int shift = 126 - (int)(ax >> 23); /* 14 .. 24 */
    uint32_t h = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((ax >> 23) - 112u) << 10 | ((ax >> 13) & 0x3ffu);
  uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(sign | h);
}

static uint16_t perf_float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

void hring_perf_encode(hring_datatype_t type, int64_t v, void *dst) {
  switch (type) {
    case HRING_INT8: { int8_t x = (int8_t)v; memcpy(dst, &x, 1); break; }
    case HRING_UINT8: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
    case HRING_INT32: { int32_t x = (int32_t)v; memcpy(dst, &x, 4); break; }
    case HRING_UINT32: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
    case HRING_INT64: memcpy(dst, &v, 8); break;
    case HRING_UINT64: { uint64_t x = (uint64_t)v; memcpy(dst, &x, 8); break; }
    case HRING_FLOAT16: {
      uint16_t x = perf_float_to_half((float)v);
      memcpy(dst, &x, 2);
      break;
    }
    case HRING_FLOAT32: { float x = (float)v; memcpy(dst, &x, 4); break; }
    case HRING_FLOAT64: { double x = (double)v; memcpy(dst, &x, 8); break; }
    case HRING_BFLOAT16: {
      uint16_t x = perf_float_to_bf16((float)v);
      memcpy(dst, &x, 2);
      break;
    }
    default: break;
  }
}

/* ---------------------------------------------------------------------- */
/* The reduction pattern.                                                  */

size_t hring_perf_period(int nranks) { return 30u * (size_t)nranks; }

/* c(i): -1, 0 or 1 (1, 2 or 3 for unsigned types, which must stay >= 0 with
 * the -1 of the sum pattern added). */
static int64_t perf_base3(const hring_perf_ctx_t *c, size_t i) {
  int64_t b = (int64_t)(i % 3) - 1;
  return perf_type_is_unsigned(c->type) ? b + 2 : b;
}

/* max/min subtract n/2 for signed types so that negative values are
 * exercised too. */
static int64_t perf_minmax_shift(const hring_perf_ctx_t *c) {
  return perf_type_is_unsigned(c->type) ? 0 : c->nranks / 2;
}

/* prod: the factor that the one contributing rank of element i brings. */
static int64_t perf_prod_factor(const hring_perf_ctx_t *c, size_t i) {
  if ((i / (size_t)c->nranks) % 2 == 0) return 2;
  return perf_type_is_unsigned(c->type) ? 3 : -1;
}

int64_t hring_perf_reduce_input(const hring_perf_ctx_t *c, int rank, size_t i) {
  size_t n = (size_t)c->nranks, r = (size_t)rank;
  switch (c->op) {
    case HRING_PROD:
      /* All ones but one rank, which changes from element to element, so
       * every rank's data matters somewhere. */
      return i % n == r ? perf_prod_factor(c, i) : 1;
    case HRING_MAX:
    case HRING_MIN:
      /* (i + r) % n is a permutation of 0..n-1 over the ranks: all values
       * of an element differ, and the winner moves from rank to rank. */
      return (int64_t)(i % 5) + (int64_t)((i + r) % n) - perf_minmax_shift(c);
    default:
      /* sum and avg: c(i) + d(r, i), where d = ((i+r)%n) - ((i+r+1)%n) sums
       * to 0 over the ranks (both terms run over 0..n-1), so the sum is
       * n * c(i) and the average c(i) exactly.  d is -1 on all ranks but
       * one, where it is n-1, so every partial sum stays within +-2n
       * (0 .. 3n for unsigned types). */
      return perf_base3(c, i) + (int64_t)((i + r) % n) -
             (int64_t)((i + r + 1) % n);
  }
}

int64_t hring_perf_rank_input(const hring_perf_ctx_t *c, int rank, size_t i) {
  (void)c;
  return (int64_t)(i % 30) + (int64_t)(rank % 64);
}

int64_t hring_perf_reduce_result(const hring_perf_ctx_t *c, int rank,
                                 size_t i) {
  (void)rank;
  switch (c->op) {
    case HRING_PROD: return perf_prod_factor(c, i);
    case HRING_MAX:
      return (int64_t)(i % 5) + (c->nranks - 1) - perf_minmax_shift(c);
    case HRING_MIN: return (int64_t)(i % 5) - perf_minmax_shift(c);
    case HRING_AVG: return perf_base3(c, i);
    default: return (int64_t)c->nranks * perf_base3(c, i);
  }
}

/* ---------------------------------------------------------------------- */
/* Filling and checking with encoded runs of a pattern.                   */

void *hring_perf_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "perf: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

/* Encodes fn(who, j) for j = 0 .. *len-1, *len a multiple of the period
 * long enough for `count` elements from `first` (or for PERF_TABLE_MIN_BYTES,
 * whichever is less). */
static unsigned char *perf_table(const hring_perf_ctx_t *c,
                                 hring_perf_value_fn fn, int who, size_t count,
                                 size_t first, size_t *len) {
  size_t p = hring_perf_period(c->nranks), ts = c->type_size;
  size_t want = (PERF_TABLE_MIN_BYTES / (p * ts)) + 1;
  size_t need = (first % p + count + p - 1) / p;
  size_t m = need < want ? need : want;
  if (m == 0) m = 1;
  *len = p * m;
  unsigned char *t = hring_perf_xmalloc(*len * ts);
  for (size_t j = 0; j < *len; j++) hring_perf_encode(c->type, fn(c, who, j), t + j * ts);
  return t;
}

void hring_perf_fill(const hring_perf_ctx_t *c, void *buf, size_t count,
                     hring_perf_value_fn fn, int who, size_t first) {
  if (count == 0) return;
  size_t len, ts = c->type_size;
  unsigned char *t = perf_table(c, fn, who, count, first, &len);
  unsigned char *out = buf;
  size_t pos = first % len;
  while (count > 0) {
    size_t k = len - pos < count ? len - pos : count;
    memcpy(out, t + pos * ts, k * ts);
    out += k * ts;
    count -= k;
    pos = 0;
  }
  free(t);
}

int64_t hring_perf_count_wrong(const hring_perf_ctx_t *c, const void *buf,
                               size_t count, hring_perf_value_fn fn, int who,
                               size_t first) {
  if (count == 0) return 0;
  size_t len, ts = c->type_size;
  unsigned char *t = perf_table(c, fn, who, count, first, &len);
  const unsigned char *in = buf;
  size_t pos = first % len;
  int64_t wrong = 0;
  while (count > 0) {
    size_t k = len - pos < count ? len - pos : count;
    if (memcmp(in, t + pos * ts, k * ts) != 0) {
      for (size_t j = 0; j < k; j++)
        if (memcmp(in + j * ts, t + (pos + j) * ts, ts) != 0) wrong++;
    }
    in += k * ts;
    count -= k;
    pos = 0;
  }
  free(t);
  return wrong;
}

const char *hring_perf_type_name(hring_datatype_t t) { return perf_type_names[t]; }

size_t hring_perf_type_size(hring_datatype_t t) { return perf_type_sizes[t]; }

const char *hring_perf_op_name(hring_redop_t op) { return perf_op_names[op]; }

int hring_perf_parse_type(const char *s, int *out) {
  if (strcmp(s, "all") == 0) { *out = -1; return 0; }
  for (int t = 0; t < HRING_NUM_TYPES; t++)
    if (strcmp(s, perf_type_names[t]) == 0) { *out = t; return 0; }
  for (size_t k = 0; k < sizeof perf_type_aliases / sizeof perf_type_aliases[0]; k++)
    if (strcmp(s, perf_type_aliases[k].name) == 0) {
      *out = (int)perf_type_aliases[k].type;
      return 0;
    }
  return -1;
}

int hring_perf_parse_op(const char *s, int *out) {
  if (strcmp(s, "all") == 0) { *out = -1; return 0; }
  for (int o = 0; o < HRING_NUM_OPS; o++)
    if (strcmp(s, perf_op_names[o]) == 0) { *out = o; return 0; }
  return -1;
}
