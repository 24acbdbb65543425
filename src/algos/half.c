/*
 * half.c - the exported scalar conversions between fp32 and float16 /
 * bfloat16 (declared in reduce.h); the code and its rationale are in half.h.
 */
#include "algos/half.h"
#include "algos/reduce.h"

float hring__half_to_float(uint16_t h) { return hring__h2f_inline(h); }
uint16_t hring__float_to_half(float f) { return hring__f2h_inline(f); }
float hring__bf16_to_float(uint16_t h) { return hring__bf2f_inline(h); }
uint16_t hring__float_to_bf16(float f) { return hring__f2bf_inline(f); }
