/*
 * reduce_avx512.c - AVX-512 (F + BW) reduction kernels for the float types.
 *
 * Only float16, float32, float64 and bfloat16 have kernels here: those are
 * the gradient types, and the 16-bit ones are limited by conversion work,
 * which 64-byte vectors halve.  Integer types use the AVX2 kernels (the
 * dispatcher fills the gaps), which already run at memory speed.
 *
 * Same structure and same results as reduce_avx2.c (see its comments and
 * the semantics in reduce_generic.c), with two differences: heads and tails
 * use masked byte loads and stores (AVX512BW), which neither read nor write
 * outside the buffers, and streaming stores need 64-byte alignment.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdint.h>

#include "algos/reduce.h"
#include "algos/reduce_entry.h"
#include "algos/reduce_isa.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx2,f16c,fma")))
#define VINLINE static inline __attribute__((always_inline)) TARGET

struct vctx {
  __m512 fdiv;
  __m512d ddiv;
};

VINLINE __m512 as_ps(__m512i x) { return _mm512_castsi512_ps(x); }
VINLINE __m512d as_pd(__m512i x) { return _mm512_castsi512_pd(x); }
VINLINE __m512i ps_as(__m512 x) { return _mm512_castps_si512(x); }
VINLINE __m512i pd_as(__m512d x) { return _mm512_castpd_si512(x); }

/* ---- fp32 / fp64 operations on registers ---------------------------------- */

VINLINE __m512 f32v_sum(__m512 a, __m512 b, const struct vctx *c) {
  (void)c;
  return _mm512_add_ps(a, b);
}
VINLINE __m512 f32v_prod(__m512 a, __m512 b, const struct vctx *c) {
  (void)c;
  return _mm512_mul_ps(a, b);
}
VINLINE __m512 f32v_avg(__m512 a, __m512 b, const struct vctx *c) {
  return _mm512_div_ps(_mm512_add_ps(a, b), c->fdiv);
}
/* As in reduce_avx2.c: max both ways round, ANDed (OR for min), then a NaN
 * in b and finally a NaN in a override.  AVX512F has no and_ps (that is
 * DQ), so the AND is done on the integer view. */
VINLINE __m512 f32v_max(__m512 a, __m512 b, const struct vctx *c) {
  (void)c;
  __m512 r = as_ps(_mm512_and_epi32(ps_as(_mm512_max_ps(a, b)), ps_as(_mm512_max_ps(b, a))));
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), r, b);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), r, a);
}
VINLINE __m512 f32v_min(__m512 a, __m512 b, const struct vctx *c) {
  (void)c;
  __m512 r = as_ps(_mm512_or_epi32(ps_as(_mm512_min_ps(a, b)), ps_as(_mm512_min_ps(b, a))));
  r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), r, b);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), r, a);
}

VINLINE __m512d f64v_sum(__m512d a, __m512d b, const struct vctx *c) {
  (void)c;
  return _mm512_add_pd(a, b);
}
VINLINE __m512d f64v_prod(__m512d a, __m512d b, const struct vctx *c) {
  (void)c;
  return _mm512_mul_pd(a, b);
}
VINLINE __m512d f64v_avg(__m512d a, __m512d b, const struct vctx *c) {
  return _mm512_div_pd(_mm512_add_pd(a, b), c->ddiv);
}
VINLINE __m512d f64v_max(__m512d a, __m512d b, const struct vctx *c) {
  (void)c;
  __m512d r = as_pd(_mm512_and_epi64(pd_as(_mm512_max_pd(a, b)), pd_as(_mm512_max_pd(b, a))));
  r = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(b, b, _CMP_UNORD_Q), r, b);
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q), r, a);
}
VINLINE __m512d f64v_min(__m512d a, __m512d b, const struct vctx *c) {
  (void)c;
  __m512d r = as_pd(_mm512_or_epi64(pd_as(_mm512_min_pd(a, b)), pd_as(_mm512_min_pd(b, a))));
  r = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(b, b, _CMP_UNORD_Q), r, b);
  return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q), r, a);
}

/* fp32 -> bfloat16 in the low half of each 32-bit lane: nearest even, NaN
 * kept quiet (as hring__float_to_bf16). */
