/*
 * reduce_isa.h - what each instruction-set file of the reduction kernels
 * gives the dispatcher (reduce.c).  Internal to src/algos/reduce*.c.
 *
 * Every ISA file fills a table indexed [type][op].  The op index HRING_AVG
 * means "sum, then divide by div > 1"; an AVG call with div <= 1 is sent to
 * the SUM kernel by the dispatcher, so kernels only see div > 1 under AVG.
 * A NULL entry means "this ISA has nothing better": the dispatcher falls
 * back to the next narrower ISA, and finally to the portable kernel, which
 * is the reference every vector kernel must match bit for bit.
 */
#ifndef HRING_REDUCE_ISA_H
#define HRING_REDUCE_ISA_H

#include <stddef.h>
#include "algos/reduce.h"

/* n is a count of elements; dst2 may be NULL; flags as for hring__reduce. */
typedef void (*hring__reduce_kernel_t)(void *dst, void *dst2, const void *a,
                                       const void *b, size_t n, int div,
                                       int flags);

/* dst2 may be NULL; n in bytes; flags as for hring__copy. */
typedef void (*hring__copy_kernel_t)(void *dst, void *dst2, const void *src,
                                     size_t n, int flags);

typedef hring__reduce_kernel_t hring__reduce_table_t[HRING_NUM_TYPES]
                                                    [HRING_NUM_OPS];

extern const hring__reduce_table_t hring__reduce_generic_table;
void hring__copy_generic(void *dst, void *dst2, const void *src, size_t n,
                         int flags);
/* dst[i] = src[i] / div, div > 1, with the semantics of AVG's division.  One
 * implementation serves every ISA: it runs only where no reduction is left
 * to fuse the division with. */
void hring__divide_generic(void *dst, const void *src, size_t n,
                           hring_datatype_t type, int div);

#if defined(__x86_64__)
extern const hring__reduce_table_t hring__reduce_avx2_table;
void hring__copy_avx2(void *dst, void *dst2, const void *src, size_t n,
                      int flags);
extern const hring__reduce_table_t hring__reduce_avx512_table;
#endif

#endif
