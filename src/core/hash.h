/*
 * hash.h - FNV-1a over bytes: settings that every rank must share are
 * compared through one 64-bit digest instead of being sent whole.
 */
#ifndef HRING_CORE_HASH_H
#define HRING_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HRING_FNV_SEED 0xcbf29ce484222325ull

static inline uint64_t hring__fnv(uint64_t h, const void *p, size_t len) {
  const unsigned char *c = p;
  for (size_t i = 0; i < len; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

#endif
