/*
 * reduce_generic.c - the portable reduction kernels, in plain C.
 *
 * This is the reference the vector kernels are checked against, and the path
 * taken on CPUs without AVX2, on other architectures and under
 * HRING_CPU_KERNELS=generic.  The semantics, per element:
 *
 * - Integers: sum and prod wrap around (computed in the unsigned type of the
 *   same width); max and min are exact; AVG divides the wrapped sum by div
 *   with C's integer division (truncation toward zero) in the element type.
 * - float32 / float64: IEEE arithmetic in that precision; AVG is
 *   (a + b) / div, a true division (not a multiplication by 1/div).
 * - float16 / bfloat16: both operands widened to fp32 exactly, the op done in
 *   fp32 (for AVG: the sum, then the division by (float)div, both in fp32),
 *   and the fp32 result rounded once to nearest even (half.c).
 * - max / min of floats: NaN if either operand is NaN (a's NaN when a is one,
 *   else b's); +0 and -0 compare equal, and max(+0, -0) = +0,
 *   min(+0, -0) = -0 whatever the operand order, so max and min are
 *   commutative bit for bit.  Apart from the NaN payload they are exactly the
 *   IEEE 754-2019 maximum and minimum.
 *
 * Pointers may have any alignment: elements are accessed through typedefs
 * of alignment 1, so the compiler never assumes an aligned address.
 */
#include <stdint.h>
#include <string.h>

#include "algos/half.h"
#include "algos/reduce.h"
#include "algos/reduce_isa.h"

/* Element types of alignment 1 (GCC and Clang lower the alignment of a
 * typedef'd scalar on request). */
typedef int8_t u_i8 __attribute__((aligned(1)));
typedef uint8_t u_u8 __attribute__((aligned(1)));
typedef int32_t u_i32 __attribute__((aligned(1)));
typedef uint32_t u_u32 __attribute__((aligned(1)));
typedef int64_t u_i64 __attribute__((aligned(1)));
typedef uint64_t u_u64 __attribute__((aligned(1)));
typedef uint16_t u_f16 __attribute__((aligned(1)));
typedef float u_f32 __attribute__((aligned(1)));
typedef double u_f64 __attribute__((aligned(1)));
typedef uint16_t u_bf16 __attribute__((aligned(1)));

/* ---- integer element operations ---------------------------------------- */

static inline int8_t i8_sum(int8_t x, int8_t y) {
  return (int8_t)(uint8_t)((uint8_t)x + (uint8_t)y);
}
static inline int8_t i8_prod(int8_t x, int8_t y) {
  return (int8_t)(uint8_t)((unsigned)(uint8_t)x * (uint8_t)y);
}
static inline int8_t i8_avg(int8_t x, int8_t y, int div) {
  return (int8_t)(i8_sum(x, y) / div);
}

static inline uint8_t u8_sum(uint8_t x, uint8_t y) {
  return (uint8_t)(x + y);
}
static inline uint8_t u8_prod(uint8_t x, uint8_t y) {
  return (uint8_t)((unsigned)x * y);
}
static inline uint8_t u8_avg(uint8_t x, uint8_t y, int div) {
  return (uint8_t)(u8_sum(x, y) / (unsigned)div);
}

static inline int32_t i32_sum(int32_t x, int32_t y) {
  return (int32_t)((uint32_t)x + (uint32_t)y);
}
static inline int32_t i32_prod(int32_t x, int32_t y) {
  return (int32_t)((uint32_t)x * (uint32_t)y);
}
static inline int32_t i32_avg(int32_t x, int32_t y, int div) {
  return i32_sum(x, y) / div;
}

static inline uint32_t u32_sum(uint32_t x, uint32_t y) { return x + y; }
static inline uint32_t u32_prod(uint32_t x, uint32_t y) { return x * y; }
static inline uint32_t u32_avg(uint32_t x, uint32_t y, int div) {
  return (x + y) / (uint32_t)div;
}

static inline int64_t i64_sum(int64_t x, int64_t y) {
  return (int64_t)((uint64_t)x + (uint64_t)y);
}
static inline int64_t i64_prod(int64_t x, int64_t y) {
  return (int64_t)((uint64_t)x * (uint64_t)y);
}
static inline int64_t i64_avg(int64_t x, int64_t y, int div) {
  return i64_sum(x, y) / (int64_t)div;
}

static inline uint64_t u64_sum(uint64_t x, uint64_t y) { return x + y; }
static inline uint64_t u64_prod(uint64_t x, uint64_t y) { return x * y; }
static inline uint64_t u64_avg(uint64_t x, uint64_t y, int div) {
  return (x + y) / (uint64_t)div;
}

