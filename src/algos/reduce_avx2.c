/*
 * reduce_avx2.c - AVX2 + F16C reduction kernels and copy.
 *
 * Compiled for any x86-64: only the functions marked TARGET use AVX2, and the
 * dispatcher (reduce.c) calls them only after __builtin_cpu_supports said
 * the CPU has AVX2, F16C and FMA.  Every kernel gives the same bits as the
 * portable kernel in reduce_generic.c, whose header comment states the
 * semantics; the comments here only say how the vector code gets there.
 *
 * Layout: one vector operation per (type, op) on 32 bytes, and one driver
 * macro that runs it over the buffers: 4x unrolled unaligned loads, plain or
 * streaming stores, and a partial vector (head or tail) done through a
 * zero-padded stack buffer, so heads and tails take exactly the same
 * arithmetic as the body.  The tail is not done with an overlapping
 * full-width vector: with dst == a it would apply the op twice.
 *
 * Integer AVG with a division has no vector entry (x86 has no vector
 * integer division); it falls back to the portable kernel.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "algos/reduce.h"
#include "algos/reduce_entry.h"
#include "algos/reduce_isa.h"

#define TARGET __attribute__((target("avx2,f16c,fma")))
#define VINLINE static inline __attribute__((always_inline)) TARGET

/* Constants an op may need, built once per call. */
struct vctx {
  __m256 fdiv;  /* (float)div, for float32, float16 and bfloat16 AVG */
  __m256d ddiv; /* (double)div, for float64 AVG */
};

VINLINE __m256 as_ps(__m256i x) { return _mm256_castsi256_ps(x); }
VINLINE __m256d as_pd(__m256i x) { return _mm256_castsi256_pd(x); }
VINLINE __m256i ps_as(__m256 x) { return _mm256_castps_si256(x); }
VINLINE __m256i pd_as(__m256d x) { return _mm256_castpd_si256(x); }

/* ---- fp32 operations on registers (also used by float16, bfloat16) ---- */

VINLINE __m256 f32v_sum(__m256 a, __m256 b, const struct vctx *c) {
  (void)c;
  return _mm256_add_ps(a, b);
}
VINLINE __m256 f32v_prod(__m256 a, __m256 b, const struct vctx *c) {
  (void)c;
  return _mm256_mul_ps(a, b);
}
VINLINE __m256 f32v_avg(__m256 a, __m256 b, const struct vctx *c) {
  return _mm256_div_ps(_mm256_add_ps(a, b), c->fdiv);
}
/* maxps(x, y) is "x > y ? x : y".  Taken both ways round and ANDed it gives
 * the larger operand, and for equal operands the AND of their bits (+0 for
 * +0/-0).  Then a NaN in b, and finally a NaN in a, overrides the result. */
