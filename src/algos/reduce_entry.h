/*
 * reduce_entry.h - the entry function shared by the vector kernel families
 * (reduce_avx2.c, reduce_avx512.c): it splits a call into a head that brings
 * dst to a vector boundary (only when streaming stores are asked for), a
 * body of whole VB-byte vectors (streaming or plain, with or without dst2,
 * each combination a separate instantiation so the untaken stores vanish),
 * and a tail.  The including file defines TARGET, struct vctx and, for each
 * kernel NAME, NAME##_body and NAME##_part.
 */
#ifndef HRING_REDUCE_ENTRY_H
#define HRING_REDUCE_ENTRY_H

#define HRING_REDUCE_ENTRY(NAME, ESZ, VB, CTX)                                  \
  static TARGET void NAME(void *dst, void *dst2, const void *a, const void *b,  \
                          size_t n, int div, int flags) {                       \
    struct vctx c = CTX;                                                        \
    uint8_t *d = dst, *d2 = dst2;                                               \
    const uint8_t *pa = a, *pb = b;                                             \
    size_t len = n * (ESZ), i = 0, end;                                         \
    int nt = 0;                                                                 \
    if ((flags & HRING_REDUCE_NT) && len >= 8 * (VB)) {                         \
      /* Stream only from a vector boundary of dst, which must be a whole       \
       * number of elements away. */                                            \
      size_t head = (size_t)(-(uintptr_t)d & ((VB)-1));                         \
      if (head % (ESZ) == 0) {                                                  \
        if (head) NAME##_part(d, d2, pa, pb, 0, head, &c);                      \
        i = head;                                                               \
        nt = 1;                                                                 \
      }                                                                         \
    }                                                                           \
    end = i + ((len - i) & ~(size_t)((VB)-1));                                  \
    if (nt) {                                                                   \
      if (d2)                                                                   \
        NAME##_body(d, d2, pa, pb, i, end, &c, 1, 1);                           \
      else                                                                      \
        NAME##_body(d, d2, pa, pb, i, end, &c, 1, 0);                           \
      _mm_sfence();                                                             \
    } else {                                                                    \
      if (d2)                                                                   \
        NAME##_body(d, d2, pa, pb, i, end, &c, 0, 1);                           \
      else                                                                      \
        NAME##_body(d, d2, pa, pb, i, end, &c, 0, 0);                           \
    }                                                                           \
    if (end < len) NAME##_part(d, d2, pa, pb, end, len - end, &c);              \
  }

#endif