VINLINE __m512i bf16_round(__m512 r) {
  __m512i u = ps_as(r);
  __m512i lsb = _mm512_and_epi32(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i bias = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
  __m512i quiet = _mm512_or_epi32(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(r, r, _CMP_UNORD_Q), rounded, quiet);
}

/* ---- 64-byte vector operations -------------------------------------------- */

#define FLOAT_VOPS(OP)                                                       \
  VINLINE __m512i f32_##OP(__m512i a, __m512i b, const struct vctx *c) {     \
    return ps_as(f32v_##OP(as_ps(a), as_ps(b), c));                          \
  }                                                                          \
  VINLINE __m512i f64_##OP(__m512i a, __m512i b, const struct vctx *c) {     \
    return pd_as(f64v_##OP(as_pd(a), as_pd(b), c));                          \
  }                                                                          \
  VINLINE __m512i f16_##OP(__m512i a, __m512i b, const struct vctx *c) {     \
    __m512 a0 = _mm512_cvtph_ps(_mm512_castsi512_si256(a));                  \
    __m512 a1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(a, 1));            \
    __m512 b0 = _mm512_cvtph_ps(_mm512_castsi512_si256(b));                  \
    __m512 b1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(b, 1));            \
    __m256i r0 = _mm512_cvtps_ph(f32v_##OP(a0, b0, c),                       \
                                 _MM_FROUND_TO_NEAREST_INT);                 \
    __m256i r1 = _mm512_cvtps_ph(f32v_##OP(a1, b1, c),                       \
                                 _MM_FROUND_TO_NEAREST_INT);                 \
    return _mm512_inserti64x4(_mm512_castsi256_si512(r0), r1, 1);            \
  }                                                                          \
  /* The unpacks and packus work per 128-bit lane, as in AVX2, so the       \
   * order comes back unchanged. */                                         \
  VINLINE __m512i bf16_##OP(__m512i a, __m512i b, const struct vctx *c) {    \
    __m512i z = _mm512_setzero_si512();                                      \
    __m512 alo = as_ps(_mm512_unpacklo_epi16(z, a));                         \
    __m512 ahi = as_ps(_mm512_unpackhi_epi16(z, a));                         \
    __m512 blo = as_ps(_mm512_unpacklo_epi16(z, b));                         \
    __m512 bhi = as_ps(_mm512_unpackhi_epi16(z, b));                         \
    return _mm512_packus_epi32(bf16_round(f32v_##OP(alo, blo, c)),           \
                               bf16_round(f32v_##OP(ahi, bhi, c)));          \
  }

FLOAT_VOPS(sum)
FLOAT_VOPS(prod)
FLOAT_VOPS(max)
FLOAT_VOPS(min)
FLOAT_VOPS(avg)

/* ---- the driver ------------------------------------------------------------ */

#define AVX512_KERNEL(NAME, ESZ, VOP)                                           \
  VINLINE void NAME##_one(uint8_t *d, uint8_t *d2, const uint8_t *pa,           \
                          const uint8_t *pb, size_t i, const struct vctx *c,    \
                          const int nt, const int two) {                        \
    __m512i x = _mm512_loadu_si512((const void *)(pa + i));                     \
    __m512i y = _mm512_loadu_si512((const void *)(pb + i));                     \
    __m512i r = VOP(x, y, c);                                                   \
    if (nt)                                                                     \
      _mm512_stream_si512((void *)(d + i), r);                                  \
    else                                                                        \
      _mm512_storeu_si512((void *)(d + i), r);                                  \
    if (two) _mm512_storeu_si512((void *)(d2 + i), r);                          \
  }                                                                             \
  VINLINE void NAME##_body(uint8_t *d, uint8_t *d2, const uint8_t *pa,          \
                           const uint8_t *pb, size_t i, size_t end,             \
                           const struct vctx *c, const int nt, const int two) { \
    for (; i + 256 <= end; i += 256) {                                          \
      NAME##_one(d, d2, pa, pb, i, c, nt, two);                                 \
      NAME##_one(d, d2, pa, pb, i + 64, c, nt, two);                            \
      NAME##_one(d, d2, pa, pb, i + 128, c, nt, two);                           \
      NAME##_one(d, d2, pa, pb, i + 192, c, nt, two);                           \
    }                                                                           \
    for (; i < end; i += 64) NAME##_one(d, d2, pa, pb, i, c, nt, two);          \
  }                                                                             \
  /* Fewer than 64 bytes at offset i: masked, so no byte outside is touched. */ \
  VINLINE void NAME##_part(uint8_t *d, uint8_t *d2, const uint8_t *pa,          \
                           const uint8_t *pb, size_t i, size_t len,             \
                           const struct vctx *c) {                              \
    __mmask64 m = ((__mmask64)1 << len) - 1;                                    \
    __m512i x = _mm512_maskz_loadu_epi8(m, (const void *)(pa + i));             \
    __m512i y = _mm512_maskz_loadu_epi8(m, (const void *)(pb + i));             \
    __m512i r = VOP(x, y, c);                                                   \
    _mm512_mask_storeu_epi8((void *)(d + i), m, r);                             \
    if (d2) _mm512_mask_storeu_epi8((void *)(d2 + i), m, r);                    \
  }                                                                             \
  HRING_REDUCE_ENTRY(NAME, ESZ, 64, ((struct vctx){_mm512_set1_ps((float)div), _mm512_set1_pd((double)div)}))

#define FLOAT_KERNELS(P, ESZ)                \
  AVX512_KERNEL(k_##P##_sum, ESZ, P##_sum)   \
  AVX512_KERNEL(k_##P##_prod, ESZ, P##_prod) \
  AVX512_KERNEL(k_##P##_max, ESZ, P##_max)   \
  AVX512_KERNEL(k_##P##_min, ESZ, P##_min)   \
  AVX512_KERNEL(k_##P##_avg, ESZ, P##_avg)

FLOAT_KERNELS(f16, 2)
FLOAT_KERNELS(f32, 4)
FLOAT_KERNELS(f64, 8)
FLOAT_KERNELS(bf16, 2)

#define FROW(P) {k_##P##_sum, k_##P##_prod, k_##P##_max, k_##P##_min, k_##P##_avg}
const hring__reduce_table_t hring__reduce_avx512_table = {
    [HRING_FLOAT16] = FROW(f16),
    [HRING_FLOAT32] = FROW(f32),
    [HRING_FLOAT64] = FROW(f64),
    [HRING_BFLOAT16] = FROW(bf16),
};

#endif /* __x86_64__ */
