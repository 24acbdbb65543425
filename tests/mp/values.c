/*
 * values.c - inputs and expected results of the allreduce matrices.
 *
 * Inputs are small integers so every result is exact in any summation
 * order; the expected value is computed here from the same formula,
 * independently of the library (only float16/bfloat16 conversion uses the
 * library's converters, which test_reduce checks on their own).
 */
#include <stdint.h>

#include "algos/reduce.h"
#include "values.h"

/* Value of element i on rank r for op: sums stay within +-4n, products
 * within +-8 (at most three ranks contribute 2), all distinct enough for
 * max/min to matter. */
static int64_t val(hring_redop_t op, size_t i, int r, int n) {
  switch (op) {
    case HRING_PROD: {
      int64_t v = ((i + (size_t)r) % 5 == 0 && r < 3) ? 2 : 1;
      return ((i * 3 + (size_t)r) % 7 == 0) ? -v : v;
    }
    case HRING_AVG: /* the sum over ranks is n * c, so the average is exact */
      return 4 + (int64_t)((i + (size_t)r) % (size_t)n) - (int64_t)((i + (size_t)r + 1) % (size_t)n);
    default:
      return (int64_t)((i * 7 + (size_t)r * 13) % 9) - 4;
  }
}

static int is_unsigned(hring_datatype_t t) {
  return t == HRING_UINT8 || t == HRING_UINT32 || t == HRING_UINT64;
}

/* Unsigned types get values shifted to stay non-negative. */
static int64_t tval(hring_datatype_t t, hring_redop_t op, size_t i, int r, int n) {
  int64_t v = val(op, i, r, n);
  if (is_unsigned(t) && op != HRING_PROD) v += 4;
  if (is_unsigned(t) && op == HRING_PROD) v = v < 0 ? -v : v;
  return v;
}

static void store(void *buf, size_t i, hring_datatype_t t, double v) {
  switch (t) {
    case HRING_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case HRING_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case HRING_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case HRING_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case HRING_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case HRING_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    case HRING_FLOAT16: ((uint16_t *)buf)[i] = hring__float_to_half((float)v); break;
    case HRING_FLOAT32: ((float *)buf)[i] = (float)v; break;
    case HRING_FLOAT64: ((double *)buf)[i] = v; break;
    case HRING_BFLOAT16: ((uint16_t *)buf)[i] = hring__float_to_bf16((float)v); break;
    default: break;
  }
}

void mp_expected(void *buf, size_t i, hring_datatype_t t, hring_redop_t op, int n) {
  int64_t acc = tval(t, op, i, 0, n);
  for (int r = 1; r < n; r++) {
    int64_t v = tval(t, op, i, r, n);
    switch (op) {
      case HRING_PROD: acc *= v; break;
      case HRING_MAX: acc = v > acc ? v : acc; break;
      case HRING_MIN: acc = v < acc ? v : acc; break;
      default: acc += v; break;
    }
  }
  if (op == HRING_AVG) {
    /* exact by construction: n divides the sum */
    store(buf, i, t, (double)(acc / n));
    return;
  }
  store(buf, i, t, (double)acc);
}

void mp_value(void *buf, size_t i, hring_datatype_t t, hring_redop_t op, int rank, int n) {
  store(buf, i, t, (double)tval(t, op, i, rank, n));
}

uint64_t values_hash(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 14695981039346656037ull; /* FNV-1a 64-bit offset basis */
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull; /* FNV prime */
  return h;
}