#define INT_MAXMIN(P, T)                                              \
  static inline T P##_max(T x, T y) { return x > y ? x : y; }         \
  static inline T P##_min(T x, T y) { return x < y ? x : y; }
INT_MAXMIN(i8, int8_t)
INT_MAXMIN(u8, uint8_t)
INT_MAXMIN(i32, int32_t)
INT_MAXMIN(u32, uint32_t)
INT_MAXMIN(i64, int64_t)
INT_MAXMIN(u64, uint64_t)

/* ---- floating-point element operations --------------------------------- */

/* float <-> bits: half.h's casts */
#define f32_bits hring__half_f32_bits
#define f32_from hring__half_f32_from
static inline uint64_t f64_bits(double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static inline double f64_from(uint64_t u) {
  double f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float f32_sum(float x, float y) { return x + y; }
static inline float f32_prod(float x, float y) { return x * y; }
static inline float f32_avg(float x, float y, int div) {
  return (x + y) / (float)div;
}
/* Equal operands are combined bitwise: identical bits stay, and the pair
 * (+0, -0) gives +0 under AND (max) and -0 under OR (min). */
static inline float f32_max(float x, float y) {
  if (x != x) return x;
  if (y != y) return y;
  if (x > y) return x;
  if (y > x) return y;
  return f32_from(f32_bits(x) & f32_bits(y));
}
static inline float f32_min(float x, float y) {
  if (x != x) return x;
  if (y != y) return y;
  if (x < y) return x;
  if (y < x) return y;
  return f32_from(f32_bits(x) | f32_bits(y));
}

static inline double f64_sum(double x, double y) { return x + y; }
static inline double f64_prod(double x, double y) { return x * y; }
static inline double f64_avg(double x, double y, int div) {
  return (x + y) / (double)div;
}
static inline double f64_max(double x, double y) {
  if (x != x) return x;
  if (y != y) return y;
  if (x > y) return x;
  if (y > x) return y;
  return f64_from(f64_bits(x) & f64_bits(y));
}
static inline double f64_min(double x, double y) {
  if (x != x) return x;
  if (y != y) return y;
  if (x < y) return x;
  if (y < x) return y;
  return f64_from(f64_bits(x) | f64_bits(y));
}

/* 16-bit floats: widen, operate in fp32, round once. */
#define NARROW_OPS(P, TO_F, FROM_F)                                          \
  static inline uint16_t P##_sum(uint16_t x, uint16_t y) {                   \
    return FROM_F(f32_sum(TO_F(x), TO_F(y)));                                \
  }                                                                          \
  static inline uint16_t P##_prod(uint16_t x, uint16_t y) {                  \
    return FROM_F(f32_prod(TO_F(x), TO_F(y)));                               \
  }                                                                          \
  static inline uint16_t P##_max(uint16_t x, uint16_t y) {                   \
    return FROM_F(f32_max(TO_F(x), TO_F(y)));                                \
  }                                                                          \
  static inline uint16_t P##_min(uint16_t x, uint16_t y) {                   \
    return FROM_F(f32_min(TO_F(x), TO_F(y)));                                \
  }                                                                          \
  static inline uint16_t P##_avg(uint16_t x, uint16_t y, int div) {          \
    return FROM_F(f32_avg(TO_F(x), TO_F(y), div));                           \
  }
NARROW_OPS(f16, hring__h2f_inline, hring__f2h_inline)
NARROW_OPS(bf16, hring__bf2f_inline, hring__f2bf_inline)

/* ---- kernels ------------------------------------------------------------ */

/* Element types at their natural alignment, for local arrays. */
typedef int8_t t_i8;
typedef uint8_t t_u8;
typedef int32_t t_i32;
typedef uint32_t t_u32;
typedef int64_t t_i64;
typedef uint64_t t_u64;
typedef uint16_t t_f16;
typedef float t_f32;
typedef double t_f64;
typedef uint16_t t_bf16;

/* Elements per block: whole blocks go through local arrays, which nothing
 * else can alias, so the compiler may vectorize the op with whatever the
 * baseline ISA offers (SSE2, NEON) without run-time overlap checks. */
#define GENERIC_BLOCK 32