VINLINE __m256 f32v_max(__m256 a, __m256 b, const struct vctx *c) {
  (void)c;
  __m256 r = _mm256_and_ps(_mm256_max_ps(a, b), _mm256_max_ps(b, a));
  r = _mm256_blendv_ps(r, b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
  return _mm256_blendv_ps(r, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
/* As max, with OR: -0 for +0/-0. */
VINLINE __m256 f32v_min(__m256 a, __m256 b, const struct vctx *c) {
  (void)c;
  __m256 r = _mm256_or_ps(_mm256_min_ps(a, b), _mm256_min_ps(b, a));
  r = _mm256_blendv_ps(r, b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
  return _mm256_blendv_ps(r, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

VINLINE __m256d f64v_sum(__m256d a, __m256d b, const struct vctx *c) {
  (void)c;
  return _mm256_add_pd(a, b);
}
VINLINE __m256d f64v_prod(__m256d a, __m256d b, const struct vctx *c) {
  (void)c;
  return _mm256_mul_pd(a, b);
}
VINLINE __m256d f64v_avg(__m256d a, __m256d b, const struct vctx *c) {
  return _mm256_div_pd(_mm256_add_pd(a, b), c->ddiv);
}
VINLINE __m256d f64v_max(__m256d a, __m256d b, const struct vctx *c) {
  (void)c;
  __m256d r = _mm256_and_pd(_mm256_max_pd(a, b), _mm256_max_pd(b, a));
  r = _mm256_blendv_pd(r, b, _mm256_cmp_pd(b, b, _CMP_UNORD_Q));
  return _mm256_blendv_pd(r, a, _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
}
VINLINE __m256d f64v_min(__m256d a, __m256d b, const struct vctx *c) {
  (void)c;
  __m256d r = _mm256_or_pd(_mm256_min_pd(a, b), _mm256_min_pd(b, a));
  r = _mm256_blendv_pd(r, b, _mm256_cmp_pd(b, b, _CMP_UNORD_Q));
  return _mm256_blendv_pd(r, a, _mm256_cmp_pd(a, a, _CMP_UNORD_Q));
}

/* ---- 32-byte vector operations, one per (type, op) ----------------------- */

#define FLOAT_VOPS(OP)                                                       \
  VINLINE __m256i f32_##OP(__m256i a, __m256i b, const struct vctx *c) {     \
    return ps_as(f32v_##OP(as_ps(a), as_ps(b), c));                          \
  }                                                                          \
  VINLINE __m256i f64_##OP(__m256i a, __m256i b, const struct vctx *c) {     \
    return pd_as(f64v_##OP(as_pd(a), as_pd(b), c));                          \
  }                                                                          \
  /* float16: 16 halves widened 8 at a time by F16C, narrowed with RNE. */   \
  VINLINE __m256i f16_##OP(__m256i a, __m256i b, const struct vctx *c) {     \
    __m256 a0 = _mm256_cvtph_ps(_mm256_castsi256_si128(a));                  \
    __m256 a1 = _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1));             \
    __m256 b0 = _mm256_cvtph_ps(_mm256_castsi256_si128(b));                  \
    __m256 b1 = _mm256_cvtph_ps(_mm256_extracti128_si256(b, 1));             \
    __m128i r0 = _mm256_cvtps_ph(f32v_##OP(a0, b0, c),                       \
                                 _MM_FROUND_TO_NEAREST_INT);                 \
    __m128i r1 = _mm256_cvtps_ph(f32v_##OP(a1, b1, c),                       \
                                 _MM_FROUND_TO_NEAREST_INT);                 \
    return _mm256_inserti128_si256(_mm256_castsi128_si256(r0), r1, 1);       \
  }                                                                          \
  /* bfloat16: interleaving with zeros below makes each one an fp32 (lanes   \
   * 0-3 and 8-11 in lo, 4-7 and 12-15 in hi); packus puts them back in      \
   * order because it works per 128-bit lane just as the unpacks do. */     \
  VINLINE __m256i bf16_##OP(__m256i a, __m256i b, const struct vctx *c) {    \
    __m256i z = _mm256_setzero_si256();                                      \
    __m256 alo = as_ps(_mm256_unpacklo_epi16(z, a));                         \
    __m256 ahi = as_ps(_mm256_unpackhi_epi16(z, a));                         \
    __m256 blo = as_ps(_mm256_unpacklo_epi16(z, b));                         \
    __m256 bhi = as_ps(_mm256_unpackhi_epi16(z, b));                         \
    return _mm256_packus_epi32(bf16_round(f32v_##OP(alo, blo, c)),           \
                               bf16_round(f32v_##OP(ahi, bhi, c)));          \
  }

/* fp32 -> bfloat16 in the low half of each 32-bit lane, as
 * hring__float_to_bf16 does it: round to nearest even, NaN kept quiet. */
VINLINE __m256i bf16_round(__m256 r) {
  __m256i u = ps_as(r);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF));
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  __m256i nan = ps_as(_mm256_cmp_ps(r, r, _CMP_UNORD_Q));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

FLOAT_VOPS(sum)
FLOAT_VOPS(prod)
FLOAT_VOPS(max)
FLOAT_VOPS(min)
FLOAT_VOPS(avg)

/* Integers.  Sum and product wrap, so signed and unsigned share them. */
VINLINE __m256i x8_sum(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_add_epi8(a, b);
}
/* No 8-bit multiply: multiply the even bytes and the odd bytes as 16-bit
 * lanes; the low byte of each 16-bit product is the wrapped 8-bit product. */
VINLINE __m256i x8_prod(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  __m256i even = _mm256_mullo_epi16(a, b);
  __m256i odd = _mm256_mullo_epi16(_mm256_srli_epi16(a, 8), _mm256_srli_epi16(b, 8));
  return _mm256_or_si256(_mm256_and_si256(even, _mm256_set1_epi16(0xFF)),
                         _mm256_slli_epi16(odd, 8));
}
VINLINE __m256i x32_sum(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_add_epi32(a, b);
}
VINLINE __m256i x32_prod(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_mullo_epi32(a, b);
}
VINLINE __m256i x64_sum(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_add_epi64(a, b);
}
/* No 64-bit multiply: lo*lo + ((hi*lo + lo*hi) << 32), all mod 2^64. */
VINLINE __m256i x64_prod(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  __m256i lo = _mm256_mul_epu32(a, b);
  __m256i h1 = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), b);
  __m256i h2 = _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(_mm256_add_epi64(h1, h2), 32));
}

#define INT_MAXMIN(P, MAXI, MINI)                                        \
  VINLINE __m256i P##_max(__m256i a, __m256i b, const struct vctx *c) {  \
    (void)c;                                                             \
    return MAXI(a, b);                                                   \
  }                                                                      \
  VINLINE __m256i P##_min(__m256i a, __m256i b, const struct vctx *c) {  \
    (void)c;                                                             \
    return MINI(a, b);                                                   \
  }
