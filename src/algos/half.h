/*
 * half.h - scalar conversions between fp32 and the 16-bit float formats,
 * inline for the portable kernels (half.c exports them as functions).
 *
 * These are the portable path's converters and the definition the vector
 * paths must match bit for bit.  float16 follows what F16C does
 * (VCVTPH2PS / VCVTPS2PH with round-to-nearest-even): subnormals are
 * converted exactly, a signalling NaN comes out quiet with its payload kept
 * (truncated to the narrower mantissa), and a finite value too large for
 * float16 rounds to infinity.  bfloat16 is the upper half of an fp32, so its
 * widening is a shift; narrowing rounds to nearest even and keeps NaN a
 * (quiet) NaN, which plain rounding would not guarantee: adding the rounding
 * bias to a NaN with a small payload could carry it into infinity.
 *
 * Only integer operations are used, so the result does not depend on the
 * floating-point environment (rounding mode, flush-to-zero).
 */
#ifndef HRING_HALF_H
#define HRING_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t hring__half_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float hring__half_f32_from(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float hring__h2f_inline(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t u;

  if (exp == 0x1F) {
    /* Infinity, or NaN made quiet as F16C makes it. */
    u = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0);
  } else if (exp != 0) {
    /* Normal: rebias the exponent from 15 to 127. */
    u = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign;
  } else {
    /* Subnormal float16 (mant * 2^-24) is a normal fp32: shift the leading
     * one up to the implicit-bit position and lower the exponent to match. */
    uint32_t e = 113; /* the exponent field of 2^-14, the subnormal scale */
    while (!(mant & 0x400u)) {
      mant <<= 1;
      e--;
    }
    u = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  return hring__half_f32_from(u);
}

static inline uint16_t hring__f2h_inline(float f) {
  uint32_t u = hring__half_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7FFFFFFFu;

  if (a > 0x7F800000u) /* NaN: quiet, payload truncated, as F16C does. */
    return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  /* 65520 is halfway between 65504 (the largest float16, odd mantissa) and
   * 2^16, so it and everything above round to infinity. */
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
  if (a >= 0x38800000u) {
    /* Normal float16 (>= 2^-14): round the 23-bit mantissa to 10 bits, to
     * nearest even; a carry out of the mantissa correctly bumps the
     * exponent.  Rebias from 127 to 15. */
    uint32_t r = a + 0xFFFu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
  }
  if (a <= 0x33000000u) /* <= 2^-25, half the smallest subnormal: even is 0 */
    return sign;
  {
    /* Subnormal float16: the value in units of 2^-24 is m * 2^(e - 126)
     * with e in [102, 112], so shift m right by 126 - e (14..24) and round
     * to nearest even.  A result of 0x400 is the smallest normal, which is
     * the right encoding for a value that rounded up to 2^-14. */
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
}

static inline float hring__bf2f_inline(uint16_t h) {
  return hring__half_f32_from((uint32_t)h << 16);
}

static inline uint16_t hring__f2bf_inline(float f) {
  uint32_t u = hring__half_f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: keep it one, and quiet */
    return (uint16_t)((u >> 16) | 0x0040u);
  /* Round to nearest even on the low 16 bits; overflow carries into
   * infinity, which is the correctly rounded result. */
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#endif