/* One kernel: r = P##_##OP(x, y[, div]) for x = a[i], y = b[i]. */
#define GENERIC_KERNEL(P, OP, ...)                                            \
  static void P##_k_##OP(void *dst_, void *dst2_, const void *a_,             \
                         const void *b_, size_t n, int div, int flags) {      \
    u_##P *dst = dst_, *dst2 = dst2_;                                         \
    const u_##P *a = a_, *b = b_;                                             \
    size_t i = 0;                                                             \
    (void)div;                                                                \
    (void)flags;                                                              \
    for (; i + GENERIC_BLOCK <= n; i += GENERIC_BLOCK) {                      \
      t_##P x[GENERIC_BLOCK], y[GENERIC_BLOCK], r[GENERIC_BLOCK];             \
      memcpy(x, a + i, sizeof x);                                             \
      memcpy(y, b + i, sizeof y);                                             \
      for (int k = 0; k < GENERIC_BLOCK; k++)                                 \
        r[k] = P##_##OP(x[k], y[k] __VA_ARGS__);                              \
      memcpy(dst + i, r, sizeof r);                                           \
      if (dst2) memcpy(dst2 + i, r, sizeof r);                                \
    }                                                                         \
    for (; i < n; i++) {                                                      \
      t_##P r = P##_##OP(a[i], b[i] __VA_ARGS__);                             \
      dst[i] = r;                                                             \
      if (dst2) dst2[i] = r;                                                  \
    }                                                                         \
  }

/* The trailing argument is empty but for AVG, whose op takes div too. */
#define GENERIC_KERNELS(P)     \
  GENERIC_KERNEL(P, sum, )     \
  GENERIC_KERNEL(P, prod, )    \
  GENERIC_KERNEL(P, max, )     \
  GENERIC_KERNEL(P, min, )     \
  GENERIC_KERNEL(P, avg, , div)

GENERIC_KERNELS(i8)
GENERIC_KERNELS(u8)
GENERIC_KERNELS(i32)
GENERIC_KERNELS(u32)
GENERIC_KERNELS(i64)
GENERIC_KERNELS(u64)
GENERIC_KERNELS(f16)
GENERIC_KERNELS(f32)
GENERIC_KERNELS(f64)
GENERIC_KERNELS(bf16)

#define ROW(P) {P##_k_sum, P##_k_prod, P##_k_max, P##_k_min, P##_k_avg}
const hring__reduce_table_t hring__reduce_generic_table = {
    [HRING_INT8] = ROW(i8),       [HRING_UINT8] = ROW(u8),
    [HRING_INT32] = ROW(i32),     [HRING_UINT32] = ROW(u32),
    [HRING_INT64] = ROW(i64),     [HRING_UINT64] = ROW(u64),
    [HRING_FLOAT16] = ROW(f16),   [HRING_FLOAT32] = ROW(f32),
    [HRING_FLOAT64] = ROW(f64),   [HRING_BFLOAT16] = ROW(bf16),
};

/* ---- division and copy -------------------------------------------------- */

#define DIVIDE_LOOP(P, EXPR)                   \
  do {                                         \
    u_##P *d = dst;                            \
    const u_##P *s = src;                      \
    for (size_t i = 0; i < n; i++) {           \
      u_##P x = s[i];                          \
      d[i] = EXPR;                             \
    }                                          \
  } while (0)

void hring__divide_generic(void *dst, const void *src, size_t n,
                           hring_datatype_t type, int div) {
  switch (type) {
    case HRING_INT8: DIVIDE_LOOP(i8, (int8_t)(x / div)); break;
    case HRING_UINT8: DIVIDE_LOOP(u8, (uint8_t)(x / (unsigned)div)); break;
    case HRING_INT32: DIVIDE_LOOP(i32, x / div); break;
    case HRING_UINT32: DIVIDE_LOOP(u32, x / (uint32_t)div); break;
    case HRING_INT64: DIVIDE_LOOP(i64, x / (int64_t)div); break;
    case HRING_UINT64: DIVIDE_LOOP(u64, x / (uint64_t)div); break;
    case HRING_FLOAT16:
      DIVIDE_LOOP(f16, hring__f2h_inline(hring__h2f_inline(x) / (float)div));
      break;
    case HRING_FLOAT32: DIVIDE_LOOP(f32, x / (float)div); break;
    case HRING_FLOAT64: DIVIDE_LOOP(f64, x / (double)div); break;
    case HRING_BFLOAT16:
      DIVIDE_LOOP(bf16, hring__f2bf_inline(hring__bf2f_inline(x) / (float)div));
      break;
    default: break;
  }
}

void hring__copy_generic(void *dst, void *dst2, const void *src, size_t n,
                         int flags) {
  (void)flags; /* no portable way to ask for a non-temporal store */
  if (dst != src) memcpy(dst, src, n);
  if (dst2) memcpy(dst2, src, n);
}
