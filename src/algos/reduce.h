/*
 * reduce.h - host reduction kernels.
 *
 * One entry point for every (type, op): dst[i] = a[i] op b[i], optionally
 * also written to dst2 (the "reduce and copy" of a ring step that stores the
 * partial result locally and forwards it to the next rank in one pass).
 * dst may alias a or b exactly (in-place); no other overlap is allowed.
 * Buffers may have any alignment.  The implementation picks AVX2 (and
 * AVX-512 where present) at run time; a portable C path is the reference.
 */
#ifndef HRING_REDUCE_H
#define HRING_REDUCE_H

#include <stddef.h>
#include "hring.h"

/* Flags for hring__reduce. */
enum {
  /* Stores to dst may bypass the cache (non-temporal): use for the final,
   * large output that nobody reads soon.  dst2 is always a cached store. */
  HRING_REDUCE_NT = 1 << 0,
};

/*
 * dst[i] = a[i] op b[i] (and dst2[i] the same when dst2 != NULL).
 * op HRING_AVG is treated as HRING_SUM here; `div` > 1 then divides the
 * result by div (after the op, for AVG only; integer division truncating
 * toward zero for integer types, IEEE division for floats, computed in fp32
 * for float16/bfloat16 and rounded once).  div <= 1 means no division.
 * float16 and bfloat16: computed in fp32, rounded to nearest even once.
 * NaN and inf propagate as IEEE arithmetic says (max/min: NaN if either
 * operand is NaN).
 */
/*
 * The choices left open above, the same for every kernel family (results are
 * bit-identical across families, but for the one case left unspecified):
 * - max/min of floats: a NaN operand gives a NaN (a's when a is one, else
 *   b's; made quiet for float16 and bfloat16); +0 and -0 are equal,
 *   max(+0, -0) = +0 and min(+0, -0) = -0 in either order, so max and min
 *   are commutative bit for bit.
 * - sum/prod/avg with two NaN operands: which payload survives is not
 *   specified (it is the hardware's and the compiler's operand order).
 * - Integer sum/prod wrap around; integer AVG divides the wrapped sum, in
 *   the element type, with C's truncation toward zero.
 * - HRING_REDUCE_NT streams only where dst can reach a vector-aligned
 *   address by whole elements, and only for outputs of a few hundred bytes
 *   or more; elsewhere the stores are ordinary ones.
 */
void hring__reduce(void *dst, void *dst2, const void *a, const void *b,
                   size_t count, hring_datatype_t type, hring_redop_t op,
                   int div, int flags);

/* dst[i] = src[i] / div (AVG's final division when no reduction is left to
 * fuse it with, e.g. a single rank).  dst may equal src. */
void hring__divide(void *dst, const void *src, size_t count,
                   hring_datatype_t type, int div);

/* Copy of n bytes, non-temporal when flags has HRING_REDUCE_NT, and to two
 * destinations at once when dst2 != NULL. */
void hring__copy(void *dst, void *dst2, const void *src, size_t n, int flags);

/* Name of the kernel family chosen at run time ("avx512", "avx2", "generic"),
 * for hring-info and logs.  HRING_CPU_KERNELS=generic forces the portable
 * path. */
const char *hring__reduce_isa(void);

/* Selects the kernel family by name ("generic", "avx2", "avx512"), for
 * tests and benchmarks that compare them; NULL or "auto" restores the
 * default (the CPU's widest, lowered by HRING_CPU_KERNELS).  Returns 0, or
 * -1 (and changes nothing) for an unknown name or one this CPU cannot run.
 * Process-wide: not for use while other threads reduce. */
int hring__reduce_set_isa(const char *name);

/* hring__reduce_set_isa("generic") when on, else back to the default. */
void hring__reduce_force_generic(int on);

/* Scalar conversions used by the kernels and by tests. */
float hring__half_to_float(uint16_t h);
uint16_t hring__float_to_half(float f);  /* round to nearest even */
float hring__bf16_to_float(uint16_t h);
uint16_t hring__float_to_bf16(float f);  /* round to nearest even, NaN kept */

#endif