INT_MAXMIN(i8, _mm256_max_epi8, _mm256_min_epi8)
INT_MAXMIN(u8, _mm256_max_epu8, _mm256_min_epu8)
INT_MAXMIN(i32, _mm256_max_epi32, _mm256_min_epi32)
INT_MAXMIN(u32, _mm256_max_epu32, _mm256_min_epu32)

/* 64-bit max/min: compare, then select.  Unsigned compares become signed
 * ones by flipping the sign bit of both sides. */
VINLINE __m256i i64_max(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_blendv_epi8(b, a, _mm256_cmpgt_epi64(a, b));
}
VINLINE __m256i i64_min(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b));
}
VINLINE __m256i u64_gt(__m256i a, __m256i b) {
  __m256i bias = _mm256_set1_epi64x(INT64_MIN);
  return _mm256_cmpgt_epi64(_mm256_xor_si256(a, bias), _mm256_xor_si256(b, bias));
}
VINLINE __m256i u64_max(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_blendv_epi8(b, a, u64_gt(a, b));
}
VINLINE __m256i u64_min(__m256i a, __m256i b, const struct vctx *c) {
  (void)c;
  return _mm256_blendv_epi8(a, b, u64_gt(a, b));
}

/* ---- the driver ------------------------------------------------------------ */

/* One kernel NAME over elements of ESZ bytes, with vector op VOP.
 * NAME##_body runs whole vectors from byte i to end; nt and two are
 * constants at each call site so the compiler drops the untaken stores. */
#define AVX2_KERNEL(NAME, ESZ, VOP)                                             \
  VINLINE void NAME##_one(uint8_t *d, uint8_t *d2, const uint8_t *pa,           \
                          const uint8_t *pb, size_t i, const struct vctx *c,    \
                          const int nt, const int two) {                        \
    __m256i x = _mm256_loadu_si256((const __m256i *)(pa + i));                  \
    __m256i y = _mm256_loadu_si256((const __m256i *)(pb + i));                  \
    __m256i r = VOP(x, y, c);                                                   \
    if (nt)                                                                     \
      _mm256_stream_si256((__m256i *)(d + i), r);                               \
    else                                                                        \
      _mm256_storeu_si256((__m256i *)(d + i), r);                               \
    if (two) _mm256_storeu_si256((__m256i *)(d2 + i), r);                       \
  }                                                                             \
  VINLINE void NAME##_body(uint8_t *d, uint8_t *d2, const uint8_t *pa,          \
                           const uint8_t *pb, size_t i, size_t end,             \
                           const struct vctx *c, const int nt, const int two) { \
    for (; i + 128 <= end; i += 128) {                                          \
      NAME##_one(d, d2, pa, pb, i, c, nt, two);                                 \
      NAME##_one(d, d2, pa, pb, i + 32, c, nt, two);                            \
      NAME##_one(d, d2, pa, pb, i + 64, c, nt, two);                            \
      NAME##_one(d, d2, pa, pb, i + 96, c, nt, two);                            \
    }                                                                           \
    for (; i < end; i += 32) NAME##_one(d, d2, pa, pb, i, c, nt, two);          \
  }                                                                             \
  /* Fewer than 32 bytes at offset i, through zero-padded copies. */            \
  VINLINE void NAME##_part(uint8_t *d, uint8_t *d2, const uint8_t *pa,          \
                           const uint8_t *pb, size_t i, size_t len,             \
                           const struct vctx *c) {                              \
    uint8_t bx[32] = {0}, by[32] = {0}, br[32];                                 \
    memcpy(bx, pa + i, len);                                                    \
    memcpy(by, pb + i, len);                                                    \
    __m256i r = VOP(_mm256_loadu_si256((const __m256i *)bx),                    \
                    _mm256_loadu_si256((const __m256i *)by), c);                \
    _mm256_storeu_si256((__m256i *)br, r);                                      \
    memcpy(d + i, br, len);                                                     \
    if (d2) memcpy(d2 + i, br, len);                                            \
  }                                                                             \
  HRING_REDUCE_ENTRY(NAME, ESZ, 32, ((struct vctx){_mm256_set1_ps((float)div), _mm256_set1_pd((double)div)}))

#define FLOAT_KERNELS(P, ESZ)              \
  AVX2_KERNEL(k_##P##_sum, ESZ, P##_sum)   \
  AVX2_KERNEL(k_##P##_prod, ESZ, P##_prod) \
  AVX2_KERNEL(k_##P##_max, ESZ, P##_max)   \
  AVX2_KERNEL(k_##P##_min, ESZ, P##_min)   \
  AVX2_KERNEL(k_##P##_avg, ESZ, P##_avg)

FLOAT_KERNELS(f16, 2)
FLOAT_KERNELS(f32, 4)
FLOAT_KERNELS(f64, 8)
FLOAT_KERNELS(bf16, 2)

/* Sum and product are the same bits for signed and unsigned integers. */
AVX2_KERNEL(k_x8_sum, 1, x8_sum)
AVX2_KERNEL(k_x8_prod, 1, x8_prod)
AVX2_KERNEL(k_x32_sum, 4, x32_sum)
AVX2_KERNEL(k_x32_prod, 4, x32_prod)
AVX2_KERNEL(k_x64_sum, 8, x64_sum)
AVX2_KERNEL(k_x64_prod, 8, x64_prod)
AVX2_KERNEL(k_i8_max, 1, i8_max)
AVX2_KERNEL(k_i8_min, 1, i8_min)
AVX2_KERNEL(k_u8_max, 1, u8_max)
AVX2_KERNEL(k_u8_min, 1, u8_min)
AVX2_KERNEL(k_i32_max, 4, i32_max)
AVX2_KERNEL(k_i32_min, 4, i32_min)
AVX2_KERNEL(k_u32_max, 4, u32_max)
AVX2_KERNEL(k_u32_min, 4, u32_min)
AVX2_KERNEL(k_i64_max, 8, i64_max)
AVX2_KERNEL(k_i64_min, 8, i64_min)
AVX2_KERNEL(k_u64_max, 8, u64_max)
AVX2_KERNEL(k_u64_min, 8, u64_min)

#define FROW(P) {k_##P##_sum, k_##P##_prod, k_##P##_max, k_##P##_min, k_##P##_avg}
#define IROW(W, P) {k_##W##_sum, k_##W##_prod, k_##P##_max, k_##P##_min, NULL}
const hring__reduce_table_t hring__reduce_avx2_table = {
    [HRING_INT8] = IROW(x8, i8),     [HRING_UINT8] = IROW(x8, u8),
    [HRING_INT32] = IROW(x32, i32),  [HRING_UINT32] = IROW(x32, u32),
    [HRING_INT64] = IROW(x64, i64),  [HRING_UINT64] = IROW(x64, u64),
    [HRING_FLOAT16] = FROW(f16),     [HRING_FLOAT32] = FROW(f32),
    [HRING_FLOAT64] = FROW(f64),     [HRING_BFLOAT16] = FROW(bf16),
};

/* ---- copy ------------------------------------------------------------------- */

/* One pass that stores each loaded vector to dst (streaming or not) and to
 * dst2, so two destinations cost one read of src. */
VINLINE void copy_one(uint8_t *d, uint8_t *d2, const uint8_t *s, size_t i,
                      const int nt, const int two) {
  __m256i x = _mm256_loadu_si256((const __m256i *)(s + i));
  if (nt)
    _mm256_stream_si256((__m256i *)(d + i), x);
  else
    _mm256_storeu_si256((__m256i *)(d + i), x);
  if (two) _mm256_storeu_si256((__m256i *)(d2 + i), x);
}

VINLINE void copy_body(uint8_t *d, uint8_t *d2, const uint8_t *s, size_t i,
                       size_t end, const int nt, const int two) {
  for (; i + 128 <= end; i += 128) {
    copy_one(d, d2, s, i, nt, two);
    copy_one(d, d2, s, i + 32, nt, two);
    copy_one(d, d2, s, i + 64, nt, two);
    copy_one(d, d2, s, i + 96, nt, two);
  }
  for (; i < end; i += 32) copy_one(d, d2, s, i, nt, two);
}

TARGET void hring__copy_avx2(void *dst, void *dst2, const void *src, size_t n,
                             int flags) {
  uint8_t *d = dst, *d2 = dst2;
  const uint8_t *s = src;
  size_t i = 0, end;
  int nt = (flags & HRING_REDUCE_NT) && n >= 256;

  if (d == s) { /* in place: only dst2 needs the data */
    if (d2) memcpy(d2, s, n);
    return;
  }
  if (!nt && !d2) { /* libc's memcpy is the fastest plain copy */
    memcpy(d, s, n);
    return;
  }
  if (nt) {
    i = (size_t)(-(uintptr_t)d & 31);
    memcpy(d, s, i);
    if (d2) memcpy(d2, s, i);
  }
  end = i + ((n - i) & ~(size_t)31);
  if (nt) {
    if (d2)
      copy_body(d, d2, s, i, end, 1, 1);
    else
      copy_body(d, d2, s, i, end, 1, 0);
    _mm_sfence();
  } else {
    copy_body(d, d2, s, i, end, 0, 1);
  }
  memcpy(d + end, s + end, n - end);
  if (d2) memcpy(d2 + end, s + end, n - end);
}

#endif /* __x86_64__ */
